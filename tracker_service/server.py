"""The WSGI server: waitress with worker threads, and a graceful stop.

Waitress' own ``serve()`` stops its event loop at once on Ctrl-C, so answers still being
computed are never sent. :class:`Server` runs the same loop itself; :meth:`Server.stop`
(safe from a signal handler or another thread) closes the listening sockets, then lets the
loop run until every request in flight is answered and flushed, within a grace period.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask

log = logging.getLogger(__name__)

#: Longest time the event loop blocks, so that a stop request is noticed promptly.
_POLL_S = 0.2


class JsonErrorTask(ErrorTask):
    """Waitress' own error answers in the service's JSON form ``{"error": "..."}``.

    Waitress answers some requests itself, without the application: a body over twice the
    application's limit, a malformed HTTP request. It would answer them in plain text.
    """

    def execute(self) -> None:
        """Write the error as JSON and close the connection, as waitress does."""
        error = self.request.error
        body = json.dumps({"error": f"{error.reason}: {error.body}"}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):
    """A waitress connection whose own errors are answered by :class:`JsonErrorTask`."""

    error_task_class = JsonErrorTask


class Server:
    """Waitress serving one application.

    Args:
        app: The application.
        host: Address to bind.
        port: Port to bind (0: any free port, see :attr:`port`).
        threads: Worker threads.
        max_body_bytes: The application's body limit (waitress reads up to twice that).
        grace_s: How long requests in flight may take to finish after :meth:`stop`.
    """

    def __init__(
        self,
        app: Flask,
        *,
        host: str,
        port: int,
        threads: int,
        max_body_bytes: int,
        grace_s: float,
    ) -> None:
        self._map: dict[int, Any] = {}
        self._server = create_server(
            app,
            map=self._map,
            host=host,
            port=port,
            threads=threads,
            # Above the application's own limit, so that it answers 413 in JSON first.
            max_request_body_size=2 * max_body_bytes,
            ident="tracker-service",
        )
        for listener in self._listeners():
            listener.channel_class = JsonErrorChannel
        self._grace_s = grace_s
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        """The port bound (the first one when the host resolves to several addresses)."""
        return int(self._listeners()[0].effective_port)  # waitress reports it as a string

    def _listeners(self) -> list[BaseWSGIServer]:
        return [d for d in self._map.values() if isinstance(d, BaseWSGIServer)]

    def stop(self) -> None:
        """Ask :meth:`serve` to stop: safe from a signal handler or another thread."""
        self._stop.set()

    def serve(self) -> None:
        """Serve until :meth:`stop`, then finish the requests in flight and return."""
        log.info("Listening on port %d", self.port)
        while not self._stop.is_set():
            wasyncore.loop(timeout=_POLL_S, map=self._map, count=1)
        for listener in self._listeners():
            wasyncore.dispatcher.close(listener)  # the socket only, not the shared trigger
        dispatcher = self._server.task_dispatcher
        deadline = time.monotonic() + self._grace_s
        log.info("Stopping: finishing the requests in flight (at most %.0f s)", self._grace_s)
        while self._busy(dispatcher) and time.monotonic() < deadline:
            wasyncore.loop(timeout=_POLL_S, map=self._map, count=1)
        if self._busy(dispatcher):
            log.warning("Requests still in flight after %.0f s are dropped", self._grace_s)
        dispatcher.shutdown(timeout=1)
        wasyncore.close_all(self._map)
        log.info("Stopped")

    def _busy(self, dispatcher: Any) -> bool:
        unsent = any(
            channel.total_outbufs_len
            for channel in self._map.values()
            if isinstance(channel, HTTPChannel)
        )
        return bool(dispatcher.active_count or dispatcher.queue or unsent)

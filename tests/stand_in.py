"""A stand-in HTTP service for client tests: fixed answers by path, on a loopback port."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def stand_in(answers: Mapping[str, tuple[int, bytes]]) -> Iterator[str]:
    """Serve ``{path: (status, JSON body)}`` (404 elsewhere) to GET and POST; yield its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status, body = answers.get(self.path, (404, b'{"error": "no such page"}'))
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815 (the handler's names)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        loop.join(10)
        server.server_close()


@contextmanager
def unanswered_url() -> Iterator[str]:
    """A loopback URL whose port nothing listens on, for as long as the block runs."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"

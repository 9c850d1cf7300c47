"""``python -m tracker_service``: serve the legacy endpoints with waitress.

Settings come from the ``TRACKER_*`` environment variables (see the README). SIGTERM and
SIGINT stop the server gracefully: no new connections, requests in flight finish.
"""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType

from tracker_service.app import create_app
from tracker_service.server import Server
from tracker_service.settings import Settings

log = logging.getLogger("tracker_service")


def main() -> int:
    """Run the service until SIGTERM or SIGINT."""
    settings = Settings.from_env(os.environ)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    server = Server(
        app,
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        max_body_bytes=settings.max_request_bytes,
        grace_s=settings.shutdown_grace_s,
    )

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("Received %s", signal.Signals(signum).name)
        server.stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info(
        "Tracker service on %s:%d, Triton %s (%s), %d threads",
        settings.host, server.port, settings.triton_url, settings.triton_protocol, settings.threads,
    )
    try:
        server.serve()
    finally:
        app.extensions["tracker"].close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

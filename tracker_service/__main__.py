"""``python -m tracker_service``: serve the legacy endpoints with waitress.

Settings come from the ``TRACKER_*`` environment variables (see the README). SIGTERM and
SIGINT stop the server gracefully: no new connections, requests in flight finish.
"""

from __future__ import annotations

import logging
import os

from tracker_service.app import create_app
from tracker_service.process import configure_logging, on_stop_signals
from tracker_service.server import Server
from tracker_service.settings import Settings

log = logging.getLogger("tracker_service")


def main() -> int:
    """Run the service until SIGTERM or SIGINT."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    app = create_app(settings)
    server = Server(
        app,
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        max_body_bytes=settings.max_request_bytes,
        grace_s=settings.shutdown_grace_s,
    )
    on_stop_signals(server.stop)
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

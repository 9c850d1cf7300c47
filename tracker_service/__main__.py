"""``python -m tracker_service``: serve the legacy endpoints with waitress.

Settings come from the ``TRACKER_*`` environment variables (see the README). SIGTERM and
SIGINT stop the server gracefully: no new connections, requests in flight finish.
"""

from __future__ import annotations

import logging
import os

from tracker_service import resources
from tracker_service.app import create_app
from tracker_service.process import configure_logging, on_stop_signals
from tracker_service.server import Server
from tracker_service.settings import Settings

log = logging.getLogger("tracker_service")


def main() -> int:
    """Run the service until SIGTERM or SIGINT."""
    settings = Settings.from_env(os.environ)
    http, triton = settings.server, settings.triton
    configure_logging(http.log_level)
    app = create_app(settings)
    server = Server(
        app,
        host=http.host,
        port=http.port,
        threads=http.threads,
        max_body_bytes=settings.max_request_bytes,
        grace_s=http.shutdown_grace_s,
    )
    on_stop_signals(server.stop)
    log.info(
        "Tracker service on %s:%d, Triton %s (%s), %d threads",
        http.host, server.port, triton.triton_url, triton.triton_protocol, http.threads,
    )
    try:
        server.serve()
    finally:
        resources.close(app)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

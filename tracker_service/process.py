"""What every process of the service does at start: its log format and its stop signals.

The HTTP service (``python -m tracker_service``) and the job worker
(``python -m tracker_service.worker``) log alike and stop alike, on SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Log at ``level`` (a ``logging`` level name) in the service's format."""
    logging.basicConfig(level=level, format=LOG_FORMAT)


def on_stop_signals(stop: Callable[[], None]) -> None:
    """Call ``stop`` on SIGTERM or SIGINT, saying which signal came (main thread only)."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("Received %s", signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)

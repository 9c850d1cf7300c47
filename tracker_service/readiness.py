"""Whether the service can answer poses: Triton's readiness, checked at most every few seconds.

``GET /health`` and every ``POST /pose/hybrid`` read it; one thread refreshes it while
the others wait for that answer instead of asking Triton again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tracker_service.inference import Readiness, TritonModels


@dataclass(frozen=True)
class Status:
    """Triton's readiness and where inference runs.

    Attributes:
        readiness: Per-model readiness and the reason when not ready.
        device: ``"cuda"``, ``"cpu"`` or ``"unknown"``.

    """

    readiness: Readiness
    device: str


class ReadinessCache:
    """Triton's readiness, refreshed when older than ``ttl_s``.

    Args:
        models: The Triton client.
        ttl_s: How long an answer is reused.
        clock: Monotonic seconds.

    """

    def __init__(
        self, models: TritonModels, *, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._models = models
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._status: Status | None = None
        self._checked = 0.0

    def invalidate(self) -> None:
        """Forget the cached answer: the next :meth:`get` asks Triton."""
        with self._lock:
            self._status = None

    def get(self) -> Status:
        """Return the latest status, refreshed first when it is stale."""
        with self._lock:
            now = self._clock()
            if self._status is None or now - self._checked >= self._ttl_s:
                readiness = self._models.readiness()
                device = self._status.device if self._status else "unknown"
                if readiness.ready and device == "unknown":
                    device = self._models.device()
                self._status = Status(readiness, device)
                self._checked = now
            return self._status

"""The backend's admin calls: warm the models up, and reload them from the repository.

The backend's admin routes proxy ``GET /warmup`` (120 s timeout) and ``POST /reload``
(10 s timeout). Here:

- :func:`warm_up` waits, bounded, until Triton and every model are ready, then runs one
  frame of the backend's size (640x360) through the detector, HMR2 (one crop) and the body
  model, so that the first user frame is not the slow one.
- :class:`Reloader` asks Triton to reload the served models from its repository (after a
  new export, without a restart), one after the other, in a thread of its own: a caller
  waits a few seconds for it and is told its progress if it takes longer. Triton keeps
  serving a model's old version until the new one is loaded; sessions and their tracks are
  not touched, and no code is ever loaded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracker_service.detection import PersonDetector
from tracker_service.exceptions import ServiceError
from tracker_service.inference import Readiness, TritonModels
from tracker_service.preprocess import crop_boxes, hmr2_crops
from tracker_service.telemetry import Stopwatch

log = logging.getLogger(__name__)

#: The backend's frames: ffmpeg ``scale=640:360``.
WARMUP_FRAME_HW = (360, 640)
#: How often the warm-up asks Triton whether it is ready.
_POLL_S = 0.5


@dataclass(frozen=True)
class WarmUp:
    """The outcome of :func:`warm_up`.

    Attributes:
        ready: Whether the models are ready and the warm-up frame ran.
        readiness: Triton's last answer.
        steps_ms: Milliseconds of each step: ``wait`` (for readiness), then ``detect``,
            ``hmr2`` and ``smpl`` when they ran.
        error: Why it is not ready, in words, or ``""``.

    """

    ready: bool
    readiness: Readiness
    steps_ms: dict[str, float]
    error: str = ""


def warm_up(
    models: TritonModels,
    timeout_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WarmUp:
    """Wait until Triton and every model are ready (at most ``timeout_s``), then run a frame.

    Args:
        models: The Triton client.
        timeout_s: Longest wait for readiness.
        clock: Monotonic seconds.
        sleep: Waits between readiness checks.

    Returns:
        What happened; never raises for a Triton failure (it is the ``error``).

    """
    watch = Stopwatch()
    deadline = clock() + timeout_s
    with watch.stage("wait"):
        readiness = models.readiness()
        while not readiness.ready and clock() < deadline:
            sleep(min(_POLL_S, max(deadline - clock(), 0.0)))
            readiness = models.readiness()
    if not readiness.ready:
        return WarmUp(False, readiness, _ms(watch), f"{readiness.error} after {timeout_s:g} s")
    try:
        _run_frame(models, watch)
    except ServiceError as error:
        return WarmUp(False, readiness, _ms(watch), f"the warm-up frame failed: {error}")
    return WarmUp(True, readiness, _ms(watch))


def _run_frame(models: TritonModels, watch: Stopwatch) -> None:
    """One grey 640x360 frame through the detector, one centred crop through HMR2, its body."""
    height, width = WARMUP_FRAME_HW
    frame = np.full((height, width, 3), 128, np.uint8)
    with watch.stage("detect"):
        PersonDetector(models.detect, min_score=0.0, min_box_px=0.0)(frame)
    box = np.array([[0.35 * width, 0.1 * height, 0.65 * width, 0.9 * height]])
    with watch.stage("hmr2"):
        result = models.hmr2(hmr2_crops(frame, *crop_boxes(box)))
    with watch.stage("smpl"):
        models.smpl(result.global_orient, result.body_pose, result.betas)


def _ms(watch: Stopwatch) -> dict[str, float]:
    return {name: round(1000.0 * seconds, 1) for name, seconds in watch.stages.items()}


@dataclass
class ReloadStatus:
    """Where the latest reload stands (a copy; see :meth:`Reloader.status`).

    Attributes:
        state: ``idle`` (none yet), ``reloading``, ``done`` or ``failed``.
        models: The models being (or last) reloaded, in order.
        reloaded_ms: Milliseconds each reloaded model took, in order.
        error: Why it failed, or ``""``.
        started_s: Seconds since it started (0 when idle).

    """

    state: str = "idle"
    models: list[str] = field(default_factory=list)
    reloaded_ms: dict[str, float] = field(default_factory=dict)
    error: str = ""
    started_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The status as the JSON answers carry it."""
        return {
            "state": self.state,
            "models": list(self.models),
            "reloaded_ms": dict(self.reloaded_ms),
            "error": self.error or None,
            "started_s": round(self.started_s, 1),
        }


class Reloader:
    """Reloads the served models in a thread; one reload at a time.

    Args:
        models: The Triton client.
        on_reloaded: Called after each reload, done or failed (forget cached readiness).
        clock: Monotonic seconds.

    """

    def __init__(
        self,
        models: TritonModels,
        *,
        on_reloaded: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._models = models
        self._on_reloaded = on_reloaded
        self._clock = clock
        self._cond = threading.Condition()
        self._status = ReloadStatus()
        self._started = 0.0

    def status(self) -> ReloadStatus:
        """A copy of the latest reload's status."""
        with self._cond:
            return self._copy()

    def reload(self, wait_s: float) -> ReloadStatus:
        """Start a reload (or join the one running) and wait for it, at most ``wait_s``.

        Returns:
            Its status: ``done`` or ``failed`` when it ended in time, else ``reloading``.

        """
        with self._cond:
            if self._status.state != "reloading":
                names = self._models.names
                self._status = ReloadStatus("reloading", [names.detector, names.hmr2, names.smpl])
                self._started = self._clock()
                threading.Thread(target=self._run, name="model-reload", daemon=True).start()
            self._cond.wait_for(lambda: self._status.state != "reloading", timeout=wait_s)
            return self._copy()

    def _run(self) -> None:
        with self._cond:
            names = list(self._status.models)
        try:
            for name in names:
                start = self._clock()
                self._models.reload(name)
                with self._cond:
                    self._status.reloaded_ms[name] = round(1000.0 * (self._clock() - start), 1)
        except ServiceError as error:
            log.warning("Model reload failed: %s", error)
            state, message = "failed", str(error)
        else:
            log.info("Reloaded %s from the model repository", ", ".join(names))
            state, message = "done", ""
        self._on_reloaded()
        with self._cond:
            self._status.state, self._status.error = state, message
            self._cond.notify_all()

    def _copy(self) -> ReloadStatus:
        status = self._status
        started = self._clock() - self._started if status.state != "idle" else 0.0
        return ReloadStatus(
            status.state, list(status.models), dict(status.reloaded_ms), status.error, started
        )

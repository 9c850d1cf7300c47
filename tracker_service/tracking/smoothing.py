"""Live temporal smoothing of tracked bodies: causal One Euro filters, one shape per track.

HMR2 answers each frame on its own, so a tracked body jitters from frame to frame and its
shape (``betas``) changes. :class:`LiveSmoother` filters each track's outputs as they come,
before they are answered:

* Joint rotations are filtered on SO(3): the filter moves its last rotation ``R`` towards
  the new one ``X`` along the geodesic, ``R exp(a log(R^T X))``, so nothing averages matrix
  entries, the result is a rotation, and a turn through 180 degrees (where quaternions
  change sign) is no special case.
* The box (centre and log size), the 2D root and the camera (``tx, ty, log tz``) are
  filtered per coordinate; speeds of pixel coordinates are counted in box heights.
* The filter is One Euro's adaptive low-pass (Casiez et al., CHI 2012), whose cutoff
  rises with the filtered speed, ``min_cutoff + beta * speed``, so stillness is smoothed
  hard and fast motion follows, on a level-and-trend (double exponential) state, so a
  steady motion is followed without lag (:func:`one_euro`). Cutoffs are in cycles per
  frame. The defaults were chosen on the synthetic motions of
  ``scripts/benchmark_smoothness.py`` (on :mod:`tracker_tools.smoothness`; other noise seeds
  than those it reports).
* Body shape is one per track: the running mean of the detections' betas weighted by
  their scores; predictions do not change it.

Predicted outputs (frames where the track was not detected) go through the same filters,
so a gap starts from the smoothed state and the detection that ends it is blended in
without a jump. :class:`SmoothedTracker` wraps a tracker so that a session sees smoothed
outputs; :func:`track_signals` and :func:`with_signals` are the one encoding of an output
as filterable signals, shared with the offline pass (:mod:`.offline`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tracker_service.tracking.rotation import so3_exp, so3_log
from tracker_service.tracking.tracker import PhalpTracker
from tracker_service.tracking.types import BodyPose, Detection, TrackOutput

#: Differences below this are rounding, not smoothing.
_UNCHANGED = 1e-9


@dataclass(frozen=True)
class TrackSignals:
    """One output as the filters see it.

    Attributes:
        location: ``(n,)`` box centre x, y, log width, log height, root x, y, and with a
            camera ``tx, ty, log tz`` (``n`` is 6 or 9).
        rotations: ``(24, 3, 3)`` root and joint rotations, or None without a body.
        betas: ``(10,)`` shape, or None without a body.

    """

    location: np.ndarray
    rotations: np.ndarray | None
    betas: np.ndarray | None

    def location_scale(self) -> np.ndarray:
        """``(n,)`` units of the location's speeds: box heights for pixels, 1 otherwise."""
        height = math.exp(self.location[3])
        scale = np.ones_like(self.location)
        scale[[0, 1, 4, 5]] = height
        return scale


def track_signals(output: TrackOutput) -> TrackSignals:
    """Encode an output's box, root, camera and body as :class:`TrackSignals`."""
    box = output.box
    parts = [(box[:2] + box[2:]) / 2.0, np.log(box[2:] - box[:2]), output.root_2d]
    if output.camera is not None:
        parts.append([output.camera[0], output.camera[1], math.log(output.camera[2])])
    pose = output.pose
    return TrackSignals(
        location=np.concatenate(parts),
        rotations=None if pose is None else pose.rotations,
        betas=None if pose is None else pose.betas,
    )


def with_signals(output: TrackOutput, signals: TrackSignals, **changes: Any) -> TrackOutput:
    """``output`` with its box, root, camera and body taken from ``signals``.

    ``smoothed`` is set when any of them differs from ``output``'s (by more than rounding);
    ``changes`` replace further fields (they may override ``smoothed``).
    """
    location = signals.location
    half = np.exp(location[2:4]) / 2.0
    box = np.concatenate([location[:2] - half, location[:2] + half])
    camera = None
    if len(location) == 9:
        camera = np.array([location[6], location[7], math.exp(location[8])])
    pose = output.pose
    if signals.rotations is not None and signals.betas is not None:
        pose = BodyPose.from_rotations(signals.rotations, signals.betas)
    refined = replace(output, box=box, root_2d=location[4:6].copy(), camera=camera, pose=pose)
    same = np.allclose(track_signals(output).location, location, rtol=0.0, atol=_UNCHANGED)
    if pose is not None and output.pose is not None:
        same = same and all(
            np.allclose(a, b, rtol=0.0, atol=_UNCHANGED)
            for a, b in ((pose.rotations, output.pose.rotations), (pose.betas, output.pose.betas))
        )
    changed = not same
    return replace(refined, **{"smoothed": changed, **changes})


@dataclass(frozen=True, kw_only=True)
class SmoothingConfig:
    """Settings of the live filters (cutoffs in cycles per frame, speeds per frame).

    Attributes:
        min_cutoff: Cutoff at rest. Lowering it smooths stillness more and lags more
            when motion starts.
        beta: Cutoff added per unit of speed (radians, box heights, metres or log units
            per frame). Raising it reduces lag in fast motion and lets more jitter through.
        derivative_cutoff: Cutoff of the trend (velocity) estimate, which both carries
            the prediction and drives the adaptation.
        strength: Divides every cutoff: 2 smooths twice as hard, 0.5 half as hard.

    """

    min_cutoff: float = 0.05
    beta: float = 4.0
    derivative_cutoff: float = 0.3
    strength: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "derivative_cutoff", "strength"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be positive and finite, got {value!r}")
        if not (self.beta >= 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be >= 0 and finite, got {self.beta!r}")


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    """Weight of a new sample in a first-order low-pass of ``cutoff`` (cycles per frame).

    ``r / (1 + r)`` with ``r = 2 pi cutoff dt``: the exponential smoothing factor.
    """
    r = 2.0 * math.pi * np.asarray(cutoff, dtype=np.float64) * dt
    return r / (1.0 + r)


@dataclass(frozen=True)
class FilterState:
    """One One Euro filter's memory.

    Attributes:
        value: The last output: ``(n,)`` values or ``(J, 3, 3)`` rotations.
        velocity: ``(n, 1)`` or ``(J, 3)`` filtered velocity (tangent per frame).
        frame: Frame index of the last output.

    """

    value: np.ndarray
    velocity: np.ndarray
    frame: int


def one_euro(
    state: FilterState | None,
    value: np.ndarray,
    frame: int,
    config: SmoothingConfig,
    *,
    scale: np.ndarray | float = 1.0,
) -> FilterState:
    """One step of the adaptive filter on values ``(n,)`` or on rotations ``(J, 3, 3)``.

    The filter keeps a level and a trend (double exponential smoothing, so a steady motion
    is followed without lag): it predicts ``level + trend * dt``, moves that prediction
    towards the sample by the factor of One Euro's adaptive cutoff
    ``(min_cutoff + beta * speed) / strength`` (speed: the trend's magnitude over
    ``scale``), and blends the step it made into the trend at ``derivative_cutoff``.
    On rotations the same happens on SO(3): ``exp`` moves, ``log`` measures.

    Args:
        state: The filter's memory, or None for a new signal (its output is ``value``).
        value: This frame's sample.
        frame: Its frame index (greater than ``state.frame``; skipped frames count as time).
        config: Cutoffs and strength.
        scale: ``(n,)`` or scalar unit of speed per coordinate (values only).

    Returns:
        The new memory; its ``value`` is the filtered sample.

    """
    rotations = value.ndim == 3
    if state is None:
        velocity = np.zeros(value.shape[:1] + ((3,) if rotations else (1,)))
        return FilterState(value.copy(), velocity, frame)
    dt = float(frame - state.frame)
    if rotations:
        predicted = so3_exp(state.value, state.velocity * dt)
        speed = np.linalg.norm(state.velocity, axis=-1)
    else:
        predicted = state.value + state.velocity[:, 0] * dt
        speed = np.abs(state.velocity[:, 0]) / scale
    cutoff = (config.min_cutoff + config.beta * speed) / config.strength
    weight = smoothing_factor(cutoff, dt)[:, None]
    if rotations:
        filtered = so3_exp(predicted, weight * so3_log(predicted, value))
        moved = so3_log(state.value, filtered)
    else:
        filtered = predicted + weight[:, 0] * (value - predicted)
        moved = (filtered - state.value)[:, None]
    velocity = state.velocity + smoothing_factor(config.derivative_cutoff, dt) * (
        moved / dt - state.velocity
    )
    return FilterState(filtered, velocity, frame)


@dataclass(frozen=True)
class _TrackMemory:
    """A track's filters and its running shape estimate."""

    location: FilterState
    rotations: FilterState | None
    shape_sum: np.ndarray | None
    shape_weight: float


class LiveSmoother:
    """Causal smoothing of every track's outputs, frame by frame; build one per video.

    Example:
        >>> smoother = LiveSmoother(SmoothingConfig())
        >>> smoother.smooth([], 0)
        []

    """

    def __init__(self, config: SmoothingConfig | None = None) -> None:
        """Create a smoother; ``config`` defaults to :class:`SmoothingConfig`."""
        self.config = SmoothingConfig() if config is None else config
        self._memory: dict[int, _TrackMemory] = {}

    def reset(self) -> None:
        """Forget every track (a new video)."""
        self._memory = {}

    def smooth(self, outputs: Sequence[TrackOutput], frame_index: int) -> list[TrackOutput]:
        """Filter one frame's outputs; tracks absent from ``outputs`` are forgotten.

        Args:
            outputs: The tracker's outputs for frame ``frame_index`` (one per track).
            frame_index: The frame, increasing from call to call.

        Returns:
            The outputs in the same order, with filtered box, root, camera and pose and
            the track's shape estimate; ``smoothed`` says whether anything changed.

        """
        memory: dict[int, _TrackMemory] = {}
        smoothed = []
        for output in outputs:
            memory[output.track_id], refined = self._step(
                self._memory.get(output.track_id), output, frame_index
            )
            smoothed.append(refined)
        self._memory = memory
        return smoothed

    def _step(
        self, memory: _TrackMemory | None, output: TrackOutput, frame_index: int
    ) -> tuple[_TrackMemory, TrackOutput]:
        signals = track_signals(output)
        if memory is not None and len(memory.location.value) != len(signals.location):
            memory = None  # the camera appeared or vanished: start over
        location = one_euro(
            None if memory is None else memory.location,
            signals.location,
            frame_index,
            self.config,
            scale=signals.location_scale(),
        )
        rotations, shape_sum, shape_weight, betas = None, None, 0.0, None
        if signals.rotations is not None and signals.betas is not None:
            previous = None if memory is None else memory.rotations
            rotations = one_euro(previous, signals.rotations, frame_index, self.config)
            if memory is None or previous is None or memory.shape_sum is None:
                shape_sum, shape_weight = np.zeros_like(signals.betas), 0.0
            else:
                shape_sum, shape_weight = memory.shape_sum, memory.shape_weight
            if output.detected or previous is None:
                weight = max(output.confidence, 1e-6)
                shape_sum = shape_sum + weight * signals.betas
                shape_weight += weight
            betas = shape_sum / shape_weight
        refined = with_signals(
            output,
            TrackSignals(location.value, None if rotations is None else rotations.value, betas),
        )
        return _TrackMemory(location, rotations, shape_sum, shape_weight), refined


class SmoothedTracker:
    """A tracker whose outputs pass through a :class:`LiveSmoother` (a session's tracker).

    Args:
        tracker: The tracker whose outputs are smoothed.
        smoother: The smoother, owned by this tracker.

    """

    def __init__(self, tracker: PhalpTracker, smoother: LiveSmoother) -> None:
        self._tracker = tracker
        self._smoother = smoother

    def update(
        self,
        detections: Sequence[Detection],
        frame_index: int,
        *,
        image_size: tuple[int, int] | None = None,
    ) -> list[TrackOutput]:
        """Track one frame, then smooth its outputs (see ``PhalpTracker.update``)."""
        outputs = self._tracker.update(detections, frame_index, image_size=image_size)
        return self._smoother.smooth(outputs, frame_index)

    def associate(
        self, detections: Sequence[Detection], frame_index: int
    ) -> list[TrackOutput]:
        """A late frame's read-only association (``PhalpTracker.associate``), unsmoothed.

        The filters run forward in frame order only: a late frame leaves them as they are.
        """
        return self._tracker.associate(detections, frame_index)

    def reset(self) -> None:
        """Forget every track and filter (a new video)."""
        self._tracker.reset()
        self._smoother.reset()

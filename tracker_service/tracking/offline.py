"""The offline pass over a finished tracking run: stitch, backfill, interpolate, smooth.

:func:`refine_video` takes the online tracker's outputs for every frame of a video and,
knowing the whole video, answers better than the tracker could frame by frame:

1. **Stitching.** A track that ends and one that starts later are merged when their
   locations agree (each end extrapolated at its velocity to the other's time, in box
   heights, within a radius that grows with the gap), their sizes agree and, with bodies,
   their shapes agree; one global assignment (Hungarian, gated) picks at most one
   successor per track, so chains form. Identities are renumbered 1, 2, ... in order of
   first observation; tracks never confirmed are dropped.
2. **Backfill.** A kept track's frames before its confirmation are answered, CONFIRMED.
3. **Zero-lag smoothing** of the observed frames: a local-linear fit over a Gaussian
   window in both directions of time (no lag, and no bias on a ramp or at the ends),
   weighted by detection score, then refitted once with Cauchy weights on the residuals
   so that outliers barely count. Rotations are fitted in the tangent space of SO(3) at
   each frame's rotation (``log(R_i^T R_j)``) and mapped back with ``exp``. Shape is one
   per track: the score-weighted mean of its detections.
4. **Interpolation.** Frames between two observations are filled by slerp of every joint
   between the smoothed observations (``R_a exp(u log(R_a^T R_b))``), linear
   interpolation of the box centre, log size, root and camera, flagged ``interpolated``.
   After a track's last observation the tracker's predictions stay (``predicted``),
   moved by the smoothing's correction of that observation so they start where it ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tracker_service.tracking.matching import assign
from tracker_service.tracking.rotation import so3_exp, so3_log
from tracker_service.tracking.smoothing import TrackSignals, track_signals, with_signals
from tracker_service.tracking.types import TrackOutput, TrackState

#: Observations at each end of a track that estimate its velocity for stitching.
_END_OBSERVATIONS = 5
#: Cauchy weights count residuals in units of this many robust standard deviations.
_OUTLIER_SCALE = 3.0
#: Observations fitted at once by the smoother.
_CHUNK = 256
#: Largest finite stitching cost: 1 plus three squared terms, each gated at 1.
_STITCH_GATE = 4.0


@dataclass(frozen=True, kw_only=True)
class OfflineConfig:
    """Settings of :func:`refine_video`.

    Attributes:
        window: Half-width of the smoothing window, frames; 0 turns smoothing off.
        sigma: Standard deviation of the Gaussian window, frames: the smoothing's
            strength. Raising it removes more jitter and flattens fast motion more.
        max_stitch_gap: Longest gap, frames, between a track's last observation and
            the first of the track it may be stitched to; 0 turns stitching off.
        stitch_radius: Location disagreement accepted at a gap of one frame, box heights.
        stitch_radius_growth: Radius added per frame of gap, box heights.
        stitch_log_size: Accepted difference of log box heights.
        stitch_shape: Accepted distance between the two tracks' mean shapes (betas).

    """

    window: int = 8
    sigma: float = 3.0
    max_stitch_gap: int = 90
    stitch_radius: float = 0.5
    stitch_radius_growth: float = 0.02
    stitch_log_size: float = 0.3
    stitch_shape: float = 1.0

    def __post_init__(self) -> None:
        for name in ("window", "max_stitch_gap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for name in ("sigma", "stitch_radius", "stitch_log_size", "stitch_shape"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be positive and finite, got {value!r}")
        if not (self.stitch_radius_growth >= 0 and math.isfinite(self.stitch_radius_growth)):
            raise ValueError(f"stitch_radius_growth must be >= 0, got {self.stitch_radius_growth}")


@dataclass
class _Track:
    """One identity's outputs: its observations and the predictions after the last one."""

    frames: list[int]
    observed: list[TrackOutput]
    tail: list[tuple[int, TrackOutput]]
    confirmed: bool = False


def _collect(frames: Sequence[Sequence[TrackOutput]]) -> list[_Track]:
    """Group the online outputs by track id; predictions before a later observation go."""
    tracks: dict[int, _Track] = {}
    for index, outputs in enumerate(frames):
        for output in outputs:
            track = tracks.setdefault(output.track_id, _Track([], [], []))
            track.confirmed |= output.state is TrackState.CONFIRMED
            if output.detected:
                track.frames.append(index)
                track.observed.append(output)
                track.tail = []
            else:
                track.tail.append((index, output))
    return [t for t in tracks.values() if t.confirmed and t.observed]


def _end_motion(track: _Track, last: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """``(3,)`` centre x, y and log height at one end, their per-frame velocity, the time."""
    chosen = slice(-_END_OBSERVATIONS, None) if last else slice(None, _END_OBSERVATIONS)
    times = np.array(track.frames[chosen], dtype=np.float64)
    values = np.stack([track_signals(o).location[[0, 1, 3]] for o in track.observed[chosen]])
    end = -1 if last else 0
    if len(times) < 2:
        return values[end], np.zeros(3), times[end]
    dt = times - times.mean()
    velocity = dt @ (values - values.mean(axis=0)) / np.square(dt).sum()
    return values[end], velocity, times[end]


def _mean_shape(track: _Track) -> np.ndarray | None:
    """Score-weighted mean betas of a track's detections, or None without bodies."""
    posed = [(o.confidence, o.pose) for o in track.observed if o.pose is not None]
    if not posed:
        return None
    weights = np.array([max(confidence, 1e-6) for confidence, _ in posed])
    return weights @ np.stack([pose.betas for _, pose in posed]) / weights.sum()


def _stitch_cost(before: _Track, after: _Track, config: OfflineConfig) -> float:
    """Cost (>= 1) of continuing ``before`` with ``after``; ``inf`` outside the gates."""
    end, end_velocity, end_time = _end_motion(before, last=True)
    start, start_velocity, start_time = _end_motion(after, last=False)
    gap = start_time - end_time
    if not 0 < gap <= config.max_stitch_gap:
        return math.inf
    height = math.exp((end[2] + start[2]) / 2.0)
    forward = end[:2] + end_velocity[:2] * gap - start[:2]
    backward = start[:2] - start_velocity[:2] * gap - end[:2]
    distance = (np.linalg.norm(forward) + np.linalg.norm(backward)) / (2.0 * height)
    terms = [
        distance / (config.stitch_radius + config.stitch_radius_growth * gap),
        abs(end[2] - start[2]) / config.stitch_log_size,
    ]
    shapes = _mean_shape(before), _mean_shape(after)
    if shapes[0] is not None and shapes[1] is not None:
        terms.append(np.linalg.norm(shapes[0] - shapes[1]) / config.stitch_shape)
    if max(terms) > 1.0:
        return math.inf
    return 1.0 + float(np.square(terms).sum())


def _stitch(tracks: list[_Track], config: OfflineConfig) -> list[_Track]:
    """Merge chains of tracks that continue one another (one global assignment)."""
    if config.max_stitch_gap == 0 or len(tracks) < 2:
        return tracks
    costs = np.array([[_stitch_cost(a, b, config) for b in tracks] for a in tracks])
    successor = dict(assign(costs, _STITCH_GATE, log_domain=False).matches.tolist())
    has_predecessor = set(successor.values())
    chains = []
    for head in range(len(tracks)):
        if head in has_predecessor:
            continue
        merged, row = tracks[head], head
        while row in successor:
            row = successor[row]
            follower = tracks[row]
            merged = _Track(
                merged.frames + follower.frames, merged.observed + follower.observed, follower.tail
            )
        chains.append(merged)
    return chains


def _neighbours(times: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """``(N, K)`` indices of each observation's neighbours within ``window`` frames, and mask."""
    low = np.searchsorted(times, times - window, side="left")
    high = np.searchsorted(times, times + window, side="right")
    width = int((high - low).max())
    index = low[:, None] + np.arange(width)[None, :]
    inside = index < high[:, None]
    return np.minimum(index, len(times) - 1), inside


def _local_linear(offsets: np.ndarray, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Intercepts of weighted lines fitted per row: ``values ~ a + b * offsets``.

    Args:
        offsets: ``(N, K)`` time offsets of the neighbours from each row's frame.
        values: ``(N, K, G, C)`` neighbours' values.
        weights: ``(N, K, G)`` weights (0 for padding).

    Returns:
        ``(N, G, C)`` fitted values at offset 0 (the weighted mean where a line is undefined).

    """
    d = offsets[:, :, None]
    s0, s1, s2 = weights.sum(1), (weights * d).sum(1), (weights * d * d).sum(1)
    m0 = (weights[..., None] * values).sum(1)
    m1 = (weights[..., None] * d[..., None] * values).sum(1)
    det = s0 * s2 - s1 * s1
    line = det > 1e-9 * np.maximum(s0 * s2, 1e-300)
    safe = np.where(line, det, 1.0)[..., None]
    fitted = (s2[..., None] * m0 - s1[..., None] * m1) / safe
    return np.where(line[..., None], fitted, m0 / np.maximum(s0, 1e-300)[..., None])


def _robust_fit(
    values_of: Callable[[slice], np.ndarray],
    residual: Callable[[np.ndarray], np.ndarray],
    times: np.ndarray,
    index: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """Local-linear fit, then refit with Cauchy weights on each sample's residual.

    Rows are fitted :data:`_CHUNK` at a time, so that a long video's neighbour arrays stay small.

    Args:
        values_of: ``(n, K, G, C)`` the neighbours' values of the rows in a slice.
        residual: ``(N, G)`` distance of each observation from a fit ``(N, G, C)``.
        times: ``(N,)`` observation frames.
        index: ``(N, K)`` the neighbours (:func:`_neighbours`).
        weights: ``(N, K, 1)`` window times score (0 outside the window).

    """
    offsets = times[index] - times[:, None]
    chunks = [slice(start, start + _CHUNK) for start in range(0, len(times), _CHUNK)]

    def fit(w: np.ndarray) -> np.ndarray:
        return np.concatenate([_local_linear(offsets[c], values_of(c), w[c]) for c in chunks])

    distance = residual(fit(weights))
    spread = _OUTLIER_SCALE * 1.4826 * np.median(distance, axis=0)
    robust = 1.0 / (1.0 + np.square(distance / np.maximum(spread, 1e-9)))
    return fit(weights * robust[index])


def _smoothed_signals(track: _Track, config: OfflineConfig) -> list[TrackSignals]:
    """Each observation's smoothed signals, with the track's one shape."""
    raw = [track_signals(o) for o in track.observed]
    times = np.array(track.frames, dtype=np.float64)
    scores = np.array([max(o.confidence, 1e-6) for o in track.observed])
    locations = np.stack([s.location for s in raw])
    shape = _mean_shape(track)
    rotations = None
    if shape is not None:
        rotations = np.stack([s.rotations for s in raw if s.rotations is not None])
    if config.window > 0:
        index, inside = _neighbours(times, config.window)
        kernel = np.exp(-0.5 * np.square((times[index] - times[:, None]) / config.sigma))
        weights = (kernel * inside * scores[index])[:, :, None]
        raw_locations = locations
        locations = _robust_fit(
            lambda rows: raw_locations[index[rows]][..., None],
            lambda fit: np.abs(fit[..., 0] - raw_locations),
            times, index, weights,
        )[..., 0]  # fmt: skip
        if rotations is not None:
            raw_rotations: np.ndarray = rotations
            tangent = _robust_fit(  # in the tangent space at each frame's own rotation
                lambda rows: so3_log(raw_rotations[rows, None], raw_rotations[index[rows]]),
                lambda fit: np.linalg.norm(fit, axis=-1),
                times, index, weights,
            )  # fmt: skip
            rotations = so3_exp(raw_rotations, tangent)
    return [
        TrackSignals(locations[i], None if rotations is None else rotations[i], shape)
        for i in range(len(raw))
    ]


def _between(a: TrackSignals, b: TrackSignals, u: float) -> TrackSignals:
    """Signals a fraction ``u`` of the way from ``a`` to ``b`` (slerp for rotations)."""
    rotations = None
    if a.rotations is not None and b.rotations is not None:
        rotations = so3_exp(a.rotations, u * so3_log(a.rotations, b.rotations))
    return TrackSignals((1.0 - u) * a.location + u * b.location, rotations, a.betas)


def _moved(prediction: TrackOutput, raw: TrackSignals, smooth: TrackSignals) -> TrackSignals:
    """A prediction moved by the correction ``smooth - raw`` of the observation it continues."""
    predicted = track_signals(prediction)
    rotations = None
    if (
        predicted.rotations is not None
        and smooth.rotations is not None
        and raw.rotations is not None
    ):
        correction = smooth.rotations @ np.swapaxes(raw.rotations, -1, -2)
        rotations = correction @ predicted.rotations
    return TrackSignals(
        predicted.location + smooth.location - raw.location, rotations, smooth.betas
    )


def _outputs(track: _Track, track_id: int, config: OfflineConfig) -> dict[int, TrackOutput]:
    """The refined output of one (stitched) track per frame."""
    smooth = _smoothed_signals(track, config)
    first = track.frames[0]
    common = {"track_id": track_id, "state": TrackState.CONFIRMED}
    refined: dict[int, TrackOutput] = {}
    for k, (frame, output) in enumerate(zip(track.frames, track.observed, strict=True)):
        refined[frame] = with_signals(
            output, smooth[k], **common, hits=k + 1, age=frame - first + 1, frames_since_seen=0
        )
        if k + 1 == len(track.frames):
            break
        following = track.frames[k + 1]
        next_output = track.observed[k + 1]
        for t in range(frame + 1, following):
            u = (t - frame) / (following - frame)
            refined[t] = with_signals(
                output,
                _between(smooth[k], smooth[k + 1], u),
                **common,
                detected=False,
                interpolated=True,
                smoothed=False,
                detection_index=None,
                confidence=(1.0 - u) * output.confidence + u * next_output.confidence,
                hits=k + 1,
                age=t - first + 1,
                frames_since_seen=t - frame,
            )
    last_raw = track_signals(track.observed[-1])
    for t, prediction in track.tail:
        refined[t] = with_signals(
            prediction,
            _moved(prediction, last_raw, smooth[-1]),
            **common,
            hits=len(track.frames),
            age=t - first + 1,
        )
    return refined


def refine_video(
    frames: Sequence[Sequence[TrackOutput]], config: OfflineConfig | None = None
) -> list[list[TrackOutput]]:
    """Refine a whole video's online tracking: stitch, backfill, interpolate, smooth.

    Args:
        frames: ``frames[i]`` is the online tracker's output list for video frame ``i``
            (every frame of the video, in order; ``[]`` when none).
        config: Settings; defaults to :class:`OfflineConfig`.

    Returns:
        A list as long as ``frames``: per frame the refined outputs, sorted by track id,
        with identities stitched and renumbered 1, 2, ... in order of appearance. Observed
        frames keep ``detected=True`` and their ``detection_index`` (``smoothed`` when
        changed); gaps are ``interpolated``; frames after a track's last observation stay
        predicted. Mesh and joints are not part of an output: recompute them for every
        output unless ``detected and not smoothed``.

    """
    config = OfflineConfig() if config is None else config
    tracks = _stitch(_collect(frames), config)
    tracks.sort(key=lambda t: t.frames[0])
    refined: list[list[TrackOutput]] = [[] for _ in frames]
    for track_id, track in enumerate(tracks, start=1):
        for frame, output in _outputs(track, track_id, config).items():
            refined[frame].append(output)
    return refined

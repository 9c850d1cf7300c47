"""PHALP's tracker, frame by frame: predict, associate, update, report.

Per frame (``phalp/external/deep_sort_/tracker.py`` and ``track.py``):

1. Every live track predicts its location for this frame
   (:mod:`tracker_service.tracking.predict`) and its pose (extrapolated).
2. One Hungarian pass matches confirmed and tentative tracks together to the
   detections scoring at least ``detection_threshold``, on the EQ_019 cost,
   gated at 100 (:mod:`~tracker_service.tracking.cost`,
   :mod:`~tracker_service.tracking.matching`).
3. A matched track appends the detection to its history (the last
   ``track_history`` observations, padded with copies of the first one) and
   blends its appearance, ``(1 - a) * old + a * new`` with
   ``a = alpha * score ** 2``. It is confirmed at ``n_init`` hits.
4. An unmatched tentative track is deleted at once; an unmatched confirmed
   track is deleted once more than ``max_age`` frames have passed since it was
   last seen. Each unmatched detection starts a tentative track.

Times are the caller's frame indices, so a frame lost upstream (an index that
skips) counts as elapsed time for prediction and ageing but not as a miss.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tracker_service.model_spec import SMPL_BETAS, SMPL_JOINTS
from tracker_service.tracking import cost as cost_lib
from tracker_service.tracking import predict
from tracker_service.tracking.matching import GATE, Assignment, assign
from tracker_service.tracking.types import BodyPose, Detection, TrackOutput, TrackState

logger = logging.getLogger(__name__)

#: Deleted tracks remembered for the association of late frames.
_MAX_ENDED = 16

# Columns of a track's history rows (see _features).
_POINT = slice(0, 2)  # location point: the root, else the box centre
_LOG_TZ = 2  # log camera depth
_BOX_CENTRE = slice(3, 5)
_LOG_W = 5
_LOG_H = 6
_CAM_XY = slice(7, 9)  # camera tx, ty
#: PHALP's ridge penalties per column: x-like 1.2, y-like 2.0, log scales 5.0.
_ALPHAS = np.array(
    [predict.ALPHA_X, predict.ALPHA_Y, predict.ALPHA_DEPTH]
    + [predict.ALPHA_X, predict.ALPHA_Y, predict.ALPHA_DEPTH, predict.ALPHA_DEPTH]
    + [predict.ALPHA_X, predict.ALPHA_Y]
)


@dataclass(frozen=True, kw_only=True)
class TrackerConfig:
    """Settings of :class:`PhalpTracker`.

    The first ten are PHALP's settings with its defaults, except
    ``log_domain_assignment`` (PHALP sums the costs); the last four shape the
    predicted outputs, which PHALP does not produce.

    Attributes:
        track_history: Observations the location predictor fits (at least 3).
            Raising it smooths predictions and slows their reaction to turns.
        max_age: Frames a confirmed track survives unseen. Raising it bridges
            longer occlusions and risks re-attaching an id to someone else.
        n_init: Hits that confirm a track. Raising it suppresses spurious tracks
            and delays every new identity.
        alpha: Appearance blending weight per detection, times its score squared.
        detection_threshold: Detections scoring below are ignored (PHALP's ``low_th_c``).
        gate: Largest accepted association cost (PHALP's ``hungarian_th``); at least 1.
        log_domain_assignment: Match at least product of costs (default) rather than
            least sum (PHALP's code); see :mod:`~tracker_service.tracking.matching`.
        betas: EQ_019's weights of appearance, pose, location and depth.
        pose_distance_cap: EQ_019's cap on the pose distance.
        max_horizon: Furthest prediction past a track's last observation, in frames.
        confidence_decay: Factor applied to a predicted output's confidence per frame missed.
        rotation_decay: Per-frame damping of the extrapolated angular velocity;
            0 repeats the last pose, 1 keeps the velocity constant.
        max_angular_speed: Cap on a joint's extrapolated speed, radians per frame.
        max_extrapolated_angle: Cap on a joint's total extrapolated rotation, radians.

    """

    track_history: int = 7
    max_age: int = 50
    n_init: int = 5
    alpha: float = 0.1
    detection_threshold: float = 0.8
    gate: float = GATE
    log_domain_assignment: bool = True
    betas: tuple[float, float, float, float] = cost_lib.BETAS
    pose_distance_cap: float = cost_lib.POSE_DISTANCE_CAP
    max_horizon: int = predict.MAX_HORIZON
    confidence_decay: float = 0.9
    rotation_decay: float = 0.8
    max_angular_speed: float = 0.35
    max_extrapolated_angle: float = 0.6

    def __post_init__(self) -> None:
        checks = (
            ("track_history", self.track_history >= 3, "an integer >= 3"),
            ("max_age", self.max_age >= 0, "an integer >= 0"),
            ("n_init", self.n_init >= 1, "an integer >= 1"),
            ("max_horizon", self.max_horizon >= 1, "an integer >= 1"),
        )
        for name, ok, allowed in checks:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not ok:
                raise ValueError(f"{name} must be {allowed}, got {value!r}")
        ranges = (
            ("alpha", 0.0, 1.0),
            ("detection_threshold", 0.0, 1.0),
            ("confidence_decay", 0.0, 1.0),
            ("rotation_decay", 0.0, 1.0),
        )
        for name, low, high in ranges:
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must lie in [{low}, {high}], got {value!r}")
        if not self.gate >= 1.0:
            raise ValueError(f"gate must be >= 1 (every cost is), got {self.gate!r}")
        if len(self.betas) != 4 or not all(b > 0 for b in self.betas):
            raise ValueError(f"betas must be 4 positive weights, got {self.betas!r}")
        for name in ("pose_distance_cap", "max_angular_speed", "max_extrapolated_angle"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be positive and finite, got {value!r}")


def _features(detection: Detection) -> np.ndarray:
    """``(9,)`` one history row of ``detection`` (NaN for its missing camera)."""
    box = detection.box
    centre = (box[:2] + box[2:]) / 2.0
    point = centre if detection.root_2d is None else detection.root_2d
    camera = np.full(3, np.nan) if detection.camera is None else detection.camera
    return np.concatenate(
        [point, [np.log(camera[2])], centre, np.log(box[2:] - box[:2]), camera[:2]]
    )


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


class _Track:
    """One identity's state; internal, never handed to users."""

    __slots__ = (
        "track_id",
        "state",
        "hits",
        "first_frame",
        "last_frame",
        "score",
        "times",
        "values",
        "appearance",
        "pose",
        "pose_frame",
        "previous_rotations",
        "previous_pose_frame",
    )

    def __init__(
        self, track_id: int, detection: Detection, frame_index: int, config: TrackerConfig
    ) -> None:
        self.track_id = track_id
        self.hits = 1
        self.state = TrackState.CONFIRMED if config.n_init <= 1 else TrackState.TENTATIVE
        self.first_frame = self.last_frame = frame_index
        self.score = detection.score
        self.times = np.full(config.track_history, float(frame_index))
        self.values = np.tile(_features(detection), (config.track_history, 1))
        self.appearance = None if detection.appearance is None else _unit(detection.appearance)
        self.pose = detection.pose
        self.pose_frame = frame_index if detection.pose is not None else None
        self.previous_rotations: np.ndarray | None = None
        self.previous_pose_frame: int | None = None

    def observe(self, detection: Detection, frame_index: int, config: TrackerConfig) -> None:
        """Append a matched detection (PHALP's ``Track.update``)."""
        self.times = np.append(self.times[1:], float(frame_index))
        self.values = np.concatenate([self.values[1:], _features(detection)[None]])
        if detection.appearance is not None:
            new = _unit(detection.appearance)
            if self.appearance is None:
                self.appearance = new
            else:
                weight = config.alpha * detection.score**2
                self.appearance = _unit((1.0 - weight) * self.appearance + weight * new)
        if detection.pose is not None:
            if self.pose is not None:
                self.previous_rotations = self.pose.rotations
                self.previous_pose_frame = self.pose_frame
            self.pose, self.pose_frame = detection.pose, frame_index
        self.score = detection.score
        self.last_frame = frame_index
        self.hits += 1
        if self.state is TrackState.TENTATIVE and self.hits >= config.n_init:
            self.state = TrackState.CONFIRMED


def _boxes(centre: np.ndarray, log_size: np.ndarray) -> np.ndarray:
    """``(n, 4)`` boxes from ``(n, 2)`` centres and ``(n, 2)`` log widths and heights."""
    half = np.exp(log_size) / 2.0
    return np.concatenate([centre - half, centre + half], axis=1)


def _stack_rows(rows: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """Stack equal-length rows with NaN rows for None; None when every row is None."""
    present = next((r for r in rows if r is not None), None)
    if present is None:
        return None
    missing = np.full_like(present, np.nan)
    return np.stack([missing if r is None else r for r in rows])


def _pose_rows(
    rotations: Sequence[np.ndarray | None], betas: Sequence[np.ndarray | None]
) -> np.ndarray | None:
    """``(n, 226)`` pose vectors with NaN rows for missing bodies, or None if none has one."""
    stacked, stacked_betas = _stack_rows(rotations), _stack_rows(betas)
    if stacked is None or stacked_betas is None:
        return None
    return cost_lib.pose_vectors(stacked, stacked_betas)


def _detection_cues(detections: Sequence[Detection]) -> cost_lib.Cues:
    """Gather the cues of ``M`` detections as the association cost takes them."""
    rows = np.stack([_features(d) for d in detections])
    return cost_lib.Cues(
        point=rows[:, _POINT],
        log_depth=rows[:, _LOG_TZ],
        log_height=rows[:, _LOG_H],
        box=np.stack([d.box for d in detections]),
        appearance=_stack_rows([d.appearance for d in detections]),
        pose=_pose_rows(
            [None if d.pose is None else d.pose.rotations for d in detections],
            [None if d.pose is None else d.pose.betas for d in detections],
        ),
    )


@dataclass(frozen=True)
class _Forecast:
    """Every live track's prediction for one frame, ``T`` rows in track order.

    ``cues`` and ``widths`` (PHALP's ridge predictor) feed the association cost;
    ``anchored`` ``(T, 9)`` (history columns moved on from the last observation),
    ``rotations`` ``(T, 24, 3, 3)`` and ``betas`` ``(T, 10)`` (NaN without a body)
    feed the predicted outputs.
    """

    cues: cost_lib.Cues
    widths: cost_lib.Widths
    anchored: np.ndarray
    rotations: np.ndarray
    betas: np.ndarray


def _extrapolate_bodies(
    tracks: Sequence[_Track], frame_index: int, config: TrackerConfig
) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 24, 3, 3)`` rotations and ``(T, 10)`` betas at ``frame_index``; NaN without a body."""
    rotations = np.full((len(tracks), SMPL_JOINTS, 3, 3), np.nan)
    betas = np.full((len(tracks), SMPL_BETAS), np.nan)
    rows = [i for i, t in enumerate(tracks) if t.pose is not None and t.pose_frame is not None]
    if not rows:
        return rotations, betas
    posed = [
        (t, t.pose, t.pose_frame) for t in tracks if t.pose is not None and t.pose_frame is not None
    ]
    last = np.stack([pose.rotations for _, pose, _ in posed])
    previous = np.stack(
        [p.rotations if t.previous_rotations is None else t.previous_rotations for t, p, _ in posed]
    )
    # Without an earlier body, previous == last: zero velocity whatever the gap.
    gap = np.array(
        [1 if t.previous_pose_frame is None else f - t.previous_pose_frame for t, _, f in posed]
    )
    # A frame before the last body (a late frame) gets the last body.
    steps = np.clip(frame_index - np.array([f for _, _, f in posed]), 0, config.max_horizon)
    rotations[rows] = predict.extrapolate_rotations(
        previous,
        last,
        gap,
        steps,
        decay=config.rotation_decay,
        max_speed=config.max_angular_speed,
        max_angle=config.max_extrapolated_angle,
    )
    betas[rows] = np.stack([pose.betas for _, pose, _ in posed])
    return rotations, betas


def _forecast(tracks: Sequence[_Track], frame_index: int, config: TrackerConfig) -> _Forecast:
    """Predict every track at ``frame_index``: cost cues, interval widths and outputs."""
    times = np.stack([t.times for t in tracks])
    values = np.stack([t.values for t in tracks])
    ridge, width = predict.predict_with_intervals(
        times, values, frame_index, _ALPHAS, config.max_horizon
    )
    anchored = predict.extrapolate_anchored(times, values, frame_index, _ALPHAS, config.max_horizon)
    rotations, betas = _extrapolate_bodies(tracks, frame_index, config)
    cues = cost_lib.Cues(
        point=ridge[:, _POINT],
        log_depth=ridge[:, _LOG_TZ],
        log_height=ridge[:, _LOG_H],
        box=_boxes(ridge[:, _BOX_CENTRE], ridge[:, [_LOG_W, _LOG_H]]),
        appearance=_stack_rows([t.appearance for t in tracks]),
        pose=cost_lib.pose_vectors(rotations, betas) if np.isfinite(betas).any() else None,
    )
    widths = cost_lib.Widths(
        xy=np.hypot(width[:, 0], width[:, 1]),
        log_depth=width[:, _LOG_TZ],
        log_height=width[:, _LOG_H],
    )
    return _Forecast(cues, widths, anchored, rotations, betas)


class PhalpTracker:
    """PHALP's online tracker for one video; build one per session.

    Example:
        >>> tracker = PhalpTracker(TrackerConfig())
        >>> outputs = tracker.update([Detection(box=[10, 20, 60, 140], score=0.9)], 0,
        ...                          image_size=(480, 640))
        >>> outputs[0].track_id, outputs[0].state.value
        (1, 'tentative')

    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        """Create a tracker; ``config`` defaults to PHALP's settings."""
        self.config = TrackerConfig() if config is None else config
        self.reset()

    def reset(self) -> None:
        """Forget every track, restart ids at 1 and accept any frame index next."""
        self._tracks: list[_Track] = []
        self._ended: list[_Track] = []  # the latest deleted tracks, for late frames only
        self._next_id = 1
        self._last_frame: int | None = None
        self._scale: float | None = None

    def update(
        self,
        detections: Sequence[Detection],
        frame_index: int,
        *,
        image_size: tuple[int, int] | None = None,
    ) -> list[TrackOutput]:
        """Track one frame.

        Args:
            detections: This frame's detections (any scores; those below
                ``detection_threshold`` are ignored).
            frame_index: The frame's index in the video, increasing; gaps are lost frames.
            image_size: ``(height, width)`` of the frame in pixels: locations are
                compared in units of its longer side, as PHALP does. Needed once
                (the last size given is kept).

        Returns:
            One output per live track with something to report, by track id: each
            track matched or started this frame (``detected``), and each confirmed
            track missed this frame and not deleted (predicted, ``detected=False``).

        Raises:
            ValueError: If ``frame_index`` does not increase, ``image_size`` is
                invalid, or detections arrive before any image size was given.

        """
        kept = self._kept(detections)
        frame_index = self._start_frame(frame_index, image_size, bool(kept))
        tracks = self._tracks
        forecast, result = self._match(tracks, detections, kept, frame_index)

        outputs: list[TrackOutput] = []
        for row, col in result.matches:
            track, index = tracks[row], kept[col]
            track.observe(detections[index], frame_index, self.config)
            outputs.append(self._detected(track, detections[index], index, frame_index))
        for row in result.unmatched_tracks:
            track = tracks[row]
            if (
                track.state is TrackState.TENTATIVE
                or frame_index - track.last_frame > self.config.max_age
            ):
                track.state = TrackState.DELETED
            else:
                assert forecast is not None  # a track to predict means a forecast was made
                outputs.append(self._predicted(track, forecast, row, frame_index))
        for col in result.unmatched_detections:
            index = kept[col]
            track = _Track(self._next_id, detections[index], frame_index, self.config)
            self._next_id += 1
            tracks.append(track)
            outputs.append(self._detected(track, detections[index], index, frame_index))
        self._tracks = [t for t in tracks if t.state is not TrackState.DELETED]
        ended = [t for t in tracks if t.state is TrackState.DELETED]
        self._ended = (self._ended + ended)[-_MAX_ENDED:]
        logger.debug(
            "frame %d: %d detections, %d matched, %d tracks",
            frame_index,
            len(kept),
            len(result.matches),
            len(self._tracks),
        )
        return sorted(outputs, key=lambda o: o.track_id)

    def associate(
        self, detections: Sequence[Detection], frame_index: int
    ) -> list[TrackOutput]:
        """Match a late frame's detections to the tracks as they are; nothing changes.

        For a frame whose turn has passed (it arrived after later frames were tracked):
        the same cost and gate as :meth:`update`, with each track predicted at
        ``frame_index`` (before its last observation too, at most ``max_horizon`` frames
        back; a body earlier than the last one is the last one). The tracks deleted most
        recently take part too: a late frame may belong to a track that has ended since
        (a tentative one lost in a gap of skipped frames). No track is updated, created or
        deleted.

        Args:
            detections: The late frame's detections.
            frame_index: The late frame's index (any value).

        Returns:
            By track id: a detected output for each matched track (its state: tentative,
            confirmed, or deleted for an ended one), and a predicted output for each live
            confirmed track left unmatched (``frames_since_seen`` then counts frames from
            its last observation, either way). Empty before any frame was tracked;
            unmatched detections get nothing.

        """
        tracks = self._tracks + self._ended
        if not tracks:
            return []
        frame_index = int(frame_index)
        kept = self._kept(detections)
        forecast, result = self._match(tracks, detections, kept, frame_index)
        assert forecast is not None  # there are tracks
        outputs = [
            self._detected(tracks[row], detections[kept[col]], kept[col], frame_index)
            for row, col in result.matches
        ]
        outputs += [
            self._predicted(tracks[row], forecast, row, frame_index)
            for row in result.unmatched_tracks
            if tracks[row].state is TrackState.CONFIRMED  # live: ended ones are DELETED
        ]
        return sorted(outputs, key=lambda o: o.track_id)

    def _kept(self, detections: Sequence[Detection]) -> list[int]:
        """Indices of the detections scoring at least ``detection_threshold``."""
        return [i for i, d in enumerate(detections) if d.score >= self.config.detection_threshold]

    def _match(
        self,
        tracks: Sequence[_Track],
        detections: Sequence[Detection],
        kept: list[int],
        frame_index: int,
    ) -> tuple[_Forecast | None, Assignment]:
        """Predict ``tracks`` at ``frame_index`` and match the ``kept`` detections to them."""
        forecast = _forecast(tracks, frame_index, self.config) if tracks else None
        if forecast is not None and kept and self._scale is not None:
            costs = cost_lib.association_cost(
                forecast.cues,
                _detection_cues([detections[i] for i in kept]),
                forecast.widths,
                scale=self._scale,
                betas=self.config.betas,
                pose_cap=self.config.pose_distance_cap,
            )
        else:
            costs = np.ones((len(tracks), len(kept)))
        log_domain = self.config.log_domain_assignment
        return forecast, assign(costs, self.config.gate, log_domain=log_domain)

    def _start_frame(
        self, frame_index: int, image_size: tuple[int, int] | None, needs_scale: bool
    ) -> int:
        """Check the frame's arguments, then record them (nothing changes on error)."""
        if isinstance(frame_index, bool) or not isinstance(frame_index, int | np.integer):
            raise ValueError(f"frame_index must be an integer, got {frame_index!r}")
        if self._last_frame is not None and frame_index <= self._last_frame:
            raise ValueError(
                f"frame_index must increase: got {frame_index} after {self._last_frame}"
            )
        if image_size is not None and (len(image_size) != 2 or not min(image_size) > 0):
            raise ValueError(f"image_size must be (height, width) > 0, got {image_size!r}")
        if needs_scale and image_size is None and self._scale is None:
            raise ValueError("image_size=(height, width) is required with the first detections")
        if image_size is not None:
            self._scale = float(max(image_size))
        self._last_frame = int(frame_index)
        return self._last_frame

    @staticmethod
    def _detected(track: _Track, detection: Detection, index: int, frame_index: int) -> TrackOutput:
        box = detection.box
        root = (box[:2] + box[2:]) / 2.0 if detection.root_2d is None else detection.root_2d
        return TrackOutput(
            track_id=track.track_id,
            state=track.state,
            detected=True,
            box=box,
            confidence=detection.score,
            pose=detection.pose,
            camera=detection.camera,
            root_2d=root,
            detection_index=index,
            hits=track.hits,
            age=max(frame_index - track.first_frame + 1, 1),
            frames_since_seen=0,
        )

    def _predicted(
        self, track: _Track, forecast: _Forecast, row: int, frame_index: int
    ) -> TrackOutput:
        row_values = forecast.anchored[row]
        full = np.append(row_values[_CAM_XY], np.exp(row_values[_LOG_TZ]))
        camera = full if np.isfinite(full).all() else None  # a history without cameras
        pose = None
        if track.pose is not None:
            pose = BodyPose.from_rotations(forecast.rotations[row], forecast.betas[row])
        missed = abs(frame_index - track.last_frame)  # a late frame may lie before it
        return TrackOutput(
            track_id=track.track_id,
            state=track.state,
            detected=False,
            box=_boxes(row_values[None, _BOX_CENTRE], row_values[None, [_LOG_W, _LOG_H]])[0],
            confidence=track.score * self.config.confidence_decay**missed,
            pose=pose,
            camera=camera,
            root_2d=row_values[_POINT].copy(),
            detection_index=None,
            hits=track.hits,
            age=max(frame_index - track.first_frame + 1, 1),
            frames_since_seen=missed,
        )

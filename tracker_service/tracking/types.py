"""The tracker's inputs and outputs: detections in, track outputs out.

Users build :class:`Detection` objects (one per detected person and frame) and
read :class:`TrackOutput` objects; the tracker's internal track state is never
exposed. Arrays are copied to float64 and made read-only on construction, so a
caller that later mutates its own buffers cannot change a detection.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

#: Number of SMPL body joints below the root.
SMPL_BODY_JOINTS = 23
#: Number of SMPL shape coefficients.
SMPL_BETAS = 10


def _frozen_array(name: str, value: object, shape: tuple[int | None, ...]) -> np.ndarray:
    """Copy ``value`` to a read-only float64 array, checked against ``shape`` (None: any).

    Raises:
        ValueError: If the shape differs or a value is not finite.

    """
    array = np.array(value, dtype=np.float64)
    if array.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
    ):
        expected = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array}")
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class BodyPose:
    """An SMPL body as HMR2 predicts it.

    Attributes:
        global_orient: ``(1, 3, 3)`` root rotation matrix.
        body_pose: ``(23, 3, 3)`` rotation matrices of the body joints, relative to their parents.
        betas: ``(10,)`` shape coefficients.

    """

    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "global_orient", _frozen_array("global_orient", self.global_orient, (1, 3, 3))
        )
        object.__setattr__(
            self,
            "body_pose",
            _frozen_array("body_pose", self.body_pose, (SMPL_BODY_JOINTS, 3, 3)),
        )
        object.__setattr__(self, "betas", _frozen_array("betas", self.betas, (SMPL_BETAS,)))

    @property
    def rotations(self) -> np.ndarray:
        """``(24, 3, 3)``: the root rotation followed by the body joints' rotations."""
        return np.concatenate([self.global_orient, self.body_pose])

    @classmethod
    def from_rotations(cls, rotations: np.ndarray, betas: np.ndarray) -> BodyPose:
        """Build a body from ``(24, 3, 3)`` rotations (root first) and ``(10,)`` betas."""
        return cls(global_orient=rotations[:1], body_pose=rotations[1:], betas=betas)


@dataclass(frozen=True)
class Detection:
    """One detected person in one frame; everything but the box and score is optional.

    A detection from HMR2 carries all fields. A detection from a plain person
    detector (MOTChallenge public detections) carries only ``box`` and ``score``;
    the tracker then locates it by the box centre and uses the box height as its
    depth cue (see :mod:`tracker_service.tracking.cost`).

    Attributes:
        box: ``(4,)`` ``x1, y1, x2, y2`` in frame pixels, with ``x2 > x1`` and ``y2 > y1``.
        score: Detector confidence in ``[0, 1]``.
        appearance: ``(D,)`` appearance embedding (any non-zero vector; the tracker
            compares unit-normalised copies), or None.
        pose: The SMPL body, or None.
        camera: ``(3,)`` full-image camera translation ``tx, ty, tz`` in metres
            (``tz > 0`` is the depth), or None.
        root_2d: ``(2,)`` image position of the body's root (pelvis) in pixels, or None.

    """

    box: np.ndarray
    score: float
    appearance: np.ndarray | None = None
    pose: BodyPose | None = None
    camera: np.ndarray | None = None
    root_2d: np.ndarray | None = None

    def __post_init__(self) -> None:
        box = _frozen_array("box", self.box, (4,))
        if not (box[2] > box[0] and box[3] > box[1]):
            raise ValueError(f"box must satisfy x2 > x1 and y2 > y1, got {box.tolist()}")
        object.__setattr__(self, "box", box)
        score = float(self.score)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score must lie in [0, 1], got {score}")
        object.__setattr__(self, "score", score)
        if self.appearance is not None:
            appearance = _frozen_array("appearance", self.appearance, (None,))
            if appearance.size == 0 or not np.any(appearance):
                raise ValueError("appearance must be a non-empty, non-zero vector")
            object.__setattr__(self, "appearance", appearance)
        if self.pose is not None and not isinstance(self.pose, BodyPose):
            raise ValueError(f"pose must be a BodyPose or None, got {type(self.pose).__name__}")
        if self.camera is not None:
            camera = _frozen_array("camera", self.camera, (3,))
            if camera[2] <= 0.0:
                raise ValueError(f"camera depth tz must be positive, got {camera[2]}")
            object.__setattr__(self, "camera", camera)
        if self.root_2d is not None:
            object.__setattr__(self, "root_2d", _frozen_array("root_2d", self.root_2d, (2,)))


class TrackState(enum.Enum):
    """Life cycle of a track: tentative until ``n_init`` hits, deleted after ``max_age`` misses."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    DELETED = "deleted"


@dataclass(frozen=True)
class TrackOutput:
    """What the tracker reports for one track in one frame.

    Attributes:
        track_id: Identity, unique within one tracker instance (1, 2, ...).
        state: Tentative or confirmed (deleted tracks are never reported).
        detected: True when a detection of this frame was matched; False when
            every field below is the tracker's prediction for this frame.
        box: ``(4,)`` ``x1, y1, x2, y2`` in frame pixels.
        confidence: In ``[0, 1]``: the detection score when detected, else the last
            score decayed by the frames missed.
        pose: The SMPL body (extrapolated when predicted), or None without pose input.
        camera: ``(3,)`` full-image camera translation, or None without camera input.
        root_2d: ``(2,)`` root position in pixels (the box centre without root input).
        detection_index: Index of the matched detection in this frame's input
            sequence, or None when predicted.
        hits: Number of detections matched to this track so far.
        age: Frames since the track started, counting its first frame (1 when new).
        frames_since_seen: Frames since the last matched detection (0 when detected).
        interpolated: True when the offline pass filled this frame between two
            observations of the track (then ``detected`` is False).
        smoothed: True when a temporal filter changed the body (pose, camera, box) from
            the raw observation or prediction.

    """

    track_id: int
    state: TrackState
    detected: bool
    box: np.ndarray
    confidence: float
    pose: BodyPose | None
    camera: np.ndarray | None
    root_2d: np.ndarray
    detection_index: int | None
    hits: int
    age: int
    frames_since_seen: int
    interpolated: bool = False
    smoothed: bool = False

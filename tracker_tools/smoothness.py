"""Temporal coherence on synthetic SMPL motions: ground truth, per-frame-like noise, metrics.

The library of :mod:`tracker_tools.smoothness_benchmark` (which writes ``docs/smoothness.md``):
three smooth SMPL motions posed by a numpy forward kinematics of the 24 SMPL joints (the
body model's ``J_regressor`` on the rest shape, then the kinematic tree) seen by a pinhole
camera; detections with errors like a per-frame estimator's (:data:`NOISE`); the tracker
run raw, live-smoothed and offline-refined; and the metrics (MPJPE, acceleration error,
lag, box acceleration).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from tracker_service.settings import Settings
from tracker_service.tracking import BodyPose, Detection, PhalpTracker, TrackerConfig, TrackOutput
from tracker_service.tracking.offline import refine_video
from tracker_service.tracking.smoothing import LiveSmoother

FPS = 30
FRAMES = 300
FOCAL = 1500.0
IMAGE_HW = (1080, 1920)
#: The per-frame estimator's errors (standard deviations unless said otherwise).
NOISE = {
    "joint_rotation_deg": 0.8,  # per axis of each body joint's rotation vector
    "root_rotation_deg": 0.5,  # per axis of the root orientation
    "betas": 0.15,  # per shape coefficient
    "translation_xy_m": 0.01,
    "depth_fraction": 0.03,  # of the camera depth
    "box_fraction": 0.02,  # of the box height, per box coordinate
    "outlier_rate": 0.02,  # fraction of frames whose every rotation gets the outlier error
    "outlier_rotation_deg": 6.0,
    "missing_runs": 3,  # runs of frames without a detection, per sequence
    "missing_run_frames": 8,
}


# --------------------------------------------------------------------------- body model


class Skeleton:
    """The 24 SMPL joints of a body, posed by forward kinematics (numpy, no mesh).

    The joints are the body model's: ``J_regressor`` applied to the rest mesh of the shape
    (``v_template + shapedirs . betas``), then rotated along the kinematic tree.
    """

    def __init__(self, path: Path) -> None:
        data = np.load(path)
        self.parents = data["kintree_table"][0].astype(int)
        self._rest = data["J_regressor"] @ data["v_template"]  # (24, 3)
        self._dirs = np.einsum("jv,vck->jck", data["J_regressor"], data["shapedirs"])

    def joints(self, rotations: np.ndarray, betas: np.ndarray) -> np.ndarray:
        """``(T, 24, 3)`` pelvis-relative joints of rotations ``(T, 24, 3, 3)`` and betas."""
        rest = self._rest + np.einsum("jck,tk->tjc", self._dirs, betas)
        world = np.empty_like(rotations)
        joints = np.zeros_like(rest)
        world[:, 0] = rotations[:, 0]
        for j in range(1, len(self.parents)):
            p = self.parents[j]
            world[:, j] = world[:, p] @ rotations[:, j]
            joints[:, j] = joints[:, p] + np.einsum(
                "tab,tb->ta", world[:, p], rest[:, j] - rest[:, p]
            )
        return joints


# --------------------------------------------------------------------------- motions

#: SMPL joint indices used by the motions.
L_HIP, R_HIP, SPINE, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 1, 2, 3, 4, 5, 7, 8
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW = 16, 17, 18, 19


def _euler(seq: str, *angles: np.ndarray) -> np.ndarray:
    return Rotation.from_euler(seq, np.stack(angles, axis=-1)).as_matrix()


def motion(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 24, 3, 3)`` rotations and ``(T, 3)`` camera-frame root translations of a motion.

    ``walk``: a 0.9 Hz gait (hips +-26 deg, knees 5..45 deg, arms swinging) along a diagonal
    at 0.7 m/s; ``turn``: one and a half turns in place, easing in and out (peak 110 deg/s),
    stepping; ``squat``: three and a half squats (hips to 86 deg, knees to 115 deg).
    """
    t = np.arange(FRAMES) / FPS
    zero = np.zeros(FRAMES)
    rotations = np.tile(np.eye(3), (FRAMES, 24, 1, 1))
    upright = Rotation.from_euler("x", np.pi).as_matrix()  # SMPL is y-up, the camera y-down
    arms = 1.2 * np.ones(FRAMES)
    if name == "walk":
        phase = 2 * np.pi * 0.9 * t
        swing = 0.45 * np.sin(phase)
        rotations[:, L_HIP], rotations[:, R_HIP] = _euler("x", swing), _euler("x", -swing)
        rotations[:, L_KNEE] = _euler("x", 0.1 + 0.7 * ((1 + np.sin(phase + 1.2)) / 2) ** 2)
        rotations[:, R_KNEE] = _euler("x", 0.1 + 0.7 * ((1 - np.sin(phase + 1.2)) / 2) ** 2)
        rotations[:, SPINE] = _euler("y", 0.08 * np.sin(phase))
        rotations[:, L_SHOULDER] = _euler("zy", -arms, 0.35 * np.sin(phase))
        rotations[:, R_SHOULDER] = _euler("zy", arms, 0.35 * np.sin(phase))
        rotations[:, L_ELBOW] = _euler("y", 0.3 + 0.15 * np.sin(phase))
        rotations[:, R_ELBOW] = _euler("y", -0.3 + 0.15 * np.sin(phase))
        yaw = np.full(FRAMES, np.pi / 2 + 0.4)
        translation = np.stack(
            [-3.0 + 0.6 * t, 0.1 + 0.02 * np.sin(2 * phase), 10.0 - 0.3 * t], axis=1
        )
    elif name == "turn":
        u = t / t[-1]
        yaw = 3 * np.pi * (u - np.sin(2 * np.pi * u) / (2 * np.pi))
        step = 2 * np.pi * 1.2 * t
        rotations[:, L_KNEE] = _euler("x", 0.05 + 0.3 * (1 - np.cos(step)) / 2)
        rotations[:, R_KNEE] = _euler("x", 0.05 + 0.3 * (1 + np.cos(step)) / 2)
        rotations[:, L_HIP] = _euler("x", -0.2 * (1 - np.cos(step)) / 2)
        rotations[:, R_HIP] = _euler("x", -0.2 * (1 + np.cos(step)) / 2)
        rotations[:, L_SHOULDER] = _euler("zy", -arms + 0.2 * np.sin(step), zero)
        rotations[:, R_SHOULDER] = _euler("zy", arms - 0.2 * np.sin(step), zero)
        translation = np.stack([zero, zero + 0.1, zero + 7.0], axis=1)
    elif name == "squat":
        depth = (1 - np.cos(2 * np.pi * 0.35 * t)) / 2
        rotations[:, L_HIP] = rotations[:, R_HIP] = _euler("x", -1.5 * depth)
        rotations[:, L_KNEE] = rotations[:, R_KNEE] = _euler("x", 2.0 * depth)
        rotations[:, L_ANKLE] = rotations[:, R_ANKLE] = _euler("x", -0.5 * depth)
        rotations[:, SPINE] = _euler("x", 0.35 * depth)
        rotations[:, L_SHOULDER] = _euler("zy", -arms + 0.4 * depth, -1.2 * depth)
        rotations[:, R_SHOULDER] = _euler("zy", arms - 0.4 * depth, 1.2 * depth)
        yaw = np.full(FRAMES, 0.6)
        translation = np.stack([zero + 0.5, 0.1 + 0.45 * depth, zero + 6.0], axis=1)
    else:
        raise ValueError(f"unknown motion {name!r}")
    rotations[:, 0] = upright @ _euler("y", yaw)
    return rotations, translation


# --------------------------------------------------------------------------- estimator


def project(points: np.ndarray) -> np.ndarray:
    """``(..., 2)`` pixels of camera-frame points ``(..., 3)``."""
    centre = np.array([IMAGE_HW[1], IMAGE_HW[0]]) / 2.0
    return FOCAL * points[..., :2] / points[..., 2:] + centre


def noisy_detections(
    skeleton: Skeleton, rotations: np.ndarray, translation: np.ndarray, betas: np.ndarray, seed: int
) -> list[list[Detection]]:
    """Per frame the estimator's detections of the true body: noisy, with outliers and misses."""
    rng = np.random.default_rng(seed)
    n = len(rotations)
    sigma = np.full((n, 24, 1), np.radians(NOISE["joint_rotation_deg"]))
    sigma[:, 0] = np.radians(NOISE["root_rotation_deg"])
    outliers = rng.random(n) < NOISE["outlier_rate"]
    sigma[outliers] = np.hypot(sigma[outliers], np.radians(NOISE["outlier_rotation_deg"]))
    noise = rng.normal(size=(n, 24, 3)) * sigma
    estimated = rotations @ Rotation.from_rotvec(noise.reshape(-1, 3)).as_matrix().reshape(
        n, 24, 3, 3
    )
    shapes = betas + rng.normal(0, NOISE["betas"], (n, 10))
    cameras = translation + rng.normal(size=(n, 3)) * [
        NOISE["translation_xy_m"],
        NOISE["translation_xy_m"],
        0.0,
    ]
    cameras[:, 2] *= 1.0 + NOISE["depth_fraction"] * rng.normal(size=n)
    pixels = project(skeleton.joints(rotations, np.tile(betas, (n, 1))) + translation[:, None])
    low, high = pixels.min(axis=1), pixels.max(axis=1)
    height = (high - low)[:, 1:]
    boxes = np.concatenate([low - 0.1 * height, high + 0.1 * height], axis=1)
    boxes += rng.normal(size=(n, 4)) * NOISE["box_fraction"] * height * 1.2
    missing = np.zeros(n, bool)
    for start in rng.choice(np.arange(30, n - 30), int(NOISE["missing_runs"]), replace=False):
        missing[start : start + NOISE["missing_run_frames"]] = True
    appearance = rng.normal(size=16)
    return [
        []
        if missing[i]
        else [
            Detection(
                box=boxes[i],
                score=0.9,
                appearance=appearance + 0.05 * rng.normal(size=16),
                pose=BodyPose.from_rotations(estimated[i], shapes[i]),
                camera=cameras[i],
                root_2d=project(cameras[i]),
            )
        ]
        for i in range(n)
    ]


def tracker_config() -> TrackerConfig:
    """The tracker as the service builds it (its default settings)."""
    settings = Settings().tracking
    return TrackerConfig(
        max_age=settings.max_age, n_init=settings.n_init,
        detection_threshold=settings.detection_threshold,
    )


def track_three_ways(
    detections: Sequence[Sequence[Detection]], image_hw: tuple[int, int]
) -> dict[str, list[TrackOutput | None]]:
    """The main track's output per frame: raw tracker, live-smoothed, offline-refined."""
    tracker, smoother = PhalpTracker(tracker_config()), LiveSmoother()
    raw, live = [], []
    for frame, people in enumerate(detections):
        outputs = tracker.update(people, frame, image_size=image_hw)
        raw.append(outputs)
        live.append(smoother.smooth(outputs, frame))
    offline = refine_video(raw)
    runs = {"raw": raw, "live": live, "offline": offline}
    return {name: [_main(frame) for frame in run] for name, run in runs.items()}


def _main(outputs: Sequence[TrackOutput]) -> TrackOutput | None:
    """The output of the track seen most (the benchmarks have one person)."""
    return max(outputs, key=lambda o: (o.hits, -o.track_id), default=None)


# --------------------------------------------------------------------------- metrics


def acceleration(x: np.ndarray) -> np.ndarray:
    """Second differences along the first axis."""
    return x[2:] - 2.0 * x[1:-1] + x[:-2]


def lag_frames(estimate: np.ndarray, truth: np.ndarray, max_shift: int = 6) -> float:
    """Frames by which ``estimate`` trails ``truth``: the peak of their cross-correlation.

    Both ``(T, ...)``; each coordinate's mean is removed; the peak is refined by a parabola.
    """
    e = (estimate - estimate.mean(axis=0)).reshape(len(estimate), -1)
    g = (truth - truth.mean(axis=0)).reshape(len(truth), -1)
    shifts = list(range(-max_shift, max_shift + 1))
    n = len(e)
    corr = np.array(
        [np.sum(e[max(s, 0) : n + min(s, 0)] * g[max(-s, 0) : n - max(s, 0)]) for s in shifts]
    )
    k = int(np.argmax(corr))
    if 0 < k < len(shifts) - 1:
        a, b, c = corr[k - 1 : k + 2]
        return float(shifts[k] + 0.5 * (a - c) / (a - 2 * b + c))
    return float(shifts[k])


def body_metrics(
    skeleton: Skeleton, answers: Sequence[TrackOutput], truth: np.ndarray
) -> dict[str, float]:
    """MPJPE, acceleration error (mm, mm/frame^2) and lag (frames) of answered bodies."""
    poses = [o.pose for o in answers if o.pose is not None]
    if len(poses) != len(answers):
        raise ValueError("every answered body needs its pose")
    rotations = np.stack([pose.rotations for pose in poses])
    joints = skeleton.joints(rotations, np.stack([pose.betas for pose in poses]))
    error = 1000.0 * np.linalg.norm(joints - truth, axis=-1)
    accel = 1000.0 * np.linalg.norm(acceleration(joints) - acceleration(truth), axis=-1)
    return {
        "mpjpe_mm": float(error.mean()),
        "accel_error_mm": float(accel.mean()),
        "lag_frames": lag_frames(joints, truth),
    }


def box_acceleration(boxes: np.ndarray) -> dict[str, float]:
    """Mean acceleration of box centres and sizes ``(T, 4)``, in box heights per frame^2."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    size = boxes[:, 2:] - boxes[:, :2]
    height = size[1:-1, 1]
    return {
        "centre_accel": float((np.linalg.norm(acceleration(centre), axis=1) / height).mean()),
        "size_accel": float((np.linalg.norm(acceleration(size), axis=1) / height).mean()),
    }

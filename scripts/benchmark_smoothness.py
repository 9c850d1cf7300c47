"""Temporal coherence, measured: raw, live-smoothed and offline-refined tracking.

Writes ``docs/smoothness.md`` and ``docs/smoothness.json`` (``"goals"``: every goal with its
measured value, target and whether it is met). Four parts:

1. **Ground truth.** Three smooth SMPL motions at 30 fps, 300 frames each (walk, turn in
   place, squats), posed by a numpy forward kinematics of the 24 SMPL joints (the body
   model's ``J_regressor`` on the rest shape, then the kinematic tree), seen by a pinhole
   camera. Each frame is given errors like a per-frame estimator's (:data:`NOISE`): Gaussian
   on every joint rotation, the shape and the camera translation, occasional outlier frames
   and runs of missing detections. The detections go through the real tracker; MPJPE,
   acceleration error (pelvis-relative joints) and lag (cross-correlation) for raw, live
   and offline.
2. **Real video.** runner.mp4 through the offline person detector (ONNX Runtime), tracked
   by box: acceleration of the box centre and size in box heights per frame squared.
3. **Gaps.** runner.mp4 with 5 bursts of 10 frames painted out: IoU of the boxes answered
   there against the detector's boxes on the clean frames (live prediction vs offline
   interpolation).
4. **MOT15** TUD-Campus and TUD-Stadtmitte, online and ``--offline``.

Usage::

    python -m scripts.benchmark_smoothness [--shared ../shared] [--smpl build/smpl/SMPL_NEUTRAL.npz]
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from scipy.spatial.transform import Rotation

from tracker_service.detection import PersonDetector
from tracker_service.geometry import box_iou
from tracker_service.model_spec import PERSON_DETECTOR
from tracker_service.settings import Settings
from tracker_service.tracking import BodyPose, Detection, PhalpTracker, TrackerConfig, TrackOutput
from tracker_service.tracking.offline import refine_video
from tracker_service.tracking.smoothing import LiveSmoother
from tracker_tools import mot_score
from tracker_tools.machine import machine
from tracker_tools.media import paint_over, read_frames

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
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
#: Runner bursts painted out: 5 of 10 frames.
BURSTS = [range(start, start + 10) for start in (25, 55, 85, 115, 145)]


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
    for start in rng.choice(np.arange(30, n - 30), NOISE["missing_runs"], replace=False):
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
    settings = Settings()
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
    shifts = np.arange(-max_shift, max_shift + 1)
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
    rotations = np.stack([o.pose.rotations for o in answers])
    joints = skeleton.joints(rotations, np.stack([o.pose.betas for o in answers]))
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


# --------------------------------------------------------------------------- the parts


def synthetic_part(skeleton: Skeleton) -> dict[str, dict[str, dict[str, float]]]:
    """Each motion's body metrics for raw, live and offline."""
    results = {}
    for seed, name in enumerate(("walk", "turn", "squat")):
        rotations, translation = motion(name)
        betas = np.random.default_rng(100 + seed).normal(0, 0.8, 10)
        truth = skeleton.joints(rotations, np.tile(betas, (len(rotations), 1)))
        detections = noisy_detections(skeleton, rotations, translation, betas, seed)
        answers = track_three_ways(detections, IMAGE_HW)
        answered = [i for i in range(FRAMES) if all(a[i] is not None for a in answers.values())]
        assert np.all(np.diff(answered) == 1), "the track was lost"
        results[name] = {
            method: body_metrics(skeleton, [run[i] for i in answered], truth[answered])
            for method, run in answers.items()
        }
        log.info("%s: %s", name, results[name])
    return results


def onnx_detector(model: Path) -> PersonDetector:
    """The offline person detector on ONNX Runtime, with the service's filtering."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (images,) = PERSON_DETECTOR.input_names

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = session.run(list(PERSON_DETECTOR.output_names), {images: batch})
        return boxes, scores

    settings = Settings()
    return PersonDetector(run, settings.min_score, settings.min_box_px)


def _as_detections(found: tuple[np.ndarray, np.ndarray]) -> list[Detection]:
    boxes, scores = found
    return [Detection(box=b, score=float(s)) for b, s in zip(boxes, scores, strict=True)]


def video_parts(video: Path, detector: PersonDetector) -> tuple[dict, dict]:
    """runner.mp4: box smoothness on the clean video, and the IoU in painted-out bursts."""
    frames = read_frames(video, 10_000)
    image_hw = frames[0].shape[:2]
    clean = [detector(frame) for frame in frames]
    answers = track_three_ways([_as_detections(found) for found in clean], image_hw)
    smoothness = {
        method: box_acceleration(np.stack([o.box for o in run if o is not None]))
        for method, run in answers.items()
    }
    hidden = [i for burst in BURSTS for i in burst]
    painted = list(clean)
    for i in hidden:
        hidden_frame = frames[i].copy()
        paint_over(hidden_frame, clean[i][0])
        painted[i] = detector(hidden_frame)
    masked_answers = track_three_ways([_as_detections(found) for found in painted], image_hw)
    answered = {
        method: [None if run[i] is None else run[i].box for i in hidden]
        for method, run in masked_answers.items()
    }
    # The reference: a straight line between the detections around each burst.
    answered["linear between the detections"] = [
        (1 - u) * clean[burst[0] - 1][0][0] + u * clean[burst[-1] + 1][0][0]
        for burst in BURSTS
        for u in (np.arange(1, len(burst) + 1) / (len(burst) + 1))
    ]
    gaps = {}
    for method, boxes in answered.items():
        overlap = [
            0.0 if box is None else float(box_iou(box, clean[i][0][:1])[0, 0])
            for i, box in zip(hidden, boxes, strict=True)
        ]
        gaps[method] = {
            "mean_iou": float(np.mean(overlap)),
            "worst_iou": float(np.min(overlap)),
            "answered": sum(box is not None for box in boxes),
        }
    for method, run in masked_answers.items():
        gaps[method]["identities"] = len({o.track_id for o in run if o is not None})
    log.info("runner: %s; gaps: %s", smoothness, gaps)
    return smoothness, gaps


def mot_part(mot15: Path) -> dict[str, dict[str, dict[str, float]]]:
    """IDF1, MOTA, ID switches of the TUD sequences, online and offline."""
    results = {}
    for name in ("TUD-Campus", "TUD-Stadtmitte"):
        results[name] = {}
        for method, offline in (("online", False), ("offline", True)):
            metrics, _ = mot_score.run(mot15 / name, offline)
            results[name][method] = {
                "idf1": float(metrics["idf1"]),
                "mota": float(metrics["mota"]),
                "id_switches": int(metrics["num_switches"]),
            }
    return results


# --------------------------------------------------------------------------- report


def _worst_ratio(part: dict, method: str, key: str) -> float:
    """The largest ratio of ``method``'s figure to raw's over the motions."""
    return max(m[method][key] / m["raw"][key] for m in part.values())


def goals(synthetic: dict, gaps: dict, mot: dict) -> list[dict[str, object]]:
    """Every goal of the issue: measured value, target, met (body goals: the worst motion)."""

    def goal(text: str, measured: float, sense: str, bound: float) -> dict[str, object]:
        met = measured <= bound if sense == "<=" else measured >= bound
        return {"goal": text, "measured": round(measured, 3), "target": f"{sense} {bound:.3f}",
                "met": bool(met)}  # fmt: skip

    worst = "(worst motion)"
    rows = [
        goal(f"live acceleration error / raw {worst}",
             _worst_ratio(synthetic, "live", "accel_error_mm"), "<=", 1 / 3),
        goal(f"live MPJPE / raw {worst}", _worst_ratio(synthetic, "live", "mpjpe_mm"), "<=", 1.0),
        goal(f"live lag, frames {worst}",
             max(m["live"]["lag_frames"] for m in synthetic.values()), "<=", 1.0),
        goal(f"offline acceleration error / raw {worst}",
             _worst_ratio(synthetic, "offline", "accel_error_mm"), "<=", 0.2),
        goal(f"offline MPJPE / raw {worst}",
             _worst_ratio(synthetic, "offline", "mpjpe_mm"), "<=", 0.8),
        goal("gaps offline: mean IoU", gaps["offline"]["mean_iou"], ">=", 0.90),
        goal("gaps offline: worst IoU", gaps["offline"]["worst_iou"], ">=", 0.80),
    ]  # fmt: skip
    for name, target in (("TUD-Stadtmitte", 0.80), ("TUD-Campus", 0.75)):
        rows.append(goal(f"{name} offline IDF1", mot[name]["offline"]["idf1"], ">=", target))
        online = mot[name]["online"]["mota"]
        rows.append(goal(f"{name} offline MOTA (not below online)",
                         mot[name]["offline"]["mota"], ">=", online))  # fmt: skip
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report(results: dict, format_notes: Callable[[], str]) -> str:
    """The Markdown page."""
    synthetic, runner, gaps, mot = (
        results["synthetic"],
        results["runner"],
        results["gaps"],
        results["mot15"],
    )
    body_rows = [
        [
            name,
            method,
            f"{m['mpjpe_mm']:.1f}",
            f"{m['accel_error_mm']:.2f}",
            f"{m['lag_frames']:.2f}",
        ]
        for name, methods in synthetic.items()
        for method, m in methods.items()
    ]
    runner_rows = [
        [method, f"{m['centre_accel']:.5f}", f"{m['size_accel']:.5f}"]
        for method, m in runner.items()
    ]
    gap_rows = [
        [method, f"{m['mean_iou']:.3f}", f"{m['worst_iou']:.3f}", m["answered"],
         m.get("identities", "-")]
        for method, m in gaps.items()
    ]
    mot_rows = [
        [name, method, f"{m['idf1']:.3f}", f"{m['mota']:.3f}", m["id_switches"]]
        for name, methods in mot.items()
        for method, m in methods.items()
    ]
    goal_rows = [
        [g["goal"], g["measured"], g["target"], "yes" if g["met"] else "**no**"]
        for g in results["goals"]
    ]
    return (
        "\n\n".join(
            [
                "# Temporal coherence: raw, live and offline",
                f"Written by `python -m scripts.benchmark_smoothness` on {results['machine']}.",
                "## Goals",
                _table(["goal", "measured", "target", "met"], goal_rows),
                format_notes(),
                "## Ground truth: SMPL motions with a per-frame estimator's errors",
                "Three 300-frame motions at 30 fps (walk, turn in place, squats), joints by numpy "
                "forward kinematics of the stand-in body model's `J_regressor` and kinematic tree; "
                "errors per frame: " + ", ".join(f"{k} {v}" for k, v in NOISE.items()) + ". "
                "The detections go through the real tracker (the service's settings); *raw* is "
                "what the tracker answers (its extrapolation in missed frames), *live* the same "
                "through `LiveSmoother`, *offline* `refine_video` of the raw run. Joints are "
                "pelvis-relative; lag is the peak of the cross-correlation with the truth.",
                _table(
                    ["motion", "method", "MPJPE mm", "accel. error mm/frame^2", "lag frames"],
                    body_rows,
                ),
                "## runner.mp4 through the detector: box acceleration (box heights / frame^2)",
                _table(["method", "centre", "size"], runner_rows),
                "## runner.mp4, 5 bursts of 10 frames painted out: IoU with the clean detections",
                _table(
                    ["method", "mean IoU", "worst IoU", "frames answered of 50", "identities"],
                    gap_rows,
                ),
                "## MOT15, boxes only (`python -m scripts.score_mot [--offline]`)",
                _table(["sequence", "method", "IDF1", "MOTA", "ID switches"], mot_rows),
            ]
        )
        + "\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--smpl", type=Path, default=REPO / "build/smpl/SMPL_NEUTRAL.npz")
    parser.add_argument(
        "--detector", type=Path, default=REPO / "model_repository/person_detector/1/model.onnx"
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    synthetic = synthetic_part(Skeleton(args.smpl))
    runner, gaps = video_parts(args.shared / "media/runner.mp4", onnx_detector(args.detector))
    mot = mot_part(args.shared / "mot15")
    results = {
        "machine": machine(),
        "noise": NOISE,
        "synthetic": synthetic,
        "runner": runner,
        "gaps": gaps,
        "mot15": mot,
    }
    results["goals"] = goals(synthetic, gaps, mot)
    (args.out / "smoothness.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "smoothness.md").write_text(report(results, lambda: NOTES))
    print(report(results, lambda: ""))  # noqa: T201 - the benchmark's figures
    return 0


#: What was tuned, and why the goals not met are not (written by hand from these figures).
NOTES = """\
**What was tuned.** The noise model was calibrated so that the raw acceleration error falls in
HMR2's range on 3DPW (23-35 mm/frame^2; 32-35 here). The live filter's state (level and trend
rather than One Euro's plain low-pass, which could not reach a third of the raw acceleration
error with a lag under a frame) and its defaults (`min_cutoff` 0.05, `beta` 4,
`derivative_cutoff` 0.3) were chosen on these three motions with other noise seeds (10-12)
and shapes than the ones reported here (0-2); the walk is the binding motion (fast knees).
The offline defaults (window 8, sigma 3 frames) and the stitching gates were set before
measuring and not tuned on runner.mp4 or MOT15 (on MOT15, IDF1 and MOTA move up and down
with the window without a trend). The noise is per frame only, with no systematic bias, so
the offline MPJPE ratio is better here than it would be on real HMR2 output, whose error is
mostly bias that no temporal filter removes.

**Gaps, not met** by 0.014 (mean) and 0.028 (worst). On these bursts a straight line between
the detections on both sides reaches 0.890 / 0.762 (the row *linear between the
detections*); the issue's 0.92 / 0.83 came from its own bursts, not these. Over 10 frames the
runner's box changes shape with his stride, which nothing interpolated from the two ends
recovers; the offline pass is at the straight line's level (mean -0.004, worst +0.010), and
its smoothed boxes overlap the detections by 0.948 on average where the runner is seen.
A cubic Hermite curve through the gap, with the end velocities of the 3 frames on each
side, was tried and dropped: 0.884 / 0.774, and TUD-Stadtmitte's MOTA fell to 0.717.

**TUD-Stadtmitte IDF1, not met** by 0.084. Stitching finds no pair of tracks within its gates
(the candidate ends disagree by 2-6 box heights), and what costs IDF1 is not fragmentation:
it is identity swaps inside tracks (12 switches online, 6 offline), which joining tracks
cannot undo and, with boxes only, no appearance can split, and misses (only 905 of the 1156
true boxes have a detection scoring at least PHALP's 0.8). The offline pass fills misses
(264 to 203) but its boxes interpolated through long occlusions add false positives (31 to
94), so IDF1 stays level (0.721 to 0.716) while MOTA rises (0.734 to 0.738). SORT's 0.799
on the same detections comes from its online association, not from a refinement pass.
"""

if __name__ == "__main__":
    raise SystemExit(main())

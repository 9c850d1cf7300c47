"""Temporal coherence, measured: raw, live-smoothed and offline-refined tracking.

What ``python -m scripts.benchmark_smoothness`` runs (:func:`run`; the parts and the page are
described in the script's docstring): :func:`synthetic_part` on SMPL motions with a
per-frame estimator's errors (:mod:`tracker_tools.smoothness`), :func:`video_parts` on
runner.mp4 through the offline detector, :func:`mot_part` on MOT15, then :func:`goals` and
:func:`report`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from tracker_service.detection import PersonDetector
from tracker_service.geometry import box_iou
from tracker_service.model_spec import PERSON_DETECTOR
from tracker_service.settings import Settings
from tracker_service.tracking import Detection, TrackOutput
from tracker_tools import mot_score
from tracker_tools.machine import machine
from tracker_tools.media import paint_over, read_frames
from tracker_tools.plots import series_chart
from tracker_tools.report import markdown_table
from tracker_tools.smoothness import (
    FRAMES,
    IMAGE_HW,
    L_KNEE,
    NOISE,
    Skeleton,
    body_metrics,
    box_acceleration,
    motion,
    noisy_detections,
    track_three_ways,
)

log = logging.getLogger(__name__)
#: Runner bursts painted out: 5 of 10 frames.
BURSTS = [range(start, start + 10) for start in (25, 55, 85, 115, 145)]


# --------------------------------------------------------------------------- the parts


def _angle_deg(rotations: np.ndarray) -> np.ndarray:
    """The rotation angle of rotation matrices ``(..., 3, 3)``, in degrees."""
    cosine = (np.trace(rotations, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def walk_series(
    answers: dict[str, list[TrackOutput | None]],
    rotations: np.ndarray,
    translation: np.ndarray,
    detections: Sequence[Sequence[Detection]],
) -> dict[str, object]:
    """The walk's left knee angle and pelvis depth per frame, per method (for the picture).

    Returns:
        ``angle_deg`` and ``pelvis_depth_m`` (method to per-frame values, NaN where nothing
        was answered; ``truth`` among the methods) and ``missing`` (frames without a detection).

    """
    nan = float("nan")
    angle: dict[str, object] = {"truth": _angle_deg(rotations[:, L_KNEE])}
    depth: dict[str, object] = {"truth": translation[:, 2]}
    for method, run in answers.items():
        angle[method] = [nan if o is None or o.pose is None
                         else float(_angle_deg(o.pose.rotations[L_KNEE])) for o in run]  # fmt: skip
        depth[method] = [nan if o is None or o.camera is None else float(o.camera[2]) for o in run]
    missing = [i for i, people in enumerate(detections) if not people]
    return {"angle_deg": angle, "pelvis_depth_m": depth, "missing": missing}


def synthetic_part(skeleton: Skeleton) -> tuple[dict[str, dict[str, dict[str, float]]], dict]:
    """Each motion's body metrics for raw, live and offline; the walk's series."""
    results, series = {}, {}
    for seed, name in enumerate(("walk", "turn", "squat")):
        rotations, translation = motion(name)
        betas = np.random.default_rng(100 + seed).normal(0, 0.8, 10)
        truth = skeleton.joints(rotations, np.tile(betas, (len(rotations), 1)))
        detections = noisy_detections(skeleton, rotations, translation, betas, seed)
        answers = track_three_ways(detections, IMAGE_HW)
        if name == "walk":
            series = walk_series(answers, rotations, translation, detections)
        answered = [i for i in range(FRAMES) if all(a[i] is not None for a in answers.values())]
        assert np.all(np.diff(answered) == 1), "the track was lost"
        results[name] = {
            method: body_metrics(
                skeleton, [o for i in answered if (o := run[i]) is not None], truth[answered]
            )
            for method, run in answers.items()
        }
        log.info("%s: %s", name, results[name])
    return results, series


def onnx_detector(model: Path) -> PersonDetector:
    """The offline person detector on ONNX Runtime, with the service's filtering."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (images,) = PERSON_DETECTOR.input_names

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = session.run(list(PERSON_DETECTOR.output_names), {images: batch})
        return boxes, scores

    settings = Settings().detection
    return PersonDetector(run, settings.min_score, settings.min_box_px)


def _as_detections(found: tuple[np.ndarray, np.ndarray]) -> list[Detection]:
    boxes, scores = found
    return [Detection(box=b, score=float(s)) for b, s in zip(boxes, scores, strict=True)]


def video_parts(video: Path, detector: PersonDetector) -> tuple[dict, dict, dict]:
    """runner.mp4: box smoothness, the IoU in painted-out bursts, the boxes (for the picture).

    Returns:
        The box acceleration per method, the gap figures per method, and the gap series
        (see :func:`gap_series`).

    """
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
        method: [None if (o := run[i]) is None else o.box for i in hidden]
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
    return smoothness, gaps, gap_series(clean, masked_answers, hidden)


def gap_series(
    clean: Sequence[tuple[np.ndarray, np.ndarray]],
    answers: dict[str, list[TrackOutput | None]],
    hidden: Sequence[int],
) -> dict[str, object]:
    """Box centre x and height per frame: the clean detections and each method's answers.

    Returns:
        ``centre_x`` and ``height`` (method to per-frame pixels, NaN where nothing was
        answered) and ``hidden`` (the painted-out frames).

    """
    nan = np.full(4, np.nan)
    boxes = {"clean detections": [found[0][0] if len(found[0]) else nan for found in clean]}
    boxes |= {m: [nan if o is None else o.box for o in run] for m, run in answers.items()}
    stacked = {method: np.stack(b) for method, b in boxes.items()}
    return {
        "centre_x": {m: (b[:, 0] + b[:, 2]) / 2.0 for m, b in stacked.items()},
        "height": {m: b[:, 3] - b[:, 1] for m, b in stacked.items()},
        "hidden": list(hidden),
    }


def mot_part(mot15: Path) -> dict[str, dict[str, dict[str, float]]]:
    """IDF1, MOTA, ID switches of the TUD sequences, online and offline."""
    results: dict[str, dict[str, dict[str, float]]] = {}
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
    return "\n".join(markdown_table(header, rows))


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
        [
            method,
            f"{m['mean_iou']:.3f}",
            f"{m['worst_iou']:.3f}",
            m["answered"],
            m.get("identities", "-"),
        ]
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
                "![The walk's left knee angle and pelvis depth: raw, live and offline against "
                "the ground truth](smoothness_trajectories.png)",
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
                "![The runner's box through the painted-out bursts: live prediction and "
                "offline interpolation against the clean detections](smoothness_gaps.png)",
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


def run(shared: Path, smpl: Path, detector_model: Path, out: Path, command: str) -> str:
    """Measure the four parts; write the page, its JSON and its two pictures into ``out``.

    Args:
        shared: The shared data (``media/runner.mp4``, ``mot15``).
        smpl: The body model file (``SMPL_NEUTRAL.npz``).
        detector_model: The offline person detector's ``model.onnx``.
        out: The folder of ``smoothness.md``, ``smoothness.json`` and the pictures.
        command: The command line, for the pictures' caption.

    Returns:
        The page without the hand-written notes (the figures, as printed).

    """
    synthetic, walk = synthetic_part(Skeleton(smpl))
    detector = onnx_detector(detector_model)
    runner, gaps, gap_boxes = video_parts(shared / "media/runner.mp4", detector)
    mot = mot_part(shared / "mot15")
    results: dict[str, Any] = {
        "machine": machine(),
        "noise": NOISE,
        "synthetic": synthetic,
        "runner": runner,
        "gaps": gaps,
        "mot15": mot,
    }
    results["goals"] = goals(synthetic, gaps, mot)
    (out / "smoothness.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "smoothness.md").write_text(report(results, lambda: NOTES))
    caption = f"{results['machine']}; `{command}`"
    charts = (
        ("smoothness_trajectories.png",
         "The walk: SMPL ground truth seen with a per-frame estimator's errors",
         [("left knee angle (degrees)", walk["angle_deg"]),
          ("pelvis depth from the camera (m)", walk["pelvis_depth_m"])],
         walk["missing"], "no detection", "frame (30 frames/s)"),
        ("smoothness_gaps.png",
         "runner.mp4, 5 bursts of 10 frames painted out: the answered box",
         [("box centre x (pixels)", gap_boxes["centre_x"]),
          ("box height (pixels)", gap_boxes["height"])],
         gap_boxes["hidden"], "runner painted out", "frame"),
    )  # fmt: skip
    for name, title, panels, shaded, shade_label, x_label in charts:
        series_chart(panels, shaded=shaded, shade_label=shade_label, x_label=x_label,
                     title=title, out=out / name, caption=caption)  # fmt: skip
    return report(results, lambda: "")


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

"""Temporal coherence, measured: raw, live-smoothed and offline-refined tracking.

Writes ``docs/smoothness.md`` and ``docs/smoothness.json`` (``"goals"``: every goal with its
measured value, target and whether it is met), and two pictures beside them: the walk's
trajectories (``smoothness_trajectories.png``) and the runner's gaps
(``smoothness_gaps.png``). Four parts:

1. **Ground truth.** Three smooth SMPL motions at 30 fps, 300 frames each (walk, turn in place,
   squats), posed by a numpy forward kinematics of the 24 SMPL joints (the body model's
   ``J_regressor`` on the rest shape, then the kinematic tree), seen by a pinhole camera. Each
   frame is given errors like a per-frame estimator's (:data:`tracker_tools.smoothness.NOISE`):
   Gaussian on every joint rotation, the shape and the camera translation, occasional outlier
   frames and runs of missing detections. The detections go through the real tracker; MPJPE,
   acceleration error (pelvis-relative joints) and lag (cross-correlation) for raw, live and
   offline.
2. **Real video.** runner.mp4 through the offline person detector (ONNX Runtime), tracked
   by box: acceleration of the box centre and size in box heights per frame squared.
3. **Gaps.** runner.mp4 with 5 bursts of 10 frames painted out: IoU of the boxes answered
   there against the detector's boxes on the clean frames (live prediction vs offline
   interpolation).
4. **MOT15** TUD-Campus and TUD-Stadtmitte, online and ``--offline``.

The measurements and the page: :mod:`tracker_tools.smoothness_benchmark`.

Usage::

    python -m scripts.benchmark_smoothness [--shared ../shared] [--smpl build/smpl/SMPL_NEUTRAL.npz]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.report import command_line
from tracker_tools.smoothness_benchmark import run

REPO = Path(__file__).resolve().parent.parent


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
    command = command_line("scripts.benchmark_smoothness", argv)
    print(run(args.shared, args.smpl, args.detector, args.out, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

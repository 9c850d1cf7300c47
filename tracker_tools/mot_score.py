"""Score the tracker on MOTChallenge public detections (boxes only) with py-motmetrics.

Runs :mod:`tracker_tools.mot` on each sequence's ``det.txt`` and prints IDF1, MOTA and identity
switches against ``gt.txt`` (IoU distance, match threshold 0.5, as MOTChallenge), and frames/s.

Example:
    python -m scripts.score_mot ../shared/mot15/TUD-Campus ../shared/mot15/TUD-Stadtmitte
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from tracker_service.tracking import PhalpTracker, TrackerConfig
from tracker_tools import mot
from tracker_tools.compat import numpy_for_motmetrics

#: The frame size of the TUD sequences (MOT15), as (height, width).
TUD_IMAGE_SIZE = (480, 640)


def motmetrics() -> ModuleType:
    """Import py-motmetrics, first restoring ``np.asfarray`` (:mod:`tracker_tools.compat`)."""
    numpy_for_motmetrics()
    import motmetrics as mm

    return mm


def score(gt_path: Path, rows: Sequence[mot.ResultRow]) -> dict[str, float]:
    """IDF1, MOTA and identity switches of result rows against a ``gt.txt``."""
    mm = motmetrics()
    gt = np.loadtxt(gt_path, delimiter=",")
    result = np.array(rows, dtype=float).reshape(-1, 6)
    accumulator = mm.MOTAccumulator(auto_id=False)
    for frame in range(1, int(gt[:, 0].max()) + 1):
        truth, ours = gt[gt[:, 0] == frame], result[result[:, 0] == frame]
        distances = mm.distances.iou_matrix(truth[:, 2:6], ours[:, 2:6], max_iou=0.5)
        accumulator.update(truth[:, 1].astype(int), ours[:, 1].astype(int), distances, frame)
    summary = mm.metrics.create().compute(
        accumulator, metrics=["idf1", "mota", "num_switches"], name=gt_path.parent.name
    )
    return summary.iloc[0].to_dict()


def run(sequence: Path, offline: bool = False) -> tuple[dict[str, float], float]:
    """Track one sequence box-only with the default settings; its scores and frames/s.

    With ``offline`` the run is refined as a whole (:func:`tracker_tools.mot.track_sequence`).
    """
    frames = mot.read_detections(sequence / "det.txt")
    start = time.perf_counter()
    tracker = PhalpTracker(TrackerConfig())
    rows = mot.track_sequence(frames, tracker, TUD_IMAGE_SIZE, offline=offline)
    fps = len(frames) / (time.perf_counter() - start)
    return score(sequence / "gt.txt", rows), fps

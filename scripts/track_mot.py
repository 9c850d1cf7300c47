"""Track MOTChallenge public detections with the PHALP tracker, boxes only.

Usage::

    python -m scripts.track_mot --det det.txt --out results.txt
        [--min-score 0.8] [--image-size 640x480] [--max-predicted 1] [--offline]

The format and the reporting rules: :mod:`tracker_tools.mot`.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from tracker_service.tracking import PhalpTracker, TrackerConfig
from tracker_tools.mot import infer_image_size, read_detections, track_sequence, write_results

logger = logging.getLogger(__name__)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {value}")
    return value


def _image_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        return int(height), int(width)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--det", type=Path, required=True, help="MOTChallenge det.txt")
    parser.add_argument("--out", type=Path, required=True, help="results file to write")
    parser.add_argument(
        "--min-score",
        type=float,
        default=TrackerConfig().detection_threshold,
        help="ignore detections scoring below (default: PHALP's 0.8)",
    )
    parser.add_argument(
        "--image-size",
        type=_image_size,
        default=None,
        help="frame size WIDTHxHEIGHT (default: the extent of the boxes)",
    )
    parser.add_argument(
        "--max-predicted",
        type=_count,
        default=1,
        help="write predicted boxes up to this many frames after a track's last detection",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="refine the whole run (stitch tracks, interpolate gaps, smooth) before writing",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    frames = read_detections(args.det)
    image_size = args.image_size or infer_image_size(frames)
    logger.info("%d frames with detections, image size %dx%d", len(frames), *image_size[::-1])
    tracker = PhalpTracker(TrackerConfig(detection_threshold=args.min_score))
    start = time.perf_counter()
    rows = track_sequence(
        frames, tracker, image_size, max_predicted=args.max_predicted, offline=args.offline
    )
    elapsed = time.perf_counter() - start
    write_results(args.out, rows)
    count = (max(frames) - min(frames) + 1) if frames else 0
    print(  # noqa: T201 - the command's one-line summary
        f"{count} frames, {len({r[1] for r in rows})} tracks, "
        f"{count / max(elapsed, 1e-9):.0f} frames/s -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

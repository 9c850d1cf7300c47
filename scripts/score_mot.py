"""Score the tracker on MOTChallenge public detections (boxes only) with py-motmetrics.

Prints IDF1, MOTA and identity switches per sequence (:mod:`tracker_tools.mot_score`).

Example:
    python -m scripts.score_mot ../shared/mot15/TUD-Campus ../shared/mot15/TUD-Stadtmitte
    python -m scripts.score_mot --offline ../shared/mot15/TUD-Campus  # refined by refine_video
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.mot_score import run


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sequences", type=Path, nargs="+", help="folders with det.txt, gt.txt")
    parser.add_argument("--offline", action="store_true", help="refine each run offline")
    parser.add_argument("--offline", action="store_true", help="refine each run offline")
    args = parser.parse_args(argv)
    print("| sequence | IDF1 | MOTA | ID switches | frames/s |\n| --- | --- | --- | --- | --- |")
    for sequence in args.sequences:
        metrics, fps = run(sequence, args.offline)
        print(
            f"| {sequence.name} | {metrics['idf1']:.3f} | {metrics['mota']:.3f} "
            f"| {metrics['num_switches']:.0f} | {fps:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

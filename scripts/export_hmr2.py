"""Export HMR2 (with the body model inside) and the standalone body model to ONNX.

Writes ``<repository>/hmr2/1/model.onnx`` and ``<repository>/smpl/1/model.onnx`` (see
:mod:`tracker_tools.hmr2.export`), then checks ONNX Runtime against PyTorch on a random batch.

Examples:
    python -m scripts.export_hmr2 --weights generated --smpl build/smpl/SMPL_NEUTRAL.npz \
        --extra-regressor build/smpl/SMPL_to_J19.pkl
    python -m scripts.export_hmr2 --weights checkpoint --checkpoint epoch=35-step=1000000.ckpt \
        --smpl SMPL_NEUTRAL.pkl --extra-regressor SMPL_to_J19.pkl --fp16

"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.hmr2.export import ExportError, export_hmr2

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", choices=["generated", "checkpoint"], default="generated")
    parser.add_argument("--checkpoint", type=Path, help="official HMR2 .ckpt (4D-Humans)")
    parser.add_argument("--smpl", type=Path, required=True, help="SMPL_NEUTRAL.pkl or .npz")
    parser.add_argument("--extra-regressor", type=Path, required=True, help="SMPL_to_J19.pkl")
    parser.add_argument("--config", choices=["full", "tiny"], default="full")
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--fp16", action="store_true", help="HMR2 network in float16 (GPU)")
    parser.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime check")
    parser.add_argument(
        "--faces-only", action="store_true", help="only write smpl/1/faces.npy from --smpl"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        names = export_hmr2(
            args.smpl, args.extra_regressor, args.repository, weights=args.weights,
            checkpoint=args.checkpoint, config=args.config, fp16=args.fp16,
            verify=not args.no_verify, faces_only=args.faces_only,
        )
    except ExportError as error:
        log.error("%s", error)
        return 1
    if names:
        print(f"exported {', '.join(names)} to {args.repository}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

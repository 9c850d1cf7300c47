"""Fetch the official weights and export the production model repository.

What the ``exporter`` image runs (``docker compose --profile export run --rm exporter``), on
the user's machine, once before the first start (the steps: :mod:`tracker_tools.weights`)::

    python -m scripts.fetch_weights [--weights-dir weights] [--repository model_repository]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.detector_export import DEFAULT_CHECKPOINT, export_detector
from tracker_tools.hmr2.export import ExportError, export_hmr2
from tracker_tools.weights import (
    CHECKPOINT,
    EXTRA_REGRESSOR,
    FetchError,
    check_onnx_for_triton,
    fetch,
    find_smpl,
    given,
    write_manifest,
)

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
        smpl = find_smpl(args.weights_dir)
        failed: set[str] = set()
        fetched = []
        for path, artifact in ((args.checkpoint, CHECKPOINT), (args.extra_regressor,
                                                                EXTRA_REGRESSOR)):
            if path is not None:
                fetched.append(given(path, artifact))
            else:
                fetched.append(
                    fetch(artifact, args.weights_dir, timeout_s=args.timeout, failed=failed)
                )
        checkpoint, regressor = fetched
    except FetchError as error:
        log.error("%s", error)
        return 1
    if args.fetch_only:
        print(f"fetched {checkpoint.path} and {regressor.path}; SMPL {smpl}")
        return 0

    repo = args.repository
    try:
        export_hmr2(
            smpl, regressor.path, repo, weights="checkpoint", checkpoint=checkpoint.path,
            fp16=args.fp16,
        )
    except ExportError as error:
        log.error("%s", error)
        return 1
    hmr2_record = {
        "weights": "official", "checkpoint_sha256": checkpoint.sha256,
        "checkpoint_from": checkpoint.origin, "regressor_sha256": regressor.sha256,
        "smpl": smpl.name, "fp16": args.fp16,
    }
    records = {"hmr2": hmr2_record, "smpl": {"smpl": smpl.name}}
    if not args.skip_detector:
        detector_out = repo / "person_detector" / "1" / "model.onnx"
        export_detector(
            "production", detector_out, checkpoint=args.detector_checkpoint, force=True
        )
        records["person_detector"] = {
            "source": "production", "checkpoint": args.detector_checkpoint,
        }
    try:
        for name, record in records.items():
            onnx_path = repo / name / "1" / "model.onnx"
            ir, opset = check_onnx_for_triton(onnx_path)
            write_manifest(onnx_path.parent, {**record, "ir_version": ir, "opset": opset})
            log.info("%s: IR %d, opset %d: Triton 24.10's ORT reads it", name, ir, opset)
    except FetchError as error:
        log.error("%s", error)
        return 1
    print(f"production models written to {repo}: {', '.join(records)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

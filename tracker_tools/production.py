"""The production model repository from the official weights: fetch, export, check, record.

What ``python -m scripts.fetch_weights`` (the ``exporter`` image) runs, in two steps:
:func:`fetch_weights` finds the user's SMPL file and fetches (or takes as given) the HMR2
checkpoint and the extra regressor (:mod:`tracker_tools.weights`); :func:`export_production`
exports HMR2, the body model and the D-FINE person detector, checks that Triton's ONNX Runtime
reads each graph and writes each model's ``export.json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tracker_tools.detector_export import export_detector
from tracker_tools.hmr2.export import export_hmr2
from tracker_tools.weights import (
    CHECKPOINT,
    EXTRA_REGRESSOR,
    Fetched,
    check_onnx_for_triton,
    fetch,
    find_smpl,
    given,
    write_manifest,
)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Weights:
    """The official files the export reads.

    Attributes:
        smpl: The user's SMPL file.
        checkpoint: The HMR2 checkpoint.
        regressor: The extra joint regressor (``SMPL_to_J19.pkl``).

    """

    smpl: Path
    checkpoint: Fetched
    regressor: Fetched


def fetch_weights(
    weights_dir: Path,
    *,
    timeout_s: float = 60.0,
    checkpoint: Path | None = None,
    extra_regressor: Path | None = None,
) -> Weights:
    """Find SMPL, then fetch the checkpoint and the regressor, or take the given files as they are.

    Args:
        weights_dir: The user's SMPL file, and where downloads go.
        timeout_s: Network timeout of each request.
        checkpoint: An HMR2 checkpoint to use as it is (no download, no size check).
        extra_regressor: A ``SMPL_to_J19.pkl`` to use as it is (no download).

    Raises:
        FetchError: SMPL is missing, or a download failed or did not verify.

    """
    smpl = find_smpl(weights_dir)
    failed: set[str] = set()
    fetched = [
        given(path, artifact) if path is not None
        else fetch(artifact, weights_dir, timeout_s=timeout_s, failed=failed)
        for path, artifact in ((checkpoint, CHECKPOINT), (extra_regressor, EXTRA_REGRESSOR))
    ]  # fmt: skip
    return Weights(smpl, *fetched)


def export_production(
    weights: Weights,
    repository: Path,
    *,
    fp16: bool = False,
    detector_checkpoint: str | None = None,
) -> list[str]:
    """Export the production models into ``repository``; return the models written.

    Args:
        weights: What :func:`fetch_weights` returned.
        repository: The model repository (``model_repository``).
        fp16: Export HMR2 in float16 (GPU only).
        detector_checkpoint: A D-FINE checkpoint (Hugging Face id or folder); None keeps the
            person detector already in the repository.

    Raises:
        ExportError: The HMR2 export failed.
        FetchError: A graph is newer than Triton's ONNX Runtime reads.

    """
    export_hmr2(
        weights.smpl, weights.regressor.path, repository, weights="checkpoint",
        checkpoint=weights.checkpoint.path, fp16=fp16,
    )  # fmt: skip
    records: dict[str, dict[str, object]] = {
        "hmr2": {
            "weights": "official", "checkpoint_sha256": weights.checkpoint.sha256,
            "checkpoint_from": weights.checkpoint.origin,
            "regressor_sha256": weights.regressor.sha256, "smpl": weights.smpl.name, "fp16": fp16,
        },
        "smpl": {"smpl": weights.smpl.name},
    }  # fmt: skip
    if detector_checkpoint is not None:
        detector_out = repository / "person_detector" / "1" / "model.onnx"
        export_detector("production", detector_out, checkpoint=detector_checkpoint, force=True)
        records["person_detector"] = {"source": "production", "checkpoint": detector_checkpoint}
    for name, record in records.items():
        onnx_path = repository / name / "1" / "model.onnx"
        ir, opset = check_onnx_for_triton(onnx_path)
        write_manifest(onnx_path.parent, {**record, "ir_version": ir, "opset": opset})
        _log.info("%s: IR %d, opset %d: Triton 24.10's ORT reads it", name, ir, opset)
    return list(records)

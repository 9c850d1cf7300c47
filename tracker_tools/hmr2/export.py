"""Export HMR2 (with the body model inside) and the standalone body model to ONNX.

Writes ``<repository>/hmr2/1/model.onnx`` and ``<repository>/smpl/1/model.onnx``, with the
tensor names of ``tracker_service.model_spec`` and a dynamic batch axis, then checks ONNX
Runtime against PyTorch on a random batch.

Why the body model is inside the ``hmr2`` graph *and* served alone as ``smpl``: a detected
person needs one Triton round trip for everything (parameters, mesh, joints, embedding), and
a person the tracker predicts (no detection, so no crop) needs only the body model, run on
the extrapolated pose. Both graphs are exported from the same PyTorch ``BodyModel``.

The command line is ``python -m scripts.export_hmr2`` (``scripts/export_hmr2.py``).
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from tracker_service.model_spec import HMR2, SMPL, SMPL_FACES_FILE, ModelSpec
from tracker_tools.hmr2.body_model import BodyModel
from tracker_tools.hmr2.checkpoint import load_official_checkpoint
from tracker_tools.hmr2.network import HMR2Config, HMR2Network
from tracker_tools.hmr2.recipe import recipe_network, standin_mean_params
from tracker_tools.hmr2.smpl_file import load_smpl

log = logging.getLogger(__name__)

#: ONNX Runtime vs PyTorch agreement the export must reach (float32).
FP32_TOLERANCE = 1e-4


class ServedHMR2(nn.Module):
    """HMR2 network followed by the body model: crops in, everything the service needs out."""

    def __init__(self, network: HMR2Network, body_model: BodyModel, *, fp16: bool = False):
        super().__init__()
        self.network = network.half() if fp16 else network
        self.body_model = body_model
        self.fp16 = fp16

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the network and body model; outputs in ``HMR2.outputs`` order, float32."""
        out = self.network(crops.half() if self.fp16 else crops)
        params = [t.float() for t in (out.global_orient, out.body_pose, out.betas, out.pred_cam)]
        vertices, joints, keypoints = self.body_model(*params[:3])
        return (*params, vertices, joints, keypoints, out.embedding.float())


class ServedSMPL(nn.Module):
    """The body model alone, for bodies the tracker predicts."""

    def __init__(self, body_model: BodyModel):
        super().__init__()
        self.body_model = body_model

    def forward(
        self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Run the body model; outputs in ``SMPL.outputs`` order."""
        return tuple(self.body_model(global_orient, body_pose, betas))


def build_network(
    config: HMR2Config, *, weights: str, checkpoint: Path | None = None
) -> HMR2Network:
    """HMR2 with generated recipe weights or the official checkpoint's, in eval mode."""
    if weights == "generated":
        return recipe_network(config, standin_mean_params())
    if checkpoint is None:
        raise ValueError("--weights checkpoint needs --checkpoint PATH")
    network = HMR2Network(config)
    load_official_checkpoint(network, checkpoint)
    return network.eval()


def export_model(
    module: nn.Module, spec: ModelSpec, example: tuple[torch.Tensor, ...], path: Path
) -> None:
    """Export ``module`` to ``path`` with the spec's names and a dynamic batch axis.

    A model over 1 GiB keeps its weights in ``model.onnx.data`` beside the graph (ONNX's
    protobuf cannot exceed 2 GB); Triton's ONNX Runtime backend reads it from there.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {name: {0: "batch"} for name in (*spec.input_names, *spec.output_names)}
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter (dynamo=False) is deprecated but needs no onnxscript and
        # gives a graph ONNX Runtime and TensorRT run well; torch is pinned, so it stays.
        warnings.simplefilter("ignore", DeprecationWarning)
        exported = Path(tmp) / "model.onnx"
        torch.onnx.export(
            module.eval(),
            example,
            str(exported),
            input_names=list(spec.input_names),
            output_names=list(spec.output_names),
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
        model = onnx.load(str(exported))  # pulls in weights the exporter wrote apart
    data_file = path.with_name(path.name + ".data")
    data_file.unlink(missing_ok=True)
    external = sum(t.numel() * t.element_size() for t in module.state_dict().values()) > 2**30
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=external,
        all_tensors_to_one_file=True,
        location=data_file.name,
    )
    for written in (path, data_file) if external else (path,):
        written.chmod(0o644)  # onnx writes the data file 0600; Triton's container user reads it
    log.info("wrote %s%s", path, f" + {data_file.name}" if external else "")


def write_faces(faces: np.ndarray, repository: Path) -> Path:
    """Write the mesh triangles beside the body model: ``<repository>/smpl/1/faces.npy``.

    The triangles never change and are no Triton output; the service reads this file once
    at start to answer ``mesh_faces_data``.
    """
    path = repository / SMPL.name / "1" / SMPL_FACES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(faces, dtype=np.int32))
    path.chmod(0o644)
    log.info("wrote %s", path)
    return path


def max_difference(
    module: nn.Module, path: Path, spec: ModelSpec, example: tuple[torch.Tensor, ...]
) -> float:
    """Largest absolute difference between ONNX Runtime and PyTorch over every output."""
    with torch.no_grad():
        expected = [t.numpy() for t in module(*example)]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: t.numpy() for name, t in zip(spec.input_names, example, strict=True)}
    actual = session.run(list(spec.output_names), feeds)
    return max(float(np.max(np.abs(a - e))) for a, e in zip(actual, expected, strict=True))


def random_crops(batch: int, seed: int = 0) -> torch.Tensor:
    """Normalized-crop-like input for checks."""
    return torch.randn(batch, 3, 256, 192, generator=torch.Generator().manual_seed(seed))


class ExportError(RuntimeError):
    """An exported graph disagrees with PyTorch beyond the tolerance."""


def export_hmr2(
    smpl: Path,
    extra_regressor: Path,
    repository: Path,
    *,
    weights: str = "generated",
    checkpoint: Path | None = None,
    config: str = "full",
    fp16: bool = False,
    verify: bool = True,
    faces_only: bool = False,
) -> list[str]:
    """Export ``hmr2`` and ``smpl`` (and ``smpl/1/faces.npy``) into a production repository.

    Args:
        smpl: ``SMPL_NEUTRAL.pkl`` or ``.npz``.
        extra_regressor: ``SMPL_to_J19.pkl``.
        repository: The production model repository to write into.
        weights: ``generated`` or ``checkpoint`` (the official HMR2 weights).
        checkpoint: The official ``.ckpt`` (with ``weights="checkpoint"``).
        config: ``full`` or ``tiny``.
        fp16: HMR2 network in float16 (GPU).
        verify: Compare ONNX Runtime with PyTorch on a random batch.
        faces_only: Only write ``smpl/1/faces.npy``.

    Returns:
        The names of the models exported.

    Raises:
        ExportError: ONNX Runtime differs from PyTorch beyond the tolerance.

    """
    torch.manual_seed(0)
    smpl_data = load_smpl(smpl, extra_regressor)
    write_faces(smpl_data.faces, repository)
    if faces_only:
        return []

    start = time.perf_counter()
    hmr2_config = HMR2Config.full() if config == "full" else HMR2Config.tiny()
    network = build_network(hmr2_config, weights=weights, checkpoint=checkpoint)
    body_model = BodyModel(smpl_data).eval()
    log.info("built HMR2 (%s, %s weights) in %.1f s", config, weights,
             time.perf_counter() - start)

    crops = (random_crops(2),)
    served = ServedHMR2(network, body_model, fp16=fp16)
    served_smpl = ServedSMPL(body_model)
    with torch.no_grad():
        params = tuple(t.float() for t in served(*crops)[:3])
    jobs: list[tuple[nn.Module, ModelSpec, tuple[torch.Tensor, ...]]] = [
        (served, HMR2, crops), (served_smpl, SMPL, params)
    ]
    for module, spec, example in jobs:
        path = repository / spec.name / "1" / "model.onnx"
        start = time.perf_counter()
        export_model(module, spec, example, path)
        log.info("exported %s in %.1f s", spec.name, time.perf_counter() - start)
        if verify:
            diff = max_difference(module, path, spec, example)
            tolerance = FP32_TOLERANCE if not (fp16 and spec is HMR2) else 5e-2
            log.info("%s: ONNX Runtime vs PyTorch max |diff| = %.2e", spec.name, diff)
            if diff > tolerance:
                raise ExportError(f"{spec.name}: ONNX Runtime differs from PyTorch by {diff:.2e}")
    return [spec.name for _, spec, _ in jobs]

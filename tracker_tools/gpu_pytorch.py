"""HMR2 on a GPU with PyTorch alone: faithfulness, precision, per-crop speed, memory, export.

The full GPU check (:mod:`tracker_tools.gpu_check`) installs ``onnxruntime-gpu`` and
TensorRT from PyPI. Where that cannot run (a machine that reaches no registry, or a 64 MiB
limit on what travels to it), this check needs only what a CUDA machine with PyTorch already
has: torch, numpy, onnx and onnxruntime. On the full-size HMR2 (ViT-H, recipe weights) it
measures:

- **faithfulness on the device**: the reference input (``reference_outputs.npz`` of the shared
  HMR2 data, when given) through the network in float32, TF32 off and on, against the
  official float32 outputs (max abs difference per array);
- **precision**: each mode's vertices against float32's in millimetres, on the reference
  crops (or random crops);
- **speed and memory**: crops per second and ms per crop at each batch, end to end as a
  server sees it (host crops in, host outputs out), and the GPU memory a run needs beyond the
  resident weights (its peak less what was allocated before it), for each mode:
  ``fp32`` (TF32 off), ``tf32``, ``bf16`` (autocast), ``fp16`` (the network in half, as the
  float16 ONNX export runs it) and ``fp16 graph`` (the same, replayed as a CUDA graph);
- **export**: the float32 ONNX export's time, and ONNX Runtime's available providers, with
  ONNX Runtime's per-crop time on the best of them.

Every step is timed and guarded: one that fails is reported with its error, and the rest go
on. The command line is ``python -m scripts.gpu_pytorch``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tracker_tools.hmr2.body_model import BodyModel
from tracker_tools.hmr2.export import ServedHMR2, build_network, export_model, random_crops
from tracker_tools.hmr2.network import HMR2Config, HMR2Network
from tracker_tools.hmr2.smpl_file import load_smpl

log = logging.getLogger(__name__)

MODES = ("fp32", "tf32", "bf16", "fp16", "fp16 graph")
#: The arrays of the shared reference run that the network answers.
HEAD_ARRAYS = ("global_orient", "body_pose", "betas", "pred_cam", "pred_pose_6d")
#: The vertices' index in :class:`ServedHMR2`'s outputs.
VERTICES = 4

Run = Callable[[np.ndarray], list[np.ndarray]]


@dataclass
class Report:
    """What one check found; every step adds its figures or its error.

    Attributes:
        environment: Device, driver, library versions.
        setup_s: Seconds each setup took (network build, export...).
        faithfulness: Per TF32 setting, the max abs difference of each reference array.
        precision_mm: Per mode, the max and mean vertex difference from float32, in mm.
        speed: Rows of ``mode, batch, ms_per_crop, crops_per_s, working_gpu_mb``.
        resident_gpu_mb: The GPU memory held by the networks (every mode's weights).
        onnx: The export's figures and ONNX Runtime's.
        errors: Per step, why it failed.

    """

    environment: dict[str, Any] = field(default_factory=dict)
    setup_s: dict[str, float] = field(default_factory=dict)
    faithfulness: dict[str, dict[str, float]] = field(default_factory=dict)
    precision_mm: dict[str, dict[str, float]] = field(default_factory=dict)
    speed: list[dict[str, Any]] = field(default_factory=list)
    resident_gpu_mb: float | None = None
    onnx: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Run a step: its error is recorded (and logged) instead of raised."""
        start = time.perf_counter()
        log.info("%s ...", name)
        try:
            yield
        except Exception as error:  # noqa: BLE001 - a failed step must not stop the others
            self.errors[name] = f"{type(error).__name__}: {error}"[:500]
            log.exception("%s failed", name)
        finally:
            log.info("%s: %.1f s", name, time.perf_counter() - start)


@dataclass(frozen=True, kw_only=True)
class Options:
    """What one run measures.

    Attributes:
        device: ``cuda`` (or ``cpu``, to try the check itself).
        config: ``full`` (ViT-H) or ``tiny``.
        smpl: The body model files: ``SMPL_NEUTRAL.npz`` and ``SMPL_to_J19.pkl``'s folder.
        reference: The shared HMR2 reference folder (None: random crops, no faithfulness).
        batches: Per-crop batch sizes.
        repeats: Timed runs per batch, after warm-ups.
        modes: The precisions to time (a subset of :data:`MODES`).
        graph_batches: The batches replayed as CUDA graphs.
        export: Whether to export float32 ONNX and time ONNX Runtime on it.

    """

    device: str
    config: str
    smpl: Path
    reference: Path | None
    batches: tuple[int, ...] = (1, 8, 16, 32, 64)
    repeats: int = 10
    modes: tuple[str, ...] = MODES
    graph_batches: tuple[int, ...] = (1, 8)
    export: bool = True


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def eager_run(served: ServedHMR2, device: str, mode: str) -> Run:
    """Host crops in, host outputs out, in ``mode`` (``fp16``: ``served`` runs in half)."""
    autocast = (
        torch.autocast(device, dtype=torch.bfloat16) if mode == "bf16" else contextlib.nullcontext()
    )

    def run(crops: np.ndarray) -> list[np.ndarray]:
        _tf32(mode == "tf32")
        with torch.no_grad(), autocast:
            outputs = served(torch.from_numpy(crops).to(device))
        return [t.float().cpu().numpy() for t in outputs]

    return run


def graph_run(served: ServedHMR2, batch: int) -> Run:
    """``served`` captured once as a CUDA graph at ``batch``, replayed for each call."""
    static = torch.zeros(batch, 3, 256, 192, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(stream):
        for _ in range(3):  # warm-up on a side stream, as capture needs
            served(static)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        outputs = served(static)

    def run(crops: np.ndarray) -> list[np.ndarray]:
        static.copy_(torch.from_numpy(crops))
        graph.replay()
        return [t.float().cpu().numpy() for t in outputs]

    return run


def _allocated_mb(device: str) -> float | None:
    return torch.cuda.memory_allocated() / 2**20 if device == "cuda" else None


def _any_batch(run: Run, _batch: int) -> Run:
    return run


def median_s(run: Run, crops: np.ndarray, repeats: int, device: str) -> float:
    """Median seconds of ``run(crops)`` after two warm-ups."""
    for _ in range(2):
        run(crops)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        run(crops)
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reference_crops(options: Options) -> np.ndarray:
    """The shared reference input (two crops), or two random crops without it."""
    if options.reference is None:
        return random_crops(2).numpy()
    with np.load(options.reference / "reference_outputs.npz") as data:
        return np.asarray(data["input"], dtype=np.float32)


def faithfulness(network: HMR2Network, options: Options) -> dict[str, dict[str, float]]:
    """Max abs difference of each array from the official float32 run, TF32 off and on."""
    assert options.reference is not None
    with np.load(options.reference / "reference_outputs.npz") as data:
        expected = dict(data)
    crops = torch.from_numpy(expected["input"]).to(options.device)
    found = {}
    for label, tf32 in (("float32", False), ("float32 + TF32", True)):
        _tf32(tf32)
        with torch.no_grad():
            features = network.backbone(crops)
            out = network.decode(features)
        arrays = {"backbone_tokens": features} | {n: getattr(out, n) for n in HEAD_ARRAYS}
        found[label] = {
            name: float(np.abs(t.double().cpu().numpy() - expected[name]).max())
            for name, t in arrays.items()
        }
    _tf32(False)
    return found


def vertex_difference_mm(vertices: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """Max and mean per-vertex distance, in millimetres (vertices in metres)."""
    distance = 1000.0 * np.linalg.norm(vertices - baseline, axis=-1)
    return {"max": float(distance.max()), "mean": float(distance.mean())}


def environment(device: str) -> dict[str, Any]:
    """The device, driver and library versions of this run."""
    import onnxruntime as ort

    found: dict[str, Any] = {"torch": torch.__version__, "onnxruntime": ort.__version__}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        found |= {
            "gpu": props.name,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
            "driver": _driver(),
        }
    return found


def _driver() -> str:
    import subprocess

    try:
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        return subprocess.run(query, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def measure(options: Options) -> Report:
    """Run every step of the check; see the module's docstring."""
    report = Report()
    device = options.device
    with report.step("environment"):
        report.environment = environment(device)
    start = time.perf_counter()
    network = build_network(getattr(HMR2Config, options.config)(), weights="generated")
    body = BodyModel(load_smpl(options.smpl / "SMPL_NEUTRAL.npz", options.smpl / "SMPL_to_J19.pkl"))
    served = ServedHMR2(network, body).eval().to(device)
    report.setup_s["network"] = time.perf_counter() - start
    if options.reference is not None:
        with report.step("faithfulness"):
            report.faithfulness = faithfulness(network, options)
    runs: dict[str, Callable[[int], Run]] = {
        mode: functools.partial(_any_batch, eager_run(served, device, mode))
        for mode in ("fp32", "tf32", "bf16")
        if mode in options.modes
    }
    if {"fp16", "fp16 graph"} & set(options.modes):
        start = time.perf_counter()
        half = ServedHMR2(copy.deepcopy(network), body, fp16=True).eval().to(device)
        report.setup_s["float16 copy"] = time.perf_counter() - start
        if "fp16" in options.modes:
            runs["fp16"] = functools.partial(_any_batch, eager_run(half, device, "fp16"))
        if "fp16 graph" in options.modes and device == "cuda":
            runs["fp16 graph"] = functools.partial(graph_run, half)
    crops = reference_crops(options)
    with report.step("precision"):
        baseline = runs["fp32"](len(crops))(crops)[VERTICES] if "fp32" in runs else None
        for mode, make in runs.items():
            if baseline is not None and mode != "fp32":
                vertices = make(len(crops))(crops)[VERTICES]
                report.precision_mm[mode] = vertex_difference_mm(vertices, baseline)
    for mode, make in runs.items():
        batches = options.graph_batches if mode == "fp16 graph" else options.batches
        for batch in batches:
            with report.step(f"speed {mode} batch {batch}"):
                resident = _allocated_mb(device)
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                crops = random_crops(batch).numpy()
                seconds = median_s(make(batch), crops, options.repeats, device)
                peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
                report.resident_gpu_mb = resident
                report.speed.append(
                    {
                        "mode": mode,
                        "batch": batch,
                        "ms_per_crop": 1000 * seconds / batch,
                        "crops_per_s": batch / seconds,
                        "working_gpu_mb": None if peak is None else peak - (resident or 0.0),
                    }
                )
    if options.export:
        with report.step("onnx"):
            report.onnx = onnx_figures(served.to("cpu"), options)
    return report


def onnx_figures(served: ServedHMR2, options: Options) -> dict[str, Any]:
    """Export float32 ONNX (timed), then ONNX Runtime's per-crop time on its best provider."""
    import onnxruntime as ort

    from tracker_service.model_spec import HMR2

    found: dict[str, Any] = {"providers": ort.get_available_providers()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hmr2" / "1" / "model.onnx"
        start = time.perf_counter()
        export_model(served, HMR2, (random_crops(2),), path)
        found["export_s"] = time.perf_counter() - start
        provider = next(
            (p for p in ("CUDAExecutionProvider",) if p in found["providers"]),
            "CPUExecutionProvider",
        )
        start = time.perf_counter()
        session = ort.InferenceSession(str(path), providers=[provider])
        found["session_s"] = time.perf_counter() - start
        found["provider"] = session.get_providers()[0]
        name = session.get_inputs()[0].name
        for batch in (1, 8):
            crops = random_crops(batch).numpy()
            seconds = median_s(lambda c: session.run(None, {name: c}), crops, 3, "cpu")
            found[f"ms_per_crop_batch_{batch}"] = 1000 * seconds / batch
    return found


def markdown(report: Report, command: str, host: str) -> str:
    """The report as the Markdown of ``docs/gpu_pytorch.md``."""
    env = report.environment
    lines = [
        "# HMR2 on the GPU with PyTorch alone",
        "",
        f"Command: `{command}`. Machine: {host}.",
        f"GPU: {env.get('gpu', 'none')} ({env.get('gpu_memory_gib', '–')} GiB), driver "
        f"{env.get('driver', '–')}, CUDA {env.get('cuda', '–')}, torch {env.get('torch')}, "
        f"onnxruntime {env.get('onnxruntime')}.",
        "",
        "Setup: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.setup_s.items()) + ".",
        "",
    ]
    if report.faithfulness:
        arrays = list(next(iter(report.faithfulness.values())))
        lines += [
            "## Faithfulness: max abs difference from the official float32 outputs",
            "",
            "| run | " + " | ".join(arrays) + " |",
            "|---|" + "---|" * len(arrays),
        ]
        lines += [
            f"| {label} | " + " | ".join(f"{diffs[a]:.2e}" for a in arrays) + " |"
            for label, diffs in report.faithfulness.items()
        ]
        lines.append("")
    if report.precision_mm:
        lines += [
            "## Precision: vertices against float32 (reference crops), mm",
            "",
            "| mode | max | mean |",
            "|---|---|---|",
        ]
        lines += [
            f"| {mode} | {d['max']:.3f} | {d['mean']:.3f} |"
            for mode, d in report.precision_mm.items()
        ]
        lines.append("")
    lines += [
        "## Per-crop speed (host crops in, host outputs out) and GPU memory",
        "",
        "Median of the timed runs after two warm-ups. Working memory: the run's peak less "
        "the resident networks"
        + (
            f" ({report.resident_gpu_mb:.0f} MiB: float32 and float16 weights, a CUDA graph's "
            "buffers once captured)."
            if report.resident_gpu_mb is not None
            else "."
        ),
        "",
        "| mode | batch | ms per crop | crops/s | working GPU MiB |",
        "|---|---|---|---|---|",
    ]
    for row in report.speed:
        working = row["working_gpu_mb"]
        peak = "–" if working is None else f"{working:.0f}"
        lines.append(
            f"| {row['mode']} | {row['batch']} | {row['ms_per_crop']:.2f} "
            f"| {row['crops_per_s']:.0f} | {peak} |"
        )
    if report.onnx:
        onnx = report.onnx
        lines += [
            "",
            "## ONNX",
            "",
            f"float32 export: {onnx['export_s']:.1f} s. ONNX Runtime's providers: "
            f"{', '.join(onnx['providers'])}; on {onnx['provider']} "
            f"(session {onnx['session_s']:.1f} s): "
            f"{onnx['ms_per_crop_batch_1']:.1f} ms per crop at batch 1, "
            f"{onnx['ms_per_crop_batch_8']:.1f} at batch 8.",
        ]
    if report.errors:
        lines += ["", "## Failed steps", ""]
        lines += [f"- {name}: {error}" for name, error in report.errors.items()]
    return "\n".join(lines) + "\n"

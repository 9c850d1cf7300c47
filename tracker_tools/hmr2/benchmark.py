"""Per-crop latency of HMR2 in PyTorch eager, ONNX Runtime and through Triton, and peak memory.

What ``python -m scripts.benchmark_hmr2`` runs. Each engine (:data:`ENGINES`) runs in its own
spawned process (:func:`measure`), so its peak resident memory (and GPU memory) is its own;
its setup (building the network or the session and its first run: CUDA kernels, the
TensorRT engine) is timed apart from the runs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from tracker_tools.gpu_check import require_providers
from tracker_tools.machine import gpu_memory_mb
from tracker_tools.stack import BUILD

SMPL_DIR = BUILD / "smpl"

_log = logging.getLogger(__name__)


def _crops(batch: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((batch, 3, 256, 192)).astype(np.float32)


def _time(run: Callable[[np.ndarray], object], batch: int, repeats: int) -> list[float]:
    crops = _crops(batch)
    run(crops)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(crops)
        times.append(time.perf_counter() - start)
    return times


def _timed(
    setup: Callable[[], Callable[[np.ndarray], object]], batches: Sequence[int], repeats: int
) -> dict:
    """Per-batch run times, and ``setup_s``: ``setup()`` and a first run at the first batch."""
    start = time.perf_counter()
    run = setup()
    run(_crops(batches[0]))
    setup_s = time.perf_counter() - start
    return {**{b: _time(run, b, repeats) for b in batches}, "setup_s": setup_s}


def _pytorch(
    batches: Sequence[int], repeats: int, config: str, repository: Path, device: str = "cpu"
) -> dict:
    import torch

    from tracker_tools.hmr2.body_model import BodyModel
    from tracker_tools.hmr2.export import ServedHMR2, build_network
    from tracker_tools.hmr2.network import HMR2Config
    from tracker_tools.hmr2.smpl_file import load_smpl

    def setup() -> Callable[[np.ndarray], object]:
        network = build_network(getattr(HMR2Config, config)(), weights="generated")
        body = BodyModel(load_smpl(SMPL_DIR / "SMPL_NEUTRAL.npz", SMPL_DIR / "SMPL_to_J19.pkl"))
        served = ServedHMR2(network, body).eval().to(device)

        def run(crops: np.ndarray) -> object:
            with torch.no_grad():
                out = served(torch.from_numpy(crops).to(device))
                return [t.cpu() for t in out]  # waits for the device

        return run

    return _timed(setup, batches, repeats)


def _onnxruntime(
    batches: Sequence[int],
    repeats: int,
    config: str,
    repository: Path,
    providers: Sequence = ("CPUExecutionProvider",),
) -> dict:
    import onnxruntime as ort

    def setup() -> Callable[[np.ndarray], object]:
        listed = [_tensorrt_fp16(max(batches)) if p == TENSORRT else p for p in providers]
        session = ort.InferenceSession(str(repository / "hmr2/1/model.onnx"), providers=listed)
        require_providers(session, listed)
        name = session.get_inputs()[0].name
        return lambda crops: session.run(None, {name: crops})

    return _timed(setup, batches, repeats)


TENSORRT = "TensorrtExecutionProvider"


def _tensorrt_fp16(max_batch: int) -> tuple[str, dict]:
    """TensorRT FP16 as production's accelerator: engine cached on disk, one profile."""
    shape = "crops:{}x3x256x192"
    return (
        TENSORRT,
        {
            "trt_fp16_enable": True,
            "trt_layer_norm_fp32_fallback": True,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(BUILD / "trt"),
            "trt_profile_min_shapes": shape.format(1),
            "trt_profile_opt_shapes": shape.format(max_batch),
            "trt_profile_max_shapes": shape.format(max_batch),
        },
    )


def _triton(batches: Sequence[int], repeats: int, config: str, repository: Path) -> dict:
    from tracker_service.inference import TritonModels
    from tracker_tools.model_repository import build_local_repository
    from tracker_tools.triton_server import LocalTritonServer

    local = BUILD / "triton_repository"
    build_local_repository(repository, local)
    server = LocalTritonServer(
        repository=local, models=("hmr2",), log_file=BUILD / "tritonserver.log",
        startup_timeout_s=900,
    )
    with server, TritonModels(server.grpc_url, timeout_s=600) as models:
        result: dict = {b: _time(models.hmr2, b, repeats) for b in batches}
        result["server_peak_rss_mb"] = server.peak_rss_mb()
    return result


#: Each engine by name: ``(batches, repeats, config, repository) -> figures``.
ENGINES: dict[str, Callable[..., dict]] = {
    "PyTorch eager": _pytorch,
    "ONNX Runtime": _onnxruntime,
    "Triton (gRPC)": _triton,
    # On a GPU machine (onnxruntime-gpu and a CUDA build of torch installed); not on this CPU.
    "PyTorch eager CUDA": partial(_pytorch, device="cuda"),
    "ONNX Runtime CUDA": partial(_onnxruntime, providers=["CUDAExecutionProvider"]),
    "ONNX Runtime TensorRT FP16": partial(
        _onnxruntime, providers=[TENSORRT, "CUDAExecutionProvider"]
    ),
}
CPU_ENGINES = ["PyTorch eager", "ONNX Runtime", "Triton (gRPC)"]


def _child(
    engine: str, batches: Sequence[int], repeats: int, config: str, repository: Path
) -> dict:
    """One engine's figures, measured in this (spawned) process."""
    result = ENGINES[engine](batches, repeats, config, repository)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["gpu_memory_mb"] = gpu_memory_mb(os.getpid())
    return result


def measure(
    engines: Sequence[str],
    batches: Sequence[int],
    repeats: int,
    config: str,
    repository: Path,
    host: str,
) -> tuple[str, dict]:
    """Run each engine in its own process; return the Markdown table and the raw figures.

    Args:
        engines: Names in :data:`ENGINES`.
        batches: Crops per run.
        repeats: Timed runs per batch, after one warm-up.
        config: The HMR2 size, ``full`` or ``tiny``.
        repository: The model repository holding ``hmr2/1/model.onnx``.
        host: The machine's name, for the table.

    """
    rows, raw = [], {}
    for engine in engines:
        _log.info("running %s ...", engine)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            result = pool.apply(_child, (engine, batches, repeats, config, repository))
        raw[engine] = result
        peak = result["peak_rss_mb"] + result.get("server_peak_rss_mb", 0.0)
        gpu = result["gpu_memory_mb"]
        for b in batches:
            per_crop = 1000 * statistics.median(result[b]) / b
            rows.append(
                f"| {engine} | {b} | {per_crop:.1f} | {peak:.0f} "
                f"| {'–' if gpu is None else f'{gpu:.0f}'} | {result.get('setup_s', 0.0):.1f} |"
            )
            _log.info("%s", rows[-1])
    median = {e: {b: statistics.median(raw[e][b]) for b in batches} for e in raw}
    speedups = [
        f"ONNX Runtime vs PyTorch eager at batch {b}: "
        f"{median['PyTorch eager'][b] / median['ONNX Runtime'][b]:.2f}x faster per crop."
        for b in batches
        if {"PyTorch eager", "ONNX Runtime"} <= raw.keys()
    ]
    table = "\n".join(
        [
            f"HMR2 ({config} size, float32) per-crop latency, median of {repeats} runs "
            f"after one warm-up, on {host}.",
            "Command: `python -m scripts.benchmark_hmr2"
            f" --batches {' '.join(map(str, batches))} --repeats {repeats}`",
            "",
            "| engine | batch | ms per crop | peak memory (MB) | GPU memory (MiB) | setup s |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            *speedups,
            "",
            "Peak memory is the engine process's peak resident set (for Triton: the client "
            "process plus the server and its Python-backend stub); GPU memory is what "
            "`nvidia-smi` lists for the engine's process at the end (– without a GPU). Setup: "
            "building the network or session and its first run at the first batch (CUDA "
            "kernels, the TensorRT engine unless cached), apart from the timed runs.",
        ]
    )
    return table, raw

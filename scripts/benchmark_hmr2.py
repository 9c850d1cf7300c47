"""Per-crop latency of HMR2 in PyTorch eager, ONNX Runtime and through Triton, and peak memory.

Each engine runs in its own process, so its peak resident memory (and GPU memory) is its own.
The network is the exported one in ``model_repository/hmr2`` (``make models``: full size,
generated weights; ``--repository`` another); the PyTorch figures use the same weights. Each
engine's setup (building the network or the session and its first run: CUDA kernels, the
TensorRT engine) is timed apart from the runs. Prints a Markdown table and writes it, with the
machine's name, to ``docs/benchmark_hmr2.md`` (and the raw figures to ``.json``). The engines
and the measurement: :mod:`tracker_tools.hmr2.benchmark`.

Examples:
    python -m scripts.benchmark_hmr2 --batches 1 8 --repeats 3
    # on a GPU machine (CUDA torch, onnxruntime-gpu with TensorRT):
    python -m scripts.benchmark_hmr2 --engines "PyTorch eager CUDA" "ONNX Runtime CUDA" \
        "ONNX Runtime TensorRT FP16" --out docs/benchmark_hmr2_gpu.md

"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.hmr2.benchmark import CPU_ENGINES, ENGINES, measure
from tracker_tools.machine import machine
from tracker_tools.stack import MODEL_REPOSITORY


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", choices=["full", "tiny"], default="full")
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES), default=CPU_ENGINES)
    parser.add_argument(
        "--repository", type=Path, default=MODEL_REPOSITORY,
        help="the repository holding hmr2/1/model.onnx",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/benchmark_hmr2.md"))
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    host = machine()
    table, raw = measure(
        args.engines, args.batches, args.repeats, args.config, args.repository, host
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"machine": host, **raw}, indent=2))
    print(f"\n{table}\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""HMR2 on a GPU with PyTorch alone: ``tracker_tools.gpu_pytorch``'s check, as a command.

Writes ``docs/gpu_pytorch.md`` and ``.json`` (``--out`` elsewhere). Needs only torch (a CUDA
build for ``--device cuda``), numpy, onnx and onnxruntime: it runs on a GPU machine that
reaches no package registry, with ``PYTHONPATH`` at the repository's root.

Example:
    python -m scripts.gpu_pytorch --smpl build/smpl --reference ../shared/reference/hmr2
    python -m scripts.gpu_pytorch --device cpu --config tiny --batches 1 2 --no-export

"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.gpu_pytorch import MODES, Options, markdown, measure
from tracker_tools.machine import machine
from tracker_tools.report import command_line, write_report


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; 1 when a step failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--config", choices=["full", "tiny"], default="full")
    parser.add_argument("--smpl", type=Path, default=Path("build/smpl"))
    parser.add_argument("--reference", type=Path, help="the shared HMR2 reference folder")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16, 32, 64])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--graph-batches", type=int, nargs="+", default=[1, 8], help="batches of the CUDA graph"
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--no-export", action="store_true", help="skip the ONNX export")
    parser.add_argument("--out", type=Path, default=Path("docs/gpu_pytorch.md"))
    args = parser.parse_args(argv)
    if min(args.batches + args.graph_batches) < 1:
        parser.error("--batches must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    options = Options(
        device=args.device,
        config=args.config,
        smpl=args.smpl,
        reference=args.reference,
        batches=tuple(args.batches),
        repeats=args.repeats,
        modes=tuple(args.modes),
        graph_batches=tuple(args.graph_batches),
        export=not args.no_export,
    )
    report = measure(options)
    command = command_line("scripts.gpu_pytorch", argv)
    text = markdown(report, command, machine())
    write_report(args.out, text, {"command": command, **dataclasses.asdict(report)})
    print(text)
    return 1 if report.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())

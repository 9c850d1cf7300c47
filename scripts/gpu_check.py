"""Every GPU figure in one bounded command; ``--cpu`` runs it on the CPU with the tiny set.

On a GPU machine, from a fresh clone: ``scripts/gpu_check.sh`` (``make`` installs and builds
what the check needs, then this runs the steps of :mod:`tracker_tools.gpu_check` within 10
minutes in all) writes ``docs/gpu.md`` and ``docs/gpu.json`` and prints a one-screen summary.

Examples:
    scripts/gpu_check.sh                                  # on a GPU machine
    python -m scripts.gpu_check --cpu --out build/gpu_check/gpu.md   # CI's CPU form
    python -m scripts.gpu_check --dry-run                 # what a GPU machine would install
    python -m scripts.gpu_check precision FLOAT32_REPO FLOAT16_REPO --providers P --out J

"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from tracker_tools import gpu_check as check
from tracker_tools import gpu_report as report
from tracker_tools.machine import gpus, machine
from tracker_tools.report import command_line, write_report


def precision_main(argv: Sequence[str]) -> int:
    """``precision``: float16 against float32, written as JSON."""
    parser = argparse.ArgumentParser(prog="python -m scripts.gpu_check precision")
    parser.add_argument("float32", type=Path, help="repository holding the float32 hmr2")
    parser.add_argument("float16", type=Path, help="repository holding the float16 hmr2")
    parser.add_argument("--providers", nargs="+", default=["CPUExecutionProvider"])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    model = Path("hmr2") / "1" / "model.onnx"
    result = check.precision(args.float32 / model, args.float16 / model, args.providers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["precision"]:
        return precision_main(arguments[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true",
                        help="CPU providers and the tiny model set (no GPU needed)")
    parser.add_argument("--dry-run", action="store_true",
                        help="resolve the GPU wheels against the registry, install nothing; "
                        "with --cpu, the report includes it")  # fmt: skip
    parser.add_argument("--frames", type=int, default=None,
                        help="runner.mp4 frames for the stack (default 140, --cpu 8)")
    parser.add_argument("--started-at", type=float, default=None,
                        help="epoch seconds when the setup began (scripts/gpu_check.sh): the "
                        "deadline counts from there")  # fmt: skip
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply every budget and the deadline (a loaded or slow machine; "
                        "the report says so)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("docs/gpu.md"))
    args = parser.parse_args(arguments)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger(check.__name__).setLevel(logging.INFO)  # each step as it starts and ends
    command = command_line("scripts.gpu_check", arguments)

    dry = check.dry_run() if args.dry_run else []
    if args.dry_run and not args.cpu:
        print(report.dry_run_markdown(dry))
        return 0 if all("error" not in group for group in dry[:-1]) else 1  # TensorRT: optional
    found = gpus()
    if not args.cpu and not found:
        print("gpu-check: no NVIDIA GPU here (nvidia-smi is missing or lists none); run with "
              "--cpu for the CPU form, or --dry-run for what a GPU machine would install")
        return 2
    options = check.cpu_options() if args.cpu else check.gpu_options()
    if args.frames is not None:
        options = replace(options, frames=args.frames)
    started = args.started_at if args.started_at is not None else time.time()
    setup_s = time.time() - started if args.started_at is not None else None
    deadline_s = args.time_scale * (check.CPU_DEADLINE_S if args.cpu else check.GPU_DEADLINE_S)
    deadline = time.monotonic() + deadline_s - (time.time() - started)
    host = machine()
    steps = [replace(step, budget_s=args.time_scale * step.budget_s)
             for step in check.plan(options)]  # fmt: skip
    shutil.rmtree(options.work, ignore_errors=True)  # no figure or model of an earlier run
    environment = (lambda: dict(os.environ)) if args.cpu else check.gpu_environment
    outcomes = check.run_plan(steps, deadline, environment, options.work / "logs")
    reports = report.read_reports(steps, outcomes)
    figures = {
        "cpu": args.cpu,
        "size": "tiny" if args.cpu else "full",
        "machine": host,
        "gpus": found,
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "deadline_s": deadline_s,
        "time_scale": args.time_scale,
        "seconds": time.time() - started,
        "setup_s": setup_s,
        "versions": check.versions(),
        "steps": [vars(o) for o in outcomes],
        "reports": reports,
        "per_crop": report.per_crop_rows(reports),
        "stack": report.stack_rows(reports),
        "dry_run": dry,
    }
    raw = write_report(args.out, report.markdown(figures), figures)
    print(f"\n{report.summary(figures)}\nwrote {args.out} and {raw}")
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())

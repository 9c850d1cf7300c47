"""End-to-end benchmark: real video through the real service over HTTP, on a real Triton.

Starts the local stack (:func:`tracker_tools.stack.local_stack`: Triton on the local repository, the
tracker service as ``python -m tracker_service`` in its own process) and measures, with real
video (``../shared/media/runner.mp4``: one runner, ``vtest.avi``: pedestrians; a generated
clip when they are absent):

- per-frame latency (p50, p95, p99) seen by the client, one session, frames in order
  (``--videos runner.mp4:backend``: the frames as the backend sends them, 640x360 PNG, whose
  decoding is the ``decode`` stage);
- the time of each stage per frame, from the service's ``tracker_stage_seconds`` histograms
  (deltas of their sums), and the service's own work: every stage but the Triton calls;
- frames per second with 1, 4 and 8 concurrent sessions (each its own ``session_id``, frames
  in order per session) and Triton's average batch size per model (``nv_inference_count`` /
  ``nv_inference_exec_count`` deltas from Triton's metrics);
- the service's peak memory (``VmHWM`` of its process) and the answer's size.

``--hmr2 full`` serves the exported full-size HMR2 of ``make models`` (about 1 s per crop on a
CPU: keep ``--frames`` small); ``--hmr2 tiny`` serves the tiny model set of
``tracker_tools/tiny_models.py`` (``build/tiny_repository``, as ``make serve --hmr2 tiny`` does) to
measure the service's own overhead without waiting on ViT-H. Prints Markdown and writes it to
``docs/benchmark.md`` (the raw figures to ``docs/benchmark.json``, the stages as a chart to
``docs/benchmark_stages.png``), naming the machine. ``--chart-from docs/benchmark.json``
draws the chart of a report already written, without measuring.

The measurements and the report: :mod:`tracker_tools.service_benchmark`.

Example:
    python -m scripts.benchmark --hmr2 tiny full --frames 20

"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools import service_benchmark
from tracker_tools.machine import machine
from tracker_tools.report import command_line, write_report
from tracker_tools.service_benchmark import BACKEND_SUFFIX, Plan, benchmark, chart, markdown


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--hmr2",
        nargs="+",
        choices=["full", "tiny"],
        default=["full"],
        help="HMR2 size(s) to serve, one stack each (default: full)",
    )
    parser.add_argument("--frames", type=int, default=20, help="frames per video (latency)")
    parser.add_argument(
        "--videos",
        nargs="+",
        default=list(Plan.videos),
        help=f"videos under ../shared/media (latency); NAME{BACKEND_SUFFIX}: the backend's "
        "640x360 PNG frames of NAME",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="latency runs: frames posted one at a time (1) or from a FIFO pool of N workers",
    )
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument(
        "--session-frames", type=int, default=8, help="frames each concurrent session posts"
    )
    parser.add_argument("--throughput-video", default=Plan.throughput_video)
    parser.add_argument(
        "--service-path",
        type=Path,
        default=None,
        help="run the service from another checkout (before/after comparisons)",
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        default=[],
        help="ONNX Runtime providers of Triton's models (CUDAExecutionProvider on a GPU)",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/benchmark.md"))
    parser.add_argument(
        "--chart-from",
        type=Path,
        default=None,
        help="only draw the stage chart of a report's JSON (docs/benchmark.json), beside it",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger(service_benchmark.__name__).setLevel(logging.INFO)  # each run as it starts

    if args.chart_from is not None:
        figures = json.loads(args.chart_from.read_text())
        print(f"wrote {chart(args.chart_from, figures)}")
        return 0
    command = command_line("scripts.benchmark", argv)
    host = machine()
    plan = Plan(
        frames=args.frames, videos=args.videos, workers=args.workers, sessions=args.sessions,
        session_frames=args.session_frames, throughput_video=args.throughput_video,
        service_path=args.service_path, providers=args.providers,
    )  # fmt: skip
    results = [benchmark(plan, size) for size in args.hmr2]
    text = markdown(results, command, host)
    figures = {"machine": host, "command": command, "results": results}
    raw = write_report(args.out, text, figures)
    print(f"\n{text}\nwrote {args.out}, {raw} and {chart(raw, figures)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

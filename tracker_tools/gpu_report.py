"""The GPU check's report: ``docs/gpu.md``, its JSON figures and a one-screen summary.

:mod:`tracker_tools.gpu_check` runs the steps; each step's command writes its own JSON
report, and these functions read them back (:func:`read_reports`), lay them out as rows
(:func:`per_crop_rows`, :func:`stack_rows`), judge the goals and write the page
(:func:`markdown`) and the summary (:func:`summary`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tracker_tools.gpu_check import Outcome, Step

#: The anchors the figures are read against.
ANCHORS = (
    "HMR2 ≈ 32 ms a forward on an RTX 3090 (4D-Humans' paper)",
    "4D-Humans' tracking ≈ 1.8 frames/s on an RTX 4090",
    "the limit: ViT-H at 256×192 ≈ 0.25 TFLOP a crop",
)
TFLOP_PER_CROP = 0.25
#: The user's goals: a 140-frame video in under 2 minutes; the seed's < 500 ms a frame.
GOAL_VIDEO_S, GOAL_VIDEO_FRAMES, GOAL_FRAME_MS = 120.0, 140, 500.0


def dry_run_markdown(results: Sequence[dict[str, Any]]) -> str:
    """The dry run as Markdown: one paragraph per group."""
    lines = []
    for result in results:
        lines += ["", f"- **{result['group']}**: `{result['command']}`"]
        if "error" in result:
            lines.append(f"  - cannot be resolved: {result['error']}")
        else:
            names = ", ".join(f"{n} {v}" for n, v in result["packages"])
            lines.append(f"  - {len(result['packages'])} packages: {names}")
    return "\n".join(lines).lstrip("\n")


def read_reports(steps: Sequence[Step], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The JSON each successful step wrote, by step name."""
    reports = {}
    for step, outcome in zip(steps, outcomes, strict=True):
        if step.report is not None and outcome.status == "ok" and step.report.is_file():
            reports[step.name] = json.loads(step.report.read_text())
    return reports


def per_crop_rows(reports: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per engine and batch: ms per crop, crops/s, GPU memory, setup time."""
    rows = []
    for name, report in reports.items():
        if not name.startswith("per crop: "):
            continue
        engine = name.removeprefix("per crop: ")
        result = report[engine]
        for batch in (k for k in result if k.isdigit()):
            seconds = sorted(result[batch])[len(result[batch]) // 2]  # the median run
            rows.append({
                "engine": engine, "batch": int(batch), "ms_per_crop": 1000 * seconds / int(batch),
                "crops_per_s": int(batch) / seconds, "gpu_memory_mb": result["gpu_memory_mb"],
                "peak_rss_mb": result["peak_rss_mb"], "setup_s": result["setup_s"],
            })  # fmt: skip
    return rows


def stack_rows(reports: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stack's runs: frames one at a time, from the pool, and the whole-video job."""
    rows = []
    for run in next((r["results"][0]["latency"] for n, r in reports.items()
                     if n.startswith("stack: frames")), []):  # fmt: skip
        latency = run["latency_ms"]
        rows.append({
            "run": "one at a time" if run["workers"] == 1 else f"FIFO pool of {run['workers']}",
            "frames": run["frames"], "p50_ms": latency["p50"], "p95_ms": latency["p95"],
            "fps": run["fps"], "triton_batch": run["triton_batch"],
        })  # fmt: skip
    for report in (r for n, r in reports.items() if n.startswith("stack: one whole-video")):
        job = report["results"][0]["job"]
        rows.append({
            "run": "one whole-video job", "frames": job["frames"], "fps": job["fps"],
            "seconds_to_complete": job["seconds_to_complete"], "seconds": job["seconds"],
            "triton_batch": job["triton_batch"],
        })  # fmt: skip
    return rows


def _batch(run: Mapping[str, Any]) -> str:
    batch = run["triton_batch"]
    return f"{batch.get('hmr2', 0.0):.2f}, {batch.get('person_detector', 0.0):.2f}"


def goals(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The user's and the seed's goals, judged on the stack's runs."""
    lines = []
    for row in rows:
        if "p50_ms" in row and row["run"] == "one at a time":
            met = "met" if row["p50_ms"] < GOAL_FRAME_MS else "not met"
            lines.append(f"per frame, one at a time: p50 {row['p50_ms']:.0f} ms, the seed's goal "
                         f"< {GOAL_FRAME_MS:.0f} ms ({met})")  # fmt: skip
        if "seconds_to_complete" in row:
            scaled = row["seconds_to_complete"] * GOAL_VIDEO_FRAMES / row["frames"]
            met = "met" if scaled < GOAL_VIDEO_S else "not met"
            lines.append(
                f"a {GOAL_VIDEO_FRAMES}-frame video as one job: {scaled:.0f} s"
                + ("" if row["frames"] == GOAL_VIDEO_FRAMES else
                   f" (scaled from {row['frames']} frames)")
                + f", the user's goal < {GOAL_VIDEO_S:.0f} s ({met})"
            )  # fmt: skip
    return lines


def markdown(figures: Mapping[str, Any]) -> str:
    """``docs/gpu.md``: the machine, the steps, and every figure the steps produced."""
    cpu = figures["cpu"]
    gpu_names = ", ".join(f"{g['name']} (driver {g['driver']}, {g['memory_mib']} MiB)"
                          for g in figures["gpus"]) or "none"  # fmt: skip
    out = [
        "# GPU check" + (" (CPU form)" if cpu else ""),
        "",
        f"Machine: {figures['machine']}. GPU: {gpu_names}. Command: `{figures['command']}`, "
        f"written on {figures['date']} UTC (not by hand).",
    ]
    if cpu:
        out += [
            "",
            "**No GPU was at hand here.** This is the CPU form of the check: the same steps, "
            "run with ONNX Runtime's CPU provider on the tiny model set (2 backbone blocks) "
            "and few frames, proving that the command works end to end; its figures are no "
            "GPU figures. On a GPU machine, `scripts/gpu_check.sh` (or `make gpu-check`) "
            "runs the full model on CUDA and TensorRT and writes this page with the GPU's "
            "figures.",
        ]
    out += ["", "Versions: " + "; ".join(
        f"{venv}: " + ", ".join(f"{k} {v}" for k, v in found.items())
        for venv, found in figures["versions"].items()) + ".", ""]  # fmt: skip
    out += [
        f"## Steps (deadline {figures['deadline_s']:.0f} s; took {figures['seconds']:.0f} s)",
        *(["", f"Budgets and deadline × {figures['time_scale']:g} (`--time-scale`): the "
           "machine was loaded."] if figures.get("time_scale", 1.0) != 1.0 else []),
        "",
        "| step | budget s | took s | status | why not ok |",
        "| --- | --- | --- | --- | --- |",
    ]
    if figures.get("setup_s") is not None:
        out.append(f"| setup: `make` (environments, body model, detector) | – "
                   f"| {figures['setup_s']:.0f} | ok | |")  # fmt: skip
    for o in figures["steps"]:
        detail = o["detail"].replace("|", "\\|")[:300]
        out.append(f"| {o['name']} | {o['budget_s']:.0f} | {o['seconds']:.1f} | {o['status']} "
                   f"| {detail} |")  # fmt: skip
    precision_ = figures["reports"].get("float16 vs float32")
    if precision_:
        out += [
            "",
            "## Float16 against float32",
            "",
            f"HMR2 ({figures['size']}) exported in float16 against float32, on "
            f"{precision_['input']}: {precision_['crops']} crops, on "
            f"{', '.join(precision_['providers'])}; "
            f"vertices differ by {precision_['vertex_max_mm']:.3f} mm at most, "
            f"{precision_['vertex_mean_mm']:.3f} mm on average.",
        ]
    rows = figures["per_crop"]
    if rows:
        out += [
            "",
            f"## HMR2 per crop ({figures['size']}, float32 graph; median of the timed runs)",
            "",
            "| engine | batch | ms per crop | crops/s | TFLOP/s (0.25 a crop) | GPU memory MiB "
            "| peak RSS MB | setup s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in rows:
            gpu = "–" if r["gpu_memory_mb"] is None else f"{r['gpu_memory_mb']:.0f}"
            tflops = r["crops_per_s"] * TFLOP_PER_CROP if not cpu else None
            out.append(
                f"| {r['engine']} | {r['batch']} | {r['ms_per_crop']:.1f} "
                f"| {r['crops_per_s']:.1f} | {'–' if tflops is None else f'{tflops:.1f}'} "
                f"| {gpu} | {r['peak_rss_mb']:.0f} | {r['setup_s']:.1f} |"
            )
        out += ["", "Setup: building the network or the ONNX Runtime session and its first "
                "run (CUDA kernels; the TensorRT engine, cached on disk in `build/trt`, so a "
                "second run only loads it). TFLOP/s only for the full model (– in the CPU "
                "form: the tiny model is not ViT-H)."]  # fmt: skip
    stack = figures["stack"]
    if stack:
        out += [
            "",
            "## The local stack (Triton's Python backend, ONNX Runtime on "
            f"{'the CPU' if cpu else 'CUDA'}; runner.mp4 as 640×360 PNG)",
            "",
            "| run | frames | p50 ms | p95 ms | frames/s | complete s | Triton batch: HMR2, "
            "detector |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in stack:
            p50 = f"{r['p50_ms']:.0f}" if "p50_ms" in r else "–"
            p95 = f"{r['p95_ms']:.0f}" if "p95_ms" in r else "–"
            done = f"{r['seconds_to_complete']:.1f}" if "seconds_to_complete" in r else "–"
            out.append(f"| {r['run']} | {r['frames']} | {p50} | {p95} | {r['fps']:.2f} "
                       f"| {done} | {_batch(r)} |")  # fmt: skip
        out += ["", "Goals" + (" (CPU form: not what the goals are about)" if cpu else "") + ":",
                "", *(f"- {line}" for line in goals(stack))]  # fmt: skip
    out += ["", "Anchors: " + "; ".join(ANCHORS) + "."]
    if figures.get("dry_run"):
        out += ["", "## What a GPU machine would install (dry run)", "",
                dry_run_markdown(figures["dry_run"])]  # fmt: skip
    return "\n".join(out) + "\n"


def summary(figures: Mapping[str, Any]) -> str:
    """One screen: each step's status, then the headline figures."""
    lines = [f"GPU check ({'CPU form' if figures['cpu'] else 'GPU'}): "
             f"{figures['seconds']:.0f} s of {figures['deadline_s']:.0f}"]  # fmt: skip
    for o in figures["steps"]:
        lines.append(f"  {o['status']:>9}  {o['seconds']:6.1f} s  {o['name']}"
                     + (f": {o['detail'][:120]}" if o["detail"] else ""))  # fmt: skip
    precision_ = figures["reports"].get("float16 vs float32")
    if precision_:
        lines.append(f"float16 vs float32 vertices: max {precision_['vertex_max_mm']:.3f} mm, "
                     f"mean {precision_['vertex_mean_mm']:.3f} mm")  # fmt: skip
    for r in figures["per_crop"]:
        lines.append(f"  {r['engine']:<28} batch {r['batch']:>2}: {r['ms_per_crop']:8.1f} ms/crop"
                     f" {r['crops_per_s']:8.1f} crops/s")  # fmt: skip
    for r in figures["stack"]:
        p50 = f"p50 {r['p50_ms']:.0f} ms, " if "p50_ms" in r else ""
        lines.append(f"  stack, {r['run']}: {p50}{r['fps']:.2f} frames/s, "
                     f"Triton batch {_batch(r)}")  # fmt: skip
    lines += [f"  {line}" for line in goals(figures["stack"])]
    return "\n".join(lines)

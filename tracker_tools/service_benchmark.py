"""The end-to-end benchmark: real video through the real service over HTTP, on a real Triton.

What ``python -m scripts.benchmark`` runs: :func:`benchmark` starts the local stack
(:func:`tracker_tools.stack.local_stack`) for one HMR2 size and measures per-frame latency and
stage times (:func:`latency_run`), frames per second with concurrent sessions
(:func:`throughput_run`) and peak memory; :func:`markdown` and :func:`chart` write the report.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tracker_service.model_spec import HMR2, PERSON_DETECTOR
from tracker_tools.backend import backend_frames
from tracker_tools.client import MetricKey, Response, ServiceClient, metrics_at, triton_batches
from tracker_tools.machine import cpu_times, peak_rss_mb
from tracker_tools.media import SHARED_MEDIA, encode_base64, read_frames, walking_clip
from tracker_tools.plots import stage_chart
from tracker_tools.report import markdown_table
from tracker_tools.stack import BUILD, MODEL_REPOSITORY, local_stack
from tracker_tools.tiny_models import build_tiny_repository
from tracker_tools.triton_server import free_ports

_log = logging.getLogger(__name__)

VIDEOS = ("runner.mp4", "vtest.avi")
#: A video name with this suffix stands for the backend's frames: 640x360 PNG.
BACKEND_SUFFIX = ":backend"
#: Stages spent waiting on Triton or on other frames: not the service's own work.
NOT_OWN_WORK = ("detect", "hmr2", "smpl", "wait")
#: Stages of building and serialising the answer.
ANSWER_STAGES = ("answer", "encode")
TIMEOUT_S = 900.0
#: The report's columns: latency runs, and concurrent sessions.
LATENCY_HEADER = ("video", "frames", "people (mean, max)", "p50 ms", "p95 ms", "p99 ms",
                  "own work ms", "Triton ms", "mean − Triton ms", "answer bytes")  # fmt: skip
THROUGHPUT_HEADER = ("sessions", "frames", "frames/s", "× one session", "Triton batch: HMR2",
                     "detector", "CPU busy")  # fmt: skip


def load_video(name: str, count: int) -> tuple[str, list[str]]:
    """The first ``count`` frames of a shared video as base64 JPEG at their own size, or PNG.

    A name ending in ``:backend`` (``runner.mp4:backend``) gives the frames the backend sends:
    scaled to 640x360 (its ffmpeg ``scale=640:360``) and written as PNG.

    Returns the video's label (with its resolution and format) and the frames.
    """
    backend = name.endswith(BACKEND_SUFFIX)
    name = name.removesuffix(BACKEND_SUFFIX)
    path = SHARED_MEDIA / name
    frames = read_frames(path, count)
    if not frames:
        name, frames = f"generated clip (no {path})", walking_clip(count)
    if backend:
        frames = backend_frames(frames)
    height, width = frames[0].shape[:2]
    ext = ".png" if backend else ".jpg"
    encoded = [encode_base64(f, ext) for f in frames]
    return f"{name} {width}x{height} {ext[1:].upper()}", encoded


def stage_ms(
    before: dict[MetricKey, float], after: dict[MetricKey, float], frames: int
) -> dict[str, float]:
    """Milliseconds per frame of each stage, from the stage histograms' sums."""
    stages = {}
    for (name, labels), value in after.items():
        if name == "tracker_stage_seconds_sum":
            delta = value - before.get((name, labels), 0.0)
            stages[dict(labels)["stage"]] = 1000.0 * delta / frames
    return stages


def latency_run(
    client: ServiceClient,
    label: str,
    frames: Sequence[str],
    *,
    workers: int = 1,
    metrics_url: str | None = None,
) -> dict[str, Any]:
    """One session, frames in order: latency, stage times, answer size, people answered.

    ``workers`` > 1 submits every frame at once to a FIFO pool of that many workers, as the
    backend's pool does (bursts of consecutive frames); 1 posts each after the previous answer.
    """
    words = label.split()
    session = f"latency-{words[0]}-{words[-1]}-{workers}".replace(".", "-")
    before, triton_before = client.metrics(), metrics_at(metrics_url) if metrics_url else {}

    def post(number: int) -> tuple[Response, dict[str, Any]]:
        response = client.post_frame(frames[number], frame_number=number, session_id=session)
        return response, response.answer()

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        answered = list(pool.map(post, range(len(frames))))
    seconds = time.perf_counter() - start
    latencies = [1000.0 * response.seconds for response, _ in answered]
    sizes = [len(response.body) for response, _ in answered]
    people = [len(answer["tracks"]) for _, answer in answered]
    has_body = [answer["has_3d"] for _, answer in answered]
    stages = stage_ms(before, client.metrics(), len(frames))
    with_body = [size for size, body in zip(sizes, has_body, strict=True) if body]
    return {
        "video": label,
        "frames": len(frames),
        "workers": workers,
        "fps": len(frames) / seconds,
        "triton_batch": triton_batches(triton_before, metrics_at(metrics_url))
        if metrics_url
        else {},
        "people_mean": statistics.fmean(people),
        "people_max": max(people),
        "latency_ms": {
            "mean": statistics.fmean(latencies),
            **{f"p{q}": float(np.percentile(latencies, q)) for q in (50, 95, 99)},
        },
        "stages_ms": stages,
        "own_work_ms": sum(v for k, v in stages.items() if k not in NOT_OWN_WORK),
        "triton_ms": sum(v for k, v in stages.items() if k in NOT_OWN_WORK and k != "wait"),
        "answer_ms": sum(stages.get(k, 0.0) for k in ANSWER_STAGES),
        "answer_bytes_median": int(statistics.median(with_body or sizes)),
        "answer_bytes_max": max(sizes),
    }


def throughput_run(
    client: ServiceClient, metrics_url: str, frames: Sequence[str], sessions: int, tag: str
) -> dict[str, Any]:
    """``sessions`` concurrent sessions, each posting ``frames`` in order: frames per second."""
    before = metrics_at(metrics_url)
    errors: list[BaseException] = []

    def one(index: int) -> None:
        try:
            for number, image in enumerate(frames):
                client.post_frame(
                    image, frame_number=number, session_id=f"{tag}-{sessions}-{index}"
                ).answer()
        except BaseException as exc:  # reported below, after every session ended
            errors.append(exc)

    start, (busy, ticks) = time.perf_counter(), cpu_times()
    with ThreadPoolExecutor(sessions) as pool:
        list(pool.map(one, range(sessions)))
    seconds = time.perf_counter() - start
    busy_after, ticks_after = cpu_times()
    if errors:
        raise errors[0]
    total = sessions * len(frames)
    return {
        "sessions": sessions,
        "frames": total,
        "seconds": seconds,
        "fps": total / seconds,
        "cpu_busy": (busy_after - busy) / (ticks_after - ticks),
        "triton_batch": triton_batches(before, metrics_at(metrics_url)),
    }


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What one benchmark measures (the command line's options).

    Attributes:
        frames: Frames per video of the latency runs.
        videos: Videos under ``../shared/media`` for the latency runs (``NAME:backend``: the
            backend's 640x360 PNG frames of NAME).
        workers: Per latency run: frames posted one at a time (1) or from a FIFO pool of N.
        sessions: Concurrent sessions of each throughput run.
        session_frames: Frames each concurrent session posts.
        throughput_video: The throughput runs' video.
        service_path: Run the service from another checkout (before/after comparisons).
        providers: ONNX Runtime providers of Triton's models.

    """

    frames: int = 20
    videos: Sequence[str] = VIDEOS
    workers: Sequence[int] = (1,)
    sessions: Sequence[int] = (1, 4, 8)
    session_frames: int = 8
    throughput_video: str = VIDEOS[0]
    service_path: Path | None = None
    providers: Sequence[str] = ()


def benchmark(plan: Plan, size: str) -> dict[str, Any]:
    """Every measurement with one HMR2 size (``full`` or ``tiny``), on a stack of its own."""
    repository = (
        build_tiny_repository(BUILD / "tiny_repository") if size == "tiny" else MODEL_REPOSITORY
    )
    videos = [load_video(name, plan.frames) for name in plan.videos]
    throughput_label, throughput_frames = load_video(plan.throughput_video, plan.session_frames)
    port, http, grpc, metrics = free_ports(4)
    env = {
        "TRACKER_LOG_LEVEL": "WARNING",
        "TRACKER_TRITON_TIMEOUT_S": str(TIMEOUT_S),
        "TRACKER_REORDER_WAIT_S": str(TIMEOUT_S),
    }
    if plan.service_path:
        # First on the path, before the working directory that ``-m`` would put first.
        env |= {"PYTHONPATH": str(plan.service_path.resolve()), "PYTHONSAFEPATH": "1"}
    _log.info("[%s] starting Triton and the service ...", size)
    with local_stack(
        repository=repository,
        port=port,
        triton_ports=(http, grpc, metrics),
        startup_timeout_s=TIMEOUT_S,
        service_env=env,
        providers=list(plan.providers),
    ) as (url, triton, service):
        client = ServiceClient(url, timeout_s=TIMEOUT_S)
        for number, image in enumerate(videos[0][1][:2]):  # warm-up: first inferences
            client.post_frame(image, frame_number=number, session_id="warm-up").answer()
        latency = []
        for (label, frames), workers in itertools.product(videos, plan.workers):
            _log.info("[%s] latency: %s, %d frames, %d workers ...",
                      size, label, len(frames), workers)  # fmt: skip
            latency.append(latency_run(
                client, label, frames, workers=workers, metrics_url=triton.metrics_url
            ))  # fmt: skip
        throughput = []
        for sessions in plan.sessions:
            _log.info("[%s] throughput: %d sessions ...", size, sessions)
            throughput.append(
                throughput_run(client, triton.metrics_url, throughput_frames, sessions, size)
            )
        memory = {
            "service_peak_mb": peak_rss_mb(service.pid),
            "triton_peak_mb": triton.peak_rss_mb(),
        }
    return {
        "hmr2": size,
        "latency": latency,
        "throughput_video": throughput_label,
        "throughput": throughput,
        "memory": memory,
    }


def _label(run: dict[str, Any]) -> str:
    """A latency run's video, and its FIFO pool when frames were not posted one at a time."""
    workers = run.get("workers", 1)
    return run["video"] + (f", FIFO pool of {workers}" if workers > 1 else "")


def _targets(result: dict[str, Any]) -> list[str]:
    """The issue's targets, met or not, from the measurements."""
    lines = []
    for run in result["latency"]:
        people = run["people_mean"]
        limit = 10.0 if people <= 1.5 else 30.0
        lines.append(
            f"- own work per frame, {_label(run)} ({people:.1f} people): "
            f"{run['own_work_ms']:.1f} ms, target ≤ {limit:.0f} ms "
            f"({'met' if run['own_work_ms'] <= limit else 'not met'})"
        )
    answer = max(run["answer_ms"] for run in result["latency"])
    lines.append(
        f"- answer built and serialised with a full mesh: {answer:.1f} ms, target ≤ 5 ms "
        f"({'met' if answer <= 5.0 else 'not met'})"
    )
    runs = {run["sessions"]: run for run in result["throughput"]}
    if 1 in runs and 8 in runs:
        speedup = runs[8]["fps"] / runs[1]["fps"]
        batch = runs[8]["triton_batch"].get(HMR2.name, 0.0)
        met = speedup >= 2.0 and batch > 1.0
        lines.append(
            f"- 8 sessions: {speedup:.2f}× the frames/s of one, HMR2 batch {batch:.2f}; "
            f"target ≥ 2× and > 1 ({'met' if met else 'not met'})"
        )
    return lines


def markdown(results: Sequence[dict[str, Any]], command: str, host: str) -> str:
    """The report: one section per HMR2 size."""
    out = [
        "# End-to-end benchmark",
        "",
        f"Machine: {host}. Written by `{command}` on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC (not by hand).",
        "",
        "The service (`python -m tracker_service`, its own process) and the local Triton "
        "(Python backend, ONNX Runtime on the CPU) run on this machine; frames are JPEG at "
        "the video's own size, or PNG at 640x360 as the backend sends them, posted over "
        "HTTP. Stage times come from the service's "
        "`tracker_stage_seconds` histograms (per frame: sum over frames / frames); the own "
        "work is every stage but `detect`, `hmr2`, `smpl` (Triton calls) and `wait` (frames "
        "held for order); `mean − Triton` (mean latency less the mean Triton time) adds "
        "what no stage times (HTTP, request parsing) and the client's side. CPU busy: all "
        "cores, from `/proc/stat`.",
    ]
    for result in results:
        runs = result["latency"]
        latency_rows = [
            (_label(run), run["frames"], f"{run['people_mean']:.1f}, {run['people_max']}",
             *(f"{run['latency_ms'][p]:.1f}" for p in ("p50", "p95", "p99")),
             f"{run['own_work_ms']:.1f}", f"{run['triton_ms']:.1f}",
             f"{run['latency_ms']['mean'] - run['triton_ms']:.1f}",
             f"{run['answer_bytes_median']:,}")
            for run in runs
        ]  # fmt: skip
        stages = list(dict.fromkeys(s for run in runs for s in run["stages_ms"]))
        stage_rows = [
            (stage, *(f"{run['stages_ms'].get(stage, 0.0):.2f}" for run in runs))
            for stage in stages
        ]
        base = result["throughput"][0]["fps"]
        throughput_rows = [
            (run["sessions"], run["frames"], f"{run['fps']:.2f}", f"{run['fps'] / base:.2f}",
             f"{run['triton_batch'].get(HMR2.name, 0.0):.2f}",
             f"{run['triton_batch'].get(PERSON_DETECTOR.name, 0.0):.2f}",
             f"{100 * run['cpu_busy']:.0f} %")
            for run in result["throughput"]
        ]  # fmt: skip
        out += [
            "",
            f"## HMR2 {result['hmr2']}",
            "",
            *markdown_table(LATENCY_HEADER, latency_rows),
            "",
            "Milliseconds per frame, by stage (and as a chart, every size: "
            "![stages](benchmark_stages.png)):",
            "",
            *markdown_table(["stage", *(_label(run) for run in runs)], stage_rows),
            "",
            f"Concurrent sessions ({result['throughput_video']}, each session its own id, "
            "frames in order per session):",
            "",
            *markdown_table(THROUGHPUT_HEADER, throughput_rows),
        ]
        memory = result["memory"]
        out += [
            "",
            f"Peak memory (VmHWM): service {memory['service_peak_mb']:.0f} MB, Triton "
            f"(server and Python-backend stubs) {memory['triton_peak_mb']:.0f} MB.",
            "",
            "Targets:",
            "",
            *_targets(result),
        ]
    return "\n".join(out) + "\n"


def chart(report: Path, figures: dict[str, Any]) -> Path:
    """Draw a report's stage chart beside it (``benchmark.json``: ``benchmark_stages.png``)."""
    caption = f"{figures['machine']}; `{figures['command']}`"
    return stage_chart(figures["results"], report.with_name(f"{report.stem}_stages.png"), caption)


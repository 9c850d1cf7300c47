"""Whole-video benchmark: one video job vs the same frames posted one by one, in one run.

Starts the local stack (:func:`tracker_tools.stack.local_stack`: Triton, and the tracker
service as its own process), then, with ``--frames`` frames of ``--video`` (by default
``../shared/media/runner.mp4``, looped when it is shorter; 640x360, as the backend sends
them; a generated clip when it is absent):

- *job*: the frames written as an MP4, uploaded to ``POST /process_video_async``, polled
  (``?frames=0``) until complete (every frame answered, the overlay video rendered), then
  the full result downloaded (every frame's mesh, as the apps read it);
- *per frame*: the same frames as PNG posted one by one, in order, to ``/pose/hybrid``.

It reports the wall time per frame of each and their ratio, Triton's average batch size per
model in each (``nv_inference_count`` / ``nv_inference_exec_count`` deltas), the CPU time a
frame of each run spent in the service, in Triton (with its Python-backend stubs) and in this
client (from ``/proc``: what bounds a job on a CPU machine, whose cores all of them share),
the job's stages, and the service's peak memory after the job. Writes
``docs/benchmark_video.md`` and ``.json``. ``--no-per-frame`` runs the job alone (the memory
of a long video).

Example:
    python -m scripts.benchmark_video --hmr2 tiny full
    python -m scripts.benchmark_video --frames 1400 --no-per-frame --out build/long.md

"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tracker_service.jobs.video_io import VideoReader
from tracker_tools.backend import backend_frames
from tracker_tools.client import ServiceClient, metrics_at, triton_batches
from tracker_tools.machine import cpu_seconds, machine, peak_rss_mb
from tracker_tools.media import (
    SHARED_MEDIA,
    encode_base64,
    encode_image,
    read_frames,
    walking_clip,
    write_video,
)
from tracker_tools.report import command_line, write_report
from tracker_tools.stack import BUILD, MODEL_REPOSITORY, local_stack
from tracker_tools.tiny_models import build_tiny_repository
from tracker_tools.triton_server import free_ports

TIMEOUT_S = 1800.0
#: CPU seconds used so far, per process group ("service", "triton", "client").
Usage = Callable[[], dict[str, float]]


def clip(video: Path, count: int) -> tuple[str, list]:
    """``count`` frames of the video (looped when shorter) at the backend's 640x360; a label."""
    frames = backend_frames(read_frames(video, count))
    if not frames:
        return f"generated clip ({count} frames)", backend_frames(walking_clip(count))
    label = f"{video.name}, first {count} frames"
    if len(frames) < count:
        label = f"{video.name} ({len(frames)} frames) looped to {count} frames"
        frames = [frames[i % len(frames)] for i in range(count)]
    return label, frames


def cpu_ms_per_frame(before: dict[str, float], after: dict[str, float], frames: int) -> dict:
    """CPU milliseconds a frame, per process group, between two :data:`Usage` readings."""
    return {name: 1000.0 * (after[name] - before[name]) / frames for name in before}


def job_run(client: ServiceClient, metrics_url: str, video: Path, usage: Usage) -> dict[str, Any]:
    """Upload the video as one job and poll it; wall time, stages, Triton batches, CPU."""
    before, cpu_before = metrics_at(metrics_url), usage()
    stages: dict[str, float] = {}
    start = time.perf_counter()

    def note(status: dict[str, Any]) -> None:
        stage = (status.get("progress") or {}).get("stage", status["status"])
        stages.setdefault(stage, time.perf_counter() - start)

    response = client.upload_video("/process_video_async", video.read_bytes(), max_frames=999999)
    if response.status != 200:
        raise RuntimeError(f"the job was refused: {response.json()}")
    job_id = response.answer()["job_id"]
    final = client.wait_job(job_id, query="?frames=0", every_s=0.25, on_status=note)
    done = time.perf_counter() - start
    if final["status"] != "complete":
        raise RuntimeError(f"the job failed: {final['error']}")
    full = client.request("GET", f"/result/{job_id}").body  # every frame, every mesh
    seconds = time.perf_counter() - start
    cpu_after = usage()
    result = final["result"]
    frames = result["total_frames"]
    return {
        "frames": frames,
        "seconds": seconds,
        "seconds_to_complete": done,
        "result_download_s": seconds - done,
        "result_bytes": len(full),
        "ms_per_frame": 1000.0 * seconds / frames,
        "fps": frames / seconds,
        "stage_started_s": stages,
        "analysis_fps": result["analysis_frames_per_second"],
        "identities": result["identities"],
        "overlay_codec": result["output_codec"],
        "triton_batch": triton_batches(before, metrics_at(metrics_url)),
        "cpu_ms_per_frame": cpu_ms_per_frame(cpu_before, cpu_after, frames),
    }


def decode_ms(video: Path) -> float:
    """Milliseconds a frame to decode the video once more, as a job's render pass does."""
    start = time.perf_counter()
    with VideoReader(video) as reader:
        count = sum(1 for _ in reader.frames())
    return 1000.0 * (time.perf_counter() - start) / max(count, 1)


def per_frame_run(
    client: ServiceClient, metrics_url: str, frames: Sequence, usage: Usage
) -> dict[str, Any]:
    """Post every frame as PNG to ``/pose/hybrid``, one by one, in order."""
    images = [encode_base64(f, ".png") for f in frames]
    before, cpu_before = metrics_at(metrics_url), usage()
    start = time.perf_counter()
    for number, image in enumerate(images):
        client.post_frame(image, frame_number=number, session_id="benchmark-per-frame").answer()
    seconds = time.perf_counter() - start
    cpu_after = usage()
    return {
        "frames": len(images),
        "seconds": seconds,
        "ms_per_frame": 1000.0 * seconds / len(images),
        "fps": len(images) / seconds,
        "triton_batch": triton_batches(before, metrics_at(metrics_url)),
        "cpu_ms_per_frame": cpu_ms_per_frame(cpu_before, cpu_after, len(images)),
    }


def benchmark(
    size: str, frames: list, label: str, providers: Sequence[str] = (), *, per_frame: bool = True
) -> dict[str, Any]:
    """Both runs (or the job alone) on one stack serving one HMR2 size (on ``providers``)."""
    tiny = size == "tiny"
    repository = build_tiny_repository(BUILD / "tiny_repository") if tiny else MODEL_REPOSITORY
    with tempfile.TemporaryDirectory(prefix="benchmark_video_") as folder:
        work = Path(folder)
        video = write_video(work / "video.mp4", frames)
        env = {"TRACKER_LOG_LEVEL": "WARNING", "TRACKER_TRITON_TIMEOUT_S": str(TIMEOUT_S),
               "TRACKER_JOB_DATABASE": str(work / "jobs.sqlite"),
               "TRACKER_JOB_DATA_DIR": str(work / "jobs")}  # fmt: skip
        return _runs(size, frames, label, repository, video, env, providers, per_frame=per_frame)


def _runs(
    size: str,
    frames: list,
    label: str,
    repository: Path,
    video: Path,
    env: dict[str, str],
    providers: Sequence[str],
    *,
    per_frame: bool,
) -> dict[str, Any]:
    port, http, grpc, metrics = free_ports(4)
    print(f"[{size}] starting Triton and the service ...", flush=True)
    stack = local_stack(
        repository=repository, port=port, triton_ports=(http, grpc, metrics),
        startup_timeout_s=TIMEOUT_S, service_env=env, providers=providers,
    )  # fmt: skip
    with stack as (url, triton, service):
        client = ServiceClient(url, timeout_s=TIMEOUT_S)

        def usage() -> dict[str, float]:
            mine = os.times()
            return {"service": cpu_seconds([service.pid]), "triton": cpu_seconds(triton.pids()),
                    "client": mine.user + mine.system}  # fmt: skip

        warm_up = encode_image(frames[0], ".png")
        client.post_frame(warm_up, frame_number=0, session_id="warm-up").answer()
        print(f"[{size}] one job of {len(frames)} frames ...", flush=True)
        job = job_run(client, triton.metrics_url, video, usage)
        job_peak = peak_rss_mb(service.pid)
        single = None
        if per_frame:
            print(f"[{size}] the same frames posted one by one ...", flush=True)
            single = per_frame_run(client, triton.metrics_url, frames, usage)
        memory = {
            "service_peak_mb_after_job": job_peak,
            "service_peak_mb": peak_rss_mb(service.pid),
            "triton_peak_mb": triton.peak_rss_mb(),
        }
    return {
        "hmr2": size,
        "video": label,
        "job": job,
        "decode_ms_per_frame": decode_ms(video),
        "per_frame": single,
        "speedup": job["fps"] / single["fps"] if single else None,
        "memory": memory,
    }


def markdown(results: Sequence[dict[str, Any]], command: str, host: str) -> str:
    """The figures as the README's page."""
    lines = [
        "# Whole-video benchmark",
        "",
        f"Machine: {host}. Command: `{command}`. Each model set ran on its own local stack "
        "(Triton with the Python backend and ONNX Runtime on the CPU, the service as its own "
        "process); the job and the per-frame path ran in the same run, one after the other.",
        f"Frames: {results[0]['video']}.",
        "",
        "| HMR2 | frames | job ms/frame | per-frame ms/frame | job ÷ per-frame frames/s | "
        "Triton batch (job): HMR2, detector | (per frame): HMR2, detector | "
        "service peak MB after the job | after both |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        job, single, memory = r["job"], r["per_frame"], r["memory"]
        runs = [job, single] if single else [job]
        batches = [
            f"{b.get('hmr2', 0):.2f}, {b.get('person_detector', 0):.2f}"
            for b in (run["triton_batch"] for run in runs)
        ] + ["—"]
        per_frame, ratio = (
            (f"{single['ms_per_frame']:.0f}", f"{r['speedup']:.2f}×") if single else ("—", "—")
        )
        lines.append(
            f"| {r['hmr2']} | {job['frames']} | {job['ms_per_frame']:.0f} | {per_frame} | "
            f"{ratio} | {batches[0]} | {batches[1]} "
            f"| {memory['service_peak_mb_after_job']:.0f} | {memory['service_peak_mb']:.0f} |"
        )
    lines += ["", "Job stages (seconds from submission to the stage's first poll):", ""]
    for r in results:
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in r["job"]["stage_started_s"].items())
        lines.append(
            f"- {r['hmr2']}: {stages}; complete {r['job']['seconds_to_complete']:.1f} s, the "
            f"full result ({r['job']['result_bytes'] / 2**20:.0f} MB, every mesh) downloaded "
            f"in {r['job']['result_download_s']:.1f} s more; analysis "
            f"{r['job']['analysis_fps']:.1f} frames/s; overlay {r['job']['overlay_codec']}; "
            f"{r['job']['identities']} identities; decoding the video once more (the render "
            f"pass's second decode) {r['decode_ms_per_frame']:.1f} ms a frame"
        )
    lines += ["", "CPU time a frame, ms (service + Triton with its stubs + this client; "
              f"{os.cpu_count()} cores share them all):", ""]  # fmt: skip
    for r in results:
        lines.append(f"- {r['hmr2']}: {_cpu_line(r)}")
    lines += ["", "Goals:", ""]
    for r in results:
        if r["speedup"] is not None:
            goal = "met" if r["speedup"] >= 2.0 else "not met"
            lines.append(f"- {r['hmr2']}: job ≥ 2× the per-frame path's frames/s: "
                         f"{r['speedup']:.2f}× ({goal})")  # fmt: skip
        per_140 = r["job"]["ms_per_frame"] * 140 / 1000.0
        lines.append(f"- {r['hmr2']}: a 140-frame video takes {per_140:.0f} s as one job on "
                     "this CPU (the user's target: under 120 s on the GPU)")  # fmt: skip
    return "\n".join(lines) + "\n"


def _cpu_line(result: dict[str, Any]) -> str:
    """The CPU a frame of each run, and the job's floor: all of it spread over every core."""
    job, single = result["job"], result["per_frame"]
    parts = []
    for name, run in (("job", job), ("per frame", single)):
        if run is not None:
            cpu = run["cpu_ms_per_frame"]
            parts.append(f"{name}: service {cpu['service']:.0f}, Triton {cpu['triton']:.0f}, "
                         f"client {cpu['client']:.0f} (total {sum(cpu.values()):.0f})")  # fmt: skip
    floor = sum(job["cpu_ms_per_frame"].values()) / (os.cpu_count() or 1)
    text = "; ".join(parts) + f"; the job's floor, that CPU spread over every core: {floor:.0f} ms"
    if single is not None:
        text += f" a frame, at most {single['ms_per_frame'] / floor:.2f}× the per-frame path"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hmr2", nargs="+", choices=["full", "tiny"], default=["tiny"])
    parser.add_argument("--frames", type=int, default=140)
    parser.add_argument("--video", type=Path, default=SHARED_MEDIA / "runner.mp4")
    parser.add_argument(
        "--no-per-frame", dest="per_frame", action="store_false",
        help="run the job alone (no ratio): the memory of a long video",
    )  # fmt: skip
    parser.add_argument(
        "--providers",
        nargs="+",
        default=[],
        help="ONNX Runtime providers of Triton's models (CUDAExecutionProvider on a GPU)",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/benchmark_video.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = command_line("scripts.benchmark_video", argv)
    host = machine()
    label, frames = clip(args.video, args.frames)
    results = [
        benchmark(size, frames, label, args.providers, per_frame=args.per_frame)
        for size in args.hmr2
    ]
    text = markdown(results, command, host)
    raw = write_report(args.out, text, {"machine": host, "command": command, "results": results})
    print(f"\n{text}\nwrote {args.out} and {raw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How big a whole-video job's answers are, and how long a status answer takes to serve.

Starts the local stack (:func:`tracker_tools.stack.local_stack`, the tiny model set by
default), then for each ``--frames`` N uploads ``../shared/media/runner.mp4`` (1920x1088,
180 frames) looped to N frames to ``POST /process_video_async``, waits until the job is
complete (``?frames=0`` polls), and measures, reading each answer as a stream:

- ``GET /job_status/<id>``: bytes, and the time to serve it (request to last byte), plain
  and gzip-compressed (``Accept-Encoding: gzip``, as Node's clients send);
- ``GET /result/<id>`` (the complete result, every mesh; 404 on a service without it), plain
  and gzip-compressed, and the status answer's ``answer_budget`` (what it kept).

It runs against whatever service code is checked out, so the same command measures before
and after a change. Writes ``docs/answer_sizes.md`` and ``.json``.

Example:
    python -m scripts.answer_sizes --frames 140 540 900

"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracker_tools.client import ServiceClient
from tracker_tools.machine import machine
from tracker_tools.media import SHARED_MEDIA, read_frames, write_video
from tracker_tools.report import command_line, write_report
from tracker_tools.stack import BUILD, local_stack
from tracker_tools.tiny_models import build_tiny_repository
from tracker_tools.triton_server import free_ports

TIMEOUT_S = 3600.0


def measure(client: ServiceClient, path: str, *, gzip: bool) -> dict[str, Any]:
    """Stream one GET answer: status, bytes on the wire, seconds to the last byte."""
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    response = client.measure(path, headers, timeout_s=TIMEOUT_S)
    encoding = response.headers.get("Content-Encoding") or "identity"
    return {"status": response.status, "bytes": response.size, "encoding": encoding,
            "seconds": response.seconds}  # fmt: skip


def job(client: ServiceClient, video: Path, frames: int) -> dict[str, Any]:
    """One job on the video; its answers measured."""
    response = client.upload_video("/process_video_async", video.read_bytes(), max_frames=999999)
    job_id = response.answer()["job_id"]
    final = client.wait_job(job_id, query="?frames=0", every_s=1.0)
    if final["status"] != "complete":
        raise RuntimeError(f"the job failed: {final['error']}")
    status = measure(client, f"/job_status/{job_id}", gzip=False)
    status_gzip = measure(client, f"/job_status/{job_id}", gzip=True)
    result = measure(client, f"/result/{job_id}", gzip=False)
    result_gzip = measure(client, f"/result/{job_id}", gzip=True)
    report = None  # the degradation, said by a service that has GET /result
    if result["status"] == 200:
        answer = client.request("GET", f"/job_status/{job_id}").json()
        report = answer["result"]["answer_budget"]
    return {"frames": frames, "status": status, "status_gzip": status_gzip, "result": result,
            "result_gzip": result_gzip, "answer_budget": report}  # fmt: skip


def markdown(runs: Sequence[dict[str, Any]], command: str, host: str, label: str) -> str:
    """The figures as a page."""
    lines = [
        f"# Whole-video answer sizes: {label}",
        "",
        f"Machine: {host}. Command: `{command}` (the tiny model set; sizes do not depend on "
        "the HMR2 size). Video: runner.mp4 (1920x1088) looped to N frames.",
        "",
        "| frames | status answer | per frame | served in | gzip on the wire | served in "
        "| degraded: frames with meshes / images / poses | complete result (gzip) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        status, packed = run["status"], run["status_gzip"]
        result, result_gzip = run["result"], run["result_gzip"]
        kept = run["answer_budget"]
        degraded = (
            "n/a" if kept is None else "no" if not kept["degraded"]
            else f"{kept['meshes']} / {kept['images']} / {kept['poses']} of {kept['frames']}"
        )  # fmt: skip
        whole = (
            f"{result['bytes'] / 2**20:.1f} MB ({result_gzip['bytes'] / 2**20:.1f} MB) "
            f"in {result_gzip['seconds']:.1f} s"
            if result["status"] == 200 else f"absent ({result['status']})"
        )  # fmt: skip
        lines.append(
            f"| {run['frames']} | {status['bytes'] / 2**20:.1f} MB | "
            f"{status['bytes'] / run['frames'] / 1024:.0f} KB | {status['seconds']:.2f} s | "
            f"{packed['bytes'] / 2**20:.1f} MB ({packed['encoding']}) | "
            f"{packed['seconds']:.2f} s | {degraded} | {whole} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[140, 540, 900])
    parser.add_argument("--label", default="this version")
    parser.add_argument("--out", type=Path, default=Path("docs/answer_sizes.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = command_line("scripts.answer_sizes", argv)
    host = machine()
    runner = read_frames(SHARED_MEDIA / "runner.mp4", 180)
    if not runner:
        raise SystemExit(f"{SHARED_MEDIA / 'runner.mp4'} is absent: this needs ../shared")
    repository = build_tiny_repository(BUILD / "tiny_repository")
    port, *triton_ports = free_ports(4)
    env = {"TRACKER_LOG_LEVEL": "WARNING", "TRACKER_TRITON_TIMEOUT_S": str(TIMEOUT_S),
           "TRACKER_JOB_DATABASE": str(BUILD / "answer_sizes.sqlite"),
           "TRACKER_JOB_DATA_DIR": str(BUILD / "answer_sizes")}  # fmt: skip
    stack = local_stack(
        repository=repository, port=port, triton_ports=tuple(triton_ports),
        startup_timeout_s=TIMEOUT_S, service_env=env,
    )  # fmt: skip
    runs = []
    with stack as (url, _triton, _service):
        client = ServiceClient(url, timeout_s=TIMEOUT_S)
        for count in args.frames:
            video = write_video(BUILD / "answer_sizes.mp4", (runner * (count // 180 + 1))[:count])
            print(f"a job of {count} frames ...", flush=True)
            runs.append(job(client, video, count))
    text = markdown(runs, command, host, args.label)
    raw = write_report(args.out, text, {"machine": host, "command": command, "runs": runs})
    print(f"\n{text}\nwrote {args.out} and {raw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

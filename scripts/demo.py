"""The offline demo: real video through ``POST /pose/hybrid``, on a real Triton server.

Starts the local stack (Triton with the offline model set of ``make models``, and the tracker
service), posts the frames of ``../shared/media/vtest.avi`` (pedestrians) and
``../shared/media/runner.mp4`` (one runner, hidden in a burst of frames to show what the
tracker predicts), one request per frame as the backend does, and prints what was answered:
per frame the people detected and tracked and where the answered body came from, then frames
answered, detected vs predicted, identities and time per frame. Then it submits the runner
clip as one whole-video job (``POST /process_video_async``) and prints its progress, as
polled, and its summary. It ends with the viewer's URL, the job open in it; in a terminal the
service keeps running until Ctrl-C. Without ``../shared`` it makes a clip itself.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tracker_tools.client import ServiceClient
from tracker_tools.media import SHARED_MEDIA, encode_image, read_frames, walking_clip, write_video
from tracker_tools.stack import BUILD, StackError, local_stack
from tracker_tools.triton_server import free_ports

#: Full-size HMR2 takes about a second per person on a CPU: a frame may take minutes.
TIMEOUT_S = 600.0
#: How long the whole-video job may take.
JOB_TIMEOUT_S = 900.0


def hide(frame: np.ndarray, box: Sequence[float]) -> None:
    """Paint over a person (their box grown by a third) with the frame's median colour."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    x1, y1 = max(int(x1 - w / 3), 0), max(int(y1 - h / 3), 0)
    frame[y1 : int(y2 + h / 3), x1 : int(x2 + w / 3)] = np.median(frame.reshape(-1, 3), axis=0)


def run_clip(client: ServiceClient, name: str, frames: list[np.ndarray], hidden: range) -> None:
    """Post a clip's frames in order, hiding the main subject in ``hidden`` frames."""
    session = Path(name).stem
    print(f"\n{name}: {len(frames)} frames, session {session!r}"
          + (f", main subject hidden in frames {hidden.start}-{hidden.stop - 1}" if hidden else ""))
    sources, identities, times, last_box = Counter(), Counter(), [], None
    for number, frame in enumerate(frames):
        if number in hidden and last_box is not None:
            hide(frame, last_box)
        start = time.perf_counter()
        answer = client.post_frame(
            encode_image(frame, quality=90), frame_number=number, session_id=session
        ).answer()
        times.append(time.perf_counter() - start)
        tracks = answer.get("tracks", [])
        source = answer["pose_source"] if answer["has_3d"] else "none"
        sources[source] += 1
        identities.update(t["track_id"] for t in tracks)
        main = next((t for t in tracks if t["track_id"] == answer["track_id"]), None)
        last_box = main["box"] if main else last_box
        detected = sum(t["pose_source"] == "detected" for t in tracks)
        print(
            f"  frame {number:3d}: {detected} detected, {len(tracks)} tracked | main subject "
            + (f"#{answer['track_id']} {source}, confidence {answer['tracking_confidence']:.2f}"
               if answer["has_3d"] else "none yet")
            + f" | {1000 * times[-1]:.0f} ms"
        )
    print(
        f"{name}: {len(frames)} frames answered, {sources['detected']} detected, "
        f"{sources['predicted']} predicted, {sources['none']} without a body; "
        f"{len(identities)} identities; {1000 * np.mean(times):.0f} ms per frame "
        f"(p50 {1000 * np.median(times):.0f} ms)"
    )


def run_job(client: ServiceClient, name: str, frames: list[np.ndarray]) -> str:
    """Submit a clip as one whole-video job, print its progress as polled, then its summary.

    Returns:
        The job's id.

    """
    url = client.url
    video = write_video(BUILD / "demo_video.mp4", frames)
    print(f"\n{name} as one video job ({len(frames)} frames, {video.stat().st_size} bytes): "
          "POST /process_video_async")  # fmt: skip
    response = client.upload_video("/process_video_async", video.read_bytes())
    print(f"  {response.status} {response.json()}")
    accepted = response.answer()
    shown: set[tuple] = set()

    def show(state: dict) -> None:
        progress = state.get("progress") or {}
        key = (state["status"], progress.get("stage"), progress.get("frames_done", 0) // 10)
        if key not in shown:
            shown.add(key)
            print(f"  {state['status']}: {progress or ''}")

    final = client.wait_job(accepted["job_id"], timeout_s=JOB_TIMEOUT_S, on_status=show)
    if final["status"] != "complete":
        print(f"  job ended in error: {final['error']}")
        return accepted["job_id"]
    result = final["result"]
    sources = Counter(f["poseSource"] for f in result["frames"])
    print(
        f"  complete in {final['processing_time']:.1f} s: {result['total_frames']} frames "
        f"answered ({sources['detected']} detected, {sources['interpolated']} interpolated, "
        f"{sources['predicted']} predicted), {result['identities']} identities, main subject "
        f"#{result['main_person_id']}; overlay {result['output_codec']} "
        f"{result['output_size_mb']:.1f} MB at {result['output_path']} "
        f"(GET {url}/output/{accepted['job_id']}, GET {url}/frame/{accepted['job_id']}/0)"
    )
    return accepted["job_id"]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vtest-frames", type=int, default=8)
    parser.add_argument("--runner-frames", type=int, default=30)
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    clips = [
        ("vtest.avi", read_frames(SHARED_MEDIA / "vtest.avi", args.vtest_frames), range(0)),
        ("runner.mp4", read_frames(SHARED_MEDIA / "runner.mp4", args.runner_frames), range(12, 20)),
    ]
    if not all(frames for _, frames, _ in clips):
        print(f"{SHARED_MEDIA} is absent: using a clip of a figure walking, made here")
        clips = [("walking_figure", walking_clip(30), range(12, 20))]
    start = time.perf_counter()
    try:
        http, grpc, metrics = free_ports(3)  # Triton beside whatever else runs here
        with local_stack(port=args.port, triton_ports=(http, grpc, metrics)) as (url, _, service):
            seconds = time.perf_counter() - start
            print(f"Triton and the tracker service ready in {seconds:.0f} s: {url}")
            client = ServiceClient(url, timeout_s=TIMEOUT_S)
            for name, frames, hidden in clips:
                run_clip(client, name, frames, hidden)
            name, frames, _ = clips[-1]
            job_id = run_job(client, name, frames)
            waiting = sys.stdin.isatty()
            print(f"\nSee it in the viewer: {url}/#{job_id}"
                  + (" (Ctrl-C stops the service)" if waiting else ""), flush=True)  # fmt: skip
            if waiting:
                try:
                    service.wait()
                except KeyboardInterrupt:
                    print("stopping")
    except StackError as error:
        logging.getLogger(__name__).error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Whole-video jobs over real HTTP against the real Triton server (``VIDEO_API.md``).

One job on runner.mp4 (its first 140 frames at 640x360, with 5 bursts of 10 painted-out
frames, written as an MP4) is reused by several tests; while it runs, frames are posted to
``/pose/hybrid``. Restart persistence runs the service as a process of its own.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.integration.test_reliability import ServiceProcess
from tests.integration.test_service import LiveService, encode, read_frames, service_settings
from tracker_tools.client import Response, ServiceClient
from tracker_tools.media import write_video
from tracker_tools.triton_server import LocalTritonServer

pytestmark = pytest.mark.integration

FRAMES = 140
#: Frames of the short clip of the other jobs.
CLIP = 12
SIZE = (640, 360)
#: Five bursts of ten frames in which the runner is painted out.
PAINTED = [range(start, start + 10) for start in (20, 45, 70, 95, 120)]
PAINTED_FRAMES = {n for burst in PAINTED for n in burst}
FRAME_KEYS = {
    "frameNumber", "originalFrameNumber", "timestamp", "confidence", "keypoints", "joints3D",
    "jointAngles", "has3D", "meshRendered", "vertices", "faces", "tracked", "personId",
}  # fmt: skip
RESULT_KEYS = {
    "frames", "pose_timeline", "fps", "total_frames", "processed_frames", "frame_count",
    "video_duration", "resolution", "processing_time_seconds", "output_size_mb", "output_path",
    "frame_acceptance", "status",
}  # fmt: skip
PERSON_KEYS = {"personId", "confidence", "tracked", "camera", "smpl", "meshVertices", "meshFaces"}
#: Timeout of each request and of each wait for a job (a synchronous job, a large result).
TIMEOUT_S = 900.0


def client_of(url: str) -> ServiceClient:
    return ServiceClient(url, timeout_s=TIMEOUT_S)


def answered(response: Response) -> tuple[int, Any]:
    """(status, decoded JSON body)."""
    return response.status, response.json()


def get(client: ServiceClient, path: str) -> tuple[int, Any]:
    return answered(client.request("GET", path))


def runner_frames(count: int) -> list[np.ndarray]:
    frames = read_frames("runner.mp4", count, SIZE[0])
    return [cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA) for frame in frames]


def paint_out(frame: np.ndarray) -> np.ndarray:
    """The frame painted over with its median colour: nobody left to detect."""
    return np.broadcast_to(np.median(frame.reshape(-1, 3), axis=0), frame.shape).astype(np.uint8)


@dataclass
class Job:
    video: Path
    accepted: tuple[int, dict[str, Any]]
    statuses: list[dict[str, Any]]
    hybrid: list[tuple[str, int]]  # (job status when posted, /pose/hybrid status)
    final: dict[str, Any]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("video_jobs")
    (root / "shared").mkdir()
    return {"root": root, "shared": root / "shared"}


@pytest.fixture(scope="module")
def service(
    triton_server: LocalTritonServer, production_repository: Path, folders: dict[str, Path]
) -> Iterator[LiveService]:
    live = LiveService(
        service_settings(
            triton_server,
            production_repository,
            job_database=str(folders["root"] / "jobs.sqlite"),
            job_data_dir=str(folders["root"] / "jobs"),
            video_folder=str(folders["shared"]),
            job_max_bytes=8 * 2**20,
            job_max_frames=150,
        )  # fmt: skip
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(service: LiveService) -> ServiceClient:
    return client_of(service.url)


@pytest.fixture(scope="module")
def clip(folders: dict[str, Path]) -> Path:
    frames = runner_frames(CLIP)
    return write_video(folders["shared"] / "clip.mp4", frames)


@pytest.fixture(scope="module")
def job(service: LiveService, client: ServiceClient, folders: dict[str, Path]) -> Job:
    frames = runner_frames(FRAMES)
    hybrid_frames = [encode(frame, ".png") for frame in frames[:40]]
    for n in PAINTED_FRAMES:
        frames[n] = paint_out(frames[n])
    video = write_video(folders["root"] / "runner_painted.mp4", frames)
    accepted = answered(
        client.upload_video("/process_video_async", video.read_bytes(), max_frames=999999)
    )
    statuses: list[dict[str, Any]] = []
    hybrid: list[tuple[str, int]] = []

    def during(status: dict[str, Any]) -> None:
        statuses.append(status)
        if status["status"] == "processing" and len(hybrid) < len(hybrid_frames):
            n = len(hybrid)
            code, _ = service.post(
                {"image_base64": hybrid_frames[n], "frame_number": n, "session_id": "live"}
            )
            hybrid.append((status["status"], code))

    final = client.wait_job(accepted[1]["job_id"], every_s=0.2, on_status=during)
    return Job(video, accepted, statuses, hybrid, final)


# --------------------------------------------------------------------------- the job


def test_every_frame_is_answered_with_one_identity_and_painted_frames_not_detected(
    job: Job,
) -> None:
    assert job.final["status"] == "complete", job.final.get("error")
    result = job.final["result"]
    frames = result["frames"]
    assert len(frames) == result["total_frames"] == FRAMES
    assert [f["originalFrameNumber"] for f in frames] == list(range(FRAMES))
    assert all(f["has3D"] and f["tracked"] for f in frames), [
        f["originalFrameNumber"] for f in frames if not f["has3D"]
    ]
    assert {f["personId"] for f in frames} == {result["main_person_id"]}
    main = [f["persons"][0] for f in frames]
    assert all(p["personId"] == result["main_person_id"] for p in main)
    painted = [main[n] for n in sorted(PAINTED_FRAMES)]
    assert not any(p["detected"] for p in painted)
    assert all(p["source"] in ("interpolated", "predicted") for p in painted)
    seen = [main[n]["detected"] for n in range(FRAMES) if n not in PAINTED_FRAMES]
    assert sum(seen) >= 0.9 * len(seen), f"{sum(seen)} of {len(seen)} visible frames detected"


def test_flavour_a_answers_key_by_key(client: ServiceClient, job: Job) -> None:
    status, accepted = job.accepted
    assert status == 200 and accepted["status"] == "accepted" and accepted["message"]
    job_id = accepted["job_id"]
    states = [s["status"] for s in job.statuses]
    assert set(states) <= {"queued", "processing", "complete"} and "processing" in states
    processing = next(s for s in job.statuses if s["status"] == "processing")
    assert isinstance(processing["elapsed_time"], float)
    assert {"stage", "frames_done", "frames_total", "eta_s"} <= set(processing["progress"])

    final = job.final
    assert final["job_id"] == job_id and isinstance(final["processing_time"], float)
    result = final["result"]
    assert RESULT_KEYS <= set(result) and result["status"] == "complete"
    assert final["output_path"] == result["output_path"] and Path(result["output_path"]).is_file()
    assert result["resolution"] == list(SIZE) and result["fps"] == pytest.approx(30.0)
    assert result["processed_frames"] == result["frame_count"] == FRAMES
    assert result["video_duration"] == pytest.approx(FRAMES / 30.0, abs=1e-3)
    assert result["output_size_mb"] > 0 and result["processing_time_seconds"] > 0
    frame = result["frames"][7]
    assert FRAME_KEYS <= set(frame) and frame["frameNumber"] == 7
    assert frame["timestamp"] == pytest.approx(7 / 30.0, abs=1e-3)
    assert len(frame["keypoints"]) == 24 and {"name", "x", "y", "confidence"} <= set(
        frame["keypoints"][0]
    )
    assert len(frame["joints3D"]) == 24 and len(frame["jointAngles"]) > 0
    assert frame["vertices"] == frame["faces"] == [] and frame["persons"][0]["meshFaces"] == []
    assert np.shape(result["mesh_faces"]) == (13776, 3)  # the triangles, once
    person = frame["persons"][0]
    assert PERSON_KEYS <= set(person) and np.shape(person["smpl"]["body_pose"]) == (23, 3, 3)
    timeline = result["pose_timeline"]
    assert len(timeline) == FRAMES and FRAME_KEYS <= set(timeline[0])
    assert timeline[0]["imageBase64"].startswith("data:image/jpeg;base64,")
    assert result["frame_acceptance"][3] == {
        "frame_index": 3, "has_mesh": True, "original_frame_number": 3,
        "timestamp": result["frames"][3]["timestamp"],
    }  # fmt: skip

    # Over the budget whole: meshes on evenly spaced frames, said; every mesh at /result.
    report = result["answer_budget"]
    assert report["budget_bytes"] == 16 * 2**20 and report["frames"] == FRAMES
    assert report["degraded"] and 0 < report["meshes"] < FRAMES == report["poses"]
    with_mesh = [f for f in result["frames"] if f["meshRendered"]]
    assert len(with_mesh) == report["meshes"]
    assert all(np.shape(f["persons"][0]["meshVertices"]) == (6890, 3) for f in with_mesh)
    whole = client.request("GET", f"/result/{job_id}").json()
    assert all(np.shape(f["persons"][0]["meshVertices"]) == (6890, 3) for f in whole["frames"])
    numbers = {f["frameNumber"] for f in with_mesh}
    assert [f for f in whole["frames"] if f["frameNumber"] in numbers] == with_mesh
    assert whole["answer_budget"]["degraded"] is False
    assert whole["mesh_faces"] == result["mesh_faces"]
    status, ranged = get(client, f"/job/{job_id}/frames?start=10&count=3")
    assert status == 200 and (ranged["start"], ranged["count"], ranged["next_start"]) == (10, 3, 13)
    assert ranged["frames"] == whole["frames"][10:13]
    assert ranged["mesh_faces"] == whole["mesh_faces"]
    status, ranged = get(client, f"/job/{job_id}/frames?start=0&count=999")
    assert status == 200 and 0 < ranged["count"] < FRAMES
    assert ranged["next_start"] == ranged["count"]
    for query in ("start=140", "start=-1", "count=0", "count=x"):
        status, body = get(client, f"/job/{job_id}/frames?{query}")
        assert status == 400 and ("start" in body["error"] or "count" in body["error"]), query

    jpeg = client.request("GET", f"/frame/{job_id}/12")
    image = cv2.imdecode(np.frombuffer(jpeg.body, np.uint8), cv2.IMREAD_COLOR)
    assert jpeg.status == 200 and jpeg.content_type == "image/jpeg"
    assert image.shape == (360, 640, 3)
    assert get(client, f"/frame/{job_id}/{FRAMES + 5}")[0] == 404
    assert get(client, "/job_status/nope") == (404, {"error": "Job not found"})
    assert get(client, "/frame/nope/1")[0] == 404
    mp4 = client.request("GET", f"/output/{job_id}")
    assert mp4.status == 200 and mp4.content_type == "video/mp4" and mp4.body[4:8] == b"ftyp"


def test_pose_hybrid_is_answered_while_a_job_runs(job: Job) -> None:
    assert job.hybrid, "the job ended before a frame could be posted"
    assert all(status == 200 for _, status in job.hybrid), job.hybrid


def test_flavour_b_and_max_frames(client: ServiceClient, job: Job, clip: Path) -> None:
    status, body = answered(
        client.post_json("/pose/video", {"video_path": "clip.mp4", "max_frames": 5})
    )
    assert status == 200 and body["status"] == "success", body
    data = body["data"]
    assert RESULT_KEYS <= set(data) and data["total_frames"] == CLIP and data["frame_count"] == 5
    assert [f["originalFrameNumber"] for f in data["frames"]] == [0, 3, 6, 8, 11]
    assert [f["frameNumber"] for f in data["frames"]] == list(range(5))
    assert clip.is_file(), "a client's own video is never deleted"

    # Busy engine: the path flavour queues (202) and its status endpoint follows the job.
    busy = client.upload_video("/process_video_async", clip.read_bytes()).answer()["job_id"]
    status, queued = answered(client.post_json("/pose/video", {"video_path": str(clip)}))
    assert status == 202, queued
    assert queued["status"] == "queued" and queued["queue_position"] >= 1 and queued["message"]
    final = client.wait_job(queued["job_id"], path="/pose/video/status/")
    assert final["status"] == "complete" and final["result"]["total_frames"] == CLIP
    assert client.wait_job(busy)["status"] == "complete"


def test_synchronous_process_video(client: ServiceClient, clip: Path) -> None:
    status, body = answered(client.upload_video("/process_video", clip.read_bytes(), max_frames=10))
    assert status == 200 and body["status"] == "success"
    assert RESULT_KEYS <= set(body["data"]) and body["data"]["frame_count"] == 10


# --------------------------------------------------------------------------- bad input


def _truncated(clip: Path) -> bytes:
    return clip.read_bytes()[: clip.stat().st_size // 2]


def _zero_frames(folder: Path) -> bytes:
    path = folder / "empty.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, SIZE)
    writer.release()
    return path.read_bytes() if path.exists() else b"\x00\x00\x00\x18ftypisom" + bytes(100)


def test_bad_videos_are_refused_in_words_and_the_service_keeps_serving(
    client: ServiceClient, clip: Path, folders: dict[str, Path]
) -> None:
    long_clip = write_video(folders["root"] / "long.mp4", [np.zeros((48, 64, 3), np.uint8)] * 151)
    cases = [
        (b"this is not a video at all", None, 415, "not a video"),
        (_truncated(clip), None, 422, "truncated"),
        (_zero_frames(folders["root"]), None, 422, "frame"),
        (long_clip.read_bytes(), None, 413, "151 frames"),
        (bytes(9 * 2**20), None, 413, "bytes"),
        (clip.read_bytes(), "ten", 400, "max_frames"),
        (clip.read_bytes(), "0", 400, "max_frames"),
        (b"", None, 400, "video"),
    ]
    for video, max_frames, expected, words in cases:
        status, body = answered(
            client.upload_video("/process_video_async", video, max_frames=max_frames)
        )
        assert (status, words in body["error"]) == (expected, True), (expected, body)
    status, body = answered(client.post_json("/pose/video", {"video_path": "../jobs.sqlite"}))
    assert status == 400 and "inside" in body["error"]
    (folders["shared"] / "escape.mp4").symlink_to(folders["root"] / "long.mp4")
    status, body = answered(client.post_json("/pose/video", {"video_path": "escape.mp4"}))
    assert status == 400 and "inside" in body["error"]
    status, body = answered(client.post_json("/pose/video", {"video_path": "missing.mp4"}))
    assert status == 400 and "no file" in body["error"]
    assert client.request("GET", "/health").status == 200


# --------------------------------------------------------------------------- restarts


def test_jobs_survive_a_restart_and_a_cut_off_job_runs_again(
    triton_server: LocalTritonServer, production_repository: Path, tmp_path: Path, clip: Path
) -> None:
    env = {"TRACKER_JOB_DATABASE": str(tmp_path / "jobs.sqlite"),
           "TRACKER_JOB_DATA_DIR": str(tmp_path / "jobs")}  # fmt: skip
    long_video = write_video(tmp_path / "runner40.mp4", runner_frames(40))
    first = ServiceProcess(triton_server, production_repository, **env)
    try:
        client = client_of(first.url)
        done = client.upload_video("/process_video_async", clip.read_bytes()).answer()["job_id"]
        assert client.wait_job(done)["status"] == "complete"
        long_bytes = long_video.read_bytes()
        cut = client.upload_video("/process_video_async", long_bytes).answer()["job_id"]
        deadline = time.monotonic() + 120
        while get(client, f"/job_status/{cut}")[1]["status"] != "processing":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(first.process.pid, signal.SIGKILL)  # a crash, in the middle of the job
        first.process.wait(timeout=30)
    finally:
        first.stop()
    second = ServiceProcess(triton_server, production_repository, **env)
    try:
        client = client_of(second.url)
        status, before = get(client, f"/job_status/{done}")
        assert status == 200 and before["status"] == "complete"
        assert before["result"]["total_frames"] == CLIP
        assert client.request("GET", f"/frame/{done}/3").status == 200
        rerun = client.wait_job(cut)
        assert rerun["status"] == "complete", rerun
        assert rerun["result"]["total_frames"] == 40
    finally:
        code, output = second.stop()
    assert code == 0, output
    assert "cut off by a restart" in output

"""The whole-video endpoints' request checks, without Triton (Triton unreachable)."""

import io
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import unreachable_triton_settings
from tracker_service import resources
from tracker_service.app import create_app
from tracker_service.settings import Settings


def _clip(path: Path, count: int = 4) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    for _ in range(count):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    return path.read_bytes()


@pytest.fixture
def app(tmp_path):
    app = create_app(
        unreachable_triton_settings(
            tmp_path,
            job_database=str(tmp_path / "jobs.sqlite"),
            job_data_dir=str(tmp_path / "jobs"),
            job_max_bytes=100_000,
        )  # fmt: skip
    )
    yield app
    resources.close(app)


@pytest.fixture
def client(app):
    return app.test_client()


def _upload(client, data: bytes | None, **form):
    fields = dict(form)
    if data is not None:
        fields["video"] = (io.BytesIO(data), "video.mp4")
    return client.post("/process_video_async", data=fields, content_type="multipart/form-data")


@pytest.mark.parametrize(
    ("data", "form", "status", "words"),
    [
        (None, {}, 400, "'video' is missing"),
        (b"", {}, 400, "empty"),
        (b"GIF89a not a video", {}, 415, "not a video"),
        (b"x" * 100_001, {}, 413, "100000 bytes"),
        ("clip", {"max_frames": "ten"}, 400, "max_frames"),
        ("clip", {"max_frames": "-3"}, 400, "max_frames"),
        ("clip", {"max_frames": "0"}, 400, "max_frames"),
    ],
)
def test_uploads_are_checked_in_words(client, tmp_path, data, form, status, words):
    data = _clip(tmp_path / "c.mp4") if data == "clip" else data
    answer = _upload(client, data, **form)
    assert answer.status_code == status and words in answer.get_json()["error"]


def test_json_instead_of_a_form_is_refused(client):
    answer = client.post("/process_video_async", json={"video": "x"})
    assert answer.status_code == 400 and "multipart/form-data" in answer.get_json()["error"]


def test_unknown_jobs_are_404_in_words(client):
    paths = ("/job_status/nope", "/pose/video/status/nope", "/frame/nope/0", "/output/nope",
             "/result/nope", "/job/nope/frames?start=0&count=5")  # fmt: skip
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 404 and answer.get_json() == {"error": "Job not found"}
    assert client.delete("/job/nope").status_code == 404


def test_path_flavour_is_off_by_default(client):
    answer = client.post("/pose/video", json={"video_path": "/etc/passwd"})
    assert answer.status_code == 400 and "is off" in answer.get_json()["error"]


def test_a_job_without_triton_ends_in_error_in_words_and_the_service_serves(client, tmp_path):
    answer = _upload(client, _clip(tmp_path / "c.mp4"), max_frames="999999")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "accepted" and body["message"]
    deadline = time.monotonic() + 30
    while (status := client.get(f"/job_status/{body['job_id']}").get_json())["status"] in (
        "queued", "processing",
    ):  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status["status"] == "error" and "not ready" in status["error"]
    for path in ("/frame/{}/0", "/result/{}", "/job/{}/frames?start=0&count=2"):
        answer = client.get(path.format(body["job_id"]))
        assert (answer.status_code, answer.get_json()) == (400, {"error": "Job not complete"})
    assert client.get("/health").status_code == 200
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'tracker_jobs{state="error"} 1.0' in metrics and "tracker_job_queue 0.0" in metrics


def test_an_api_replica_queues_and_a_synchronous_wait_is_bounded(tmp_path):
    faces = tmp_path / "faces.npy"
    np.save(faces, np.zeros((13776, 3), np.int32))
    replica = create_app(
        Settings.of(
            smpl_faces=str(faces),
            job_database=str(tmp_path / "jobs.sqlite"),
            job_data_dir=str(tmp_path / "jobs"),
            job_workers=0,
            job_wait_s=0.5,
            job_poll_s=0.1,
            job_heartbeat_s=0.1,
        )  # fmt: skip
    )
    try:
        client = replica.test_client()
        answer = client.post(
            "/process_video", data={"video": (io.BytesIO(_clip(tmp_path / "c.mp4")), "v.mp4")},
            content_type="multipart/form-data",
        )  # fmt: skip
        error = answer.get_json()["error"]
        assert answer.status_code == 504 and "still queued after 0.5 s" in error
        job_id = error.split("poll GET /job_status/")[1]
        status = client.get(f"/job_status/{job_id}").get_json()
        assert (status["status"], status["queue_position"]) == ("queued", 1), "no worker here"
        cancelled = client.delete(f"/job/{job_id}").get_json()
        assert cancelled["status"] == "error" and "before it started" in cancelled["error"]
    finally:
        resources.close(replica)


def test_a_complete_job_without_its_result_says_why_and_what_to_do(client, app, tmp_path):
    """Deleted, or stored whole by a version older than the pieces: both 404 in words."""
    job_id = _upload(client, _clip(tmp_path / "c.mp4")).get_json()["job_id"]
    with app.app_context():
        engine = resources.jobs()
        engine.wait(job_id, 30)
        engine.store.update(job_id, status="complete", error=None)
        result = engine.result_path(job_id)
    paths = (f"/job_status/{job_id}", f"/job_status/{job_id}?frames=0", f"/result/{job_id}",
             f"/job/{job_id}/frames?start=0&count=1")  # fmt: skip
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 404 and "was deleted" in answer.get_json()["error"], path
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_text('{"frames": []}')  # an older version's whole result, no index beside it
    for path in paths:
        error = client.get(path).get_json()["error"]
        assert "older version" in error and "submit the video again" in error, path
    assert client.get("/health").status_code == 200

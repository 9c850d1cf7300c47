"""The one HTTP client, against the real service (waitress, Triton unreachable)."""

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.formparser import parse_form_data

from tests.conftest import unreachable_triton_settings
from tests.stand_in import stand_in, unanswered_url
from tracker_service import resources
from tracker_service.app import create_app
from tracker_service.server import Server
from tracker_tools.client import (
    ClientError,
    ServiceClient,
    encode_multipart,
    scrape,
    triton_batches,
)
from tracker_tools.media import encode_image, read_frames, write_video


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceClient]:
    root = tmp_path_factory.mktemp("service")
    app = create_app(
        unreachable_triton_settings(
            root, job_database=str(root / "jobs.sqlite"), job_data_dir=str(root / "jobs")
        )
    )
    server = Server(app, host="127.0.0.1", port=0, threads=4, max_body_bytes=2**20, grace_s=5)
    loop = threading.Thread(target=server.serve)
    loop.start()
    yield ServiceClient(f"http://127.0.0.1:{server.port}", timeout_s=10.0)
    server.stop()
    loop.join(10)
    resources.close(app)


def test_an_error_answer_is_an_answer_and_answer_raises_in_words(service: ServiceClient) -> None:
    jpeg = encode_image(np.zeros((32, 32, 3), np.uint8))
    response = service.post_frame(jpeg, frame_number=0, session_id="s")
    assert response.status == 503 and response.content_type == "application/json"
    assert "not ready" in response.json()["error"] and response.seconds > 0
    with pytest.raises(ClientError, match="answered 503: .*not ready") as info:
        response.answer()
    assert info.value.status == 503


def test_a_malformed_body_is_sent_as_it_is(service: ServiceClient) -> None:
    response = service.post_json("/pose/hybrid", b"not json")
    assert response.status == 400 and "JSON" in response.json()["error"]


def test_health_and_a_wait_that_gives_up_with_the_reason(service: ServiceClient) -> None:
    assert service.health()["ready"] is False
    started = time.monotonic()
    with pytest.raises(ClientError, match="not ready after 1 s: .*unreachable"):
        service.wait_ready(1.0)
    assert time.monotonic() - started < 5.0


def test_metrics_are_parsed_with_their_labels(service: ServiceClient) -> None:
    service.request("GET", "/health")
    metrics = service.metrics()
    served = {dict(labels).get("status") for name, labels in metrics if name == "tracker_requests"}
    assert "503" in served
    assert service.metric("tracker_sessions") >= 0
    with pytest.raises(KeyError):
        service.metric("no_such_metric")


def test_no_answer_is_a_client_error() -> None:
    with unanswered_url() as nobody:
        client = ServiceClient(nobody, timeout_s=2.0)
        with pytest.raises(ClientError, match="no answer") as info:
            client.request("GET", "/health")
        assert info.value.status is None
        with pytest.raises(ClientError, match="not ready after 0 s"):
            client.wait_ready(0.0)


def test_ready_only_when_health_answers_ready() -> None:
    answers = {
        "/ready/health": (200, b'{"ready": true, "status": "ready"}'),
        "/warming/health": (503, b'{"ready": false, "status": "warming up"}'),
        "/proxy/health": (502, b"<html>bad gateway</html>"),
    }
    with stand_in(answers) as url, unanswered_url() as nobody:
        assert ServiceClient(url + "/ready", timeout_s=5).is_ready()
        assert not ServiceClient(url + "/warming", timeout_s=5).is_ready()
        assert not ServiceClient(url + "/proxy", timeout_s=5).is_ready()
        assert not ServiceClient(nobody, timeout_s=1).is_ready()


def test_measure_counts_the_bytes_without_keeping_them() -> None:
    body = b'{"frames": [' + b"0, " * 600_000 + b"0]}"  # more than one 1 MiB chunk
    with stand_in({"/big": (200, body), "/refused": (503, b'{"error": "no"}')}) as url:
        client = ServiceClient(url, timeout_s=10)
        big = client.measure("/big", {"Accept-Encoding": "gzip"})
        assert (big.status, big.size, big.body) == (200, len(body), b"")
        assert big.seconds > 0 and big.headers["Content-Length"] == str(len(body))
        refused = client.measure("/refused")
        assert (refused.status, refused.size) == (503, 15)
        kept = client.request("GET", "/big")
        assert kept.body == body and kept.size == len(body)
    with unanswered_url() as nobody, pytest.raises(ClientError, match="no answer"):
        ServiceClient(nobody, timeout_s=1).measure("/big")


def test_multipart_body_parses_as_the_mobile_route_sends_it() -> None:
    jpeg = encode_image(np.full((8, 8, 3), 200, np.uint8))
    body, content_type = encode_multipart(
        {"frameNumber": "7"}, {"frame": ("frame", jpeg, "image/jpeg")}
    )
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    _, form, files = parse_form_data(environ)
    frame: FileStorage = files["frame"]
    with frame.stream:
        assert form["frameNumber"] == "7"
        assert frame.mimetype == "image/jpeg" and frame.read() == jpeg


def test_scrape_drops_the_total_suffix() -> None:
    page = '# TYPE a counter\na_total{status="200"} 3.0\n# TYPE b gauge\nb 2.0\n'
    parsed = scrape(page)
    assert parsed[("a", (("status", "200"),))] == 3.0 and parsed[("b", ())] == 2.0


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ServiceClient("http://x", timeout_s=0)


# --------------------------------------------------------------------------- video jobs


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A short MP4 of 4 frames, as :func:`write_video` writes it."""
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(4)]
    path = write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames)
    assert len(read_frames(path, 10)) == 4
    return path.read_bytes()


def test_write_video_refuses_a_path_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="cannot write"):
        write_video(tmp_path / "missing" / "clip.mp4", [np.zeros((48, 64, 3), np.uint8)])


def test_an_uploaded_job_is_polled_until_it_ends(service: ServiceClient, clip: bytes) -> None:
    response = service.upload_video("/process_video_async", clip, max_frames=2)
    accepted = response.answer()
    assert accepted["status"] == "accepted" and accepted["job_id"]
    seen: list[dict[str, Any]] = []
    final = service.wait_job(accepted["job_id"], every_s=0.05, timeout_s=30, on_status=seen.append)
    assert final["status"] == "error" and "not ready" in final["error"]  # Triton unreachable
    assert seen[-1] == final and all(s["status"] != "error" for s in seen[:-1])
    summary = service.wait_job(accepted["job_id"], path="/pose/video/status/", query="?frames=0")
    assert summary["job_id"] == accepted["job_id"] and summary["status"] == "error"


def test_the_synchronous_upload_answers_when_the_job_ended(
    service: ServiceClient, clip: bytes
) -> None:
    response = service.upload_video("/process_video", clip, filename="phone.mp4")
    assert response.status != 200 and "not ready" in response.json()["error"]


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"max_frames": "ten"}, 400, "max_frames"),
        ({"max_frames": 0}, 400, "max_frames"),
        ({"filename": ""}, 400, "'video' is missing or empty"),
    ],
)
def test_upload_fields_reach_the_service(
    service: ServiceClient, clip: bytes, kwargs: dict[str, Any], status: int, words: str
) -> None:
    response = service.upload_video("/process_video_async", clip, **kwargs)
    assert response.status == status and words in response.json()["error"]


def test_waiting_on_an_unknown_job_is_a_client_error_in_words(service: ServiceClient) -> None:
    with pytest.raises(ClientError, match="answered 404: Job not found") as info:
        service.wait_job("nope")
    assert info.value.status == 404


def test_a_job_that_does_not_end_in_time_is_a_timeout_in_words() -> None:
    processing = (200, json.dumps({"status": "processing", "job_id": "j"}).encode())
    with stand_in({"/job_status/j": processing}) as url:
        client = ServiceClient(url, timeout_s=0.3)
        polls: list[dict[str, Any]] = []
        with pytest.raises(TimeoutError, match="job j still processing after 0 s"):
            client.wait_job("j", every_s=0.05, on_status=polls.append)  # the client's timeout
        assert len(polls) >= 2


def test_triton_batch_is_inferences_over_executions_between_scrapes() -> None:
    page = """# TYPE nv_inference_count counter
nv_inference_count{{model="hmr2",version="1"}} {hmr2}
nv_inference_count{{model="person_detector",version="1"}} {det}
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{{model="hmr2",version="1"}} {hmr2_exec}
nv_inference_exec_count{{model="person_detector",version="1"}} {det_exec}
"""
    before = scrape(page.format(hmr2=8, det=2, hmr2_exec=1, det_exec=2))  # warm-up batch of 8
    after = scrape(page.format(hmr2=8 + 24, det=2 + 24, hmr2_exec=1 + 8, det_exec=2 + 24))
    assert triton_batches(before, after) == {"hmr2": 3.0, "person_detector": 1.0}
    assert triton_batches(after, after) == {}

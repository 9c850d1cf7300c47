"""The application factory and its endpoints, without Triton (Triton unreachable)."""

import dataclasses
import io
import json
import logging
import socket
import time

import pytest
from werkzeug.datastructures import FileStorage

from tests.conftest import unreachable_triton_settings
from tracker_service import resources
from tracker_service.api.pose import parse_form, parse_request
from tracker_service.app import create_app
from tracker_service.exceptions import BadRequest
from tracker_service.settings import Settings


@pytest.fixture
def settings(tmp_path):
    return unreachable_triton_settings(
        tmp_path, max_body_bytes=1000, warmup_timeout_s=0.6, reload_wait_s=5.0
    )


@pytest.fixture
def app(settings):
    app = create_app(settings)
    yield app
    resources.close(app)


@pytest.fixture
def client(app):
    return app.test_client()


def test_factory_builds_independent_apps(settings):
    first, second = create_app(settings), create_app(settings)
    with first.app_context():
        frames = resources.frames()
    with second.app_context():
        assert resources.frames() is not frames
    assert not first.debug and first.config["MAX_CONTENT_LENGTH"] == 1000
    for app in (first, second):
        resources.close(app)


def test_missing_faces_file_fails_at_start(tmp_path):
    with pytest.raises(FileNotFoundError, match="faces"):
        create_app(Settings.of(smpl_faces=str(tmp_path / "none.npy")))


def test_health_says_warming_up_while_triton_is_unreachable(client):
    answer = client.get("/health")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "warming_up" and body["ready"] is False
    assert body["models"] == {"hmr2": "not_loaded", "vitdet": "not_loaded", "phalp": "not_loaded"}
    assert "unreachable" in body["error"] and body["device"] == "unknown"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_warmup_waits_bounded_then_says_why_in_words(client, method):
    start = time.monotonic()
    answer = client.open("/warmup", method=method)
    assert 0.6 <= time.monotonic() - start < 5.0
    body = answer.get_json()
    assert answer.status_code == 503 and body["status"] == "warming_up"
    assert "unreachable" in body["message"] and "after 0.6 s" in body["error"]
    assert body["models"] == {"hmr2": "not_loaded", "vitdet": "not_loaded", "phalp": "not_loaded"}
    assert set(body["steps_ms"]) == {"wait"} and body["steps_ms"]["wait"] >= 600


def test_reload_failure_is_503_in_words_and_reported_by_health(client):
    answer = client.post("/reload")
    body = answer.get_json()
    assert answer.status_code == 503 and body["status"] == "error"
    assert "reload failed" in body["error"] and "person_detector" in body["error"]
    assert body["reload"]["state"] == "failed" and body["reload"]["reloaded_ms"] == {}
    assert client.get("/health").get_json()["reload"]["state"] == "failed"
    assert client.get("/reload").status_code == 405


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"data": b""}, 400, "JSON"),
        ({"json": {"frame_number": 1}}, 400, "image_base64 is missing"),
        ({"json": {"image_base64": "x" * 2000}}, 413, "Too Large"),
        ({"json": {"image_base64": "aGVsbG8="}}, 503, "not ready"),
        ({"data": b'{"image_base64": "aGVsbG8="}', "content_type": "text/plain"}, 415, "JSON"),
        ({"data": {"image_base64": "aGVsbG8="}}, 415, "Content-Type"),  # a URL-encoded form
        ({"data": {"frameNumber": "1"}, "content_type": "multipart/form-data"}, 400, "'frame'"),
        (
            {"data": {"frame": (io.BytesIO(b""), "f.png")}, "content_type": "multipart/form-data"},
            400,
            "empty",
        ),
        (
            {
                "data": {"frame": (io.BytesIO(b"x" * 2000), "f.png")},
                "content_type": "multipart/form-data",
            },
            413,
            "Too Large",
        ),
        (
            {
                "data": {"frame": (io.BytesIO(b"x"), "f.png"), "frameNumber": "-2"},
                "content_type": "multipart/form-data",
            },
            400,
            "frame_number",
        ),
        (
            {"data": {"frame": (io.BytesIO(b"x"), "f.png")}, "content_type": "multipart/form-data"},
            503,
            "not ready",
        ),
    ],
)
def test_pose_errors_are_json_in_words(client, kwargs, status, words):
    answer = client.post("/pose/hybrid", **kwargs)
    assert answer.status_code == status and answer.is_json
    assert set(answer.get_json()) == {"error"} and words in answer.get_json()["error"]


def test_unknown_paths_and_methods_are_json(client):
    assert client.get("/missing").status_code == 404 and client.get("/missing").is_json
    answer = client.get("/pose/hybrid")
    assert answer.status_code == 405 and "error" in answer.get_json()
    assert "POST" in answer.headers["Allow"]


def test_internal_error_is_logged_with_its_traceback_but_not_answered(
    app, client, caplog, monkeypatch
):
    def explode(request):
        raise RuntimeError("secret detail")

    with app.app_context():
        monkeypatch.setattr(resources.frames(), "answer", explode)
    with caplog.at_level(logging.ERROR):
        answer = client.post("/pose/hybrid", json={"image_base64": "aGVsbG8="})
    assert answer.status_code == 500
    assert "secret detail" not in json.dumps(answer.get_json())
    assert "internal error" in answer.get_json()["error"]
    assert "secret detail" in caplog.text and "Traceback" in caplog.text


def test_metrics_count_requests_by_endpoint_and_status(client):
    client.get("/health")
    client.post("/pose/hybrid", json={})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'tracker_requests_total{endpoint="/health",status="200"} 1.0' in text
    assert 'tracker_requests_total{endpoint="/pose/hybrid",status="400"} 1.0' in text
    assert "tracker_sessions 0.0" in text


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [
        ({"image_base64": "a"}, None, ("default", 0, False)),
        ({"image_base64": "a", "frame_number": 7, "visualize": True}, None, ("default", 7, True)),
        ({"image_base64": "a", "frame_number": "12"}, None, ("default", 12, False)),
        ({"image_base64": "a", "frame_number": 3.0}, None, ("default", 3, False)),
        ({"image_base64": "a", "session_id": "cam-1"}, None, ("cam-1", 0, False)),
        ({"image_base64": "a"}, "cam-2", ("cam-2", 0, False)),
        ({"image_base64": "a", "session_id": "cam-2"}, "cam-2", ("cam-2", 0, False)),
    ],
)
def test_parse_request(body, header, expected):
    request = parse_request(body, header)
    assert (request.session_id, request.frame_number, request.visualize) == expected


@pytest.mark.parametrize(
    ("body", "header", "words"),
    [
        (None, None, "JSON"),
        ([], None, "JSON object"),
        ({"image_base64": ""}, None, "missing"),
        ({"image_base64": ["a"]}, None, "must be a string"),
        ({"image_base64": "a", "frame_number": -2}, None, "frame_number"),
        ({"image_base64": "a", "frame_number": 1.5}, None, "frame_number"),
        ({"image_base64": "a", "frame_number": True}, None, "frame_number"),
        ({"image_base64": "a", "frame_number": 2**31}, None, "frame_number"),
        ({"image_base64": "a", "frame_number": 10**40}, None, "frame_number"),
        ({"image_base64": "a", "visualize": "maybe"}, None, "visualize"),
        ({"image_base64": "a", "session_id": "a/b"}, None, "session_id"),
        ({"image_base64": "a", "session_id": "x" * 129}, None, "session_id"),
        ({"image_base64": "a", "session_id": 5}, None, "session_id"),
        ({"image_base64": "a", "session_id": "a"}, "b", "differ"),
    ],
)
def test_parse_request_rejects(body, header, words):
    with pytest.raises(BadRequest, match=words):
        parse_request(body, header)


def test_error_messages_do_not_echo_huge_values():
    with pytest.raises(BadRequest) as raised:
        parse_request({"image_base64": "a", "visualize": "v" * 100_000}, None)
    assert len(str(raised.value)) < 200 and "100002 characters" in str(raised.value)


def test_a_frame_refused_while_triton_is_down_does_not_hold_up_the_next(app):
    with app.app_context(), pytest.raises(Exception, match="not ready"):
        resources.frames().answer(parse_request({"image_base64": "a", "frame_number": 0}, None))
    with app.app_context():
        session, ticket = resources.sessions().begin("default", 1)
    step = session.track(ticket, [], (10, 10))  # frame 0 was released: no reorder wait
    assert step.tracked and step.waited_s < 1.0


@pytest.mark.parametrize(
    ("form", "header", "expected"),
    [
        ({}, None, ("default", 0, False)),
        ({"frameNumber": "17", "visualize": "true"}, None, ("default", 17, True)),
        ({"frame_number": "4", "visualize": "0"}, None, ("default", 4, False)),
        ({"session_id": "phone-1"}, None, ("phone-1", 0, False)),
        ({}, "phone-2", ("phone-2", 0, False)),
    ],
)
def test_parse_form(form, header, expected):
    files = {"frame": FileStorage(io.BytesIO(b"\x89PNG..."), "frame.png")}
    request = parse_form(form, files, header)
    assert (request.session_id, request.frame_number, request.visualize) == expected
    assert request.image == b"\x89PNG..."


@pytest.mark.parametrize(
    ("replica", "expected"), [("api-7", "api-7"), ("", f"{socket.gethostname()}:5000")]
)
def test_every_answer_names_the_replica_that_served_it(settings, replica, expected):
    app = create_app(dataclasses.replace(
        settings, server=dataclasses.replace(settings.server, replica_name=replica)
    ))  # fmt: skip
    try:
        client = app.test_client()
        for answer in (client.get("/health"), client.get("/job_status/unknown")):
            assert answer.headers["X-Served-By"] == expected
    finally:
        resources.close(app)

"""The one HTTP client, against the real service (waitress, Triton unreachable)."""

import io
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.formparser import parse_form_data

from tracker_service.app import create_app
from tracker_service.server import Server
from tracker_service.settings import Settings
from tracker_tools.client import ClientError, ServiceClient, encode_multipart, scrape
from tracker_tools.media import encode_image


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceClient]:
    faces = tmp_path_factory.mktemp("faces") / "faces.npy"
    np.save(faces, np.zeros((13776, 3), np.int32))
    app = create_app(Settings(triton_url=f"127.0.0.1:{_free_port()}", smpl_faces=str(faces)))
    server = Server(app, host="127.0.0.1", port=0, threads=4, max_body_bytes=2**20, grace_s=5)
    loop = threading.Thread(target=server.serve)
    loop.start()
    yield ServiceClient(f"http://127.0.0.1:{server.port}", timeout_s=10.0)
    server.stop()
    loop.join(10)
    app.extensions["tracker"].close()


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
    client = ServiceClient(f"http://127.0.0.1:{_free_port()}", timeout_s=2.0)
    with pytest.raises(ClientError, match="no answer") as info:
        client.request("GET", "/health")
    assert info.value.status is None
    with pytest.raises(ClientError, match="not ready after 0 s"):
        client.wait_ready(0.0)


def test_multipart_body_parses_as_the_mobile_route_sends_it() -> None:
    jpeg = encode_image(np.full((8, 8, 3), 200, np.uint8))
    body, content_type = encode_multipart(
        {"frameNumber": "7"}, {"frame": ("frame", jpeg, "image/jpeg")}
    )
    environ = {
        "REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
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

"""The tracker service over real HTTP (waitress) against the real Triton server.

The models are the session's exported graphs (tiny HMR2 with generated weights, the stand-in
body model, the offline detector); frames come from the shared videos, downscaled so that a
few dozen frames run in seconds on a CPU.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from scripts.triton_server import LocalTritonServer
from tests.conftest import shared_path
from tracker_service.app import create_app
from tracker_service.detection import boxes_to_frame, filter_detections, letterbox
from tracker_service.geometry import focal_length, project
from tracker_service.inference import TritonModels
from tracker_service.model_spec import DETECTOR_INPUT_HW, SMPL, SMPL_FACES_FILE
from tracker_service.server import Server
from tracker_service.settings import Settings
from tracker_service.skeleton import LEGACY_ANGLES, SMPL_JOINT_NAMES

pytestmark = pytest.mark.integration

TIMEOUT_S = 120.0
MAX_IMAGE_PIXELS = 2_000_000
MAX_BODY_BYTES = 4 * 2**20


class LiveService:
    """The application served by waitress on a free port, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.server = Server(
            self.app, host="127.0.0.1", port=0, threads=12,
            max_body_bytes=settings.max_request_bytes, grace_s=30,
        )
        self.url = f"http://127.0.0.1:{self.server.port}"
        self._thread = threading.Thread(target=self.server.serve, name="waitress-loop")
        self._thread.start()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes, str]:
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return response.status, response.read(), response.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers["Content-Type"]

    def post(self, payload: Any, headers: dict | None = None) -> tuple[int, dict]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        status, data, _ = self.request(
            "POST", "/pose/hybrid", body, {"Content-Type": "application/json", **(headers or {})}
        )
        return status, json.loads(data)

    def stop(self) -> None:
        self.server.stop()
        self._thread.join(timeout=60)
        self.app.extensions["tracker"].close()


def service_settings(
    triton: LocalTritonServer, repository: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = dict(
        triton_url=triton.grpc_url,
        smpl_faces=str(repository / SMPL.name / "1" / SMPL_FACES_FILE),
        max_image_pixels=MAX_IMAGE_PIXELS,
        max_body_bytes=MAX_BODY_BYTES,
        reorder_wait_s=60.0,
        triton_timeout_s=60.0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def service(triton_server: LocalTritonServer, production_repository: Path) -> Iterator[LiveService]:
    live = LiveService(service_settings(triton_server, production_repository))
    yield live
    live.stop()


def encode(frame: np.ndarray, ext: str = ".jpg") -> str:
    ok, data = cv2.imencode(ext, frame)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def read_frames(name: str, count: int, width: int, start: int = 0) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(shared_path("media", name)))
    frames = []
    index = 0
    while len(frames) < count:
        ok, frame = capture.read()
        assert ok, f"{name} has fewer than {start + count} frames"
        if index >= start:
            height = round(frame.shape[0] * width / frame.shape[1])
            frames.append(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
        index += 1
    capture.release()
    return frames


@pytest.fixture(scope="module")
def vtest() -> list[np.ndarray]:
    return read_frames("vtest.avi", 32, 384)


def faces_of(repository: Path) -> np.ndarray:
    return np.load(repository / SMPL.name / "1" / SMPL_FACES_FILE)


# --------------------------------------------------------------------------- health, metrics


def test_health_is_ready_with_the_legacy_fields(service: LiveService) -> None:
    status, body, content_type = service.request("GET", "/health")
    health = json.loads(body)
    assert status == 200 and content_type == "application/json"
    assert health == {
        "status": "ready",
        "ready": True,
        "models": {"hmr2": "loaded", "vitdet": "loaded", "phalp": "loaded"},
        "device": "cpu",
        "error": None,
    }


def test_health_warming_up_and_pose_503_while_triton_is_unreachable(
    triton_server: LocalTritonServer, production_repository: Path, vtest: list[np.ndarray]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    live = LiveService(service_settings(triton_server, production_repository, triton_url=dead))
    try:
        status, body, _ = live.request("GET", "/health")
        health = json.loads(body)
        assert status == 200
        assert health["status"] == "warming_up" and health["ready"] is False
        assert health["models"] == {"hmr2": "not_loaded", "vitdet": "not_loaded",
                                    "phalp": "not_loaded"}
        assert isinstance(health["error"], str) and "unreachable" in health["error"]

        status, answer = live.post({"image_base64": encode(vtest[0]), "frame_number": 0})
        assert status == 503
        assert "not ready" in answer["error"]
    finally:
        live.stop()


def test_metrics_expose_requests_stages_frames_sessions(
    service: LiveService, vtest: list[np.ndarray]
) -> None:
    status, _ = service.post(
        {"image_base64": encode(vtest[0]), "frame_number": 0, "session_id": "metrics"}
    )
    assert status == 200
    status, body, content_type = service.request("GET", "/metrics")
    text = body.decode()
    assert status == 200 and content_type.startswith("text/plain")
    assert 'tracker_requests_total{endpoint="/pose/hybrid",status="200"}' in text
    for stage in ("decode", "detect", "crop", "hmr2", "track", "answer", "encode"):
        assert f'tracker_stage_seconds_count{{stage="{stage}"}}' in text, stage
    assert 'tracker_request_seconds_bucket{endpoint="/pose/hybrid"' in text
    assert 'tracker_frames_total{source="detected"}' in text
    sessions = float(text.split("\ntracker_sessions ")[1].split()[0])
    assert sessions >= 1
    assert "\ntracker_tracks " in text


# --------------------------------------------------------------------------- the contract


def test_answer_has_every_legacy_field_with_its_type(
    service: LiveService, vtest: list[np.ndarray], production_repository: Path
) -> None:
    frame = vtest[0]
    height, width = frame.shape[:2]
    status, answer = service.post(
        {"image_base64": encode(frame), "frame_number": 0, "session_id": "contract"}
    )
    assert status == 200, answer

    assert answer["frame_number"] == 0
    assert (answer["frame_width"], answer["frame_height"]) == (width, height)
    assert isinstance(answer["processing_time_ms"], float) and answer["processing_time_ms"] > 0
    assert answer["model_version"] == Settings().model_version
    assert answer["has_3d"] is True
    assert answer["error"] is None
    assert "visualization" not in answer

    keypoints = answer["keypoints"]
    assert answer["keypoint_count"] == len(keypoints) == 24
    assert [k["name"] for k in keypoints] == list(SMPL_JOINT_NAMES)
    for k in keypoints:
        assert set(k) == {"name", "x", "y", "z", "x_3d", "y_3d", "z_3d", "confidence"}
        assert all(isinstance(k[f], float) for f in ("x", "y", "z", "x_3d", "y_3d", "z_3d"))
        assert 0.0 <= k["confidence"] <= 1.0 and k["z"] == k["z_3d"]
    joints = np.array(answer["joints_3d_raw"])
    assert joints.shape == (24, 3)
    np.testing.assert_allclose(joints, [[k["x_3d"], k["y_3d"], k["z_3d"]] for k in keypoints])

    assert set(LEGACY_ANGLES) <= set(answer["joint_angles_3d"])
    assert all(0.0 <= v <= 180.0 for v in answer["joint_angles_3d"].values())

    camera = answer["camera_translation"]
    assert len(camera) == 3 and all(isinstance(v, float) for v in camera) and camera[2] > 0
    focal = focal_length(width, height)
    assert answer["scaled_focal_length"] == pytest.approx(focal, abs=0.01)
    params = answer["camera_params"]
    assert set(params) == {"scale", "tx", "ty", "type"} and params["type"] == "weak_perspective"
    assert params["scale"] > 0

    # x, y are the 3D joints projected with the full-image camera.
    pixels = project(joints[None], np.array(camera)[None], focal, (width, height))[0]
    np.testing.assert_allclose([[k["x"], k["y"]] for k in keypoints], pixels, atol=0.05)

    assert answer["mesh_vertices"] == 6890
    assert np.array(answer["mesh_vertices_data"]).shape == (6890, 3)
    np.testing.assert_array_equal(answer["mesh_faces_data"], faces_of(production_repository))
    assert 0.0 < answer["tracking_confidence"] <= 1.0

    # Additive fields.
    assert answer["session_id"] == "contract" and answer["tracked"] is True
    assert answer["track_id"] == 1 and answer["pose_source"] == "detected"
    assert answer["tracks"] and answer["tracks"][0]["track_id"] == 1
    for track in answer["tracks"]:
        assert set(track) == {
            "track_id", "pose_source", "box", "confidence", "camera_translation", "joints_3d",
        }
        assert len(track["box"]) == 4 and np.array(track["joints_3d"]).shape == (24, 3)


def test_frame_without_people_answers_no_body_without_error(service: LiveService) -> None:
    blank = np.full((240, 320, 3), 128, np.uint8)
    status, answer = service.post(
        {"image_base64": encode(blank, ".png"), "frame_number": 0, "session_id": "empty"}
    )
    assert status == 200
    assert answer["has_3d"] is False and answer["keypoints"] == [] and answer["error"] is None
    assert answer["keypoint_count"] == 0 and answer["mesh_faces_data"] == []
    assert (answer["frame_width"], answer["frame_height"]) == (320, 240)


def test_visualization_is_a_jpeg_of_the_frame(
    service: LiveService, vtest: list[np.ndarray]
) -> None:
    frame = vtest[3]
    status, answer = service.post(
        {
            "image_base64": "data:image/jpeg;base64," + encode(frame),
            "frame_number": 0,
            "visualize": True,
            "session_id": "visualize",
        }
    )
    assert status == 200 and answer["has_3d"]
    drawn = cv2.imdecode(
        np.frombuffer(base64.b64decode(answer["visualization"]), np.uint8), cv2.IMREAD_COLOR
    )
    assert drawn.shape == frame.shape
    assert np.abs(drawn.astype(int) - frame.astype(int)).max() > 100  # something was drawn


def test_http_protocol_answers_like_grpc(
    service: LiveService,
    triton_server: LocalTritonServer,
    production_repository: Path,
    vtest: list[np.ndarray],
) -> None:
    payload = {"image_base64": encode(vtest[5]), "frame_number": 0, "session_id": "protocol"}
    live = LiveService(
        service_settings(
            triton_server, production_repository, triton_protocol="http",
            triton_url=triton_server.http_url.removeprefix("http://"),
        )
    )
    try:
        status, over_http = live.post(payload)
    finally:
        live.stop()
    status_grpc, over_grpc = service.post(payload)
    assert status == status_grpc == 200
    assert over_http["track_id"] == over_grpc["track_id"]
    np.testing.assert_allclose(
        over_http["mesh_vertices_data"], over_grpc["mesh_vertices_data"], atol=1e-4
    )


def test_session_header_selects_the_session(service: LiveService, vtest: list[np.ndarray]) -> None:
    status, answer = service.post(
        {"image_base64": encode(vtest[0])}, headers={"X-Session-Id": "from-header"}
    )
    assert status == 200 and answer["session_id"] == "from-header"
    status, answer = service.post({"image_base64": encode(vtest[0]), "session_id": "no spaces!"})
    assert status == 400 and "session_id" in answer["error"]


# --------------------------------------------------------------------------- errors


#: A real JPEG cut after its header: the size is known, the pixels are missing.
TRUNCATED_JPEG = base64.b64encode(
    cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))[1]
    .tobytes()[:700]
).decode()


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "JSON"),
        (b"not json", 400, "JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps({"frame_number": 3}).encode(), 400, "image_base64 is missing"),
        (json.dumps({"image_base64": 5}).encode(), 400, "must be a string"),
        (json.dumps({"image_base64": "aGVsbG8gd29ybGQ="}).encode(), 400, "not a JPEG or PNG"),
        (json.dumps({"image_base64": "/9j/4AAQSkZJRgABAQ" + "A" * 42}).encode(), 400, "JPEG"),
        (json.dumps({"image_base64": "not base64!"}).encode(), 400, "base64"),
        (json.dumps({"image_base64": TRUNCATED_JPEG}).encode(), 400, "does not decode"),
        (
            json.dumps({"image_base64": "aGVsbG8=", "frame_number": -1}).encode(),
            400,
            "frame_number",
        ),
    ],
)
def test_bad_requests_are_answered_in_words(
    service: LiveService, body: bytes, status: int, words: str
) -> None:
    got, data, content_type = service.request(
        "POST", "/pose/hybrid", body, {"Content-Type": "application/json"}
    )
    answer = json.loads(data)
    assert got == status and content_type == "application/json"
    assert set(answer) == {"error"} and words in answer["error"]


def test_too_large_body_and_image_are_413(service: LiveService) -> None:
    status, answer = service.post({"image_base64": "A" * (MAX_BODY_BYTES + 10)})
    assert status == 413 and "Too Large" in answer["error"]
    huge = np.zeros((1500, 1500, 3), np.uint8)  # 2.25 M pixels > 2 M
    status, answer = service.post({"image_base64": encode(huge, ".png")})
    assert status == 413 and "1500x1500" in answer["error"]


def test_unknown_path_and_method_are_json(service: LiveService) -> None:
    status, data, content_type = service.request("GET", "/nope")
    assert status == 404 and content_type == "application/json" and json.loads(data)["error"]
    status, data, content_type = service.request("GET", "/pose/hybrid")
    assert status == 405 and content_type == "application/json" and json.loads(data)["error"]


# --------------------------------------------------------------------------- ordering


def _summary(answer: dict) -> tuple:
    """What tracking decided for a frame: main track, its source, every track and source."""
    tracks = tuple((t["track_id"], t["pose_source"]) for t in answer["tracks"])
    return answer["track_id"], answer["pose_source"], tracks


def test_interleaved_runs_track_like_one_ordered_pass(
    service: LiveService, vtest: list[np.ndarray]
) -> None:
    images = [encode(frame) for frame in vtest]
    ordered = []
    for number, image in enumerate(images):
        status, answer = service.post(
            {"image_base64": image, "frame_number": number, "session_id": "ordered"}
        )
        assert status == 200, answer
        ordered.append(answer)

    runs, run_length = 4, len(images) // 4
    interleaved: dict[int, dict] = {}

    def post_run(run: int) -> None:
        for number in range(run * run_length, (run + 1) * run_length):
            status, answer = service.post(
                {"image_base64": images[number], "frame_number": number,
                 "session_id": "interleaved"}
            )
            assert status == 200, answer
            interleaved[number] = answer

    with ThreadPoolExecutor(runs) as pool:
        for future in [pool.submit(post_run, run) for run in range(runs)]:
            future.result()

    assert all(answer["tracked"] for answer in interleaved.values())
    assert [_summary(interleaved[n]) for n in range(len(images))] == [
        _summary(a) for a in ordered
    ]
    for n, answer in enumerate(ordered):
        np.testing.assert_allclose(
            interleaved[n]["camera_translation"], answer["camera_translation"], atol=1e-3
        )
    assert len({t for a in ordered for t, _ in _summary(a)[2]}) >= 2  # several people tracked


def _new_videos(live: LiveService) -> float:
    text = live.request("GET", "/metrics")[1].decode()
    return float(text.split("\ntracker_new_videos_total ")[1].split()[0])


def test_late_frames_are_untracked_and_frame_zero_starts_a_new_video(
    triton_server: LocalTritonServer, production_repository: Path, vtest: list[np.ndarray]
) -> None:
    wait_s = 1.0
    live = LiveService(
        service_settings(triton_server, production_repository, reorder_wait_s=wait_s)
    )

    def post(number: int) -> dict:
        status, answer = live.post(
            {"image_base64": encode(vtest[number]), "frame_number": number}
        )
        assert status == 200, answer
        return answer

    try:
        first = [post(n) for n in (0, 1, 2, 5)]  # 3 and 4 never come: skipped after the wait
        assert all(a["tracked"] for a in first) and first[-1]["session_id"] == "default"
        late = post(3)  # given up on: answered from its detection, without the tracker
        assert late["tracked"] is False and late["has_3d"] is True and late["track_id"] is None
        assert late["tracks"] == [] and late["error"] is None
        repeated = post(2)  # a lower number alone is no new video: held, then answered late
        assert repeated["tracked"] is False and repeated["processing_time_ms"] >= 1000 * wait_s
        assert post(6)["tracked"] is True and _new_videos(live) == 0

        restart = post(0)  # frame 0 after later frames: a new video, a new tracker
        assert restart["tracked"] is True and _new_videos(live) == 1
        assert restart["track_id"] == 1
        assert all(t["pose_source"] == "detected" for t in restart["tracks"])
    finally:
        live.stop()


# --------------------------------------------------------------------------- coverage


#: Frames of runner.mp4 in which the runner is masked out: 50 of 140, in four bursts.
MASKED = [*range(10, 20), *range(32, 47), *range(65, 78), *range(100, 112)]


def test_runner_has_a_body_in_every_frame_with_one_identity(
    service: LiveService, triton_server: LocalTritonServer
) -> None:
    frames = read_frames("runner.mp4", 140, 640)
    assert len(MASKED) == 50
    models = TritonModels(triton_server.grpc_url, timeout_s=TIMEOUT_S)
    try:
        for number in MASKED:  # paint the runner over with the frame's median colour
            frame = frames[number]
            image, scale, pad = letterbox(frame, DETECTOR_INPUT_HW)
            boxes, scores = models.detect(image[None])
            boxes = boxes_to_frame(boxes[0], scale, pad, frame.shape[1::-1])
            boxes, _ = filter_detections(boxes, scores[0], 0.05, 1)
            colour = np.median(frame.reshape(-1, 3), axis=0)
            for x1, y1, x2, y2 in boxes.astype(int):
                w, h = x2 - x1, y2 - y1
                frame[max(y1 - h // 5, 0) : y2 + h // 5, max(x1 - w // 5, 0) : x2 + w // 5] = colour
    finally:
        models.close()

    answers = []
    for number, frame in enumerate(frames):
        status, answer = service.post(
            {"image_base64": encode(frame), "frame_number": number, "session_id": "runner"}
        )
        assert status == 200, answer
        answers.append(answer)

    assert all(a["has_3d"] and a["keypoint_count"] == 24 and a["error"] is None for a in answers)
    assert {a["track_id"] for a in answers} == {1}
    sources = [a["pose_source"] for a in answers]
    assert [n for n, s in enumerate(sources) if s == "predicted"] == MASKED
    roots = np.array([[a["keypoints"][0]["x"], a["keypoints"][0]["y"]] for a in answers])
    steps = np.linalg.norm(np.diff(roots, axis=0), axis=1)  # steps[n - 1]: frame n - 1 to n
    hidden = set(MASKED)
    detected_steps = [steps[n - 1] for n in range(1, 140) if not {n - 1, n} & hidden]
    burst_steps = [steps[n - 1] for n in range(1, 140) if n in hidden]
    assert max(burst_steps) <= 2 * max(detected_steps), (
        f"the pelvis jumps by {max(burst_steps):.0f} px in a burst; "
        f"at most {max(detected_steps):.0f} px while detected"
    )

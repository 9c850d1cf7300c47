import json
import time

import numpy as np
import pytest

from tracker_service.geometry import focal_length, project
from tracker_service.legacy import AnswerEncoder, FrameInfo, build_answer
from tracker_service.skeleton import LEGACY_ANGLES, SMPL_JOINT_NAMES
from tracker_service.topology import smpl_topology
from tracker_service.values import Body

WIDTH, HEIGHT = 640, 480
FACES = np.random.default_rng(1).integers(0, 6890, (13776, 3)).astype(np.int32)
SMPL = smpl_topology(FACES)


def make_body(track_id: int | None = 1, detected: bool = True, seed: int = 0) -> Body:
    rng = np.random.default_rng(seed)
    return Body(
        track_id=track_id,
        detected=detected,
        box=np.array([100.0, 50.0, 220.0, 400.0], np.float32),
        confidence=0.87654321,
        camera=np.array([0.1, -0.2, 20.0]),
        crop_camera=np.array([1.1, 0.01, -0.02], np.float32),
        joints=rng.normal(0, 0.4, (24, 3)).astype(np.float32),
        vertices=rng.normal(0, 0.4, (6890, 3)).astype(np.float32),
    )


def info(tracked: bool = True) -> FrameInfo:
    return FrameInfo(
        frame_number=7, width=WIDTH, height=HEIGHT, focal=focal_length(WIDTH, HEIGHT),
        session_id="default", model_version="test-1", tracked=tracked,
    )


def encode(answer: dict) -> dict:
    answer["processing_time_ms"] = 12.5
    return json.loads(AnswerEncoder(FACES).encode(answer))


def test_answer_has_every_legacy_field_with_its_json_type():
    body = make_body()
    answer = encode(build_answer(info(), SMPL, [make_body(2, seed=3), body], main=1))

    expected_types = {
        "frame_number": int, "frame_width": int, "frame_height": int,
        "processing_time_ms": float, "model_version": str, "has_3d": bool, "keypoints": list,
        "keypoint_count": int, "joints_3d_raw": list, "joint_angles_3d": dict,
        "camera_translation": list, "scaled_focal_length": float, "camera_params": dict,
        "mesh_vertices": int, "mesh_vertices_data": list, "mesh_faces_data": list,
        "tracking_confidence": float,
    }  # fmt: skip
    for name, kind in expected_types.items():
        assert isinstance(answer[name], kind), name
    assert answer["error"] is None and "visualization" not in answer
    assert (answer["frame_number"], answer["frame_width"], answer["frame_height"]) == (7, 640, 480)
    assert answer["has_3d"] is True and answer["keypoint_count"] == 24
    assert [k["name"] for k in answer["keypoints"]] == list(SMPL_JOINT_NAMES)
    assert answer["mesh_vertices"] == 6890
    assert np.array(answer["mesh_vertices_data"]).shape == (6890, 3)
    np.testing.assert_array_equal(answer["mesh_faces_data"], FACES)
    assert answer["camera_params"] == {
        "scale": pytest.approx(1.1), "tx": pytest.approx(0.01), "ty": pytest.approx(-0.02),
        "type": "weak_perspective",
    }
    assert answer["tracking_confidence"] == 0.8765
    assert set(LEGACY_ANGLES) == set(answer["joint_angles_3d"])
    assert answer["scaled_focal_length"] == round(5000 / 256 * 640, 2)
    # additive
    assert answer["track_id"] == 1 and answer["pose_source"] == "detected"
    assert [t["track_id"] for t in answer["tracks"]] == [2, 1]
    assert answer["tracked"] is True and answer["session_id"] == "default"


def test_keypoints_are_the_joints_projected_with_the_full_camera():
    body = make_body()
    answer = encode(build_answer(info(), SMPL, [body], main=0))
    joints = body.joints.astype(np.float64)
    pixels = project(joints[None], body.camera[None], focal_length(WIDTH, HEIGHT), (640, 480))[0]
    for k, (x, y), (x3, y3, z3) in zip(answer["keypoints"], pixels, joints, strict=True):
        assert (k["x"], k["y"]) == (pytest.approx(x, abs=0.006), pytest.approx(y, abs=0.006))
        assert (k["x_3d"], k["y_3d"], k["z_3d"], k["z"]) == pytest.approx((x3, y3, z3, z3),
                                                                          abs=6e-6)
        assert k["confidence"] == 1.0  # "usable", as the old service answered
    np.testing.assert_allclose(answer["joints_3d_raw"], joints, atol=6e-6)
    np.testing.assert_allclose(answer["camera_translation"], body.camera)


def test_predicted_body_is_flagged_and_its_joints_stay_usable():
    body = make_body(detected=False)
    body = Body(**{**body.__dict__, "confidence": 0.2})  # decayed: the tracker is less sure
    answer = encode(build_answer(info(), SMPL, [body], main=0))
    assert answer["pose_source"] == "predicted" and answer["has_3d"] is True
    assert answer["tracks"][0]["pose_source"] == "predicted"
    assert answer["tracking_confidence"] == 0.2
    assert {k["confidence"] for k in answer["keypoints"]} == {1.0}


def test_frame_without_anyone_keeps_the_types_with_empty_values():
    answer = encode(build_answer(info(), SMPL, [], main=None))
    assert answer["has_3d"] is False and answer["error"] is None
    assert answer["keypoints"] == [] and answer["keypoint_count"] == 0
    assert answer["mesh_faces_data"] == [] and answer["mesh_vertices_data"] == []
    assert answer["mesh_vertices"] == 0 and answer["tracks"] == []
    assert answer["camera_params"]["type"] == "weak_perspective"


def test_late_frame_without_a_track_is_answered_untracked():
    answer = encode(build_answer(info(tracked=False), SMPL, [make_body(track_id=None)], main=0))
    assert answer["tracked"] is False and answer["track_id"] is None
    assert answer["has_3d"] is True and answer["tracks"] == []


def test_late_frame_associated_to_a_track_lists_it():
    answer = encode(build_answer(info(tracked=False), SMPL, [make_body(track_id=3)], main=0))
    assert answer["tracked"] is False and answer["track_id"] == 3
    assert [t["track_id"] for t in answer["tracks"]] == [3]


def test_non_finite_values_are_refused_not_sent():
    body = make_body()
    body.vertices[0, 0] = np.nan
    with pytest.raises(ValueError):
        AnswerEncoder(FACES).encode(build_answer(info(), SMPL, [body], main=0))


def test_full_answer_is_built_and_encoded_fast():
    bodies = [make_body(i, seed=i) for i in range(10)]
    encoder = AnswerEncoder(FACES)
    encoder.encode(build_answer(info(), SMPL, bodies, main=0))
    start = time.perf_counter()
    for _ in range(10):
        encoder.encode(build_answer(info(), SMPL, bodies, main=0))
    assert (time.perf_counter() - start) / 10 < 0.05  # measured ≈ 6 ms here


def test_vertices_written_by_orjson_read_back_as_json_writes_them_in_field_order():
    answer = build_answer(info(), SMPL, [make_body(seed=4)], main=0)
    answer["processing_time_ms"] = 3.5
    body = AnswerEncoder(FACES).encode(answer)
    plain = {**answer, "mesh_vertices_data": answer["mesh_vertices_data"].tolist()}
    expected = json.dumps(plain, allow_nan=False, separators=(",", ":"))
    expected = f'{expected[:-1]},"mesh_faces_data":{json.dumps(FACES.tolist())}}}'
    decoded = json.loads(body)
    assert decoded == json.loads(expected)
    assert list(decoded) == list(json.loads(expected))  # same fields, same order
    assert all(type(v) is float for v in decoded["mesh_vertices_data"][0])


def test_the_mobile_frame_screen_reads_joints_angles_confidence_and_signals():
    body = make_body(detected=False)
    unsure = Body(**{**body.__dict__, "confidence": 0.2})
    answer = encode(build_answer(info(), SMPL, [unsure], main=0))
    assert [j["name"] for j in answer["joints"]] == list(SMPL_JOINT_NAMES)
    for joint, keypoint in zip(answer["joints"], answer["keypoints"], strict=True):
        assert joint == {k: keypoint[k] for k in ("name", "x", "y", "z", "confidence")}
    assert {a["name"]: a["angle"] for a in answer["angles"]} == answer["joint_angles_3d"]
    assert all(a["confidence"] == 1.0 for a in answer["angles"])
    assert answer["overallConfidence"] == answer["tracking_confidence"] == 0.2
    signals = {s["name"]: s for s in answer["detectionSignals"]}
    assert signals["detected"] == {"name": "detected", "value": 0.0, "threshold": 1.0,
                                   "status": "warning"}  # fmt: skip
    assert signals["tracking_confidence"]["status"] == "critical"
    nobody = encode(build_answer(info(), SMPL, [], main=None))
    assert (nobody["joints"], nobody["angles"], nobody["detectionSignals"]) == ([], [], [])
    assert nobody["overallConfidence"] == 0.0

"""A job's result stored once, answered whole or within a budget (no Triton: synthetic bodies)."""

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import orjson
import pytest

from tracker_service.jobs.result import (
    RESERVE_BYTES,
    TIMELINE_IMAGE_PX,
    ResultWriter,
    StoredResult,
    evenly_spaced,
    frame_entry,
    timeline_jpeg,
)
from tracker_service.legacy import FrameInfo, build_answer
from tracker_service.settings import BARE_FRAME_BYTES
from tracker_service.topology import smpl_topology
from tracker_service.tracking import TrackOutput
from tracker_service.tracking.types import BodyPose, TrackState
from tracker_service.values import Body

FACES = np.arange(13776 * 3, dtype=np.int32).reshape(-1, 3) % 6890
SMPL = smpl_topology(FACES)
SUMMARY = {"status": "complete", "total_frames": 0, "fps": 30.0, "output_path": "/x.mp4"}


def _body(track_id: int, rng: np.random.Generator) -> tuple[Body, TrackOutput]:
    box = np.array([100.0, 50.0, 300.0, 400.0])
    body = Body(
        track_id=track_id, detected=True, box=box, confidence=0.9,
        camera=np.array([0.1, 0.2, 20.0]), crop_camera=np.array([1.0, 0.0, 0.1]),
        joints=rng.normal(size=(24, 3)) * 0.3, vertices=rng.normal(size=(6890, 3)) * 0.3,
    )  # fmt: skip
    rotations = np.broadcast_to(np.eye(3), (24, 3, 3))
    output = TrackOutput(
        track_id=track_id, state=TrackState.CONFIRMED, detected=True, box=box, confidence=0.9,
        pose=BodyPose(rotations[:1], rotations[1:], np.zeros(10)), camera=body.camera,
        root_2d=np.array([200.0, 200.0]), detection_index=0, hits=9, age=9, frames_since_seen=0,
    )  # fmt: skip
    return body, output


def _entry(index: int, people: int = 1) -> dict:
    rng = np.random.default_rng(index)
    pairs = [_body(track_id, rng) for track_id in range(1, people + 1)]
    info = FrameInfo(frame_number=index, width=640, height=360, focal=12500.0,
                     session_id="job", model_version="test", tracked=True)  # fmt: skip
    bodies, outputs = [b for b, _ in pairs], [o for _, o in pairs]
    return frame_entry(
        info, SMPL, result_index=index, timestamp=index / 30.0, bodies=bodies, main=0,
        outputs=outputs,
    )  # fmt: skip


def _image(index: int) -> bytes:
    ramp = np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None]
    return timeline_jpeg(np.broadcast_to(ramp + index, (360, 640, 3)).copy())


@pytest.fixture(scope="module")
def encoded() -> list[tuple[bytes, ...]]:
    return [ResultWriter.encode(_entry(n), _image(n)) for n in range(12)]


def _store(folder: Path, encoded: list[tuple[bytes, ...]], budget: int) -> StoredResult:
    writer = ResultWriter(folder / "result.json", FACES, budget)
    for frame in encoded:
        writer.add(frame)
    writer.finish({**SUMMARY, "total_frames": len(encoded)})
    stored = StoredResult.load(folder / "result.json")
    assert stored is not None
    return stored


def _parse(chunks) -> tuple[dict, int]:
    body = b"".join(chunks)
    return json.loads(body), len(body)


def test_the_complete_result_has_every_mesh_image_and_pose_and_the_triangles_once(
    tmp_path: Path, encoded: list[tuple[bytes, ...]]
) -> None:
    stored = _store(tmp_path, encoded, 2**30)
    result, _ = _parse(stored.complete())
    assert result["status"] == "complete" and result["total_frames"] == 12
    assert np.array_equal(result["mesh_faces"], FACES)
    assert result["answer_budget"]["degraded"] is False
    for n, (frame, twin) in enumerate(zip(result["frames"], result["pose_timeline"], strict=True)):
        person = frame["persons"][0]
        assert np.shape(person["meshVertices"]) == (6890, 3) and frame["meshRendered"]
        assert frame["vertices"] == frame["faces"] == person["meshFaces"] == []
        assert len(frame["keypoints"]) == 24 and "persons" not in twin
        assert twin["imageBase64"] == "data:image/jpeg;base64," + base64.b64encode(
            _image(n)
        ).decode()
        assert {k: v for k, v in frame.items() if k != "persons"} == {
            k: v for k, v in twin.items() if k != "imageBase64"
        }


def test_a_frame_entry_and_the_legacy_answer_are_one_value_written_twice() -> None:
    rng = np.random.default_rng(5)
    (body, output), (other, other_output) = _body(4, rng), _body(9, rng)
    info = FrameInfo(frame_number=3, width=640, height=360, focal=12500.0,
                     session_id="job", model_version="test", tracked=True)  # fmt: skip
    answer = build_answer(info, SMPL, [other, body], 1)
    entry = json.loads(orjson.dumps(frame_entry(
        info, SMPL, result_index=0, timestamp=0.1, bodies=[other, body], main=1,
        outputs=[other_output, output],
    ), option=orjson.OPT_SERIALIZE_NUMPY))  # fmt: skip
    assert entry["keypoints"] == answer["keypoints"]
    assert entry["joints3D"] == answer["joints_3d_raw"]
    assert entry["jointAngles"] == answer["joint_angles_3d"]
    assert (entry["confidence"], entry["personId"]) == (answer["tracking_confidence"], 4)
    assert [p["personId"] for p in entry["persons"]] == [4, 9]  # main subject first


def test_mesh_vertices_keep_a_millimetre_and_timeline_images_the_apps_size() -> None:
    entry = _entry(3)
    vertices = entry["persons"][0]["meshVertices"]
    assert np.array_equal(vertices, np.round(vertices, 3))
    large = timeline_jpeg(np.zeros((1088, 1920, 3), np.uint8))
    image = cv2.imdecode(np.frombuffer(large, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (round(1088 * TIMELINE_IMAGE_PX / 1920), TIMELINE_IMAGE_PX, 3)


def _budget(encoded: list[tuple[bytes, ...]], step: str) -> int:
    """A budget with room for 5 of the 12 frames at the level above ``step``."""
    whole, light, bare, timeline, bare_timeline, image = (len(p) for p in encoded[0])
    rooms = {
        "whole": 12 * (whole + timeline + image) * 2,
        "meshes": 12 * (light + timeline + image) + 5 * (whole - light),
        "images": 12 * (light + timeline) + 5 * image,
        "poses": 12 * (bare + bare_timeline) + 5 * (light + timeline - bare - bare_timeline),
    }
    faces = orjson.dumps(FACES, option=orjson.OPT_SERIALIZE_NUMPY)
    return rooms[step] + len(faces) + len(orjson.dumps(SUMMARY)) + RESERVE_BYTES


@pytest.mark.parametrize(
    ("step", "meshes", "images", "poses"),
    [
        ("whole", 12, 12, 12),
        ("meshes", (4, 5), 12, 12),  # meshes on evenly spaced frames
        ("images", 0, (4, 5), 12),  # no mesh, images on evenly spaced frames
        ("poses", 0, 0, (4, 5)),  # neither, pose detail on evenly spaced frames
    ],
)
def test_a_bounded_answer_fits_its_budget_degrading_evenly_and_saying_so(
    tmp_path: Path,
    encoded: list[tuple[bytes, ...]],
    step: str,
    meshes: int | tuple[int, int],
    images: int | tuple[int, int],
    poses: int | tuple[int, int],
) -> None:
    budget = _budget(encoded, step)
    stored = _store(tmp_path, encoded, budget)
    for kind, image_key in (("status", None), ("sync", "image_base64")):
        result, size = _parse(stored.bounded(kind))
        assert size <= budget - RESERVE_BYTES + 600, (kind, size, budget)
        report = result["answer_budget"]
        frames = result["frames"]
        counted = {
            "meshes": [n for n, f in enumerate(frames) if f["persons"][0]["meshVertices"]],
            "images": [n for n, t in enumerate(result["pose_timeline"]) if t["imageBase64"]],
            "poses": [n for n, f in enumerate(result["frames"]) if f["keypoints"]],
        }
        for name, expected in (("meshes", meshes), ("images", images), ("poses", poses)):
            kept = counted[name]
            assert report[name] == len(kept), (kind, name)
            assert kept == evenly_spaced(12, len(kept)), (kind, name, kept)
            if kind == "status":  # the synchronous answer carries each image twice: less room
                low, high = expected if isinstance(expected, tuple) else (expected, expected)
                assert low <= len(kept) <= high, (name, kept)
        assert report["degraded"] == (min(map(len, counted.values())) < 12)
        for frame, twin in zip(result["frames"], result["pose_timeline"], strict=True):
            assert frame["meshRendered"] == bool(frame["persons"][0]["meshVertices"])
            assert twin["meshRendered"] and len(frame["persons"]) == 1
            if image_key:
                assert twin["imageBase64"] == (
                    "data:image/jpeg;base64," + frame[image_key] if frame[image_key] else ""
                )


def test_a_frame_range_carries_meshes_up_to_the_budget(
    tmp_path: Path, encoded: list[tuple[bytes, ...]]
) -> None:
    budget = 3 * len(encoded[0][0]) + 2 * len(FACES.tobytes()) + RESERVE_BYTES
    stored = _store(tmp_path, encoded, budget)
    count, chunks = stored.frames(4, 8)
    frames = json.loads(b"".join(chunks))
    assert 3 <= count < 8 and len(frames) == count
    assert [f["frameNumber"] for f in frames] == list(range(4, 4 + count))
    assert all(np.shape(f["persons"][0]["meshVertices"]) == (6890, 3) for f in frames)
    assert stored.frames(11, 1)[0] == 1


def test_a_bare_frame_weighs_less_than_the_settings_floor_whatever_the_people() -> None:
    crowded = ResultWriter.encode(_entry(1, people=12), _image(1))
    bare, bare_timeline = crowded[2], crowded[4]
    overhead = len(',"imageBase64":""}') + len(',"image_base64":""}') + 4
    assert len(bare) + len(bare_timeline) + overhead <= BARE_FRAME_BYTES


def test_a_discarded_result_leaves_nothing(tmp_path: Path, encoded: list) -> None:
    writer = ResultWriter(tmp_path / "result.json", FACES, 2**30)
    writer.add(encoded[0])
    writer.discard()
    assert list(tmp_path.iterdir()) == []
    assert StoredResult.load(tmp_path / "result.json") is None

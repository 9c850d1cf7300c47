"""The legacy answer of ``POST /pose/hybrid``, built from the main subject's body.

Field names, types and meanings are those of ``LEGACY_API.md``; additive fields say which
track was answered, whether it was detected or predicted and whether it was smoothed, and
list every tracked person.

JSON is built with numpy rounding and ``tolist()`` (no per-element Python work); the mesh
vertices (20,670 numbers) stay a numpy array that orjson writes (the same shortest round-trip
numbers as ``json``), and the mesh triangles, which never change, are serialised once at
start; both are spliced into the answer's text (:class:`AnswerEncoder`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from tracker_service.geometry import joint_angles, project
from tracker_service.model_spec import SMPL_FACES, SMPL_VERTICES
from tracker_service.skeleton import LEGACY_ANGLES, SMPL_JOINT_NAMES
from tracker_service.values import Body

#: Every joint of an answered body, detected or predicted: the backend reads a keypoint's
#: ``confidence`` as "this joint is usable" (its filters drop joints below 0.5-0.6), as the
#: old service's constant 1.0 meant; how sure the tracker is goes in ``tracking_confidence``.
KEYPOINT_CONFIDENCE = 1.0
#: Decimals kept: pixels, metres, degrees, confidences.
_PX, _M, _DEG, _CONF = 2, 5, 2, 4


@dataclass(frozen=True, kw_only=True)
class FrameInfo:
    """What the answer says about the frame itself.

    Attributes:
        frame_number: Echoed from the request.
        width: Decoded image width.
        height: Decoded image height.
        focal: Focal length of the full-image camera, pixels.
        session_id: The session that tracked the frame.
        model_version: Names the model set.
        tracked: False for a late frame: associated with the tracks as they are (read-only),
            not used to update them.

    """

    frame_number: int
    width: int
    height: int
    focal: float
    session_id: str
    model_version: str
    tracked: bool


def build_answer(info: FrameInfo, bodies: Sequence[Body], main: int | None) -> dict[str, Any]:
    """Build the legacy answer, without ``processing_time_ms`` and the mesh triangles.

    Args:
        info: The frame.
        bodies: Every body of the frame (the tracked people; a body without a track id, late
            and matching no track, is answered but not listed in ``tracks``).
        main: Index in ``bodies`` of the main subject, or None when there is nobody.

    Returns:
        The answer as a dict for :class:`AnswerEncoder`, which adds ``mesh_faces_data``:
        JSON-ready except ``mesh_vertices_data``, a rounded float64 (6890, 3) array.

    """
    answer: dict[str, Any] = {
        "frame_number": info.frame_number,
        "frame_width": info.width,
        "frame_height": info.height,
        "model_version": info.model_version,
        "scaled_focal_length": round(info.focal, _PX),
        "error": None,
        "session_id": info.session_id,
        "tracked": info.tracked,
        "tracks": _tracks([body for body in bodies if body.track_id is not None]),
    }
    if main is None:
        answer.update(_NO_BODY)
        return answer
    body = bodies[main]
    joints = np.asarray(body.joints, dtype=np.float64)
    pixels = project(joints[None], body.camera[None], info.focal, (info.width, info.height))[0]
    xy = np.round(pixels, _PX).tolist()
    xyz = np.round(joints, _M).tolist()
    confidence = round(float(np.clip(body.confidence, 0.0, 1.0)), _CONF)
    keypoints = [
        {
            "name": name, "x": x, "y": y, "z": z3,
            "x_3d": x3, "y_3d": y3, "z_3d": z3, "confidence": KEYPOINT_CONFIDENCE,
        }
        for name, (x, y), (x3, y3, z3) in zip(SMPL_JOINT_NAMES, xy, xyz, strict=True)
    ]  # fmt: skip
    angles = joint_angles(joints[None], LEGACY_ANGLES)
    scale, tx, ty = np.round(np.asarray(body.crop_camera, dtype=np.float64), _M).tolist()
    answer.update(
        {
            "has_3d": True,
            "keypoints": keypoints,
            "keypoint_count": len(keypoints),
            "joints_3d_raw": xyz,
            "joint_angles_3d": {name: round(float(v[0]), _DEG) for name, v in angles.items()},
            "camera_translation": np.round(body.camera.astype(np.float64), _M).tolist(),
            "camera_params": {"scale": scale, "tx": tx, "ty": ty, "type": "weak_perspective"},
            "mesh_vertices": len(body.vertices),
            "mesh_vertices_data": np.round(body.vertices.astype(np.float64), _M),
            "tracking_confidence": confidence,
            "track_id": body.track_id,
            "pose_source": "detected" if body.detected else "predicted",
            "smoothed": body.smoothed,
        }
    )
    return answer


#: The body fields of a frame without anyone to answer (same types, empty values).
_NO_BODY: dict[str, Any] = {
    "has_3d": False,
    "keypoints": [],
    "keypoint_count": 0,
    "joints_3d_raw": [],
    "joint_angles_3d": {},
    "camera_translation": [],
    "camera_params": {"scale": 0.0, "tx": 0.0, "ty": 0.0, "type": "weak_perspective"},
    "mesh_vertices": 0,
    "mesh_vertices_data": [],
    "tracking_confidence": 0.0,
    "track_id": None,
    "pose_source": None,
    "smoothed": False,
}


def _tracks(bodies: Sequence[Body]) -> list[dict[str, Any]]:
    """Every tracked person of the frame: id, source, box, confidence, camera, 3D joints."""
    if not bodies:
        return []
    boxes = np.round(np.stack([b.box for b in bodies]).astype(np.float64), _PX).tolist()
    cameras = np.round(np.stack([b.camera for b in bodies]).astype(np.float64), _M).tolist()
    joints = np.round(np.stack([b.joints for b in bodies]).astype(np.float64), _M).tolist()
    return [
        {
            "track_id": body.track_id,
            "pose_source": "detected" if body.detected else "predicted",
            "smoothed": body.smoothed,
            "box": box,
            "confidence": round(float(body.confidence), _CONF),
            "camera_translation": camera,
            "joints_3d": body_joints,
        }
        for body, box, camera, body_joints in zip(bodies, boxes, cameras, joints, strict=True)
    ]


def load_faces(path: str | Path) -> np.ndarray:
    """Read the mesh triangles the exporter wrote beside the body model.

    Raises:
        FileNotFoundError: The file is missing (the message says how to write it).
        ValueError: The array is not (13776, 3) vertex indices.

    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the exporter writes it beside the body model "
            "(`python -m scripts.export_hmr2 --faces-only --smpl SMPL_NEUTRAL.pkl "
            "--extra-regressor SMPL_to_J19.pkl`); set TRACKER_SMPL_FACES to its path"
        )
    faces = np.load(path, allow_pickle=False)
    if faces.shape != (SMPL_FACES, 3) or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"{path}: expected ({SMPL_FACES}, 3) integers, got {faces.dtype} "
                         f"{faces.shape}")
    if faces.min() < 0 or faces.max() >= SMPL_VERTICES:
        raise ValueError(f"{path}: vertex indices must lie in [0, {SMPL_VERTICES})")
    return faces.astype(np.int32)


#: Stands for the mesh vertices in the answer's text until orjson's text replaces it.
_VERTICES_SLOT = "\x00mesh_vertices_data\x00"
_VERTICES_SLOT_JSON = json.dumps(_VERTICES_SLOT).encode()


class AnswerEncoder:
    """Serialises answers, splicing in the mesh vertices and the triangles serialised once.

    Args:
        faces: (F, 3) mesh triangles.

    """

    def __init__(self, faces: np.ndarray) -> None:
        self._faces_json = json.dumps(np.asarray(faces).tolist(), separators=(",", ":")).encode()

    def encode(self, answer: dict[str, Any]) -> bytes:
        """Serialise an answer to JSON bytes, with ``mesh_faces_data`` (empty without a body).

        ``mesh_vertices_data`` may be a float numpy array (written by orjson) or a list.

        Raises:
            ValueError: A value is NaN or infinite (never sent: JSON has no such numbers).

        """
        vertices = answer.get("mesh_vertices_data")
        if isinstance(vertices, np.ndarray):
            if not np.isfinite(vertices).all():
                raise ValueError("mesh_vertices_data holds NaN or infinite values")
            answer = {**answer, "mesh_vertices_data": _VERTICES_SLOT}
        text = json.dumps(answer, allow_nan=False, separators=(",", ":")).encode()
        if isinstance(vertices, np.ndarray):
            head, tail = text.split(_VERTICES_SLOT_JSON)
            text = b"".join((head, orjson.dumps(vertices, option=orjson.OPT_SERIALIZE_NUMPY), tail))
        faces = self._faces_json if answer.get("has_3d") else b"[]"
        return b"".join((text[:-1], b',"mesh_faces_data":', faces, b"}"))

"""The legacy answer of ``POST /pose/hybrid``, built from the main subject's body.

A frame's answer is one value, :class:`FramePose` (computed once by :func:`frame_pose`),
with two serialisers: :func:`legacy_answer` here, and a job's per-frame object
(:func:`tracker_service.jobs.result.frame_entry`). Field names, types and meanings are those
of ``LEGACY_API.md``; additive fields say which track was answered, whether it was detected
or predicted and whether it was smoothed, list every tracked person, and give what the
backend's mobile frame screen reads (``joints``, ``angles``, ``overallConfidence``,
``detectionSignals``).

JSON is built with numpy rounding and ``tolist()`` (no per-element Python work); the mesh
vertices (20,670 numbers with SMPL) stay a numpy array that orjson writes (the same shortest
round-trip numbers as ``json``), and the mesh triangles, which never change, are serialised once at
start; both are spliced into the answer's text (:class:`AnswerEncoder`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from tracker_service.geometry import joint_angles, project
from tracker_service.topology import BodyTopology
from tracker_service.values import Body

#: Every joint of an answered body, detected or predicted: the backend reads a keypoint's
#: ``confidence`` as "this joint is usable" (its filters drop joints below 0.5-0.6), as the
#: old service's constant 1.0 meant; how sure the tracker is goes in ``tracking_confidence``.
KEYPOINT_CONFIDENCE = 1.0
#: A tracking confidence at or above this is ``good`` in ``detectionSignals`` (the backend's
#: quality filters keep what reaches 0.5).
USABLE_CONFIDENCE = 0.5
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


@dataclass(frozen=True)
class FramePose:
    """One frame's answer as a value, computed once: what both serialisers read.

    :func:`legacy_answer` writes it as ``/pose/hybrid``'s answer and
    :func:`tracker_service.jobs.result.frame_entry` as a job's per-frame object.

    Attributes:
        info: The frame.
        topology: The body model's joints (their names and the legacy angles).
        bodies: Every body of the frame (the tracked people; a body without a track id,
            late and matching no track, is answered but not listed in ``tracks``).
        main: Index in ``bodies`` of the main subject, or None when there is nobody.
        joints: (J, 3) the main subject's joints in metres, rounded (empty without one).
        pixels: (J, 2) those joints projected with the full-image camera, rounded.
        angles: The legacy joint angles of the main subject, degrees.
        confidence: How sure the tracker is of the main subject (0 without one).

    """

    info: FrameInfo
    topology: BodyTopology
    bodies: Sequence[Body]
    main: int | None
    joints: np.ndarray
    pixels: np.ndarray
    angles: dict[str, float]
    confidence: float

    @property
    def body(self) -> Body | None:
        """The main subject's body."""
        return None if self.main is None else self.bodies[self.main]

    def keypoints(self) -> list[dict[str, Any]]:
        """The legacy joint objects (``LEGACY_API.md``), empty without a main subject."""
        return [
            {
                "name": name, "x": x, "y": y, "z": z3,
                "x_3d": x3, "y_3d": y3, "z_3d": z3, "confidence": KEYPOINT_CONFIDENCE,
            }
            for name, (x, y), (x3, y3, z3) in zip(
                self.topology.joint_names, self.pixels.tolist(), self.joints.tolist(), strict=False
            )
        ]  # fmt: skip


def frame_pose(
    info: FrameInfo, topology: BodyTopology, bodies: Sequence[Body], main: int | None
) -> FramePose:
    """Compute a frame's answer value: the main subject's joints, pixels, angles, confidence."""
    if main is None:
        return FramePose(
            info=info, topology=topology, bodies=bodies, main=None, joints=np.zeros((0, 3)),
            pixels=np.zeros((0, 2)), angles={}, confidence=0.0,
        )  # fmt: skip
    body = bodies[main]
    joints = np.asarray(body.joints, dtype=np.float64)
    pixels = project(joints[None], body.camera[None], info.focal, (info.width, info.height))[0]
    angles = joint_angles(joints[None], topology.angles)
    return FramePose(
        info=info, topology=topology, bodies=bodies, main=main, joints=np.round(joints, _M),
        pixels=np.round(pixels, _PX),
        angles={name: round(float(v[0]), _DEG) for name, v in angles.items()},
        confidence=round(float(np.clip(body.confidence, 0.0, 1.0)), _CONF),
    )  # fmt: skip


def build_answer(
    info: FrameInfo, topology: BodyTopology, bodies: Sequence[Body], main: int | None
) -> dict[str, Any]:
    """Build the legacy answer of a frame (see :func:`legacy_answer`)."""
    return legacy_answer(frame_pose(info, topology, bodies, main))


def legacy_answer(pose: FramePose) -> dict[str, Any]:
    """Write a frame's value as the legacy answer, without ``processing_time_ms`` and faces.

    Returns:
        The answer as a dict for :class:`AnswerEncoder`, which adds ``mesh_faces_data``:
        JSON-ready except ``mesh_vertices_data``, a rounded float64 (V, 3) array.

    """
    info = pose.info
    answer: dict[str, Any] = {
        "frame_number": info.frame_number,
        "frame_width": info.width,
        "frame_height": info.height,
        "model_version": info.model_version,
        "scaled_focal_length": round(info.focal, _PX),
        "error": None,
        "session_id": info.session_id,
        "tracked": info.tracked,
        "tracks": _tracks([body for body in pose.bodies if body.track_id is not None]),
    }
    body = pose.body
    if body is None:
        answer.update(_NO_BODY)
        return answer
    keypoints = pose.keypoints()
    scale, tx, ty = np.round(np.asarray(body.crop_camera, dtype=np.float64), _M).tolist()
    answer.update(
        {
            "has_3d": True,
            "keypoints": keypoints,
            "keypoint_count": len(keypoints),
            "joints_3d_raw": pose.joints.tolist(),
            "joint_angles_3d": pose.angles,
            "camera_translation": np.round(body.camera.astype(np.float64), _M).tolist(),
            "camera_params": {"scale": scale, "tx": tx, "ty": ty, "type": "weak_perspective"},
            "mesh_vertices": len(body.vertices),
            "mesh_vertices_data": np.round(body.vertices.astype(np.float64), _M),
            "tracking_confidence": pose.confidence,
            "track_id": body.track_id,
            "pose_source": _source(body),
            "smoothed": body.smoothed,
            **_screen_fields(pose),
        }
    )
    return answer


def _source(body: Body) -> str:
    return "detected" if body.detected else "predicted"


def _screen_fields(pose: FramePose) -> dict[str, Any]:
    """What the backend's mobile frame screen reads (``PoseData``): additive fields.

    ``joints`` (name, pixel x and y, depth z in metres, confidence), ``angles`` (name,
    degrees, confidence), ``overallConfidence`` (the tracker's) and ``detectionSignals``
    (name, value, threshold, status ``good``/``warning``/``critical``).
    """
    body = pose.body
    if body is None:
        return {"joints": [], "angles": [], "overallConfidence": 0.0, "detectionSignals": []}
    usable = KEYPOINT_CONFIDENCE
    joints = [
        {"name": k["name"], "x": k["x"], "y": k["y"], "z": k["z"], "confidence": usable}
        for k in pose.keypoints()
    ]
    angles = [
        {"name": name, "angle": angle, "confidence": usable}
        for name, angle in pose.angles.items()
    ]
    level = pose.confidence
    signals = [
        {"name": "detected", "value": float(body.detected), "threshold": 1.0,
         "status": "good" if body.detected else "warning"},
        {"name": "tracking_confidence", "value": level, "threshold": USABLE_CONFIDENCE,
         "status": "good" if level >= USABLE_CONFIDENCE else
         "warning" if level >= USABLE_CONFIDENCE / 2 else "critical"},
    ]  # fmt: skip
    return {
        "joints": joints,
        "angles": angles,
        "overallConfidence": level,
        "detectionSignals": signals,
    }


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
    "joints": [],
    "angles": [],
    "overallConfidence": 0.0,
    "detectionSignals": [],
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
            "pose_source": _source(body),
            "smoothed": body.smoothed,
            "box": box,
            "confidence": round(float(body.confidence), _CONF),
            "camera_translation": camera,
            "joints_3d": body_joints,
        }
        for body, box, camera, body_joints in zip(bodies, boxes, cameras, joints, strict=True)
    ]



def faces_json(faces: np.ndarray) -> bytes:
    """The mesh triangles as JSON, ``[[i,j,k],...]``: serialised once, by every answer."""
    return orjson.dumps(np.ascontiguousarray(faces, np.int32), option=orjson.OPT_SERIALIZE_NUMPY)


#: Stands for the mesh vertices in the answer's text until orjson's text replaces it.
_VERTICES_SLOT = "\x00mesh_vertices_data\x00"
_VERTICES_SLOT_JSON = json.dumps(_VERTICES_SLOT).encode()


class AnswerEncoder:
    """Serialises answers, splicing in the mesh vertices and the triangles serialised once.

    Args:
        faces: (F, 3) mesh triangles.

    """

    def __init__(self, faces: np.ndarray) -> None:
        self._faces_json = faces_json(faces)

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

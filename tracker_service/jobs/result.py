"""A job's result as ``VIDEO_API.md`` gives it: camelCase per-frame objects, and ``persons``.

The per-frame keypoints, 3D joints and joint angles come from the legacy answer
(:func:`tracker_service.legacy.build_answer`: one place computes them). Frames are
serialised one at a time with orjson (mesh vertices as numpy arrays, the mesh triangles as
one pre-serialised fragment) into part files; :class:`ResultWriter` joins them into the
result file, so that a long video's result never sits in memory.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from tracker_service.legacy import FrameInfo, build_answer
from tracker_service.tracking import TrackOutput
from tracker_service.values import Body

_M, _CONF, _S = 5, 4, 4
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def source(output: TrackOutput) -> str:
    """``detected``, ``interpolated`` (filled between two observations) or ``predicted``."""
    if output.detected:
        return "detected"
    return "interpolated" if output.interpolated else "predicted"


def frame_entry(
    info: FrameInfo,
    *,
    result_index: int,
    timestamp: float,
    bodies: Sequence[Body],
    main: int | None,
    outputs: Sequence[TrackOutput],
    faces: orjson.Fragment,
) -> dict[str, Any]:
    """One per-frame object (without ``imageBase64``).

    Args:
        info: The frame (its ``frame_number`` is the index in the video).
        result_index: Index of the frame in the result.
        timestamp: Seconds from the video's start.
        bodies: Every tracked body of the frame.
        main: Index of the main subject in ``bodies``, or None.
        outputs: The tracker's (refined) outputs for the frame, for the flags and poses.
        faces: The mesh triangles, pre-serialised.

    """
    answer = build_answer(info, bodies, main)
    by_id = {output.track_id: output for output in outputs}
    order = ([main] if main is not None else []) + [i for i in range(len(bodies)) if i != main]
    persons = [_person(bodies[i], by_id[_track_id(bodies[i])], faces) for i in order]
    has_body = main is not None
    return {
        "frameNumber": result_index,
        "originalFrameNumber": info.frame_number,
        "timestamp": round(timestamp, _S),
        "confidence": answer["tracking_confidence"],
        "keypoints": answer["keypoints"],
        "joints3D": answer["joints_3d_raw"],
        "jointAngles": answer["joint_angles_3d"],
        "has3D": answer["has_3d"],
        "meshRendered": has_body,
        "vertices": answer["mesh_vertices_data"],
        "faces": faces if has_body else [],
        "tracked": has_body,
        "personId": answer["track_id"],
        "poseSource": persons[0]["source"] if persons else None,
        "persons": persons,
    }


def _track_id(body: Body) -> int:
    """A tracked body's id (every body of a job comes from its tracker)."""
    if body.track_id is None:
        raise ValueError("a job's body has no track id")
    return body.track_id


def _person(body: Body, output: TrackOutput, faces: orjson.Fragment) -> dict[str, Any]:
    """One tracked person in the shape the backend stores (``VIDEO_API.md``), plus flags."""
    pose = output.pose
    smpl = (
        {
            "global_orient": np.round(pose.global_orient, _M),
            "body_pose": np.round(pose.body_pose, _M),
            "betas": np.round(pose.betas, _M),
        }
        if pose is not None
        else None
    )
    return {
        "personId": body.track_id,
        "confidence": round(float(np.clip(body.confidence, 0.0, 1.0)), _CONF),
        "tracked": True,
        "source": source(output),
        "detected": output.detected,
        "interpolated": output.interpolated,
        "predicted": not output.detected and not output.interpolated,
        "box": np.round(body.box.astype(np.float64), 2),
        "camera": np.round(body.camera.astype(np.float64), _M),
        "cameraWeakPerspective": np.round(np.asarray(body.crop_camera, np.float64), _M),
        "smpl": smpl,
        "meshVertices": np.round(body.vertices.astype(np.float64), _M),
        "meshFaces": faces,
    }


def faces_fragment(faces: np.ndarray) -> orjson.Fragment:
    """The mesh triangles serialised once, for every frame and person."""
    return orjson.Fragment(orjson.dumps(np.ascontiguousarray(faces, np.int32), option=_OPTIONS))


def evenly_spaced(total: int, wanted: int | None) -> list[int]:
    """``wanted`` frame indices evenly spaced over ``total`` frames (every frame when None)."""
    if wanted is None or wanted >= total:
        return list(range(total))
    return sorted({round(i * (total - 1) / max(wanted - 1, 1)) for i in range(wanted)})


def summary_path(result: Path) -> Path:
    """The file of a result's summary keys alone (without ``frames`` and ``pose_timeline``)."""
    return result.with_suffix(".summary.json")


class ResultWriter:
    """Writes a result file: the frames, the timeline (frames with images), then the rest.

    Args:
        path: The result file; ``<path>.frames`` and ``<path>.timeline`` are the parts.

    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._parts = [path.with_suffix(".frames"), path.with_suffix(".timeline")]
        self._files = [part.open("wb") for part in self._parts]
        self.count = 0

    @staticmethod
    def encode(entry: dict[str, Any], image_jpeg: bytes) -> tuple[bytes, bytes]:
        """Serialise one per-frame object, and its ``pose_timeline`` twin with the image.

        The twin leaves out ``persons`` (additive, and in ``frames`` already): a mesh costs
        about 0.4 MB of JSON. Safe to call from several threads.
        """
        frame = orjson.dumps(entry, option=_OPTIONS)
        twin = orjson.dumps({k: v for k, v in entry.items() if k != "persons"}, option=_OPTIONS)
        image = b',"imageBase64":"data:image/jpeg;base64,' + base64.b64encode(image_jpeg) + b'"}'
        return frame, twin[:-1] + image

    def add(self, encoded: tuple[bytes, bytes]) -> None:
        """Append one frame, as :meth:`encode` serialised it (frames in result order)."""
        separator = b"," if self.count else b""
        for file, data in zip(self._files, encoded, strict=True):
            file.write(separator + data)
        self.count += 1

    def finish(self, summary: dict[str, Any]) -> None:
        """Join the parts and the summary keys into the result file, and remove the parts.

        The summary keys are also written alone, to :func:`summary_path`.
        """
        summary_path(self.path).write_bytes(orjson.dumps(summary, option=_OPTIONS))
        for file in self._files:
            file.close()
        partial = self.path.with_suffix(".part")
        with partial.open("wb") as out:
            for key, part in zip(
                (b'{"frames":[', b'],"pose_timeline":['), self._parts, strict=True
            ):
                out.write(key)
                with part.open("rb") as source:
                    shutil.copyfileobj(source, out)
            out.write(b"]," + orjson.dumps(summary, option=_OPTIONS)[1:])
        partial.replace(self.path)
        self.discard()

    def discard(self) -> None:
        """Remove the part files (a job that failed)."""
        for file in self._files:
            file.close()
        for part in self._parts:
            part.unlink(missing_ok=True)

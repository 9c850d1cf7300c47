"""A job's result (``VIDEO_API.md``): stored once, answered within a budget.

Each answered frame is serialised once, with orjson, in every form an answer may take, and
appended to one parts file (:class:`ResultWriter`); answers are assembled from those pieces
(:class:`StoredResult`), streamed, never whole in memory:

- a status or synchronous answer (``GET /job_status``, ``POST /process_video``) never
  exceeds ``answer_budget_bytes``. A video that does not fit whole is *degraded*, in this
  order, each step on all but an evenly spaced set of frames as large as fits: meshes
  (``meshVertices`` empty, ``meshRendered: false``), then timeline images
  (``imageBase64: ""``), then pose detail (``keypoints``, ``joints3D``, ``jointAngles``,
  ``smpl`` empty; ``persons`` holds the main subject alone). The result's ``answer_budget``
  says what was kept, and the job's log says it once;
- the complete result (``GET /result/<id>``) and frame ranges (``GET /job/<id>/frames``)
  carry every mesh and every image.

Mesh triangles are the same for every frame and person: an answer carries them once, as
``mesh_faces``; the per-frame ``faces`` and ``vertices`` and the persons' ``meshFaces`` are
empty lists, and each person's mesh is its ``meshVertices`` (``docs/backend_readers.md``
lists who reads what). Numbers keep the decimals of their precision: mesh vertices to the
millimetre, timeline images at the size the apps show them.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import orjson

from tracker_service.legacy import FrameInfo, faces_json, frame_pose
from tracker_service.render import encode_jpeg
from tracker_service.topology import BodyTopology
from tracker_service.tracking import TrackOutput
from tracker_service.values import Body

log = logging.getLogger(__name__)

#: Decimals kept: metres of a mesh (1 mm), rotation entries and cameras, confidences, seconds.
_MESH, _M, _CONF, _S = 3, 4, 4, 4
#: Longest side of a timeline image, pixels: the apps show it at a phone's width.
TIMELINE_IMAGE_PX = 640
#: Room kept in a budget for what an endpoint adds around the result (job id, progress...)
#: and for the result's ``answer_budget`` report.
RESERVE_BYTES = 2048
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY

#: The forms of a frame in the parts file, in this order.
_MESH_FRAME, _FRAME, _BARE_FRAME, _TIMELINE, _BARE_TIMELINE, _IMAGE = range(6)
#: Per degradation level (0: whole ... 3: bare): the form of the frame and of its timeline
#: entry, and whether its image is kept.
_FRAME_FORM = (_MESH_FRAME, _FRAME, _FRAME, _BARE_FRAME)
_TIMELINE_FORM = (_TIMELINE, _TIMELINE, _TIMELINE, _BARE_TIMELINE)
_WITH_IMAGE = (True, True, False, False)
_DEGRADED = ("meshes", "images", "poses")
_FRAME_IMAGE = b',"image_base64":"'
_TIMELINE_IMAGE = b',"imageBase64":"data:image/jpeg;base64,'
_TIMELINE_NO_IMAGE = b',"imageBase64":"'
_HEAD, _MIDDLE = b'{"frames":[', b'],"pose_timeline":['
_CHUNK = 2**20

Answer = Literal["status", "sync"]


def source(output: TrackOutput) -> str:
    """``detected``, ``interpolated`` (filled between two observations) or ``predicted``."""
    if output.detected:
        return "detected"
    return "interpolated" if output.interpolated else "predicted"


def frame_entry(
    info: FrameInfo,
    topology: BodyTopology,
    *,
    result_index: int,
    timestamp: float,
    bodies: Sequence[Body],
    main: int | None,
    outputs: Sequence[TrackOutput],
) -> dict[str, Any]:
    """One per-frame object, with its meshes (see :meth:`ResultWriter.encode` for its forms).

    Args:
        info: The frame (its ``frame_number`` is the index in the video).
        topology: The body model's joints.
        result_index: Index of the frame in the result.
        timestamp: Seconds from the video's start.
        bodies: Every tracked body of the frame.
        main: Index of the main subject in ``bodies``, or None.
        outputs: The tracker's (refined) outputs for the frame, for the flags and poses.

    """
    pose = frame_pose(info, topology, bodies, main)
    by_id = {output.track_id: output for output in outputs}
    order = ([main] if main is not None else []) + [i for i in range(len(bodies)) if i != main]
    persons = [_person(bodies[i], by_id[_track_id(bodies[i])]) for i in order]
    return {
        "frameNumber": result_index,
        "originalFrameNumber": info.frame_number,
        "timestamp": round(timestamp, _S),
        "confidence": pose.confidence,
        "keypoints": pose.keypoints(),
        "joints3D": pose.joints,
        "jointAngles": pose.angles,
        "has3D": main is not None,
        "meshRendered": main is not None,
        "vertices": [],
        "faces": [],
        "tracked": main is not None,
        "personId": None if pose.body is None else pose.body.track_id,
        "poseSource": persons[0]["source"] if persons else None,
        "persons": persons,
    }


def _track_id(body: Body) -> int:
    """A tracked body's id (every body of a job comes from its tracker)."""
    if body.track_id is None:
        raise ValueError("a job's body has no track id")
    return body.track_id


def _person(body: Body, output: TrackOutput) -> dict[str, Any]:
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
        "box": np.round(body.box.astype(np.float64), 1),
        "camera": np.round(body.camera.astype(np.float64), _M),
        "cameraWeakPerspective": np.round(np.asarray(body.crop_camera, np.float64), _M),
        "smpl": smpl,
        "meshVertices": np.round(body.vertices.astype(np.float64), _MESH),
        "meshFaces": [],
    }


def timeline_jpeg(canvas: np.ndarray) -> bytes:
    """The overlay frame as a timeline image: JPEG, longest side at most ``TIMELINE_IMAGE_PX``."""
    height, width = canvas.shape[:2]
    scale = TIMELINE_IMAGE_PX / max(height, width)
    if scale < 1.0:
        size = (max(round(width * scale), 1), max(round(height * scale), 1))
        canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)
    return encode_jpeg(canvas)


def evenly_spaced(total: int, wanted: int | None) -> list[int]:
    """``wanted`` frame indices evenly spaced over ``total`` frames (every frame when None)."""
    if wanted is None or wanted >= total:
        return list(range(total))
    if wanted <= 0:
        return []
    return sorted({round(i * (total - 1) / max(wanted - 1, 1)) for i in range(wanted)})


def summary_path(result: Path) -> Path:
    """The file of a result's summary keys alone (without ``frames`` and ``pose_timeline``)."""
    return result.with_suffix(".summary.json")


def _parts_path(result: Path) -> Path:
    return result.with_suffix(".parts")


def _index_path(result: Path) -> Path:
    return result.with_suffix(".index.npz")


def stored_whole(result: Path) -> bool:
    """Whether the result was written as one whole file, by a version before the pieces.

    Such a result has no parts file or index beside it: it cannot be answered within the
    answer budget, and the job's video must be submitted again.
    """
    return result.is_file() and not _index_path(result).is_file()


EncodedFrame = tuple[bytes, ...]


class ResultWriter:
    """Writes a job's result: every frame's forms into the parts file, then the index.

    Args:
        path: The result's name; ``.parts``, ``.index.npz`` and ``.summary.json`` beside it.
        faces: (F, 3) mesh triangles.
        budget_bytes: The most a status or synchronous answer may weigh.

    """

    def __init__(self, path: Path, faces: np.ndarray, budget_bytes: int) -> None:
        self.path = path
        self._faces = faces
        self._budget = budget_bytes
        self._parts = _parts_path(path).open("wb")
        self._lengths: list[list[int]] = []

    @staticmethod
    def encode(entry: dict[str, Any], image_jpeg: bytes) -> EncodedFrame:
        """Serialise one per-frame object in every form, and its timeline image.

        The forms: with its meshes; without them (``meshRendered: false``); bare (no mesh,
        no pose detail, the main subject alone); the ``pose_timeline`` entry (no
        ``persons``), whole and bare. Safe to call from several threads.
        """
        persons = entry["persons"]
        light = [{**person, "meshVertices": []} for person in persons]
        without = {**entry, "meshRendered": False, "persons": light}
        detail: dict[str, Any] = {"keypoints": [], "joints3D": [], "jointAngles": {}}
        bare = {**without, **detail, "persons": [{**p, "smpl": None} for p in light[:1]]}
        timeline = {key: value for key, value in entry.items() if key != "persons"}
        return (
            orjson.dumps(entry, option=_OPTIONS),
            orjson.dumps(without, option=_OPTIONS),
            orjson.dumps(bare, option=_OPTIONS),
            orjson.dumps(timeline, option=_OPTIONS),
            orjson.dumps({**timeline, **detail}, option=_OPTIONS),
            base64.b64encode(image_jpeg),
        )

    def add(self, encoded: EncodedFrame) -> None:
        """Append one frame, as :meth:`encode` serialised it (frames in result order)."""
        for piece in encoded:
            self._parts.write(piece)
        self._lengths.append([len(piece) for piece in encoded])

    def finish(self, summary: dict[str, Any]) -> None:
        """Write the index and the summary keys; plan the bounded answers, logging a cut.

        The summary keys alone also go to :func:`summary_path`.
        """
        self._parts.close()
        lengths = np.asarray(self._lengths, np.int64).reshape(-1, 6)
        starts = (np.cumsum(lengths.ravel()) - lengths.ravel()).reshape(lengths.shape)
        keys = orjson.dumps(summary, option=_OPTIONS)
        faces = faces_json(self._faces)
        plans = {}
        for kind in ("status", "sync"):
            plans[kind] = levels = _plan(lengths, len(keys) + len(faces), self._budget, kind)
            report = _report(levels, self._budget)
            if report["degraded"]:
                log.warning("Job %s: %s answer over %d bytes whole: degraded, frames kept %s",
                            self.path.parent.name, kind, self._budget,
                            {k: report[k] for k in _DEGRADED})  # fmt: skip
        summary_path(self.path).write_bytes(keys)
        partial = self.path.with_suffix(".index.part.npz")
        np.savez(partial, starts=starts, lengths=lengths, summary=np.frombuffer(keys, np.uint8),
                 faces=np.frombuffer(faces, np.uint8), status=plans["status"],
                 sync=plans["sync"], budget=self._budget)  # fmt: skip
        partial.replace(_index_path(self.path))

    def discard(self) -> None:
        """Remove what was written (a job that failed)."""
        self._parts.close()
        _parts_path(self.path).unlink(missing_ok=True)


def _sizes(lengths: np.ndarray, kind: Answer) -> np.ndarray:
    """(N, 4) bytes of each frame at each level: its entry and timeline twin, separators too."""
    image = lengths[:, _IMAGE]
    columns = []
    for level in range(4):
        frame = lengths[:, _FRAME_FORM[level]].copy()
        timeline = lengths[:, _TIMELINE_FORM[level]].copy()
        kept = image if _WITH_IMAGE[level] else 0
        timeline += 1 + kept + len(_TIMELINE_IMAGE if _WITH_IMAGE[level] else _TIMELINE_NO_IMAGE)
        if kind == "sync":
            frame += 1 + kept + len(_FRAME_IMAGE)
        columns.append(frame + timeline + 2)
    return np.stack(columns, axis=1)


def _plan(lengths: np.ndarray, head: int, budget: int, kind: Answer) -> np.ndarray:
    """Each frame's degradation level (0: whole) so that the answer fits the budget.

    Levels rise in steps: at step k every frame is at level k + 1 but an evenly spaced set,
    as large as fits, at level k. Without room even for bare frames, every frame is bare
    (the settings' check keeps the budget above that).
    """
    total = len(lengths)
    room = budget - RESERVE_BYTES - head - len(_HEAD) - len(_MIDDLE) - 16
    sizes = _sizes(lengths, kind)
    levels = np.zeros(total, np.int8)
    if sizes[:, 0].sum() <= room:
        return levels
    for step in range(3):
        rest = sizes[:, step + 1].sum()
        if rest > room:
            continue
        extra = sizes[:, step] - sizes[:, step + 1]
        low, high = 0, total  # the largest evenly spaced set at level `step` that fits
        while low < high:
            middle = (low + high + 1) // 2
            if rest + extra[evenly_spaced(total, middle)].sum() <= room:
                low = middle
            else:
                high = middle - 1
        levels[:] = step + 1
        levels[evenly_spaced(total, low)] = step
        return levels
    log.error("Even bare frames are over the answer budget (%d bytes): raise it", budget)
    return np.full(total, 3, np.int8)


def _report(levels: np.ndarray, budget: int | None) -> dict[str, Any]:
    """The result's ``answer_budget``: the budget, and how many frames kept what."""
    kept = {name: int((levels <= step).sum()) for step, name in enumerate(_DEGRADED)}
    return {
        "budget_bytes": budget,
        "degraded": any(count < len(levels) for count in kept.values()),
        "frames": len(levels),
        **kept,
        "every_mesh": "GET /result/<job_id> or GET /job/<job_id>/frames?start=&count=",
    }


@dataclass(frozen=True)
class StoredResult:
    """A complete job's result as :class:`ResultWriter` stored it; answers are built from it.

    Attributes:
        path: The result's name (as given to the writer).
        starts: (N, 6) offset of each form of each frame in the parts file.
        lengths: (N, 6) its length in bytes.
        summary: The summary keys, as a JSON object.
        faces: The mesh triangles, as a JSON list.
        plans: The degradation levels of the ``status`` and ``sync`` answers.
        budget: The budget they were planned for.

    """

    path: Path
    starts: np.ndarray
    lengths: np.ndarray
    summary: bytes
    faces: bytes
    plans: dict[str, np.ndarray]
    budget: int

    @classmethod
    def load(cls, path: Path) -> StoredResult | None:
        """The stored result, or None when there is none (deleted, or the job not complete)."""
        index = _index_path(path)
        if not index.is_file() or not _parts_path(path).is_file():
            return None
        with np.load(index) as data:
            return cls(
                path=path, starts=data["starts"], lengths=data["lengths"],
                summary=data["summary"].tobytes(), faces=data["faces"].tobytes(),
                plans={"status": data["status"], "sync": data["sync"]},
                budget=int(data["budget"]),
            )  # fmt: skip

    @property
    def frame_count(self) -> int:
        """Frames in the result."""
        return len(self.lengths)

    def bounded(self, kind: Answer) -> Iterator[bytes]:
        """The result of a status (``status``) or synchronous (``sync``) answer, in chunks."""
        levels = self.plans[kind]
        return self._result(levels, _report(levels, self.budget), kind)

    def complete(self) -> Iterator[bytes]:
        """The whole result, every mesh, image and pose, in chunks."""
        levels = np.zeros(self.frame_count, np.int8)
        return self._result(levels, _report(levels, None), "status")

    def frames(self, start: int, count: int) -> tuple[int, Iterator[bytes]]:
        """Frames ``start`` to ``start + count`` with their meshes, fewer when over the budget.

        Returns:
            How many frames are answered (at least one), and their JSON list in chunks.

        """
        room = self.budget - RESERVE_BYTES - len(self.faces)
        sizes = np.cumsum(self.lengths[start : start + count, _MESH_FRAME] + 1)
        fits = max(int(np.searchsorted(sizes, room, side="right")), 1)
        rows = [(index, _MESH_FRAME, False) for index in range(start, start + fits)]

        def listed() -> Iterator[bytes]:
            yield b"["
            yield from self._list(rows, None)
            yield b"]"

        return fits, listed()

    def _result(self, levels: np.ndarray, report: dict[str, Any], kind: Answer) -> Iterator[bytes]:
        frames = [(i, _FRAME_FORM[v], _WITH_IMAGE[v]) for i, v in enumerate(levels.tolist())]
        timeline = [(i, _TIMELINE_FORM[v], _WITH_IMAGE[v]) for i, v in enumerate(levels.tolist())]
        yield _HEAD
        yield from self._list(frames, (_FRAME_IMAGE, _FRAME_IMAGE) if kind == "sync" else None)
        yield _MIDDLE
        yield from self._list(timeline, (_TIMELINE_IMAGE, _TIMELINE_NO_IMAGE))
        yield b"]," + self.summary[1:-1] + b',"mesh_faces":' + self.faces + b","
        yield orjson.dumps({"answer_budget": report})[1:]

    def _list(
        self, rows: Sequence[tuple[int, int, bool]], image_keys: tuple[bytes, bytes] | None
    ) -> Iterator[bytes]:
        """The JSON list of the rows' pieces (frame, form, with its image), comma-separated.

        With ``image_keys`` (key with an image, key without), each piece gets its image
        key, and the image itself when the row keeps it, as its last key.
        """
        chunk = bytearray()
        with _parts_path(self.path).open("rb") as parts:

            def read(index: int, form: int) -> bytes:
                parts.seek(int(self.starts[index, form]))
                return parts.read(int(self.lengths[index, form]))

            for n, (index, form, with_image) in enumerate(rows):
                if n:
                    chunk += b","
                piece = read(index, form)
                if image_keys is None:
                    chunk += piece
                else:
                    image = read(index, _IMAGE) if with_image else b""
                    key = image_keys[0] if with_image else image_keys[1]
                    chunk += piece[:-1] + key + image + b'"}'
                if len(chunk) >= _CHUNK:
                    yield bytes(chunk)
                    chunk.clear()
        yield bytes(chunk)

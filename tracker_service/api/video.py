"""Whole-video endpoints (``VIDEO_API.md``): two thin flavours of one job engine.

Flavour A, upload and poll: ``POST /process_video_async``, ``GET /job_status/<id>``,
``POST /process_video`` (synchronous), ``GET /frame/<id>/<n>``. Flavour B, a path on a
shared disk: ``POST /pose/video``, ``GET /pose/video/status/<id>``. Also ``GET
/output/<id>`` (the overlay MP4 over HTTP), ``DELETE /job/<id>`` (cancel), and the whole
result: ``GET /result/<id>`` (every mesh) and ``GET /job/<id>/frames?start=&count=``.

Answers that carry a result are assembled from the stored result
(:class:`~tracker_service.jobs.result.StoredResult`: status and synchronous answers within
``answer_budget_bytes``), streamed, and gzip-compressed when the client accepts it.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Response, jsonify, request, send_file

from tracker_service import resources
from tracker_service.exceptions import BadRequest, JobStillRunning, NotFound, PayloadTooLarge
from tracker_service.jobs import video_io
from tracker_service.jobs.result import StoredResult, stored_whole
from tracker_service.jobs.store import COMPLETE, ERROR, PROCESSING, QUEUED, JobRecord
from tracker_service.render import encode_jpeg

bp = Blueprint("video", __name__)

#: Largest ``max_frames`` accepted (the apps send ``'999999'`` for every frame).
MAX_FRAMES_VALUE = 10**9
_CHUNK = 2**20
#: gzip level of the answers (zlib's default: 2.7x smaller on a complete result).
_GZIP_LEVEL = 6


@bp.post("/process_video_async")
def process_video_async() -> tuple[Response, int]:
    """Queue an uploaded video; answer at once with the job's id."""
    record = _submit_upload()
    position = resources.jobs().queue_position(record.job_id)
    message = f"video accepted; poll GET /job_status/{record.job_id}" + (
        f" (place {position} in the queue)" if position else ""
    )
    return jsonify(status="accepted", job_id=record.job_id, message=message), 200


@bp.post("/process_video")
def process_video() -> Response:
    """Process an uploaded video and answer its result when done."""
    return _final(_submit_upload().job_id)


@bp.get("/job_status/<job_id>")
@bp.get("/pose/video/status/<job_id>")
def job_status(job_id: str) -> Response:
    """The job's state, 200 in every state; the result once complete.

    ``?frames=0`` answers the result without ``frames`` and ``pose_timeline`` (a client that
    polls often, or reads the frames from ``/frame``).
    """
    engine = resources.jobs()
    record = engine.get(job_id)
    body: dict[str, Any] = {
        "job_id": job_id,
        "status": record.status,
        "progress": record.progress,
        "created_at": record.created_at,
    }
    if record.status == QUEUED:
        body["queue_position"] = engine.queue_position(job_id)
    elif record.status == PROCESSING:
        body["elapsed_time"] = round(time.time() - (record.started_at or record.created_at), 3)
    elif record.status == ERROR:
        body["error"] = record.error
    else:
        output = str(engine.overlay_path(job_id))
        body |= {"output_path": output, "processing_time": _processing_time(record)}
        if request.args.get("frames", "1") == "0":  # the summary keys only
            summary = engine.result_path(job_id, frames=False)
            if not summary.is_file():
                raise _missing_result(engine.result_path(job_id))
            return _json(_with_key(body, "result", [summary.read_bytes()]))
        return _json(_with_key(body, "result", _stored(job_id).bounded("status")))
    return jsonify(body)


@bp.get("/result/<job_id>")
def result(job_id: str) -> Response:
    """The complete result of a job: every frame's meshes, image and pose (gzip if accepted)."""
    return _json(_stored(job_id).complete())


@bp.get("/job/<job_id>/frames")
def frames(job_id: str) -> Response:
    """Frames ``start`` to ``start + count`` of a complete job's result, with their meshes.

    Fewer frames are answered when they would weigh more than the answer budget:
    ``count`` says how many, ``next_start`` where the next range starts (null at the end).
    """
    stored = _stored(job_id)
    start = _integer("start", request.args.get("start", "0"), 0, stored.frame_count - 1)
    wanted = _integer("count", request.args.get("count", "1"), 1, MAX_FRAMES_VALUE)
    count, chunks = stored.frames(start, min(wanted, stored.frame_count - start))
    end = start + count
    head = orjson.dumps({
        "job_id": job_id, "start": start, "count": count, "frame_count": stored.frame_count,
        "next_start": end if end < stored.frame_count else None,
    })  # fmt: skip
    faces = b',"mesh_faces":' + stored.faces + b',"frames":'
    return _json(chain([head[:-1] + faces], chunks, [b"}"]))


@bp.get("/frame/<job_id>/<int:frame_index>")
def frame(job_id: str, frame_index: int) -> Response:
    """Frame ``frame_index`` of the job's overlay video, as JPEG."""
    engine = resources.jobs()
    if engine.get(job_id).status != COMPLETE:
        raise BadRequest("Job not complete")
    image = video_io.read_frame(engine.overlay_path(job_id), frame_index)
    if image is None:
        raise NotFound(f"frame {frame_index} not found: the overlay video has fewer frames")
    return Response(encode_jpeg(image), mimetype="image/jpeg")


@bp.get("/output/<job_id>")
def output(job_id: str) -> Response:
    """The job's overlay MP4 (range requests are served)."""
    engine = resources.jobs()
    if engine.get(job_id).status != COMPLETE:
        raise BadRequest("Job not complete")
    path = engine.overlay_path(job_id)
    if not path.is_file():
        raise NotFound("the overlay video of this job was deleted")
    return send_file(path, mimetype="video/mp4", conditional=True,
                     download_name=f"{job_id}.mp4")  # fmt: skip


@bp.delete("/job/<job_id>")
def cancel(job_id: str) -> Response:
    """Cancel a queued or running job: it ends in ``error``."""
    record = resources.jobs().cancel(job_id)
    return jsonify(job_id=job_id, status=record.status, error=record.error)


@bp.post("/pose/video")
def pose_video() -> Response | tuple[Response, int]:
    """A video already on the shared disk: its result when the engine is free, else 202."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise BadRequest('the request body must be a JSON object {"video_path": "..."}')
    path = _video_path(body.get("video_path"))
    engine = resources.jobs()
    free = engine.idle()
    record = engine.submit_path(path, _max_frames(body.get("max_frames")))
    if free:
        return _final(record.job_id)
    return jsonify(
        status="queued", job_id=record.job_id,
        message=f"the engine is busy; poll GET /pose/video/status/{record.job_id}",
        queue_position=engine.queue_position(record.job_id),
    ), 202  # fmt: skip


# --------------------------------------------------------------------------- helpers


def _submit_upload() -> JobRecord:
    """Validate the multipart upload (``video``, ``max_frames``) and queue its job."""
    limit = resources.jobs().settings.job_max_bytes
    request.max_content_length = limit + _CHUNK  # room for the form's other parts
    if request.content_length is not None and request.content_length > limit + _CHUNK:
        raise PayloadTooLarge(
            f"the upload is {request.content_length} bytes; videos of at most {limit} bytes "
            "are accepted"
        )
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise BadRequest("send the video as multipart/form-data, in the file field 'video'")
    upload = request.files.get("video")
    if upload is None or not upload.filename:
        raise BadRequest("the file field 'video' is missing or empty: send the video file")
    max_frames = _max_frames(request.form.get("max_frames"))
    return resources.jobs().submit_upload(upload.stream, max_frames)


def _max_frames(value: Any) -> int | None:
    """``max_frames``: an integer (or its digits as a string) >= 1; absent: every frame."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 10:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FRAMES_VALUE:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise BadRequest(f"max_frames must be an integer from 1 to {MAX_FRAMES_VALUE}, got {shown}")
    return value


def _video_path(value: Any) -> Path:
    """A ``video_path`` that resolves (symlinks followed) inside ``video_folder``."""
    folder_setting = resources.jobs().settings.video_folder
    if not folder_setting:
        raise BadRequest(
            "POST /pose/video is off: the service reads no paths unless TRACKER_VIDEO_FOLDER "
            "names a folder; upload the video to POST /process_video_async instead"
        )
    if not isinstance(value, str) or not value or "\x00" in value:
        raise BadRequest("video_path must be a non-empty string: the video's path")
    folder = Path(folder_setting).resolve()
    path = (folder / value).resolve()  # an absolute value replaces the folder
    if not path.is_relative_to(folder):
        raise BadRequest("video_path must lie inside the service's video folder")
    if not path.is_file():
        raise BadRequest("video_path names no file in the service's video folder")
    return path


def _processing_time(record: JobRecord) -> float:
    return round((record.finished_at or 0.0) - (record.started_at or 0.0), 3)


def _final(job_id: str) -> Response:
    """The ended job: 200 ``{"status": "success", "data": result}``, or its error."""
    engine = resources.jobs()
    record = engine.wait(job_id, engine.settings.job_wait_s)
    if record.status in (QUEUED, PROCESSING):
        raise JobStillRunning(
            f"job {job_id} is still {record.status} after {engine.settings.job_wait_s:g} s; "
            f"poll GET /job_status/{job_id}"
        )
    if record.status != COMPLETE:
        response = jsonify(error=record.error or f"the job ended {record.status}")
        response.status_code = record.error_status or 500
        return response
    body = {"status": "success", "job_id": job_id}
    return _json(_with_key(body, "data", _stored(job_id).bounded("sync")))


def _stored(job_id: str) -> StoredResult:
    """The stored result of a complete job.

    Raises:
        BadRequest: The job is not complete (``{"error": "Job not complete"}``).
        NotFound: Unknown job, or its result is gone (see :func:`_missing_result`).

    """
    engine = resources.jobs()
    if engine.get(job_id).status != COMPLETE:
        raise BadRequest("Job not complete")
    result = engine.result_path(job_id)
    stored = StoredResult.load(result)
    if stored is None:
        raise _missing_result(result)
    return stored


def _missing_result(result: Path) -> NotFound:
    """Why a complete job has no stored result, in words that say what to do."""
    if stored_whole(result):
        return NotFound(
            "the result of this job was stored by an older version of the service, which this "
            "version cannot answer from: submit the video again"
        )
    return NotFound("the result of this job was deleted: submit the video again")


def _integer(name: str, value: str, low: int, high: int) -> int:
    """A query parameter: an integer from ``low`` to ``high``."""
    text = value.strip()
    if not (text.isdecimal() and len(text) <= 10 and low <= int(text) <= high):
        raise BadRequest(f"{name} must be an integer from {low} to {high}, got {value[:20]!r}")
    return int(text)


def _with_key(body: dict[str, Any], key: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``body`` with one more key, last, whose JSON value comes in chunks."""
    head = orjson.dumps(body)[:-1] + b',"' + key.encode() + b'":'
    return chain([head], chunks, [b"}"])


def _json(chunks: Iterable[bytes]) -> Response:
    """A streamed JSON answer, gzip-compressed when the client accepts it."""
    if not request.accept_encodings["gzip"]:
        return Response(chunks, mimetype="application/json")

    def compressed() -> Iterator[bytes]:
        gzip = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        for chunk in chunks:
            if out := gzip.compress(chunk):
                yield out
        yield gzip.flush()

    response = Response(compressed(), mimetype="application/json")
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response

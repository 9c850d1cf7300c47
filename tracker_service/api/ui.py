"""The viewer: the page at ``/``, its static files, and the two lists only it reads.

The page (``static/index.html``, ``static/viewer.js``) uploads a video, follows the job,
and shows a finished job's overlay, timeline, identities and 3D mesh; its second tab follows
``/pose/hybrid`` live. three.js is vendored under ``static/vendor/``: the page loads
nothing from another site, so the service works offline.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from tracker_service import resources
from tracker_service.exceptions import BadRequest
from tracker_service.jobs.store import PROCESSING

bp = Blueprint("ui", __name__, static_folder="../static", static_url_path="/static")

#: Most jobs ``GET /jobs`` lists.
MAX_JOBS = 200


@bp.get("/")
def index() -> Response:
    """The viewer page."""
    response = bp.send_static_file("index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/jobs")
def jobs() -> Response:
    """The latest jobs, the latest first (``?limit=``, 20 by default): state and progress."""
    raw = request.args.get("limit", "20")
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_JOBS:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_JOBS}, got {raw[:20]!r}")
    engine = resources.jobs()
    records = [  # a running job's progress is live in the engine
        engine.get(r.job_id) if r.status == PROCESSING else r for r in engine.store.recent(int(raw))
    ]
    return jsonify(
        jobs=[
            {"job_id": r.job_id, "status": r.status, "created_at": r.created_at,
             "finished_at": r.finished_at, "progress": r.progress, "error": r.error}
            for r in records
        ]  # fmt: skip
    )


@bp.get("/live")
def live() -> Response:
    """The ``/pose/hybrid`` sessions and the latest answered frames (the latest last)."""
    recent = resources.frames().recent_frames
    return jsonify(sessions=resources.sessions().describe(), frames=list(recent))

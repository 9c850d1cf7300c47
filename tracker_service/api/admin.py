"""``GET``/``POST /warmup`` and ``POST /reload``: the backend's admin routes proxy them."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from tracker_service import resources
from tracker_service.api.health import legacy_models
from tracker_service.model_control import warm_up

bp = Blueprint("admin", __name__)


@bp.route("/warmup", methods=["GET", "POST"])
def warmup() -> tuple[Response, int]:
    """Wait (bounded) for the models, run one frame through them; 200 ready, else 503.

    The answer: ``status`` (``ready`` or ``warming_up``), ``message`` in words, ``models``
    (the legacy names, as ``/health``), ``device``, ``steps_ms`` (wait, detect, hmr2, smpl)
    and ``error`` (null when ready).
    """
    models, readiness = resources.models(), resources.readiness()
    result = warm_up(models, resources.settings().readiness.warmup_timeout_s)
    readiness.invalidate()
    status = readiness.get()
    message = (
        "Triton and every model are ready; one 640x360 frame ran through the person "
        "detector, HMR2 and the body model"
        if result.ready
        else result.error
    )
    body = jsonify(
        status="ready" if result.ready else "warming_up",
        message=message,
        models=legacy_models(result.readiness, models.names),
        device=status.device,
        steps_ms=result.steps_ms,
        error=result.error or None,
    )
    return body, 200 if result.ready else 503


@bp.post("/reload")
def reload() -> tuple[Response, int]:
    """Reload the served models from Triton's repository; sessions and tracks survive.

    200 with what was reloaded when it ends within ``TRACKER_RELOAD_WAIT_S``; 202 while it
    runs on (its progress is in ``/health``'s ``reload``); 503 when Triton refused or failed.
    """
    progress = resources.reloader().reload(resources.settings().readiness.reload_wait_s)
    if progress.state == "done":
        status, code = "reloaded", 200
        message = f"reloaded {', '.join(progress.models)} from the model repository"
    elif progress.state == "reloading":
        status, code = "reloading", 202
        message = "the reload goes on; GET /health reports its progress"
    else:
        status, code = "error", 503
        message = f"the reload failed: {progress.error}"
    body = jsonify(
        status=status,
        message=message,
        reload=progress.to_json(),
        sessions=len(resources.sessions()),
        error=None if code < 300 else message,
    )
    return body, code

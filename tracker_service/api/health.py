"""``GET /health``: the legacy readiness answer."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    """Ready only when Triton and every model are ready (checked at most every few seconds).

    ``models`` keeps the legacy names: ``hmr2`` (HMR2), ``vitdet`` (the person detector,
    whatever model it is) and ``phalp`` (the tracker, whose predicted bodies need the body
    model).
    """
    service = current_app.extensions["tracker"]
    status = service.readiness.get()
    ready = status.readiness.models
    names = service.models.names

    def state(name: str) -> str:
        return "loaded" if ready.get(name) else "not_loaded"

    return jsonify(
        status="ready" if status.readiness.ready else "warming_up",
        ready=status.readiness.ready,
        models={
            "hmr2": state(names.hmr2),
            "vitdet": state(names.detector),
            "phalp": state(names.smpl),
        },
        device=status.device,
        error=status.readiness.error or None,
    )

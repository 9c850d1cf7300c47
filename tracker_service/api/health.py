"""``GET /health``: the legacy readiness answer."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from tracker_service import resources
from tracker_service.inference import ModelNames, Readiness

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    """Ready only when Triton and every model are ready (checked at most every few seconds).

    ``models`` keeps the legacy names: ``hmr2`` (HMR2), ``vitdet`` (the person detector,
    whatever model it is) and ``phalp`` (the tracker, whose predicted bodies need the body
    model). ``reload`` (additive) is the progress of the latest ``POST /reload``.
    """
    status = resources.readiness().get()
    return jsonify(
        status="ready" if status.readiness.ready else "warming_up",
        ready=status.readiness.ready,
        models=legacy_models(status.readiness, resources.models().names),
        device=status.device,
        error=status.readiness.error or None,
        reload=resources.reloader().status().to_json(),
    )


def legacy_models(readiness: Readiness, names: ModelNames) -> dict[str, str]:
    """``{hmr2, vitdet, phalp}``, each ``loaded`` or ``not_loaded``."""
    served = {"hmr2": names.hmr2, "vitdet": names.detector, "phalp": names.smpl}
    return {
        legacy: "loaded" if readiness.models.get(name) else "not_loaded"
        for legacy, name in served.items()
    }

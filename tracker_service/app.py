"""The application factory: ``create_app(settings, models) -> Flask``.

Nothing is created at import time. The factory builds the Triton client (unless given
one), reads the mesh triangles, and keeps the one ``PoseService`` (pipeline, sessions,
readiness, metrics) in ``app.extensions["tracker"]``. Every answer names the replica that
served it (``X-Served-By``), so that a proxy's session affinity can be checked.
"""

from __future__ import annotations

import socket

from flask import Flask, Response

from tracker_service.api import admin, errors, health, metrics, pose, ui, video
from tracker_service.inference import ModelNames, TritonModels
from tracker_service.service import PoseService
from tracker_service.settings import Settings
from tracker_service.topology import load_topology

#: The header naming the replica that answered (additive).
SERVED_BY = "X-Served-By"


def create_app(settings: Settings | None = None, models: TritonModels | None = None) -> Flask:
    """Build the service's Flask application.

    Args:
        settings: The settings; defaults to :class:`Settings`'s defaults.
        models: The Triton client; built from ``settings`` when None. Closed with the
            application's service (``app.extensions["tracker"].close()``).

    Returns:
        The application (debug mode is never on).

    Raises:
        FileNotFoundError: The mesh triangles file ``settings.smpl_faces`` is missing.

    """
    settings = settings or Settings()
    topology = load_topology(settings.smpl_faces)
    app = Flask(__name__, static_folder=None)  # the viewer's blueprint serves its own
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, DEBUG=False, TESTING=False)
    app.extensions["tracker"] = PoseService(settings, models or connect_models(settings), topology)
    errors.register_error_handlers(app)
    served_by = settings.replica_name or f"{socket.gethostname()}:{settings.port}"

    @app.after_request
    def name_the_replica(response: Response) -> Response:
        response.headers[SERVED_BY] = served_by  # a proxy's session affinity, checkable
        return response

    metrics.init_app(app)
    for blueprint in (pose.bp, video.bp, health.bp, metrics.bp, admin.bp, ui.bp):
        app.register_blueprint(blueprint)
    return app


def connect_models(settings: Settings) -> TritonModels:
    """The Triton client the settings name (the service's and the job workers')."""
    return TritonModels(
        settings.triton_url,
        protocol=settings.triton_protocol,
        timeout_s=settings.triton_timeout_s,
        names=ModelNames(
            detector=settings.detector_model, hmr2=settings.hmr2_model, smpl=settings.smpl_model
        ),
    )

"""The application factory: ``create_app(settings, models) -> Flask``.

Nothing is created at import time. The factory reads the mesh triangles, builds the Triton
client (unless given one) and registers each resource on its own
(:func:`tracker_service.resources.init_app`: the Triton client, metrics, readiness, model
reload, the session store, the job engine and the frame service, each with a typed accessor),
then the error handlers and the blueprints. :func:`tracker_service.resources.close` closes the
resources. Every answer names the replica that served it (``X-Served-By``), so that a proxy's
session affinity can be checked.
"""

from __future__ import annotations

import socket

from flask import Flask, Response

from tracker_service import resources
from tracker_service.api import admin, errors, health, metrics, pose, ui, video
from tracker_service.inference import TritonModels
from tracker_service.settings import Settings
from tracker_service.topology import load_topology

#: The header naming the replica that answered (additive).
SERVED_BY = "X-Served-By"


def create_app(settings: Settings | None = None, models: TritonModels | None = None) -> Flask:
    """Build the service's Flask application.

    Args:
        settings: The settings; defaults to :class:`Settings`'s defaults.
        models: The Triton client; built from ``settings.triton`` when None. Closed with the
            application's resources (:func:`tracker_service.resources.close`).

    Returns:
        The application (debug mode is never on).

    Raises:
        FileNotFoundError: The mesh triangles file ``TRACKER_SMPL_FACES`` is missing.

    """
    settings = settings or Settings()
    topology = load_topology(settings.triton.smpl_faces)
    app = Flask(__name__, static_folder=None)  # the viewer's blueprint serves its own
    app.config.update(MAX_CONTENT_LENGTH=settings.server.max_body_bytes, DEBUG=False, TESTING=False)
    resources.init_app(app, settings, models or resources.connect_models(settings.triton), topology)
    errors.register_error_handlers(app)
    served_by = settings.server.replica_name or f"{socket.gethostname()}:{settings.server.port}"

    @app.after_request
    def name_the_replica(response: Response) -> Response:
        response.headers[SERVED_BY] = served_by  # a proxy's session affinity, checkable
        return response

    metrics.init_app(app)
    for blueprint in (pose.bp, video.bp, health.bp, metrics.bp, admin.bp, ui.bp):
        app.register_blueprint(blueprint)
    return app

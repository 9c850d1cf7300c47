"""Every error answered as the legacy JSON body ``{"error": "..."}`` with its status code."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from tracker_service.exceptions import ServiceError

log = logging.getLogger(__name__)


def register_error_handlers(app: Flask) -> None:
    """Answer service errors, HTTP errors (404, 405, 413…) and crashes as JSON."""

    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError) -> tuple[Response, int]:
        level = logging.WARNING if error.status_code >= 500 else logging.INFO
        log.log(level, "%s %s -> %d: %s", request.method, request.path, error.status_code, error)
        return jsonify(error=str(error)), error.status_code

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> WerkzeugResponse:
        response = error.get_response()
        response.set_data(app.json.dumps({"error": f"{error.name}: {error.description}"}))
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> tuple[Response, int]:
        log.exception("Internal error on %s %s", request.method, request.path)
        return jsonify(error=f"internal error ({type(error).__name__}); see the service log"), 500

"""``GET /metrics`` (Prometheus exposition) and the per-request counters behind it."""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tracker_service import resources

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Expose the application's metrics in Prometheus' text format."""
    registry = resources.telemetry().registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Count every request and time it, by endpoint and status."""

    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        service_metrics = resources.telemetry()
        service_metrics.requests.labels(endpoint, str(response.status_code)).inc()
        started = g.get("request_started")
        if started is not None:
            service_metrics.request_seconds.labels(endpoint).observe(
                time.perf_counter() - started
            )
        return response

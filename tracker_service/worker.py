"""``python -m tracker_service.worker``: a job worker process, without the HTTP service.

The API replicas (``TRACKER_JOB_WORKERS=0``) queue jobs in the shared store
(``TRACKER_JOB_DATABASE``, a ``postgresql://`` URL) and write uploads to the shared folder
(``TRACKER_JOB_DATA_DIR``); this process runs ``TRACKER_JOB_WORKERS`` of them at once (1: one
GPU) on Triton (``TRACKER_TRITON_URL``; it claims no job before Triton is ready), and serves
its metrics on ``TRACKER_WORKER_METRICS_PORT``. SIGTERM and SIGINT stop it: a running job is
queued again for another worker. A worker killed outright loses its job's lease, and another
worker runs the job after ``TRACKER_JOB_LEASE_S``.
"""

from __future__ import annotations

import logging
import os
import threading

from prometheus_client import CollectorRegistry, start_http_server

from tracker_service.process import configure_logging, on_stop_signals
from tracker_service.readiness import ReadinessCache
from tracker_service.resources import connect_models, frame_pipeline, job_engine
from tracker_service.settings import Settings
from tracker_service.topology import load_topology

log = logging.getLogger("tracker_service.worker")


def main() -> int:
    """Run jobs until SIGTERM or SIGINT."""
    settings = Settings.from_env(os.environ)
    jobs, triton = settings.jobs, settings.triton
    configure_logging(settings.server.log_level)
    if not jobs.job_workers:
        log.error("TRACKER_JOB_WORKERS is 0: a worker process runs at least one job at once")
        return 2
    stop = threading.Event()
    on_stop_signals(stop.set)
    models = connect_models(triton)
    while not stop.is_set() and not models.readiness().ready:  # claim nothing Triton can't run
        log.info("Waiting for Triton at %s: %s", triton.triton_url, models.readiness().error)
        stop.wait(5.0)
    registry = CollectorRegistry()
    engine = job_engine(
        settings, frame_pipeline(settings.detection, models),
        ReadinessCache(models, ttl_s=settings.readiness.health_cache_s),
        load_topology(triton.smpl_faces), registry,
    )  # fmt: skip
    if jobs.worker_metrics_port:
        start_http_server(jobs.worker_metrics_port, registry=registry)
    log.info(
        "Job worker: %d at once, queue %s, files %s, Triton %s",
        jobs.job_workers, _redacted(jobs.job_database), engine.artifacts.folder,
        triton.triton_url,
    )  # fmt: skip
    try:
        while not stop.wait(1.0):
            pass
    finally:
        engine.close()
        models.close()
    log.info("Stopped")
    return 0


def _redacted(location: str) -> str:
    """A database URL without its password, for the log."""
    head, at, tail = location.rpartition("@")
    if not at:
        return location
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.partition(':')[0]}:***@{tail}"


if __name__ == "__main__":
    raise SystemExit(main())

"""The application's resources, each registered on its own, each with a typed accessor.

As the Flask tutorial's ``db.py`` does (and Flask's ``docs/extensiondev.rst``), :func:`init_app`
builds each resource from its own group of settings and keeps it under its own
``app.extensions`` key; a handler reaches the one it needs through its accessor, on
``current_app``:

=================  =====================================================  ====================
accessor           resource                                               settings group
=================  =====================================================  ====================
:func:`settings`   :class:`~tracker_service.settings.Settings`            (all; read-only)
:func:`models`     :class:`~tracker_service.inference.TritonModels`       ``triton``
:func:`telemetry`  :class:`~tracker_service.telemetry.ServiceMetrics`     (none)
:func:`readiness`  :class:`~tracker_service.readiness.ReadinessCache`     ``readiness``
:func:`reloader`   :class:`~tracker_service.model_control.Reloader`       ``readiness``
:func:`sessions`   :class:`~tracker_service.sessions.SessionStore`        ``sessions``, ``tracking``
:func:`jobs`       :class:`~tracker_service.jobs.engine.JobEngine`        ``jobs``
:func:`frames`     :class:`~tracker_service.service.PoseService`          ``answer``
=================  =====================================================  ====================

The frame pipeline (``detection``) and the trackers' configuration (``tracking``) are shared
by the frame service and the job engine. :func:`close` closes the resources in the reverse
order of their registration: the job workers stop before the Triton client closes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import TypeVar

from flask import Flask, current_app
from prometheus_client import CollectorRegistry

from tracker_service.inference import ModelNames, TritonModels
from tracker_service.jobs.engine import JobEngine
from tracker_service.model_control import Reloader
from tracker_service.pipeline import FramePipeline
from tracker_service.readiness import ReadinessCache
from tracker_service.service import PoseService
from tracker_service.sessions import Session, SessionStore, Tracker
from tracker_service.settings import (
    DetectionSettings,
    SessionSettings,
    Settings,
    TrackingSettings,
    TritonSettings,
)
from tracker_service.telemetry import ServiceMetrics
from tracker_service.topology import BodyTopology
from tracker_service.tracking import PhalpTracker, TrackerConfig
from tracker_service.tracking.smoothing import LiveSmoother, SmoothedTracker, SmoothingConfig

R = TypeVar("R")

#: The ``app.extensions`` key of each resource, and of what closes them.
SETTINGS, MODELS, TELEMETRY = "tracker.settings", "tracker.models", "tracker.telemetry"
READINESS, RELOADER, SESSIONS = "tracker.readiness", "tracker.reloader", "tracker.sessions"
JOBS, FRAMES, CLOSING = "tracker.jobs", "tracker.frames", "tracker.closing"


def init_app(
    app: Flask, settings: Settings, models: TritonModels, topology: BodyTopology, *,
    clock: Callable[[], float] = time.monotonic,
) -> None:  # fmt: skip
    """Build every resource from its group of settings and register each on its own.

    Args:
        app: The application.
        settings: The service's settings.
        models: The Triton client (closed last, by :func:`close`).
        topology: The body model's mesh and skeleton.
        clock: Monotonic seconds (sessions, readiness, reloads).

    Raises:
        RuntimeError: The application has its resources already.
        Exception: A resource failed to build (those built before it are closed).

    """
    if CLOSING in app.extensions:
        raise RuntimeError("the application's resources are registered already")
    with ExitStack() as closing:  # a resource that fails to build closes those built before
        _register(app, SETTINGS, settings)
        _register(app, MODELS, models)
        closing.callback(models.close)
        metrics = _register(app, TELEMETRY, ServiceMetrics())
        ready = _register(app, READINESS, ReadinessCache(
            models, ttl_s=settings.readiness.health_cache_s, clock=clock
        ))  # fmt: skip
        _register(app, RELOADER, Reloader(models, on_reloaded=ready.invalidate, clock=clock))
        store = _register(
            app, SESSIONS, session_store(settings.sessions, settings.tracking, metrics, clock)
        )
        metrics.watch_sessions(lambda: len(store), store.tracks_alive)
        pipeline = frame_pipeline(settings.detection, models)
        engine = _register(
            app, JOBS, job_engine(settings, pipeline, ready, topology, metrics.registry)
        )
        closing.callback(engine.close)
        _register(app, FRAMES, PoseService(
            settings.answer, pipeline=pipeline, sessions=store, readiness=ready,
            telemetry=metrics, topology=topology,
        ))  # fmt: skip
        app.extensions[CLOSING] = closing.pop_all()


def close(app: Flask) -> None:
    """Close the application's resources, in the reverse order of their registration.

    Each is closed even when an earlier one fails (that failure is raised after). Closing
    twice, or an application without resources, does nothing.
    """
    closing = app.extensions.pop(CLOSING, None)
    if closing is not None:
        closing.close()


def settings() -> Settings:
    """The application's settings."""
    return _get(SETTINGS, Settings)


def models() -> TritonModels:
    """The Triton client."""
    return _get(MODELS, TritonModels)


def telemetry() -> ServiceMetrics:
    """The application's metrics (``GET /metrics``)."""
    return _get(TELEMETRY, ServiceMetrics)


def readiness() -> ReadinessCache:
    """Whether Triton and every model are ready (cached a few seconds)."""
    return _get(READINESS, ReadinessCache)


def reloader() -> Reloader:
    """Reloads the served models from Triton's repository (``POST /reload``)."""
    return _get(RELOADER, Reloader)


def sessions() -> SessionStore:
    """The ``/pose/hybrid`` sessions."""
    return _get(SESSIONS, SessionStore)


def jobs() -> JobEngine:
    """The whole-video job engine (queue, store, this process's workers)."""
    return _get(JOBS, JobEngine)


def frames() -> PoseService:
    """The frame service: answers one ``/pose/hybrid`` frame."""
    return _get(FRAMES, PoseService)


def connect_models(settings: TritonSettings) -> TritonModels:
    """The Triton client the settings name (the service's and the worker process's)."""
    return TritonModels(
        settings.triton_url,
        protocol=settings.triton_protocol,
        timeout_s=settings.triton_timeout_s,
        names=ModelNames(
            detector=settings.detector_model, hmr2=settings.hmr2_model, smpl=settings.smpl_model
        ),
    )


def frame_pipeline(settings: DetectionSettings, models: TritonModels) -> FramePipeline:
    """The model steps the settings describe (frames and job workers share them)."""
    return FramePipeline(models, min_score=settings.min_score, min_box_px=settings.min_box_px)


def tracker_config(settings: TrackingSettings) -> TrackerConfig:
    """The tracker the settings describe (each session and each job builds its own)."""
    return TrackerConfig(
        max_age=settings.max_age,
        n_init=settings.n_init,
        detection_threshold=settings.detection_threshold,
    )


def session_store(
    settings: SessionSettings, tracking: TrackingSettings, metrics: ServiceMetrics,
    clock: Callable[[], float] = time.monotonic,
) -> SessionStore:  # fmt: skip
    """The sessions the settings describe, each with its own (smoothed) tracker."""
    config = tracker_config(tracking)

    def new_session(session_id: str) -> Session:
        phalp = PhalpTracker(config)
        tracker: Tracker = phalp
        if tracking.smoothing:
            smoothing = SmoothingConfig(strength=tracking.smoothing_strength)
            tracker = SmoothedTracker(phalp, LiveSmoother(smoothing))
        return Session(
            session_id, tracker, reorder_wait_s=settings.reorder_wait_s,
            new_video_idle_s=settings.new_video_idle_s, clock=clock,
            on_new_video=metrics.new_videos.inc,
        )  # fmt: skip

    return SessionStore(
        new_session, max_sessions=settings.max_sessions, idle_s=settings.session_idle_s,
        clock=clock,
    )  # fmt: skip


def job_engine(
    settings: Settings, pipeline: FramePipeline, readiness: ReadinessCache, topology: BodyTopology,
    registry: CollectorRegistry,
) -> JobEngine:  # fmt: skip
    """The job engine the settings describe (the service's and the worker process's)."""
    return JobEngine(
        settings.jobs, pipeline, tracker_config(settings.tracking), readiness, topology, registry,
        model_version=settings.answer.model_version,
    )  # fmt: skip


def _register(app: Flask, key: str, resource: R) -> R:
    app.extensions[key] = resource
    return resource


def _get(key: str, kind: type[R]) -> R:
    """The resource under ``key`` of the current application.

    Raises:
        LookupError: The application has no such resource (it was not built by
            ``create_app``).
        TypeError: The resource is not a ``kind``.

    """
    resource = current_app.extensions.get(key)
    if resource is None:
        raise LookupError(
            f"the application has no {key!r} resource: build it with "
            "tracker_service.app.create_app (which calls resources.init_app)"
        )
    if not isinstance(resource, kind):
        raise TypeError(
            f"the {key!r} resource is a {type(resource).__name__}, not a {kind.__name__}"
        )
    return resource

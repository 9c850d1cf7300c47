"""One frame end to end: decode, analyse, track in order, build the legacy answer.

``PoseService`` is the application's one object (``app.extensions["tracker"]``): it owns
the Triton client, the session store, the readiness cache, the model reloader, the metrics
and the whole-video job engine (``jobs``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from tracker_service.admin import Reloader
from tracker_service.decode import decode_frame
from tracker_service.errors import ModelsUnavailable
from tracker_service.geometry import box_iou
from tracker_service.inference import TritonModels
from tracker_service.jobs.engine import JobEngine
from tracker_service.legacy import AnswerEncoder, FrameInfo, build_answer
from tracker_service.metrics import ServiceMetrics, Stopwatch
from tracker_service.pipeline import FrameAnalysis, FramePipeline
from tracker_service.readiness import ReadinessCache
from tracker_service.render import render
from tracker_service.sessions import Clock, Session, SessionStore, Tracker, TrackStep
from tracker_service.settings import Settings
from tracker_service.topology import BodyTopology
from tracker_service.tracking import PhalpTracker, TrackerConfig
from tracker_service.tracking.smoothing import LiveSmoother, SmoothedTracker, SmoothingConfig
from tracker_service.values import Body

log = logging.getLogger(__name__)

#: Answered frames kept for the viewer's live tab (:attr:`PoseService.recent_frames`).
RECENT_FRAMES = 50


@dataclass(frozen=True, kw_only=True)
class PoseRequest:
    """A validated ``POST /pose/hybrid`` request.

    Attributes:
        image: The frame: base64 JPEG or PNG text (JSON), or the file's bytes (multipart).
        frame_number: Index of the frame in its video.
        visualize: Whether to draw the bodies on the frame.
        session_id: The session (video stream) the frame belongs to.

    """

    image: str | bytes
    frame_number: int
    visualize: bool
    session_id: str


def frame_pipeline(settings: Settings, models: TritonModels) -> FramePipeline:
    """The model steps the settings describe (frames and job workers share them)."""
    return FramePipeline(models, min_score=settings.min_score, min_box_px=settings.min_box_px)


def tracker_config(settings: Settings) -> TrackerConfig:
    """The tracker the settings describe (each session and each job builds its own)."""
    return TrackerConfig(
        max_age=settings.max_age,
        n_init=settings.n_init,
        detection_threshold=settings.detection_threshold,
    )


class PoseService:
    """Answers frames: the pipeline, the sessions and the legacy answer together.

    Args:
        settings: The service's settings.
        models: The Triton client (closed by :meth:`close`).
        topology: The body model's mesh and skeleton.
        clock: Monotonic seconds (sessions, readiness).

    """

    def __init__(
        self,
        settings: Settings,
        models: TritonModels,
        topology: BodyTopology,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.models = models
        self.metrics = ServiceMetrics()
        self.readiness = ReadinessCache(models, ttl_s=settings.health_cache_s, clock=clock)
        self.reloader = Reloader(models, on_reloaded=self.readiness.invalidate, clock=clock)
        self._topology = topology
        self._encoder = AnswerEncoder(topology.faces)
        self._pipeline = frame_pipeline(settings, models)
        self._tracker_config = tracker_config(settings)
        self._clock = clock
        self.sessions = SessionStore(
            self._new_session,
            max_sessions=settings.max_sessions,
            idle_s=settings.session_idle_s,
            clock=clock,
        )
        self.metrics.watch_sessions(lambda: len(self.sessions), self.sessions.tracks_alive)
        #: The latest answered frames, the latest last: what the viewer's live tab shows.
        self.recent_frames: deque[dict[str, Any]] = deque(maxlen=RECENT_FRAMES)
        self.jobs = JobEngine(
            settings, self._pipeline, self._tracker_config, self.readiness, topology,
            self.metrics.registry,
        )  # fmt: skip

    def _new_session(self, session_id: str) -> Session:
        phalp = PhalpTracker(self._tracker_config)
        tracker: Tracker = phalp
        if self.settings.smoothing:
            smoothing = SmoothingConfig(strength=self.settings.smoothing_strength)
            tracker = SmoothedTracker(phalp, LiveSmoother(smoothing))
        return Session(
            session_id,
            tracker,
            reorder_wait_s=self.settings.reorder_wait_s,
            new_video_idle_s=self.settings.new_video_idle_s,
            clock=self._clock,
            on_new_video=self.metrics.new_videos.inc,
        )

    def close(self) -> None:
        """Stop the job engine's workers, then close the Triton client."""
        self.jobs.close()
        self.models.close()

    def answer(self, request: PoseRequest) -> bytes:
        """Process one frame and return the legacy answer as JSON bytes.

        Raises:
            ServiceError: A failure to tell the client about (bad image, models not ready…).

        """
        watch = Stopwatch()
        session, ticket = self.sessions.begin(request.session_id, request.frame_number)
        try:  # a frame that fails is released, so that the session's later frames need not wait
            status = self.readiness.get()
            if not status.readiness.ready:
                raise ModelsUnavailable(f"the models are not ready yet: {status.readiness.error}")
            with watch.stage("decode"):
                frame = decode_frame(request.image, self.settings.max_image_pixels)
            analysis = self._pipeline.analyse(frame, watch)
            with watch.stage("detections"):
                detections = analysis.detections()
        except BaseException:
            session.abandon(ticket)
            raise
        with watch.stage("track"):
            step = session.track(ticket, detections, analysis.image_size)
        watch.split("track", "wait", step.waited_s)
        bodies, main = self._bodies(analysis, step, watch)
        with watch.stage("answer"):
            info = FrameInfo(
                frame_number=request.frame_number,
                width=analysis.width,
                height=analysis.height,
                focal=analysis.focal,
                session_id=request.session_id,
                model_version=self.settings.model_version,
                tracked=step.tracked,
            )
            answer = build_answer(info, self._topology, bodies, main)
        if request.visualize:
            with watch.stage("visualize"):
                answer["visualization"] = render(
                    frame, bodies, main, analysis.focal, self._topology
                )
        with watch.stage("encode"):
            answer["processing_time_ms"] = round(1000.0 * watch.elapsed(), 1)
            body = self._encoder.encode(answer)
        self._report(request, analysis, step, bodies, main, watch)
        return body

    def _bodies(
        self, analysis: FrameAnalysis, step: TrackStep, watch: Stopwatch
    ) -> tuple[list[Body], int | None]:
        """Bodies to answer and the index of the main subject among them."""
        bodies = self._pipeline.bodies(analysis, step.outputs, watch)
        ids = [body.track_id for body in bodies]
        if step.main_track_id in ids:
            return bodies, ids.index(step.main_track_id)
        if step.tracked or not len(analysis):
            return bodies, None
        # A late frame that no track explains (its video ended, or none has started): the
        # detection most like the main subject's latest box, else the most confident one.
        index = 0
        if step.main_box is not None:
            overlap = box_iou(step.main_box, analysis.boxes)[0]
            if overlap.max() > 0.0:
                index = int(overlap.argmax())
        return [analysis.body(index, track_id=None)], 0

    def _report(
        self,
        request: PoseRequest,
        analysis: FrameAnalysis,
        step: TrackStep,
        bodies: list[Body],
        main: int | None,
        watch: Stopwatch,
    ) -> None:
        """One log line and the metrics of a frame."""
        if main is None:
            source = "none"
        elif bodies[main].track_id is None:
            source = "untracked"
        else:
            source = "detected" if bodies[main].detected else "predicted"
        self.metrics.frames.labels(source).inc()
        self.metrics.skipped_frames.inc(step.skipped)
        stages = watch.stages
        self.recent_frames.append({
            "session_id": request.session_id, "frame_number": request.frame_number,
            "time": round(time.time(), 3), "people": len(analysis), "source": source,
            "track_id": bodies[main].track_id if main is not None else None,
            "total_ms": round(1000.0 * watch.elapsed(), 1),
        })  # fmt: skip
        self.metrics.observe_stages(stages)
        log.info(
            "session=%s frame=%d people=%d tracked=%d answered=%s track=%s total=%.1fms %s",
            request.session_id,
            request.frame_number,
            len(analysis),
            len(step.outputs),
            source,
            bodies[main].track_id if main is not None else "-",
            1000.0 * watch.elapsed(),
            " ".join(f"{name}={1000.0 * seconds:.1f}ms" for name, seconds in stages.items()),
        )

"""One frame end to end: decode, analyse, track in order, build the legacy answer.

``PoseService`` is the frame service (``resources.frames()``): it answers one
``POST /pose/hybrid`` frame at a time with the resources the application hands it (the
pipeline, the session store, the readiness cache, the metrics); it owns none of them.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from tracker_service.decode import decode_frame
from tracker_service.exceptions import ModelsUnavailable
from tracker_service.geometry import box_iou
from tracker_service.legacy import AnswerEncoder, FrameInfo, build_answer
from tracker_service.pipeline import FrameAnalysis, FramePipeline
from tracker_service.readiness import ReadinessCache
from tracker_service.render import render
from tracker_service.sessions import SessionStore, TrackStep
from tracker_service.settings import AnswerSettings
from tracker_service.telemetry import ServiceMetrics, Stopwatch
from tracker_service.topology import BodyTopology
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


class PoseService:
    """Answers frames: decode, analyse, track in the frame's session, build the legacy answer.

    It answers frames and nothing else: the resources it uses are the application's
    (:mod:`tracker_service.resources`), handed in.

    Args:
        settings: What the answers name and read (``model_version``, ``max_image_pixels``).
        pipeline: The model steps (shared with the job engine; stateless).
        sessions: The sessions, each tracking its own video in frame order.
        readiness: Whether Triton and the models are ready (checked at every frame).
        telemetry: Where each frame's stage times and source are counted.
        topology: The body model's mesh and skeleton.

    """

    def __init__(
        self,
        settings: AnswerSettings,
        *,
        pipeline: FramePipeline,
        sessions: SessionStore,
        readiness: ReadinessCache,
        telemetry: ServiceMetrics,
        topology: BodyTopology,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._pipeline = pipeline
        self._readiness = readiness
        self._metrics = telemetry
        self._topology = topology
        self._encoder = AnswerEncoder(topology.faces)
        #: The latest answered frames, the latest last: what the viewer's live tab shows.
        self.recent_frames: deque[dict[str, Any]] = deque(maxlen=RECENT_FRAMES)

    def answer(self, request: PoseRequest) -> bytes:
        """Process one frame and return the legacy answer as JSON bytes.

        Raises:
            ServiceError: A failure to tell the client about (bad image, models not ready…).

        """
        watch = Stopwatch()
        session, ticket = self._sessions.begin(request.session_id, request.frame_number)
        try:  # a frame that fails is released, so that the session's later frames need not wait
            status = self._readiness.get()
            if not status.readiness.ready:
                raise ModelsUnavailable(f"the models are not ready yet: {status.readiness.error}")
            with watch.stage("decode"):
                frame = decode_frame(request.image, self._settings.max_image_pixels)
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
                model_version=self._settings.model_version,
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
        self._metrics.frames.labels(source).inc()
        self._metrics.skipped_frames.inc(step.skipped)
        stages = watch.stages
        self.recent_frames.append({
            "session_id": request.session_id, "frame_number": request.frame_number,
            "time": round(time.time(), 3), "people": len(analysis), "source": source,
            "track_id": bodies[main].track_id if main is not None else None,
            "total_ms": round(1000.0 * watch.elapsed(), 1),
        })  # fmt: skip
        self._metrics.observe_stages(stages)
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

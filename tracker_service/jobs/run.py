"""One job's video run: analyse, track, refine, render (see :mod:`.engine` for the queue).

1. *analyse*: the video is decoded in its container's order (its container was probed once,
   at submission); up to ``job_frames_in_flight`` frames are analysed at once (detector,
   crops, HMR2), so that Triton's dynamic batcher batches frames of the video together;
   the results are tracked in frame order by a tracker of the job's own (never a
   ``/pose/hybrid`` session's). Only compact state outlives a frame: its size and the
   tracker's outputs (box, pose parameters, camera: about 2 kB a person), never HMR2's
   mesh or embedding, so that a job's memory stays flat in its length;
2. *refine*: the offline temporal pass over every frame's outputs (``refine``, by default
   :func:`~tracker_service.tracking.offline.refine_video`: stitching, backfill, gap
   interpolation, zero-lag smoothing);
3. *render*: the video is decoded a second time as it streams (keeping the decoded frames
   would cost 0.7 MB each at 640x360; decoding again costs little: docs/benchmark_video.md);
   each frame's bodies are meshed once from their final poses (one ``smpl`` request a
   frame) and serve both the overlay MP4 (at the container's own frame times,
   :func:`~tracker_service.jobs.video_io.frame_times`) and the result; the answered frames
   (``max_frames``: evenly spaced) are serialised, ``job_frames_in_flight`` at a time, and
   appended to the result file in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from prometheus_client import Counter, Gauge

from tracker_service.exceptions import ModelsUnavailable, PayloadTooLarge, UnprocessableVideo
from tracker_service.jobs import video_io
from tracker_service.jobs.result import (
    EncodedFrame,
    ResultWriter,
    evenly_spaced,
    frame_entry,
    timeline_jpeg,
)
from tracker_service.jobs.store import COMPLETE, JobRecord
from tracker_service.legacy import FrameInfo
from tracker_service.pipeline import FrameGeometry, FramePipeline
from tracker_service.readiness import ReadinessCache
from tracker_service.render import draw
from tracker_service.settings import JobSettings
from tracker_service.subject import select_main
from tracker_service.telemetry import Stopwatch
from tracker_service.topology import BodyTopology
from tracker_service.tracking import PhalpTracker, TrackerConfig, TrackOutput
from tracker_service.tracking.offline import refine_video

log = logging.getLogger(__name__)

T = TypeVar("T")
Refine = Callable[[list[list[TrackOutput]]], list[list[TrackOutput]]]


class JobCancelled(Exception):
    """A client cancelled the job."""


class JobInterrupted(Exception):
    """The service is stopping: the job is queued again for the next start."""


@dataclass
class Progress:
    """A running job's progress (read by the status endpoints)."""

    stage: str = "analyse"
    frames_done: int = 0
    frames_total: int = 0
    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        """Raise when the job was cancelled or the service is stopping.

        Raises:
            JobCancelled: A client cancelled it.
            JobInterrupted: The service is stopping.

        """
        if self.cancel.is_set():
            raise JobCancelled
        if self.stop.is_set():
            raise JobInterrupted

    def report(self) -> dict[str, Any]:
        """``stage``, ``frames_done``, ``frames_total``, ``percent`` and ``eta_s``.

        The estimate counts each frame twice (analysed, then rendered) at the pace so far.
        """
        total = max(2 * self.frames_total, 1)
        done = self.frames_done + (self.frames_total if self.stage != "analyse" else 0)
        elapsed = time.monotonic() - self.started
        fraction = min(done / total, 1.0)
        return {
            "stage": self.stage,
            "frames_done": self.frames_done,
            "frames_total": self.frames_total,
            "percent": round(100.0 * fraction, 1),
            "eta_s": round(elapsed * (1.0 - fraction) / fraction, 1) if fraction else None,
        }


class VideoRunner:
    """Runs the videos of jobs (one runner per engine; each run has its own tracker).

    Args:
        settings: The jobs' settings (``job_*``).
        pipeline: The model steps (shared with ``/pose/hybrid``; stateless).
        tracker_config: Each run builds its own tracker from it.
        readiness: Whether Triton is ready (checked when a run starts).
        topology: The body model's mesh and skeleton (drawing, answered joints).
        model_version: Named in each frame's answer.
        frames: Counts the frames analysed.
        fps: Set to the frames per second of each run's analysis.
        refine: The offline temporal pass over a whole video's tracker outputs.

    """

    def __init__(
        self,
        settings: JobSettings,
        pipeline: FramePipeline,
        tracker_config: TrackerConfig,
        readiness: ReadinessCache,
        topology: BodyTopology,
        *,
        model_version: str,
        frames: Counter,
        fps: Gauge,
        refine: Refine = refine_video,
    ) -> None:
        self.settings = settings
        self._model_version = model_version
        self._pipeline = pipeline
        self._tracker_config = tracker_config
        self._readiness = readiness
        self._topology = topology
        self._frames_counter = frames
        self._fps = fps
        self._refine = refine
        self._codec: tuple[str, str] | None = None

    def run(
        self, record: JobRecord, progress: Progress, writer: ResultWriter, overlay: Path
    ) -> dict[str, Any]:
        """Analyse, track, refine and render one video; return the result's summary keys.

        Raises:
            ServiceError: The models are not ready, or the video fails (in words).
            JobCancelled: A client cancelled the job.
            JobInterrupted: The service is stopping.

        """
        started = time.monotonic()
        job_id, path = record.job_id, Path(record.video)
        status = self._readiness.get()
        if not status.readiness.ready:
            raise ModelsUnavailable(f"the models are not ready: {status.readiness.error}")
        with video_io.VideoReader(path) as video:
            progress.frames_total = video.declared_frames
            frame_rate = video.fps
            geometries, outputs = self._analyse(job_id, video, progress)
        fps = len(geometries) / max(time.monotonic() - started, 1e-9)
        self._fps.set(fps)
        log.info("Job %s: analysed %d frames at %.2f frames/s", job_id, len(geometries), fps)

        progress.stage, progress.frames_done = "refine", 0
        refined = self._refine(outputs)
        counts: dict[int, int] = {}
        for frame in refined:
            for output in frame:
                counts[output.track_id] = counts.get(output.track_id, 0) + output.detected
        main_id = max(counts, key=lambda t: (counts[t], -t)) if counts else None
        log.info("Job %s: refined; %d identities, main subject %s", job_id, len(counts), main_id)

        progress.stage = "render"
        selected = evenly_spaced(len(geometries), record.max_frames)
        size = (geometries[0].width, geometries[0].height)
        acceptance = self._render(record, frame_rate, size, geometries, refined, main_id,
                                  selected, writer, progress, overlay)  # fmt: skip
        seconds = time.monotonic() - started
        log.info("Job %s: rendered the overlay (%s) in %.1f s in all", job_id, overlay, seconds)
        return {
            "status": COMPLETE,
            "fps": frame_rate,
            "total_frames": len(geometries),
            "processed_frames": len(selected),
            "frame_count": len(selected),
            "video_duration": round(len(geometries) / frame_rate, 3),
            "resolution": list(size),
            "processing_time_seconds": round(seconds, 3),
            "output_size_mb": round(overlay.stat().st_size / 2**20, 3),
            "output_path": str(overlay),
            "output_codec": self._overlay_codec()[1],
            "frame_acceptance": acceptance,
            "main_person_id": main_id,
            "identities": len(counts),
            "analysis_frames_per_second": round(fps, 3),
        }

    def _analyse(
        self, job_id: str, video: video_io.VideoReader, progress: Progress
    ) -> tuple[list[FrameGeometry], list[list[TrackOutput]]]:
        """Analyse every frame, ``job_frames_in_flight`` at a time; track them in order.

        Returns:
            Each frame's geometry and tracker outputs (the analyses themselves are dropped).

        """
        tracker = PhalpTracker(self._tracker_config)
        geometries: list[FrameGeometry] = []
        outputs: list[list[TrackOutput]] = []
        calls = (
            partial(self._pipeline.analyse, frame, Stopwatch())
            for frame in self._frames(video, progress)
        )
        for index, analysis in enumerate(self._in_order(calls, job_id)):
            geometries.append(analysis.geometry)
            outputs.append(
                tracker.update(analysis.detections(), index, image_size=analysis.image_size)
            )
            self._frames_counter.inc()
            self._advance(job_id, progress, index)
        if not geometries:
            raise UnprocessableVideo("no frame of the video decodes")
        if len(geometries) < progress.frames_total:
            log.warning(
                "Job %s: %d frames decoded of the %d the container declares (truncated?)",
                job_id, len(geometries), progress.frames_total,
            )  # fmt: skip
        progress.frames_total = len(geometries)
        return geometries, outputs

    def _render(
        self,
        record: JobRecord,
        frame_rate: float,
        size: tuple[int, int],
        geometries: list[FrameGeometry],
        refined: list[list[TrackOutput]],
        main_id: int | None,
        selected: list[int],
        writer: ResultWriter,
        progress: Progress,
        overlay: Path,
    ) -> list[dict[str, Any]]:
        """Write the overlay video and the answered frames; return ``frame_acceptance``.

        Frames are drawn and serialised ``job_frames_in_flight`` at a time (their ``smpl``
        requests overlap), and written in order.
        """
        positions = {index: k for k, index in enumerate(selected)}
        acceptance = []
        times = video_io.frame_times(Path(record.video))
        with video_io.VideoReader(Path(record.video)) as source:
            calls = (
                partial(
                    self._render_frame,
                    record.job_id,
                    size,
                    frame,
                    geometries[index],
                    refined[index],
                    main_id,
                    positions.get(index),
                    index,
                    video_io.frame_time(times, index, frame_rate),
                )
                for index, frame in zip(
                    range(len(geometries)), self._frames(source, progress), strict=False
                )
            )
            video = video_io.open_writer(overlay, self._overlay_codec()[0], frame_rate, size, times)
            try:
                for index, (canvas, answered) in enumerate(self._in_order(calls, record.job_id)):
                    video.write(canvas)
                    if answered is not None:
                        accepted, encoded = answered
                        acceptance.append(accepted)
                        writer.add(encoded)
                    self._advance(record.job_id, progress, index)
            finally:
                video.release()
        return acceptance

    def _render_frame(
        self,
        job_id: str,
        size: tuple[int, int],
        frame: np.ndarray,
        geometry: FrameGeometry,
        outputs: list[TrackOutput],
        main_id: int | None,
        position: int | None,
        index: int,
        timestamp: float,
    ) -> tuple[np.ndarray, tuple[dict[str, Any], EncodedFrame] | None]:
        """One frame's overlay, and (when answered) its acceptance entry and serialised object.

        ``timestamp``: the frame's time in the video, in seconds (the container's own).
        """
        bodies = self._pipeline.posed_bodies(geometry, outputs, Stopwatch())
        ids = [body.track_id for body in bodies]
        chosen = select_main(outputs, main_id)
        main = ids.index(chosen) if chosen in ids else None
        canvas = draw(frame, bodies, main, geometry.focal, self._topology)
        if canvas.shape[1::-1] != size:
            canvas = cv2.resize(canvas, size)  # MP4 allows size changes
        if position is None:
            return canvas, None
        frame_info = FrameInfo(
            frame_number=index, width=geometry.width, height=geometry.height,
            focal=geometry.focal, session_id=job_id, model_version=self._model_version,
            tracked=True,
        )  # fmt: skip
        entry = frame_entry(
            frame_info, self._topology, result_index=position, timestamp=timestamp, bodies=bodies,
            main=main, outputs=outputs,
        )  # fmt: skip
        accepted = {
            "frame_index": position, "has_mesh": main is not None,
            "original_frame_number": index, "timestamp": entry["timestamp"],
        }  # fmt: skip
        return canvas, (accepted, ResultWriter.encode(entry, timeline_jpeg(canvas)))

    def _frames(self, video: video_io.VideoReader, progress: Progress) -> Iterator[np.ndarray]:
        """The video's frames in order, checking for cancellation and the frame limit."""
        for index, frame in enumerate(video.frames()):
            progress.check()
            if index >= self.settings.job_max_frames:
                raise PayloadTooLarge(
                    f"the video has more than {self.settings.job_max_frames} frames"
                )
            yield frame

    def _in_order(self, calls: Iterator[Callable[[], T]], job_id: str) -> Iterator[T]:
        """Run the calls ``job_frames_in_flight`` at a time; yield their results in order."""
        limit = self.settings.job_frames_in_flight
        pending: deque[Future[T]] = deque()
        with ThreadPoolExecutor(limit, f"job-{job_id[:8]}") as pool:
            try:
                for call in calls:
                    pending.append(pool.submit(call))
                    if len(pending) >= limit:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    def _advance(self, job_id: str, progress: Progress, index: int) -> None:
        progress.frames_done = index + 1
        if progress.frames_done % self.settings.job_log_every == 0:
            log.info("Job %s: %s", job_id, progress.report())

    def _overlay_codec(self) -> tuple[str, str]:
        if self._codec is None:
            self._codec = video_io.overlay_codec()
        return self._codec

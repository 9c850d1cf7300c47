"""The whole-video job engine: submit, queue, wait, read, cancel; and this process's workers.

The queue is a store (:mod:`.store`): SQLite on one machine, PostgreSQL when API replicas
and worker processes share it. The engine answers the endpoints from the store alone, so
that any replica answers any job, whatever the workers are doing; the files live in one
shared folder (:mod:`.artifacts`). ``TRACKER_JOB_WORKERS`` workers (:mod:`.worker`) run in
this process (1 by default: one GPU, one process, as ``make demo`` runs it); an API replica
of a scaled-out deployment runs none (0) and ``python -m tracker_service.worker`` processes
run the jobs. A run (analyse, track, refine, render) is :mod:`.run`'s.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tracker_service.exceptions import BadRequest, NotFound, PayloadTooLarge, QueueFull
from tracker_service.jobs import video_io
from tracker_service.jobs.artifacts import Artifacts
from tracker_service.jobs.run import Refine, VideoRunner
from tracker_service.jobs.store import (
    COMPLETE,
    ERROR,
    PROCESSING,
    QUEUED,
    JobRecord,
    JobStore,
    open_store,
)
from tracker_service.jobs.worker import JobWorker, RunMetrics
from tracker_service.pipeline import FramePipeline
from tracker_service.readiness import ReadinessCache
from tracker_service.settings import JobSettings
from tracker_service.topology import BodyTopology
from tracker_service.tracking import TrackerConfig
from tracker_service.tracking.offline import refine_video

log = logging.getLogger(__name__)


class StoreMetrics(Collector):
    """``tracker_jobs{state}`` and ``tracker_job_queue``, read from the store at each scrape."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The job counts of the whole deployment (every replica answers the same)."""
        counts = self._store.counts()
        jobs = GaugeMetricFamily("tracker_jobs", "Video jobs, by state", labels=["state"])
        for state, count in counts.items():
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily(
            "tracker_job_queue", "Video jobs waiting in the queue", value=counts[QUEUED]
        )


class JobEngine:
    """Whole-video jobs: the one engine behind both flavours of ``VIDEO_API.md``.

    Args:
        settings: The jobs' settings (``job_*``, ``video_folder``).
        pipeline: The model steps (shared with ``/pose/hybrid``; stateless).
        tracker_config: Each job builds its own tracker from it.
        readiness: Whether Triton is ready (checked when a job starts).
        topology: The body model's mesh and skeleton.
        registry: Where the job metrics are registered.
        model_version: Named in each frame of a result.
        refine: The offline temporal pass over a whole video's tracker outputs.

    """

    def __init__(
        self,
        settings: JobSettings,
        pipeline: FramePipeline,
        tracker_config: TrackerConfig,
        readiness: ReadinessCache,
        topology: BodyTopology,
        registry: CollectorRegistry,
        *,
        model_version: str,
        refine: Refine = refine_video,
    ) -> None:
        self.settings = settings
        self.artifacts = Artifacts(settings.job_data_dir)
        self.store = open_store(settings.job_database)
        registry.register(StoreMetrics(self.store))
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        if not settings.job_workers:
            return
        metrics = RunMetrics(registry)
        runner = VideoRunner(
            settings, pipeline, tracker_config, readiness, topology,
            model_version=model_version, frames=metrics.frames, fps=metrics.fps, refine=refine,
        )  # fmt: skip
        prefix = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        for i in range(settings.job_workers):
            worker = JobWorker(
                f"{prefix}-{i}", store=self.store, runner=runner, artifacts=self.artifacts,
                faces=topology.faces, settings=settings, metrics=metrics, wake=self._wake,
                stop=self._stop,
            )  # fmt: skip
            thread = threading.Thread(target=worker.serve, name=f"job-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    # ------------------------------------------------------------------ submitting

    def submit_upload(self, stream: IO[bytes], max_frames: int | None) -> JobRecord:
        """Save an uploaded video into a new job's folder, check it, and queue the job.

        Raises:
            ServiceError: 4xx in words: not a video, undecodable, too long, too big, queue full.

        """
        job_id = uuid.uuid4().hex
        path = self.artifacts.upload(job_id)
        path.parent.mkdir(parents=True)
        try:
            with path.open("wb") as out:
                copied = _copy_bounded(stream, out, self.settings.job_max_bytes)
            if copied == 0:
                raise BadRequest("the video field is empty: send the video file")
            return self._submit(job_id, path, owns_video=True, max_frames=max_frames)
        except BaseException:
            self.artifacts.remove(job_id)
            raise

    def submit_path(self, path: Path, max_frames: int | None) -> JobRecord:
        """Queue a job on a video already on the shared disk (checked by the caller)."""
        job_id = uuid.uuid4().hex
        self.artifacts.of(job_id).mkdir(parents=True)
        try:
            if path.stat().st_size > self.settings.job_max_bytes:
                raise PayloadTooLarge(
                    f"the video is {path.stat().st_size} bytes; at most "
                    f"{self.settings.job_max_bytes} are accepted"
                )
            return self._submit(job_id, path, owns_video=False, max_frames=max_frames)
        except BaseException:
            self.artifacts.remove(job_id)
            raise

    def _submit(
        self, job_id: str, path: Path, *, owns_video: bool, max_frames: int | None
    ) -> JobRecord:
        info = video_io.probe(
            path, max_frames=self.settings.job_max_frames,
            max_duration_s=self.settings.job_max_duration_s,
        )  # fmt: skip
        record = JobRecord(
            job_id=job_id, status=QUEUED, video=str(path), owns_video=owns_video,
            max_frames=max_frames, created_at=time.time(),
        )  # fmt: skip
        if not self.store.insert(record, queue_max=self.settings.job_queue_max):
            raise QueueFull(
                f"{self.settings.job_queue_max} video jobs are waiting, the most the queue "
                "holds; retry when one has finished"
            )
        with self._wake:
            self._wake.notify()
        log.info(
            "Job %s queued: %s %dx%d, %d frames at %.2f fps, max_frames=%s",
            job_id, info.container, info.width, info.height, info.frames, info.fps, max_frames,
        )  # fmt: skip
        return record

    # ------------------------------------------------------------------ reading

    def get(self, job_id: str) -> JobRecord:
        """The job's record (a running job's progress is its worker's latest heartbeat).

        Raises:
            NotFound: Unknown job (``{"error": "Job not found"}``).

        """
        record = self.store.get(job_id)
        if record is None:
            raise NotFound("Job not found")
        return record

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to start, or None when the job is not waiting."""
        return self.store.position(job_id)

    def idle(self) -> bool:
        """Whether a new job would start at once: none queued, and a worker free.

        The workers counted are this process's own, or one when it runs none (an API replica
        does not know how many worker processes there are).
        """
        counts = self.store.counts()
        return not counts[QUEUED] and counts[PROCESSING] < max(self.settings.job_workers, 1)

    def wait(self, job_id: str, timeout_s: float) -> JobRecord:
        """Poll the store until the job has ended or ``timeout_s`` passed; its record."""
        deadline = time.monotonic() + timeout_s
        record = self.get(job_id)
        while record.status not in (COMPLETE, ERROR) and time.monotonic() < deadline:
            time.sleep(min(self.settings.job_poll_s, max(deadline - time.monotonic(), 0.0)))
            record = self.get(job_id)
        return record

    def result_path(self, job_id: str, *, frames: bool = True) -> Path:
        """The result file of a job, or (``frames=False``) its summary keys alone."""
        return self.artifacts.result(job_id, frames=frames)

    def overlay_path(self, job_id: str) -> Path:
        """The overlay video of a job (absolute: ``output_path``)."""
        return self.artifacts.overlay(job_id)

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued or running job (it ends in ``error``); an ended job is unchanged.

        A running job stops at its worker's next heartbeat: the answer waits for that, a few
        heartbeats at most.
        """
        self.get(job_id)
        ended = self.store.cancel(job_id, time.time())
        if ended is not None:
            if ended.owns_video:
                Path(ended.video).unlink(missing_ok=True)
            return ended
        return self.wait(job_id, timeout_s=3 * self.settings.job_heartbeat_s)

    def close(self) -> None:
        """Stop this process's workers (a running job is queued again), close the store."""
        with self._wake:
            self._stop.set()
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=60)
        self.store.close()


def _copy_bounded(stream: IO[bytes], out: IO[bytes], limit: int) -> int:
    """Copy a stream, refusing it beyond ``limit`` bytes; return the bytes copied."""
    copied = 0
    for chunk in iter(lambda: stream.read(2**20), b""):
        copied += len(chunk)
        if copied > limit:
            raise PayloadTooLarge(f"the video is over {limit} bytes, the most accepted")
        out.write(chunk)
    return copied

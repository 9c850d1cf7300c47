"""The whole-video job engine: submit, queue, run, progress, result, overlay; persisted.

Why a small SQLite table and worker threads rather than a queue library such as huey: a
job's life (queued, processing with progress, complete or error, cancelled) has to be read
by the status endpoints within seconds in every state, survive a restart, and run inside
the service's process, which holds the Triton client and the mesh triangles. huey's SQLite
storage would add a second store for results and a consumer process, and still need this
table for progress and cancellation. One table of records, the files in the job's folder,
and ``job_workers`` threads (1 by default: one GPU) are all of it; the Redis road to
several replicas stays open by putting the table behind another store.

A run (analyse, track, refine, render) is :mod:`.run`'s.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import IO

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tracker_service.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    QueueFull,
    ServiceError,
)
from tracker_service.jobs import media
from tracker_service.jobs.result import (
    ResultWriter,
    summary_path,
)
from tracker_service.jobs.run import (
    JobCancelled,
    JobInterrupted,
    Progress,
    Refine,
    VideoRunner,
)
from tracker_service.jobs.store import COMPLETE, ERROR, PROCESSING, QUEUED, JobRecord, JobStore
from tracker_service.pipeline import FramePipeline
from tracker_service.readiness import ReadinessCache
from tracker_service.settings import Settings
from tracker_service.tracking import TrackerConfig
from tracker_service.tracking.offline import refine_video

log = logging.getLogger(__name__)

#: File names in a job's folder.
RESULT, OVERLAY, UPLOAD = "result.json", "overlay.mp4", "upload"
#: Runs a job may start; one cut off by this many restarts ends in ``error``.
MAX_ATTEMPTS = 2
#: How often an idle worker deletes the jobs past their retention, at most.
_SWEEP_S = 60.0
_JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


class JobMetrics:
    """The job engine's metrics, in the service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.jobs = Gauge("tracker_jobs", "Video jobs, by state", ["state"], registry=r)
        self.queue = Gauge("tracker_job_queue", "Video jobs waiting in the queue", registry=r)
        self.frames = Counter("tracker_job_frames", "Video frames analysed by jobs", registry=r)
        self.fps = Gauge(
            "tracker_job_frames_per_second", "Frames per second of the latest job", registry=r
        )
        self.seconds = Histogram(
            "tracker_job_seconds", "Run time of finished video jobs", ["state"],
            buckets=_JOB_BUCKETS, registry=r,
        )  # fmt: skip


class JobEngine:
    """Whole-video jobs: the one engine behind both flavours of ``VIDEO_API.md``.

    Args:
        settings: The service's settings (``job_*``, ``video_folder``).
        pipeline: The model steps (shared with ``/pose/hybrid``; stateless).
        tracker_config: Each job builds its own tracker from it.
        readiness: Whether Triton is ready (checked when a job starts).
        faces: (13776, 3) mesh triangles.
        registry: Where the job metrics are registered.
        refine: The offline temporal pass over a whole video's tracker outputs.

    """

    def __init__(
        self,
        settings: Settings,
        pipeline: FramePipeline,
        tracker_config: TrackerConfig,
        readiness: ReadinessCache,
        faces: np.ndarray,
        registry: CollectorRegistry,
        *,
        refine: Refine = refine_video,
    ) -> None:
        self.settings = settings
        self._folder = Path(settings.job_data_dir)
        self._folder.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(settings.job_database)
        self.metrics = JobMetrics(registry)
        self._faces = faces
        self._runner = VideoRunner(
            settings, pipeline, tracker_config, readiness, faces,
            frames=self.metrics.frames, fps=self.metrics.fps, refine=refine,
        )  # fmt: skip
        self._lock = threading.Condition()
        self._waiting: deque[str] = deque()
        self._running: dict[str, Progress] = {}
        self._done: dict[str, threading.Event] = {}
        self._stop = threading.Event()
        self._recover()
        self.metrics.queue.set_function(lambda: len(self._waiting))
        self._refresh_counts()
        self._workers = [
            threading.Thread(target=self._work, name=f"job-worker-{i}", daemon=True)
            for i in range(settings.job_workers)
        ]
        for worker in self._workers:
            worker.start()

    # ------------------------------------------------------------------ submitting

    def submit_upload(self, stream: IO[bytes], max_frames: int | None) -> JobRecord:
        """Save an uploaded video into a new job's folder, check it, and queue the job.

        Raises:
            ServiceError: 4xx in words: not a video, undecodable, too long, too big, queue full.

        """
        job_id = uuid.uuid4().hex
        folder = self._folder / job_id
        folder.mkdir(parents=True)
        path = folder / UPLOAD
        try:
            with path.open("wb") as out:
                copied = _copy_bounded(stream, out, self.settings.job_max_bytes)
            if copied == 0:
                raise BadRequest("the video field is empty: send the video file")
            return self._submit(job_id, path, owns_video=True, max_frames=max_frames)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def submit_path(self, path: Path, max_frames: int | None) -> JobRecord:
        """Queue a job on a video already on the service's disk (checked by the caller)."""
        job_id = uuid.uuid4().hex
        (self._folder / job_id).mkdir(parents=True)
        try:
            if path.stat().st_size > self.settings.job_max_bytes:
                raise PayloadTooLarge(
                    f"the video is {path.stat().st_size} bytes; at most "
                    f"{self.settings.job_max_bytes} are accepted"
                )
            return self._submit(job_id, path, owns_video=False, max_frames=max_frames)
        except BaseException:
            shutil.rmtree(self._folder / job_id, ignore_errors=True)
            raise

    def _submit(
        self, job_id: str, path: Path, *, owns_video: bool, max_frames: int | None
    ) -> JobRecord:
        info = media.probe(
            path, max_frames=self.settings.job_max_frames,
            max_duration_s=self.settings.job_max_duration_s,
        )  # fmt: skip
        record = JobRecord(
            job_id=job_id, status=QUEUED, video=str(path), owns_video=owns_video,
            max_frames=max_frames, created_at=time.time(),
        )  # fmt: skip
        with self._lock:
            if len(self._waiting) >= self.settings.job_queue_max:
                raise QueueFull(
                    f"{len(self._waiting)} video jobs are waiting, the most the queue holds; "
                    "retry when one has finished"
                )
            self.store.insert(record)
            self._done[job_id] = threading.Event()
            self._waiting.append(job_id)
            self._lock.notify()
        log.info(
            "Job %s queued: %s %dx%d, %d frames at %.2f fps, max_frames=%s",
            job_id, info.container, info.width, info.height, info.frames, info.fps, max_frames,
        )  # fmt: skip
        self._refresh_counts()
        return record

    # ------------------------------------------------------------------ reading

    def get(self, job_id: str) -> JobRecord:
        """The job's record, with the live progress of a running job.

        Raises:
            NotFound: Unknown job (``{"error": "Job not found"}``).

        """
        record = self.store.get(job_id)
        if record is None:
            raise NotFound("Job not found")
        progress = self._running.get(job_id)
        if progress is not None and record.status == PROCESSING:
            return JobRecord(**{**record.__dict__, "progress": progress.report()})
        return record

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to start, or None when the job is not waiting."""
        with self._lock:
            return self._waiting.index(job_id) + 1 if job_id in self._waiting else None

    def idle(self) -> bool:
        """Whether a new job would start at once (no job waiting, a worker free)."""
        with self._lock:
            return not self._waiting and len(self._running) < self.settings.job_workers

    def wait(self, job_id: str, timeout_s: float | None = None) -> JobRecord:
        """Wait until the job has ended (or the timeout passed); return its record."""
        event = self._done.get(job_id)
        if event is not None:
            event.wait(timeout_s)
        return self.get(job_id)

    def result_path(self, job_id: str, *, frames: bool = True) -> Path:
        """The result file of a job, or (``frames=False``) its summary keys alone."""
        path = self._folder / job_id / RESULT
        return path if frames else summary_path(path)

    def overlay_path(self, job_id: str) -> Path:
        """The overlay video of a job (absolute: ``output_path``)."""
        return (self._folder / job_id / OVERLAY).resolve()

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued or running job (it ends in ``error``); an ended job is unchanged."""
        record = self.get(job_id)
        with self._lock:
            if job_id in self._waiting:
                self._waiting.remove(job_id)
                self._end(record, ERROR, error="cancelled by a client before it started")
            elif job_id in self._running:
                self._running[job_id].cancel.set()
        return self.wait(job_id, timeout_s=30.0) if job_id in self._running else self.get(job_id)

    def close(self) -> None:
        """Stop the workers: a running job stops between frames and is queued again."""
        with self._lock:
            self._stop.set()
            self._lock.notify_all()
        for worker in self._workers:
            worker.join(timeout=60)
        self.store.close()

    # ------------------------------------------------------------------ running

    def _recover(self) -> None:
        """After a restart: queue the waiting jobs again, and re-run the cut-off ones once."""
        for record in self.store.with_status(PROCESSING):
            if record.attempts >= MAX_ATTEMPTS or not Path(record.video).is_file():
                reason = (
                    f"cut off by {record.attempts} service restarts; not retried"
                    if Path(record.video).is_file()
                    else "cut off by a service restart, and its video is gone"
                )
                log.warning("Job %s: %s", record.job_id, reason)
                self._end(record, ERROR, error=reason, status_code=500)
            else:
                log.warning("Job %s was cut off by a restart: running it again", record.job_id)
                self.store.update(record.job_id, status=QUEUED, progress=None)
        for record in self.store.with_status(QUEUED):
            self._done[record.job_id] = threading.Event()
            self._waiting.append(record.job_id)
        self._sweep()

    def _work(self) -> None:
        """Run the queue's jobs in order; sweep old jobs after each, and when idle."""
        while True:
            with self._lock:
                if not self._waiting and not self._stop.is_set():
                    self._lock.wait(timeout=min(self.settings.job_retention_s, _SWEEP_S))
                if self._stop.is_set():
                    return
                job_id = self._waiting.popleft() if self._waiting else None
                if job_id is not None:
                    progress = self._running[job_id] = Progress(stop=self._stop)
            if job_id is None:
                self._sweep()
                continue
            try:
                self._run(job_id, progress)
            finally:
                with self._lock:
                    del self._running[job_id]
                self._sweep()

    def _run(self, job_id: str, progress: Progress) -> None:
        """Run one job to its end; nothing raised here reaches the worker."""
        record = self.store.get(job_id)
        if record is None or record.status != QUEUED:
            return
        self.store.update(
            job_id, status=PROCESSING, started_at=time.time(), attempts=record.attempts + 1
        )
        self._refresh_counts()
        log.info("Job %s: started (attempt %d)", job_id, record.attempts + 1)
        writer = ResultWriter(
            self.result_path(job_id), self._faces, self.settings.answer_budget_bytes
        )
        try:
            summary = self._runner.run(record, progress, writer, self.overlay_path(job_id))
            writer.finish(summary)
        except JobInterrupted:
            writer.discard()
            log.warning("Job %s: interrupted by the service stopping; queued again", job_id)
            self.store.update(job_id, status=QUEUED, progress=None)
            return
        except JobCancelled:
            writer.discard()
            self._end(record, ERROR, error="cancelled by a client while it ran", progress=progress)
            return
        except ServiceError as error:
            writer.discard()
            self._end(record, ERROR, error=str(error), status_code=error.status_code,
                      progress=progress)  # fmt: skip
            return
        except Exception as error:  # a crash ends the job, never the service
            writer.discard()
            log.exception("Job %s crashed", job_id)
            self._end(record, ERROR, error=f"internal error ({type(error).__name__}: {error})",
                      status_code=500, progress=progress)  # fmt: skip
            return
        self._end(record, COMPLETE, progress=progress)

    def _end(
        self,
        record: JobRecord,
        status: str,
        *,
        error: str | None = None,
        status_code: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Record a job's end, release its waiters, delete its upload."""
        now = time.time()
        self.store.update(
            record.job_id, status=status, finished_at=now, error=error, error_status=status_code,
            progress=progress.report() if progress is not None else None,
        )  # fmt: skip
        ended = self.store.get(record.job_id)
        started = None if ended is None else ended.started_at
        if started is not None:
            self.metrics.seconds.labels(status).observe(now - started)
        if record.owns_video:
            Path(record.video).unlink(missing_ok=True)
        if error:
            log.warning("Job %s: error: %s", record.job_id, error)
        else:
            log.info("Job %s: complete in %.1f s", record.job_id, now - (started or now))
        self._done.setdefault(record.job_id, threading.Event()).set()
        self._refresh_counts()

    # ------------------------------------------------------------------ housekeeping

    def _refresh_counts(self) -> None:
        for state, count in self.store.counts().items():
            self.metrics.jobs.labels(state).set(count)

    def _sweep(self) -> None:
        """Delete ended jobs older than ``job_retention_s``, then the oldest over the budget."""
        finished = self.store.finished()
        cutoff = time.time() - self.settings.job_retention_s
        sizes = {record.job_id: _folder_bytes(self._folder / record.job_id) for record in finished}
        used = sum(_folder_bytes(folder) for folder in self._folder.iterdir())
        for record in finished:
            old = (record.finished_at or 0.0) < cutoff
            if not old and used <= self.settings.job_disk_budget_bytes:
                break
            log.info("Job %s: deleted (%s)", record.job_id, "retention" if old else "disk budget")
            shutil.rmtree(self._folder / record.job_id, ignore_errors=True)
            self.store.delete(record.job_id)
            self._done.pop(record.job_id, None)
            used -= sizes[record.job_id]
        self._refresh_counts()


def _copy_bounded(stream: IO[bytes], out: IO[bytes], limit: int) -> int:
    """Copy a stream, refusing it beyond ``limit`` bytes; return the bytes copied."""
    copied = 0
    for chunk in iter(lambda: stream.read(2**20), b""):
        copied += len(chunk)
        if copied > limit:
            raise PayloadTooLarge(f"the video is over {limit} bytes, the most accepted")
        out.write(chunk)
    return copied


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

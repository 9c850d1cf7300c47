"""A job worker: claim a job from the store under a lease, run it, heartbeat, end it.

Any number of workers, in any number of processes, share one store: the embedded engine's
threads (``TRACKER_JOB_WORKERS``) and ``python -m tracker_service.worker`` processes run the
same loop. While a job runs, a heartbeat thread stores its progress every
``TRACKER_JOB_HEARTBEAT_S``, renews the lease and reads the cancel flag; a worker that
lost its lease (it stalled past ``TRACKER_JOB_LEASE_S`` and another worker took the job)
stops the run and records nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tracker_service.exceptions import ServiceError
from tracker_service.jobs.artifacts import Artifacts
from tracker_service.jobs.result import ResultWriter
from tracker_service.jobs.run import JobCancelled, JobInterrupted, Progress, VideoRunner
from tracker_service.jobs.store import COMPLETE, ERROR, JobRecord, JobStore
from tracker_service.settings import JobSettings

log = logging.getLogger(__name__)

#: Runs a job may start; one whose worker died this many times ends in ``error``.
MAX_ATTEMPTS = 2
#: How often an idle worker deletes the jobs past their retention, at most.
_SWEEP_S = 60.0
_JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


class RunMetrics:
    """The metrics of the jobs a process runs."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.frames = Counter("tracker_job_frames", "Video frames analysed by jobs", registry=r)
        self.fps = Gauge(
            "tracker_job_frames_per_second", "Frames per second of the latest job", registry=r
        )
        self.seconds = Histogram(
            "tracker_job_seconds", "Run time of finished video jobs", ["state"],
            buckets=_JOB_BUCKETS, registry=r,
        )  # fmt: skip


class JobWorker:
    """Runs the store's jobs one at a time until stopped.

    Args:
        name: Unique among every worker sharing the store (the lease's owner).
        store: The job queue.
        runner: Runs one job's video.
        artifacts: The jobs' files.
        faces: (13776, 3) mesh triangles (the result's, once per result).
        settings: The jobs' settings (``job_*``, ``answer_budget_bytes``).
        metrics: Where run times are observed.
        wake: Notified when a job is queued in this process (else the store is polled).
        stop: Set when the process stops: a running job is released, queued again.

    """

    def __init__(
        self,
        name: str,
        *,
        store: JobStore,
        runner: VideoRunner,
        artifacts: Artifacts,
        faces: np.ndarray,
        settings: JobSettings,
        metrics: RunMetrics,
        wake: threading.Condition,
        stop: threading.Event,
    ) -> None:
        self.name = name
        self._store = store
        self._runner = runner
        self._artifacts = artifacts
        self._faces = faces
        self._settings = settings
        self._metrics = metrics
        self._wake = wake
        self._stop = stop

    def serve(self) -> None:
        """Claim and run jobs until stopped.

        Old jobs are swept when idle after a job, then every minute (or retention time).
        """
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                record = self._next()
            except Exception:  # the store is unreachable: try again, never die
                log.exception("Worker %s: the job store failed; retrying", self.name)
                record = None
            if record is not None:
                try:
                    self._run(record)
                except Exception:  # the loop outlives anything (the lease recovers the job)
                    log.exception("Worker %s: job %s failed outside its run", self.name,
                                  record.job_id)  # fmt: skip
                next_sweep = 0.0  # a job ended: sweep once idle
                continue
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + min(self._settings.job_retention_s, _SWEEP_S)
                self._artifacts.sweep(
                    self._store, retention_s=self._settings.job_retention_s,
                    budget_bytes=self._settings.job_disk_budget_bytes,
                )  # fmt: skip
            with self._wake:
                if not self._stop.is_set():
                    self._wake.wait(self._settings.job_poll_s)

    def _next(self) -> JobRecord | None:
        """End the jobs out of attempts, then claim the next one."""
        now = time.time()
        for record in self._store.expire(MAX_ATTEMPTS, now):
            log.warning("Job %s: error: %s", record.job_id, record.error)
            self._drop_upload(record)
        return self._store.claim(
            self.name, self._settings.job_lease_s, now, progress=Progress().report()
        )

    def _run(self, record: JobRecord) -> None:
        """Run one claimed job to its end; nothing raised here reaches the loop."""
        job_id = record.job_id
        log.info("Job %s: started by %s (attempt %d)", job_id, self.name, record.attempts)
        if record.attempts > 1:
            log.warning(
                "Job %s: cut off by a restart or a crash of its worker (its lease ran out); "
                "running it again", job_id,
            )  # fmt: skip
        progress, lost, done = Progress(stop=self._stop), threading.Event(), threading.Event()
        try:
            writer = ResultWriter(
                self._artifacts.result(job_id), self._faces, self._settings.answer_budget_bytes
            )
        except OSError as error:
            words = f"its result cannot be written to the shared folder ({error})"
            self._end(record, ERROR, progress, error=words, status_code=500)
            return
        beat = threading.Thread(
            target=self._heartbeat, args=(job_id, progress, lost, done),
            name=f"heartbeat-{job_id[:8]}", daemon=True,
        )  # fmt: skip
        beat.start()
        try:
            summary = self._runner.run(record, progress, writer, self._artifacts.overlay(job_id))
            writer.finish(summary)
        except JobInterrupted:
            writer.discard()
            if self._store.release(job_id, self.name):
                log.warning("Job %s: interrupted by the worker stopping; queued again", job_id)
            return
        except JobCancelled:
            writer.discard()
            if lost.is_set():
                log.warning("Job %s: %s lost its lease; another worker runs it", job_id, self.name)
            else:
                self._end(record, ERROR, progress, error="cancelled by a client while it ran")
            return
        except ServiceError as error:
            writer.discard()
            self._end(record, ERROR, progress, error=str(error), status_code=error.status_code)
            return
        except Exception as error:  # a crash ends the job, never the worker
            writer.discard()
            log.exception("Job %s crashed", job_id)
            self._end(record, ERROR, progress, status_code=500,
                      error=f"internal error ({type(error).__name__}: {error})")  # fmt: skip
            return
        finally:
            done.set()
            beat.join()
        self._end(record, COMPLETE, progress)

    def _heartbeat(
        self, job_id: str, progress: Progress, lost: threading.Event, done: threading.Event
    ) -> None:
        """Store the progress and renew the lease until the run ends; relay a cancellation.

        A lost lease cancels the run too (its end, fenced by the lease, is not recorded).
        """
        while not done.wait(self._settings.job_heartbeat_s):
            try:
                beat = self._store.heartbeat(
                    job_id, self.name, self._settings.job_lease_s, progress.report()
                )
            except Exception:  # the lease outlives a short outage of the store
                log.exception("Job %s: heartbeat failed", job_id)
                continue
            if beat is None:
                lost.set()
            if beat is None or beat.cancel:
                progress.cancel.set()

    def _end(
        self,
        record: JobRecord,
        status: str,
        progress: Progress,
        *,
        error: str | None = None,
        status_code: int | None = None,
    ) -> None:
        """Record a job's end (if this worker still holds it) and delete its upload."""
        now = time.time()
        ended = self._store.end(
            record.job_id, self.name, status, now, error=error, error_status=status_code,
            progress=progress.report(),
        )  # fmt: skip
        if ended is None:
            log.warning("Job %s: %s no longer holds it; its end is not recorded",
                        record.job_id, self.name)  # fmt: skip
            return
        seconds = now - (ended.started_at or now)
        self._metrics.seconds.labels(status).observe(seconds)
        self._drop_upload(ended)
        if error:
            log.warning("Job %s: error: %s", record.job_id, error)
        else:
            log.info("Job %s: complete in %.1f s", record.job_id, seconds)

    @staticmethod
    def _drop_upload(record: JobRecord) -> None:
        if record.owns_video:
            Path(record.video).unlink(missing_ok=True)

"""The job queue without Triton: FIFO order, its bound, cancellation, retention, restarts.

The jobs' readiness check is held by the test (a gate), so that jobs stay queued or running
exactly as long as a test needs; released, it reports Triton not ready and each job ends
``error`` in words.
"""

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from tracker_service.exceptions import NotFound, QueueFull
from tracker_service.inference import Readiness
from tracker_service.jobs.engine import JobEngine
from tracker_service.jobs.store import SqliteJobStore
from tracker_service.readiness import Status
from tracker_service.settings import JobSettings
from tracker_service.topology import smpl_topology
from tracker_service.tracking import TrackerConfig


class Gate:
    """A readiness check that waits until the test opens it, then says "not ready" (or ready)."""

    def __init__(self, *, ready: bool = False) -> None:
        self.open = threading.Event()
        self.waiting = threading.Semaphore(0)
        self._ready = ready

    def get(self) -> Status:
        self.waiting.release()
        assert self.open.wait(30)
        return Status(Readiness(error="" if self._ready else "held by the test"), "unknown")


def _clip(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    return path


def _engine(tmp_path: Path, gate: Gate, **settings) -> JobEngine:
    values = dict(
        job_database=str(tmp_path / "jobs.sqlite"), job_data_dir=str(tmp_path / "d"),
        job_heartbeat_s=0.1, job_lease_s=1.0, job_poll_s=0.05,
    )  # fmt: skip
    return JobEngine(
        JobSettings(**values, **settings), None, TrackerConfig(), gate,
        smpl_topology(np.zeros((13776, 3), np.int32)), CollectorRegistry(), model_version="test",
    )  # fmt: skip


def _submit(engine: JobEngine, clip: Path) -> str:
    with clip.open("rb") as stream:
        return engine.submit_upload(stream, None).job_id


def test_fifo_queue_bound_and_cancellation(tmp_path):
    gate, clip = Gate(), _clip(tmp_path / "c.mp4")
    engine = _engine(tmp_path, gate, job_queue_max=2)
    try:
        running = _submit(engine, clip)
        assert gate.waiting.acquire(timeout=10)  # the worker holds the first job
        second, third = _submit(engine, clip), _submit(engine, clip)
        assert [engine.queue_position(j) for j in (running, second, third)] == [None, 1, 2]
        with pytest.raises(QueueFull, match="retry"):
            _submit(engine, clip)
        cancelled = engine.cancel(second)
        assert cancelled.status == "error" and "cancelled" in cancelled.error
        assert engine.queue_position(third) == 1
        gate.open.set()
        for job in (running, third):
            record = engine.wait(job, timeout_s=30)
            assert record.status == "error" and "not ready" in record.error
            assert not Path(record.video).exists(), "an upload is deleted when its job ends"
        assert engine.store.counts() == {"queued": 0, "processing": 0, "complete": 0, "error": 3}
    finally:
        gate.open.set()
        engine.close()


def test_ended_jobs_are_deleted_after_the_retention_time(tmp_path):
    gate, clip = Gate(), _clip(tmp_path / "c.mp4")
    gate.open.set()
    engine = _engine(tmp_path, gate, job_retention_s=0.01)
    try:
        job = _submit(engine, clip)
        engine.wait(job, timeout_s=30)
        deadline = time.monotonic() + 10
        while engine.store.get(job) is not None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(NotFound, match="Job not found"):
            engine.get(job)
        assert not (tmp_path / "d" / job).exists()
    finally:
        engine.close()


def test_a_stop_queues_the_running_job_again_and_a_restart_runs_both(tmp_path):
    gate, clip = Gate(ready=True), _clip(tmp_path / "c.mp4")
    engine = _engine(tmp_path, gate)
    first = _submit(engine, clip)
    assert gate.waiting.acquire(timeout=10)  # the first job runs
    waiting = _submit(engine, clip)
    threading.Timer(0.5, gate.open.set).start()
    engine.close()  # the service stops: the running job stops between frames
    store = SqliteJobStore(tmp_path / "jobs.sqlite")
    assert [store.get(j).status for j in (first, waiting)] == ["queued", "queued"]
    store.close()

    restarted = _engine(tmp_path, again := Gate())
    try:
        again.open.set()
        for job in (first, waiting):
            record = restarted.wait(job, timeout_s=30)
            assert record.status == "error" and "not ready" in record.error
    finally:
        restarted.close()

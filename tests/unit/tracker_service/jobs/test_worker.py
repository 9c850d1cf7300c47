"""The worker loop on a real SQLite store, with a runner held by the test (no Triton).

The runner stands in for the video run only: it advances its progress and checks for
cancellation and stop as the real one does between frames, until the test releases it.
"""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from tracker_service.jobs.artifacts import Artifacts
from tracker_service.jobs.result import StoredResult
from tracker_service.jobs.store import (
    COMPLETE,
    ERROR,
    PROCESSING,
    QUEUED,
    JobRecord,
    SqliteJobStore,
)
from tracker_service.jobs.worker import JobWorker, RunMetrics
from tracker_service.settings import JobSettings


class HeldRunner:
    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.ended = threading.Event()

    def run(self, record, progress, writer, overlay):
        self.started.set()
        try:
            while not self.release.wait(0.02):
                progress.frames_done += 1
                progress.check()
            return {"status": COMPLETE}
        finally:
            self.ended.set()


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteJobStore(tmp_path / "jobs.sqlite")
        self.artifacts = Artifacts(tmp_path / "jobs")
        self.runner = HeldRunner()
        self.stop = threading.Event()
        self.worker = JobWorker(
            "w1", store=self.store, runner=self.runner, artifacts=self.artifacts,
            faces=np.zeros((13776, 3), np.int32),
            settings=JobSettings(job_heartbeat_s=0.05, job_lease_s=0.5, job_poll_s=0.02),
            metrics=RunMetrics(CollectorRegistry()), wake=threading.Condition(), stop=self.stop,
        )  # fmt: skip
        self.thread = threading.Thread(target=self.worker.serve, daemon=True)

    def submit(self, job_id: str = "a") -> Path:
        upload = self.artifacts.upload(job_id)
        upload.parent.mkdir(parents=True)
        upload.write_bytes(b"video")
        self.store.insert(JobRecord(job_id=job_id, status=QUEUED, video=str(upload),
                                    owns_video=True, max_frames=None, created_at=1.0))  # fmt: skip
        return upload

    def wait_for(self, job_id: str, status: str, timeout_s: float = 10.0) -> JobRecord:
        deadline = time.monotonic() + timeout_s
        while (record := self.store.get(job_id)).status != status:
            assert time.monotonic() < deadline, f"{job_id} still {record.status}"
            time.sleep(0.02)
        return record

    def close(self) -> None:
        self.stop.set()
        self.runner.release.set()
        self.thread.join(10)
        self.store.close()


@pytest.fixture
def harness(tmp_path):
    harness = Harness(tmp_path)
    harness.thread.start()
    yield harness
    harness.close()


def test_a_job_runs_with_its_progress_stored_and_completes(harness):
    upload = harness.submit()
    assert harness.runner.started.wait(10)
    time.sleep(0.2)  # a few heartbeats
    running = harness.store.get("a")
    assert running.status == PROCESSING and running.progress["frames_done"] > 0
    harness.runner.release.set()
    done = harness.wait_for("a", COMPLETE)
    assert done.attempts == 1 and not upload.exists(), "the upload is deleted at the end"
    assert StoredResult.load(harness.artifacts.result("a")) is not None, "the result is stored"


def test_a_cancel_in_the_store_reaches_the_running_job(harness):
    harness.submit()
    assert harness.runner.started.wait(10)
    harness.store.cancel("a", now=time.time())
    ended = harness.wait_for("a", ERROR)
    assert ended.error == "cancelled by a client while it ran"


def test_a_worker_that_lost_its_lease_stops_and_records_nothing(harness):
    harness.submit()
    assert harness.runner.started.wait(10)
    harness.store.update("a", lease_owner="w2")  # another worker claimed it after a stall
    assert harness.runner.ended.wait(10), "the next heartbeat stops the run"
    time.sleep(0.2)
    record = harness.store.get("a")
    assert record.status == PROCESSING and record.error is None, "w2's claim stands"
    assert harness.store.end("a", "w2", COMPLETE, now=2.0) is not None


def test_a_stopping_worker_queues_its_job_again(tmp_path):
    harness = Harness(tmp_path)
    harness.thread.start()
    harness.submit()
    assert harness.runner.started.wait(10)
    harness.stop.set()
    harness.thread.join(10)
    record = harness.store.get("a")
    assert (record.status, record.attempts) == (QUEUED, 0), "a graceful stop is no attempt"
    harness.store.close()


def test_a_job_whose_folder_is_gone_ends_in_error_in_words(harness):
    harness.stop.set()  # hold the loop: the job is submitted without its folder
    harness.thread.join(10)
    harness.store.insert(JobRecord(job_id="b", status=QUEUED, video="/nowhere.mp4",
                                   owns_video=False, max_frames=None, created_at=1.0))  # fmt: skip
    harness.stop.clear()
    harness.thread = threading.Thread(target=harness.worker.serve, daemon=True)
    harness.thread.start()
    ended = harness.wait_for("b", ERROR)
    assert "cannot be written to the shared folder" in ended.error

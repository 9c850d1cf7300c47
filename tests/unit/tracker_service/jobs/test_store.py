"""The job queue's contract, on SQLite here (tests/scale runs it on a real PostgreSQL too).

Every test takes a ``store`` fixture; ``tests/scale/test_postgres_store.py`` imports the
``contract`` tests and runs them against a PostgreSQL server.
"""

import threading

import pytest

from tracker_service.jobs.store import (
    COMPLETE,
    ERROR,
    PROCESSING,
    QUEUED,
    JobRecord,
    SqliteJobStore,
    open_store,
)


def job(job_id: str, created_at: float, **values) -> JobRecord:
    fields = dict(status=QUEUED, video=f"/{job_id}.mp4", owns_video=True, max_frames=None)
    return JobRecord(job_id=job_id, created_at=created_at, **(fields | values))


@pytest.fixture
def location(tmp_path):
    """Where the store lives (``open_store``'s argument)."""
    return str(tmp_path / "sub" / "jobs.sqlite")


@pytest.fixture
def store(location):
    store = open_store(location)
    yield store
    store.close()


def test_a_path_opens_sqlite(store):
    assert isinstance(store, SqliteJobStore)


def test_records_round_trip_and_states(store):
    record = job("a", 1.0, max_frames=10)
    store.insert(record)
    store.insert(job("b", 2.0, owns_video=False))
    assert store.get("a") == record and store.get("zz") is None
    store.update("a", status=COMPLETE, finished_at=5.0, progress={"stage": "render"})
    store.update("b", status=ERROR, finished_at=4.0, error="bad", error_status=422)
    a = store.get("a")
    assert (a.status, a.progress, a.owns_video, a.max_frames) == (
        COMPLETE, {"stage": "render"}, True, 10,
    )  # fmt: skip
    assert [r.job_id for r in store.finished()] == ["b", "a"]  # the earliest ended first
    assert store.counts() == {"queued": 0, "processing": 0, "complete": 1, "error": 1}
    store.delete("b")
    assert store.get("b") is None and store.finished() == [store.get("a")]


def test_fifo_claims_positions_and_the_queue_bound(store):
    for i, name in enumerate("abc"):
        assert store.insert(job(name, float(i)), queue_max=3)
    assert not store.insert(job("d", 9.0), queue_max=3)
    assert [store.position(n) for n in "abcd"] == [1, 2, 3, None]
    first = store.claim("w1", 30.0, now=10.0)
    assert (first.job_id, first.status, first.attempts) == ("a", PROCESSING, 1)
    assert first.started_at == 10.0
    assert [store.position(n) for n in "abc"] == [None, 1, 2]
    assert store.claim("w2", 30.0, now=10.0).job_id == "b"


def test_heartbeat_progress_cancel_and_fenced_end(store):
    store.insert(job("a", 1.0))
    assert store.claim("w1", 30.0, now=1.0, progress={"stage": "analyse"}).progress == {
        "stage": "analyse"
    }, "a claimed job answers a progress at once"
    assert store.heartbeat("a", "w1", 30.0, {"stage": "analyse", "frames_done": 3}).cancel is False
    assert store.get("a").progress == {"stage": "analyse", "frames_done": 3}
    assert store.heartbeat("a", "w2", 30.0, {}) is None, "only the lease's owner beats"
    assert store.cancel("a", now=2.0) is None  # running: its worker is asked to stop
    assert store.heartbeat("a", "w1", 30.0, {}).cancel is True
    assert store.end("a", "w2", COMPLETE, now=3.0) is None, "another worker's end is refused"
    ended = store.end("a", "w1", ERROR, now=3.0, error="cancelled", error_status=None)
    assert (ended.status, ended.error, ended.finished_at) == (ERROR, "cancelled", 3.0)
    assert store.end("a", "w1", COMPLETE, now=4.0) is None, "an ended job stays ended"


def test_cancel_a_queued_job_ends_it(store):
    store.insert(job("a", 1.0))
    ended = store.cancel("a", now=2.0)
    assert (ended.status, ended.finished_at) == (ERROR, 2.0) and "before it started" in ended.error
    assert store.claim("w1", 30.0, now=3.0) is None


def test_a_dead_workers_job_is_claimed_again_then_ended_after_max_attempts(store):
    store.insert(job("a", 1.0))
    assert store.claim("dead", 0.2, now=1.0).attempts == 1
    assert store.claim("w2", 30.0, now=1.0) is None, "the lease still holds"
    threading.Event().wait(0.4)  # the lease runs out (the database's clock)
    assert store.expire(max_attempts=2, now=2.0) == []
    again = store.claim("w2", 0.2, now=2.0)
    assert (again.job_id, again.attempts) == ("a", 2)
    assert store.heartbeat("a", "dead", 30.0, {}) is None, "the dead worker lost it"
    threading.Event().wait(0.4)
    expired = store.expire(max_attempts=2, now=3.0)
    assert [r.job_id for r in expired] == ["a"]
    assert expired[0].status == ERROR and "2 runs" in expired[0].error
    assert store.claim("w3", 30.0, now=3.0) is None


def test_release_queues_the_job_again_without_counting_the_run(store):
    store.insert(job("a", 1.0))
    store.claim("w1", 30.0, now=1.0)
    assert not store.release("a", "w2")
    assert store.release("a", "w1")
    record = store.get("a")
    assert (record.status, record.attempts, store.position("a")) == (QUEUED, 0, 1)


def test_concurrent_claims_never_take_one_job_twice(store, location):
    for i in range(40):
        store.insert(job(f"j{i:02d}", float(i)))
    claimed: list[str] = []
    lock = threading.Lock()
    stores = [open_store(location) for _ in range(4)]  # a connection each, as processes have

    def claim_all(worker: str, own) -> None:
        while (record := own.claim(worker, 30.0, now=1.0)) is not None:
            with lock:
                claimed.append(record.job_id)

    threads = [
        threading.Thread(target=claim_all, args=(f"w{i}", own)) for i, own in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for own in stores:
        own.close()
    assert sorted(claimed) == [f"j{i:02d}" for i in range(40)]


def test_a_table_of_the_first_schema_gets_the_lease_columns(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, status TEXT NOT NULL, video TEXT NOT NULL, "
        "owns_video INTEGER NOT NULL, max_frames INTEGER, created_at REAL NOT NULL, "
        "started_at REAL, finished_at REAL, attempts INTEGER NOT NULL DEFAULT 0, error TEXT, "
        "error_status INTEGER, progress TEXT)"
    )
    db.execute("INSERT INTO jobs VALUES ('a', 'processing', '/a.mp4', 1, NULL, 1.0, 2.0, NULL, "
               "1, NULL, NULL, NULL)")  # fmt: skip
    db.commit()
    db.close()
    store = open_store(str(path))
    try:  # cut off before the upgrade: no lease, so claimable at once
        assert store.claim("w1", 30.0, now=3.0).attempts == 2
    finally:
        store.close()

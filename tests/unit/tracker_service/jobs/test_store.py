"""The SQLite job records: a round trip, updates, states, and a second connection (a restart)."""

from tracker_service.jobs.store import COMPLETE, ERROR, QUEUED, JobRecord, JobStore


def test_records_survive_a_new_connection(tmp_path):
    store = JobStore(tmp_path / "sub" / "jobs.sqlite")
    record = JobRecord(job_id="a", status=QUEUED, video="/v.mp4", owns_video=True,
                       max_frames=10, created_at=1.0)  # fmt: skip
    store.insert(record)
    store.insert(JobRecord(job_id="b", status=QUEUED, video="/w.mp4", owns_video=False,
                           max_frames=None, created_at=2.0))  # fmt: skip
    assert store.get("a") == record and store.get("zz") is None
    store.update("a", status=COMPLETE, finished_at=5.0, progress={"stage": "render"})
    store.update("b", status=ERROR, finished_at=4.0, error="bad", error_status=422)
    store.close()

    again = JobStore(tmp_path / "sub" / "jobs.sqlite")
    a = again.get("a")
    assert (a.status, a.progress, a.owns_video, a.max_frames) == (
        COMPLETE, {"stage": "render"}, True, 10,
    )  # fmt: skip
    assert [r.job_id for r in again.finished()] == ["b", "a"]  # the earliest ended first
    assert again.counts() == {"queued": 0, "processing": 0, "complete": 1, "error": 1}
    again.delete("b")
    assert again.get("b") is None and again.with_status(COMPLETE) == [again.get("a")]

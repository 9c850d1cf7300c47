import random
import threading
import time

import numpy as np
import pytest

from tracker_service.exceptions import TooManySessions
from tracker_service.sessions import Session, SessionStore
from tracker_service.tracking import Detection, TrackOutput, TrackState

IMAGE_SIZE = (480, 640)
WAIT_S = 0.3


class RecordingTracker:
    """Stands in for PhalpTracker: records the frames it sees; one track per detection."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.seen: list[int | str] = []
        self.late: list[int] = []
        self.fail_on = fail_on

    def update(self, detections, frame_index, *, image_size=None):
        assert image_size == IMAGE_SIZE
        self.seen.append(frame_index)
        if frame_index == self.fail_on:
            raise RuntimeError("tracker failure")
        return self.associate(detections, frame_index, late=False)

    def associate(self, detections, frame_index, *, late=True):
        if late:
            self.late.append(frame_index)
        return [
            TrackOutput(
                track_id=i + 1, state=TrackState.CONFIRMED, detected=True, box=d.box,
                confidence=d.score, pose=None, camera=None, root_2d=np.zeros(2),
                detection_index=i, hits=1, age=1, frames_since_seen=0,
            )
            for i, d in enumerate(detections)
        ]

    def reset(self) -> None:
        self.seen.append("reset")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


DETECTIONS = [Detection(box=np.array([10.0, 20.0, 50.0, 120.0]), score=0.9)]


def make_session(tracker=None, clock=time.monotonic, wait_s=WAIT_S, idle_s=60.0) -> Session:
    return Session(
        "s", tracker or RecordingTracker(), reorder_wait_s=wait_s, new_video_idle_s=idle_s,
        clock=clock,
    )


def post(session: Session, frame: int, delay: float = 0.0):
    """One request: arrival, analysis (``delay``), then the ordered step."""
    ticket = session.begin(frame)
    time.sleep(delay)
    return session.track(ticket, DETECTIONS, IMAGE_SIZE)


def post_all(
    session: Session,
    runs: list[list[int]],
    jitter: float = 0.0,
    first_delays: list[float] | None = None,
) -> dict[int, object]:
    """Each run in its own thread, frames of a run one after the other (the legacy pool).

    ``jitter``: random analysis time per frame; ``first_delays``: when each run starts.
    """
    steps: dict[int, object] = {}
    rng = random.Random(0)
    delays = {f: rng.uniform(0, jitter) for run in runs for f in run}

    def run_frames(frames: list[int], first_delay: float) -> None:
        time.sleep(first_delay)
        for frame in frames:
            steps[frame] = post(session, frame, delays[frame])

    threads = [
        threading.Thread(target=run_frames, args=(run, delay))
        for run, delay in zip(runs, first_delays or [0.0] * len(runs), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return steps


def test_frames_in_order_are_tracked_in_order():
    tracker = RecordingTracker()
    session = make_session(tracker)
    steps = [post(session, n) for n in range(5)]
    assert tracker.seen == [0, 1, 2, 3, 4]
    assert all(s.tracked and s.main_track_id == 1 and s.skipped == 0 for s in steps)


@pytest.mark.parametrize("jitter", [0.0, 0.02])
def test_interleaved_runs_of_the_legacy_pool_are_tracked_in_frame_order(jitter):
    tracker = RecordingTracker()
    session = make_session(tracker, wait_s=10.0)
    runs = [list(range(start, start + 10)) for start in (0, 10, 20, 30)]
    steps = post_all(session, runs, jitter)
    assert tracker.seen == list(range(40))
    assert all(steps[n].tracked for n in range(40))


def test_concurrent_frames_in_any_order_are_tracked_in_order():
    tracker = RecordingTracker()
    session = make_session(tracker, wait_s=10.0)
    frames = list(range(12))
    random.Random(1).shuffle(frames)
    post_all(session, [[f] for f in frames], jitter=0.01)
    assert tracker.seen == list(range(12))


def test_frame_ahead_waits_then_skips_frames_that_never_arrive():
    tracker = RecordingTracker()
    session = make_session(tracker)
    post(session, 0)
    start = time.monotonic()
    step = post(session, 3)
    assert WAIT_S <= time.monotonic() - start < WAIT_S + 1.0
    assert step.tracked and step.skipped == 2 and tracker.seen == [0, 3]
    late = post(session, 1)  # arrives after it was given up: associated, read-only
    assert not late.tracked and late.main_track_id == 1 and late.main_box is not None
    assert [o.track_id for o in late.outputs] == [1]
    assert tracker.seen == [0, 3] and tracker.late == [1]
    assert post(session, 4).tracked


def test_frame_ahead_awaits_an_earlier_frame_still_being_analysed():
    tracker = RecordingTracker()
    session = make_session(tracker)
    post(session, 0)
    slow = session.begin(1)  # arrived; its analysis takes longer than the reorder wait
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault(2, post(session, 2)))
    thread.start()
    time.sleep(2 * WAIT_S)
    assert tracker.seen == [0]
    assert session.track(slow, DETECTIONS, IMAGE_SIZE).tracked
    thread.join(timeout=5)
    assert tracker.seen == [0, 1, 2] and result[2].tracked and result[2].skipped == 0


def test_abandoned_frame_releases_the_frames_after_it():
    tracker = RecordingTracker()
    session = make_session(tracker, wait_s=30.0)
    post(session, 0)
    failing = session.begin(1)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault(2, post(session, 2)))
    thread.start()
    time.sleep(0.1)
    start = time.monotonic()
    session.abandon(failing)
    thread.join(timeout=5)
    assert time.monotonic() - start < 1.0
    assert tracker.seen == [0, 2] and result[2].tracked


def test_tracker_failure_still_releases_the_next_frame():
    tracker = RecordingTracker(fail_on=1)
    session = make_session(tracker, wait_s=30.0)
    post(session, 0)
    with pytest.raises(RuntimeError, match="tracker failure"):
        post(session, 1)
    start = time.monotonic()
    assert post(session, 2).tracked and time.monotonic() - start < 1.0


def test_a_lower_number_alone_is_no_new_video():
    tracker = RecordingTracker()
    session = make_session(tracker)
    for n in range(6):
        post(session, n)
    start = time.monotonic()
    repeat = post(session, 3)  # held for a possible new video, then answered late
    assert not repeat.tracked and time.monotonic() - start >= WAIT_S
    assert "reset" not in tracker.seen
    assert post(session, 6).tracked and tracker.seen == [0, 1, 2, 3, 4, 5, 6]


def test_a_late_frame_of_an_ended_video_is_not_associated_with_the_new_ones_tracks():
    tracker = RecordingTracker()
    session = make_session(tracker, wait_s=5.0)
    for n in range(4):
        post(session, n)
    ticket = session.begin(2)  # a repeated number, held in case a new video starts
    post(session, 0)  # it does: frame 0 after later frames
    late = session.track(ticket, DETECTIONS, IMAGE_SIZE)
    assert late.tracked and tracker.seen == [0, 1, 2, 3, "reset", 0, 2]  # it joined the new one
    stale = session.begin(9)
    post(session, 0)  # another new video while frame 9 of the last one is in flight
    old = session.track(stale, DETECTIONS, IMAGE_SIZE)
    assert not old.tracked and old.outputs == [] and 9 not in tracker.late


def test_frame_zero_after_later_frames_starts_a_new_video():
    tracker = RecordingTracker()
    videos = []
    session = Session(
        "s", tracker, reorder_wait_s=WAIT_S, new_video_idle_s=60.0,
        on_new_video=lambda: videos.append(1),
    )
    for n in range(4):
        post(session, n)
    assert post(session, 0).tracked and post(session, 1).tracked
    assert tracker.seen == [0, 1, 2, 3, "reset", 0, 1] and videos == [1]


def test_first_frames_of_a_new_video_posted_before_its_frame_zero_join_it():
    tracker = RecordingTracker()
    session = make_session(tracker, wait_s=10.0)
    for n in range(40):
        post(session, n)
    # The next video: the pool's slots post 10, 20 and 30 just before slot 0 posts frame 0.
    runs = [list(range(start, start + 10)) for start in (0, 10, 20, 30)]
    steps = post_all(session, runs, first_delays=[0.2, 0.0, 0.0, 0.0])
    assert all(step.tracked for step in steps.values())
    assert tracker.seen == [*range(40), "reset", *range(40)]


def test_idle_session_starts_a_new_video_at_its_next_frame():
    clock = FakeClock()
    tracker = RecordingTracker()
    session = make_session(tracker, clock=clock, idle_s=30.0)
    post(session, 0)
    post(session, 1)
    clock.now += 10.0
    session.abandon(session.begin(2))  # not idle: same video
    assert "reset" not in tracker.seen
    clock.now += 31.0
    session.abandon(session.begin(5))
    assert tracker.seen == [0, 1, "reset"]


def test_a_frame_in_flight_keeps_the_session_from_being_idle():
    clock = FakeClock()
    tracker = RecordingTracker()
    session = make_session(tracker, clock=clock, idle_s=30.0)
    post(session, 0)
    in_flight = session.begin(1)
    clock.now += 100.0
    session.abandon(session.begin(2))
    session.abandon(in_flight)
    assert "reset" not in tracker.seen


def test_store_creates_sessions_and_evicts_idle_ones():
    clock = FakeClock()
    created = []

    def new_session(session_id):
        created.append(session_id)
        return make_session(clock=clock)

    store = SessionStore(new_session, max_sessions=10, idle_s=100.0, clock=clock)
    session, ticket = store.begin("a", 0)
    session.track(ticket, DETECTIONS, IMAGE_SIZE)
    again, ticket = store.begin("a", 1)
    again.track(ticket, DETECTIONS, IMAGE_SIZE)
    assert again is session and created == ["a"] and len(store) == 1
    clock.now += 50.0
    busy, busy_ticket = store.begin("b", 0)  # in flight: never evicted
    clock.now += 101.0
    store.begin("c", 0)
    assert sorted(store._sessions) == ["b", "c"]  # "a" was idle, "b" has a frame in flight
    assert created == ["a", "b", "c"]


def test_store_evicts_the_longest_idle_session_beyond_the_limit():
    clock = FakeClock()
    store = SessionStore(lambda _: make_session(clock=clock), max_sessions=2, idle_s=1e6,
                         clock=clock)
    for name in ("a", "b"):
        session, ticket = store.begin(name, 0)
        session.track(ticket, DETECTIONS, IMAGE_SIZE)
        clock.now += 1.0
    session, ticket = store.begin("a", 1)
    session.track(ticket, DETECTIONS, IMAGE_SIZE)  # "a" is now the most recent
    clock.now += 1.0
    store.begin("c", 0)
    assert sorted(store._sessions) == ["a", "c"]


def test_store_refuses_a_new_session_when_every_one_is_busy():
    store = SessionStore(lambda _: make_session(), max_sessions=1, idle_s=1e6)
    store.begin("a", 0)  # in flight
    with pytest.raises(TooManySessions, match="1 sessions"):
        store.begin("b", 0)


def test_tracks_alive_counts_every_session():
    store = SessionStore(lambda _: make_session(), max_sessions=4, idle_s=1e6)
    for name in ("a", "b"):
        session, ticket = store.begin(name, 0)
        session.track(ticket, DETECTIONS * 2, IMAGE_SIZE)
    assert store.tracks_alive() == 4


def test_describe_tells_each_sessions_idle_time_tracks_and_frames_in_flight():
    clock = FakeClock()
    store = SessionStore(lambda _: make_session(clock=clock), max_sessions=4, idle_s=1e6,
                         clock=clock)
    session, ticket = store.begin("a", 0)
    session.track(ticket, DETECTIONS, IMAGE_SIZE)
    clock.now += 2.5
    store.begin("b", 0)  # in flight
    assert store.describe() == [
        {"session_id": "a", "idle_s": 2.5, "tracks_alive": 1, "busy": False},
        {"session_id": "b", "idle_s": 0.0, "tracks_alive": 0, "busy": True},
    ]

"""Sessions: one tracker per video, frames tracked strictly in frame order.

The legacy backend posts the frames of a video from several pool slots at once, each slot
sending a run of consecutive frames (0, 10, 20, 30, 1, 11…). Detection and HMR2 of a frame
run as soon as it arrives; only the tracking step is ordered, here:

- A frame *ahead* of the next expected one waits for the missing earlier frames. After
  ``reorder_wait_s``, the earlier frames that never arrived are skipped (frames that have
  arrived and are still being analysed are awaited); then it is tracked.
- A frame *behind* (its number was already tracked or skipped) is *late*: its detections
  are associated with the tracks as they are (``associate``, read-only: the tracker's state
  is not rewound), so that its bodies keep their identities; predicted bodies fill in for
  confirmed tracks it does not show.
- A new video starts only on clear evidence: frame 0 arriving after frames of this video
  were tracked, or a session idle (no frame in flight) for ``new_video_idle_s``. A lower
  number alone is not enough: a frame whose number was already tracked is held (up to
  ``reorder_wait_s``) in case frame 0 of a new video follows, because the slots of a new
  video may post 10, 20, 30 just before 0. It joins the new video if frame 0 comes, and is
  answered late otherwise.
- A frame whose analysis failed is released at once, so that later frames do not wait.

Each session has its own lock and condition; the store has one lock. Tracking itself runs
under the session's lock (it takes milliseconds), one frame at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tracker_service.exceptions import TooManySessions
from tracker_service.subject import select_main
from tracker_service.tracking import Detection, TrackOutput

log = logging.getLogger(__name__)

Clock = Callable[[], float]
#: How often a frame that waits only for frames still being analysed re-checks.
_RECHECK_S = 1.0
#: Skipped ranges remembered per video (to tell a late frame from a repeated one).
_MAX_SKIPPED_RANGES = 256


class Tracker(Protocol):
    """What a session needs of a tracker (``tracker_service.tracking.PhalpTracker``)."""

    def update(
        self,
        detections: Sequence[Detection],
        frame_index: int,
        *,
        image_size: tuple[int, int] | None = None,
    ) -> list[TrackOutput]:
        """Track one frame of ``image_size`` (height, width)."""

    def associate(
        self, detections: Sequence[Detection], frame_index: int
    ) -> list[TrackOutput]:
        """Match a late frame's detections to the tracks as they are, changing nothing."""

    def reset(self) -> None:
        """Forget every track (a new video)."""


@dataclass(eq=False)
class Ticket:
    """A frame registered with its session on arrival; pass it back to track or abandon it.

    Attributes:
        frame: The frame number.
        epoch: The video it belongs to (the session counts videos).
        repeated: Its number was already tracked in that video when it arrived: it may be
            the first frames of a new video, posted just before frame 0.

    """

    frame: int
    epoch: int
    repeated: bool


@dataclass(frozen=True)
class TrackStep:
    """The outcome of the ordered step for one frame.

    Attributes:
        tracked: False for a late frame, associated read-only with the tracks.
        outputs: The tracker's outputs (a late frame's: its association; empty when its
            video has ended).
        main_track_id: The main subject of this frame's outputs, or None.
        main_box: (4,) the main subject's latest box, or None.
        waited_s: Time spent waiting for the frame's turn (or, when late, in the step).
        skipped: Frame numbers this step gave up on (never received).

    """

    tracked: bool
    outputs: list[TrackOutput] = field(default_factory=list)
    main_track_id: int | None = None
    main_box: np.ndarray | None = None
    waited_s: float = 0.0
    skipped: int = 0


class Session:
    """The tracking state of one video stream.

    Args:
        session_id: The session's id.
        tracker: A tracker of its own.
        reorder_wait_s: How long a frame ahead waits for missing earlier frames.
        new_video_idle_s: Idle time after which the next frame starts a new video.
        clock: Monotonic seconds.
        on_new_video: Called (under the session's lock) when a new video starts.

    """

    def __init__(
        self,
        session_id: str,
        tracker: Tracker,
        *,
        reorder_wait_s: float,
        new_video_idle_s: float,
        clock: Clock = time.monotonic,
        on_new_video: Callable[[], None] = lambda: None,
    ) -> None:
        self.session_id = session_id
        self._tracker = tracker
        self._reorder_wait_s = reorder_wait_s
        self._new_video_idle_s = new_video_idle_s
        self._clock = clock
        self._on_new_video = on_new_video
        self._cond = threading.Condition()
        self._epoch = 0
        self._next = 0
        self._skipped: list[tuple[int, int]] = []
        self._failed: set[int] = set()
        self._tickets: set[Ticket] = set()
        self._last_activity = clock()
        self._main_track_id: int | None = None
        self._main_box: np.ndarray | None = None
        self._tracks_alive = 0

    @property
    def last_activity(self) -> float:
        """Clock time of the latest arrival or answered frame."""
        return self._last_activity

    @property
    def busy(self) -> bool:
        """Whether a frame of this session is in flight."""
        with self._cond:
            return bool(self._tickets)

    @property
    def tracks_alive(self) -> int:
        """Tracks the tracker reported for the latest tracked frame."""
        return self._tracks_alive

    def begin(self, frame: int) -> Ticket:
        """Register a frame on arrival; starts a new video on clear evidence.

        Args:
            frame: The frame number (>= 0).

        Returns:
            The ticket to pass to :meth:`track` or :meth:`abandon`, exactly once.

        """
        with self._cond:
            now = self._clock()
            idle = not self._tickets and now - self._last_activity > self._new_video_idle_s
            if self._next > 0 and (frame == 0 or idle):
                log.info(
                    "Session %s: new video at frame %d (%s)", self.session_id, frame,
                    "frame 0 after later frames" if frame == 0 else "idle",
                )
                self._new_video()
            self._last_activity = now
            repeated = frame < self._next and not self._was_skipped(frame)
            ticket = Ticket(frame=frame, epoch=self._epoch, repeated=repeated)
            self._tickets.add(ticket)
            return ticket

    def abandon(self, ticket: Ticket) -> None:
        """Release a frame whose analysis failed: later frames need not wait for it."""
        with self._cond:
            self._tickets.discard(ticket)
            if ticket.epoch == self._epoch and not ticket.repeated and ticket.frame >= self._next:
                self._failed.add(ticket.frame)
                self._advance()
            self._cond.notify_all()

    def track(
        self, ticket: Ticket, detections: Sequence[Detection], image_size: tuple[int, int]
    ) -> TrackStep:
        """Track a frame in order, or answer it as late.

        Args:
            ticket: From :meth:`begin`.
            detections: The frame's detections.
            image_size: The frame's (height, width).

        Returns:
            The tracker's outputs and the main subject, or a late step.

        """
        start = self._clock()
        deadline = start + self._reorder_wait_s
        skipped = 0
        with self._cond:
            try:
                while True:
                    now = self._clock()
                    if ticket.epoch != self._epoch:  # its video has ended
                        return self._late(ticket, detections, start, skipped)
                    if ticket.repeated:  # held in case frame 0 of a new video follows
                        if now >= deadline:
                            return self._late(ticket, detections, start, skipped)
                        self._cond.wait(deadline - now)
                    elif ticket.frame < self._next:
                        return self._late(ticket, detections, start, skipped)
                    elif ticket.frame == self._next:
                        return self._update(ticket, detections, image_size, start, skipped)
                    elif now < deadline:
                        self._cond.wait(deadline - now)
                    else:
                        skipped += self._skip_missing(before=ticket.frame, asking=ticket)
                        if ticket.frame != self._next:
                            self._cond.wait(_RECHECK_S)
            finally:
                self._tickets.discard(ticket)
                self._last_activity = self._clock()
                self._cond.notify_all()

    def _update(
        self,
        ticket: Ticket,
        detections: Sequence[Detection],
        image_size: tuple[int, int],
        start: float,
        skipped: int,
    ) -> TrackStep:
        waited = self._clock() - start
        try:
            outputs = self._tracker.update(detections, ticket.frame, image_size=image_size)
        finally:
            self._next = ticket.frame + 1
            self._advance()
        self._main_track_id = select_main(outputs, self._main_track_id)
        main = next((o for o in outputs if o.track_id == self._main_track_id), None)
        if main is not None:
            self._main_box = main.box
        self._tracks_alive = len(outputs)
        return TrackStep(
            tracked=True,
            outputs=outputs,
            main_track_id=self._main_track_id,
            main_box=self._main_box,
            waited_s=waited,
            skipped=skipped,
        )

    def _late(
        self, ticket: Ticket, detections: Sequence[Detection], start: float, skipped: int
    ) -> TrackStep:
        outputs = []
        if ticket.epoch == self._epoch:  # else the tracks are another video's
            outputs = self._tracker.associate(detections, ticket.frame)
        return TrackStep(
            tracked=False,
            outputs=outputs,
            main_track_id=select_main(outputs, self._main_track_id),
            main_box=self._main_box,
            waited_s=self._clock() - start,
            skipped=skipped,
        )

    def _new_video(self) -> None:
        self._epoch += 1
        self._next = 0
        self._skipped.clear()
        self._failed.clear()
        self._tracker.reset()
        self._main_track_id = self._main_box = None
        self._tracks_alive = 0
        for ticket in self._tickets:
            if ticket.repeated and ticket.epoch == self._epoch - 1:
                ticket.epoch, ticket.repeated = self._epoch, False  # it was the new video's
        self._on_new_video()
        self._cond.notify_all()

    def _skip_missing(self, before: int, asking: Ticket) -> int:
        """Skip the frames from the next expected one that never arrived (up to ``before``).

        Frames that arrived and are still being analysed are awaited, not skipped.
        """
        arrived = [
            t.frame for t in self._tickets
            if t is not asking and t.epoch == self._epoch and not t.repeated
            and self._next <= t.frame < before
        ]  # fmt: skip
        end = min(arrived, default=before)
        count = end - self._next
        if count > 0:
            log.warning(
                "Session %s: frames %d..%d never arrived within %.0f s; skipped",
                self.session_id, self._next, end - 1, self._reorder_wait_s,
            )
            self._mark_skipped(self._next, end)
            self._next = end
            self._advance()
        return max(count, 0)

    def _advance(self) -> None:
        """Move past the frames whose analysis failed."""
        while self._next in self._failed:
            self._failed.remove(self._next)
            self._mark_skipped(self._next, self._next + 1)
            self._next += 1

    def _mark_skipped(self, start: int, end: int) -> None:
        if self._skipped and self._skipped[-1][1] == start:
            start = self._skipped.pop()[0]
        self._skipped.append((start, end))
        del self._skipped[:-_MAX_SKIPPED_RANGES]

    def _was_skipped(self, frame: int) -> bool:
        return any(start <= frame < end for start, end in self._skipped)


class SessionStore:
    """The sessions of one application, created on first use and evicted when idle.

    Args:
        new_session: Builds the session for an id.
        max_sessions: Sessions kept at once; the longest-idle one without a frame in flight
            is evicted to make room.
        idle_s: Sessions idle this long are evicted.
        clock: Monotonic seconds.

    """

    def __init__(
        self,
        new_session: Callable[[str], Session],
        *,
        max_sessions: int,
        idle_s: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._new_session = new_session
        self._max_sessions = max_sessions
        self._idle_s = idle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        """Sessions alive."""
        return len(self._sessions)

    def tracks_alive(self) -> int:
        """Tracks alive over all sessions."""
        with self._lock:
            return sum(session.tracks_alive for session in self._sessions.values())

    def describe(self) -> list[dict[str, Any]]:
        """Each session's ``session_id``, ``idle_s``, ``tracks_alive`` and ``busy``."""
        with self._lock:
            now = self._clock()
            return [
                {"session_id": key, "idle_s": round(now - session.last_activity, 1),
                 "tracks_alive": session.tracks_alive, "busy": session.busy}
                for key, session in self._sessions.items()
            ]  # fmt: skip

    def begin(self, session_id: str, frame: int) -> tuple[Session, Ticket]:
        """Register a frame with its session (created when new); evicts idle sessions.

        Registration happens under the store's lock, so a session with a frame in flight is
        never evicted.

        Raises:
            TooManySessions: ``max_sessions`` sessions all have a frame in flight.

        """
        with self._lock:
            now = self._clock()
            for key, idle in list(self._sessions.items()):
                if now - idle.last_activity > self._idle_s and not idle.busy:
                    log.info("Session %s evicted after %.0f s idle", key, self._idle_s)
                    del self._sessions[key]
            session = self._sessions.get(session_id)
            if session is None:
                if len(self._sessions) >= self._max_sessions:
                    self._evict_one()
                session = self._sessions[session_id] = self._new_session(session_id)
            return session, session.begin(frame)

    def _evict_one(self) -> None:
        idle = [(s.last_activity, key) for key, s in self._sessions.items() if not s.busy]
        if not idle:
            raise TooManySessions(
                f"all {self._max_sessions} sessions have a frame in flight; retry later"
            )
        _, key = min(idle)
        log.info("Session %s evicted: %d sessions is the limit", key, self._max_sessions)
        del self._sessions[key]

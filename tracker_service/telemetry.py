"""Prometheus metrics of one application, and the per-frame stage stopwatch.

Each application has its own registry (no process-wide state), exposed by ``GET /metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

#: Latency buckets in seconds, from a fast stage on a GPU to a slow frame on a CPU.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ServiceMetrics:
    """The service's metrics, registered in their own registry.

    Attributes:
        registry: What ``GET /metrics`` exposes.
        requests: HTTP requests answered, by endpoint and status code.
        request_seconds: HTTP request latency, by endpoint.
        stage_seconds: Time of each stage of a frame (decode, detect, crop, hmr2, track…).
        frames: Frames answered, by the source of the answered body: ``detected``,
            ``predicted``, ``untracked`` (a late frame that no track explains) or
            ``none`` (nobody to answer).
        skipped_frames: Frame numbers never received, skipped after the reorder wait.
        new_videos: Videos started (frame 0 after later frames, or a long idle time).

    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes, CPU seconds, open fds
        self.requests = Counter(
            "tracker_requests", "HTTP requests answered", ["endpoint", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "tracker_request_seconds", "HTTP request latency", ["endpoint"],
            buckets=_BUCKETS, registry=r,
        )
        self.stage_seconds = Histogram(
            "tracker_stage_seconds", "Time of each stage of a frame", ["stage"],
            buckets=_BUCKETS, registry=r,
        )
        self.frames = Counter(
            "tracker_frames", "Frames answered, by source of the answered body", ["source"],
            registry=r,
        )
        self.skipped_frames = Counter(
            "tracker_skipped_frames", "Frames never received, skipped after the reorder wait",
            registry=r,
        )
        self.new_videos = Counter("tracker_new_videos", "Videos started", registry=r)
        self._sessions = Gauge("tracker_sessions", "Sessions alive", registry=r)
        self._tracks = Gauge("tracker_tracks", "Tracks alive over all sessions", registry=r)

    def watch_sessions(self, sessions: Callable[[], int], tracks: Callable[[], int]) -> None:
        """Read the session and track gauges from these functions at every scrape."""
        self._sessions.set_function(sessions)
        self._tracks.set_function(tracks)

    def observe_stages(self, stages: dict[str, float]) -> None:
        """Record the stage times of one frame."""
        for stage, seconds in stages.items():
            self.stage_seconds.labels(stage).observe(seconds)


class Stopwatch:
    """Times the stages of one frame.

    Example::

        watch = Stopwatch()
        with watch.stage("detect"):
            ...
        watch.stages  # {"detect": 0.012}
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent in the ``with`` block to stage ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - start

    def split(self, stage: str, part: str, seconds: float) -> None:
        """Move ``seconds`` of ``stage`` into a stage of its own, ``part``."""
        self.stages[stage] -= seconds
        self.stages[part] = self.stages.get(part, 0.0) + seconds

    def elapsed(self) -> float:
        """Seconds since the stopwatch was created."""
        return time.perf_counter() - self.started

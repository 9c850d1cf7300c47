r"""Soak a running tracker service: bad requests, concurrent sessions, many short sessions.

Against a service that is up and ready (``python -m tracker_service``), it runs:

1. A clean reference: each video posted alone, in order, in its own session.
2. Load: ``--sessions`` sessions posting ``--frames`` frames each, all at once, the videos
   taken in turn; every frame must be answered, and each session's tracks and answers must
   equal its video's clean run (so no identity of one session leaks into another).
3. The bad-request corpus (:func:`tracker_tools.soak.bad_requests`), fired while a good session
   posts a video in order: each bad request must get its 4xx status and a JSON ``error`` in
   words; the good session must answer exactly like the clean run.
4. ``--short-sessions`` sessions of one frame each: the service's resident memory
   (``process_resident_memory_bytes`` from ``GET /metrics``) and its session count must
   stay bounded (sessions beyond ``TRACKER_MAX_SESSIONS`` are evicted).

It prints a summary and exits with 1 when a check fails. Example::

    python -m scripts.soak --url http://127.0.0.1:5000 \
        --video ../shared/media/runner.mp4 --video ../shared/media/vtest.avi
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from tracker_service.settings import Settings
from tracker_tools.client import ServiceClient
from tracker_tools.soak import (
    bad_requests,
    corpus_during_session,
    read_video,
    requests_served,
    run_load,
    run_session,
    short_sessions,
    summary,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak against a running service and print the figures."""
    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="the service")
    parser.add_argument("--video", action="append", type=Path, required=True,
                        help="a video to post (repeat for several; sessions take them in turn)")
    parser.add_argument("--sessions", type=int, default=8, help="concurrent sessions")
    parser.add_argument("--frames", type=int, default=140, help="frames per session")
    parser.add_argument("--width", type=int, default=320, help="frame width posted")
    parser.add_argument("--short-sessions", type=int, default=1000,
                        help="one-frame sessions for the memory check")
    parser.add_argument("--max-sessions", type=int, default=defaults.sessions.max_sessions,
                        help="the service's TRACKER_MAX_SESSIONS")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.server.max_body_bytes,
                        help="the service's TRACKER_MAX_BODY_BYTES")
    parser.add_argument("--max-image-pixels", type=int, default=defaults.answer.max_image_pixels,
                        help="the service's TRACKER_MAX_IMAGE_PIXELS")
    args = parser.parse_args(argv)

    client = ServiceClient(args.url)
    client.wait_ready(60.0)
    videos = [read_video(path, args.frames, args.width) for path in args.video]
    names = [f"{path.name} ({len(v)} frames)" for path, v in zip(args.video, videos, strict=True)]
    print(f"videos: {', '.join(names)}, {args.width} px wide")
    references = []
    for i, images in enumerate(videos):
        answers = run_session(client, f"clean-{i}", images)
        if bad := [a for status, a in answers if status != 200]:
            print(f"clean run of {args.video[i]} failed: {bad[0]}")
            return 1
        references.append([summary(a) for _, a in answers])

    load = run_load(client, videos, references, args.sessions)
    print(f"load: {load.sessions} sessions x {load.frames // load.sessions} frames at once: "
          f"{load.answered}/{load.frames} answered, frames lost {load.frames - load.answered}, "
          f"{len(load.problems)} differences from the clean runs, {load.seconds:.1f} s")

    cases = bad_requests(args.max_body_bytes, args.max_image_pixels)
    corpus = corpus_during_session(client, cases, videos[0], references[0])
    print(f"bad requests: {corpus.kinds} kinds, {corpus.sent} sent during a good session of "
          f"{corpus.good_frames} frames, {len(corpus.problems)} wrong answers or differences")

    image = videos[0][0]
    memory = short_sessions(client, args.short_sessions, image)
    steps = " ".join(f"{mb:.0f}" for mb in memory.rss_mb)
    print(f"short sessions: {memory.answered}/{memory.sessions} answered, "
          f"{memory.sessions_alive} sessions held at the end; service RSS (MB) before and after "
          f"each tenth: {steps}; rise after the first tenth "
          f"{memory.growth_after_first_tenth_mb:.0f} MB")
    served = requests_served(client)
    print(f"requests served: {sum(served.values())} "
          f"({', '.join(f'{status}: {n}' for status, n in served.items())})")
    for problem in [*load.problems, *corpus.problems][:20]:
        print("  " + problem)
    failed = (
        load.problems or corpus.problems or memory.answered != memory.sessions
        or memory.sessions_alive > args.max_sessions
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

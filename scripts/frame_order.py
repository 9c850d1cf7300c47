"""What the backend's name-order numbering does to tracking: runner.mp4 in both orders.

The backend extracts ``frame-%d.png`` and sorts the files by name (frame-1, frame-10,
frame-100, frame-101 …), so frame number n is not the n-th picture. This posts
``../shared/media/runner.mp4`` (the first 140 frames, 640x360 PNG as the backend sends them,
the runner painted out in 5 bursts of 10 frames) to the real service on a real local Triton,
one frame at a time as the backend does, once numbered in natural order and once in name
order, and counts per order: bodies answered, identities, predicted answers, how the
pictures with and without the runner were answered, and how far the answered pelvis moves
from one frame number to the next. Prints Markdown and writes it to
``docs/frame_order.md``.

Example:
    python -m scripts.frame_order --hmr2 tiny

"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from scripts.benchmark import BACKEND_SIZE, SHARED_MEDIA, machine, post
from scripts.media import paint_out_people, read_frames
from scripts.serve import BUILD as SERVE_BUILD
from scripts.serve import local_stack
from scripts.tiny_models import build_tiny_repository
from scripts.triton_server import free_ports
from tracker_service.inference import TritonModels

#: Frames of the clip.
FRAMES = 140
#: Pictures in which the runner is painted out: 50 of 140, 5 bursts of 10.
MASKED = tuple(n for start in (12, 37, 62, 87, 112) for n in range(start, start + 10))
TIMEOUT_S = 900.0


def name_order(count: int) -> list[int]:
    """Picture shown by each frame number when ``frame-1.png`` … are sorted by name (0-based)."""
    names = sorted(f"frame-{i}.png" for i in range(1, count + 1))
    return [int(name.removeprefix("frame-").removesuffix(".png")) - 1 for name in names]


def backend_clip(detect_url: str) -> list[str]:
    """runner.mp4's first 140 frames as 640x360 base64 PNG, the runner painted out in MASKED."""
    frames = read_frames(SHARED_MEDIA / "runner.mp4", FRAMES)
    if len(frames) < FRAMES:
        raise SystemExit(f"{SHARED_MEDIA / 'runner.mp4'} is missing or has < {FRAMES} frames")
    frames = [cv2.resize(f, BACKEND_SIZE, interpolation=cv2.INTER_AREA) for f in frames]
    models = TritonModels(detect_url, timeout_s=TIMEOUT_S)
    try:
        paint_out_people(frames, MASKED, models.detect)
    finally:
        models.close()
    return [base64.b64encode(cv2.imencode(".png", f)[1].tobytes()).decode() for f in frames]


def run_order(url: str, clip: Sequence[str], pictures: Sequence[int], session: str) -> dict:
    """Post frame n showing ``pictures[n]``, one at a time; count what was answered."""
    answers = [
        json.loads(post(url, clip[picture], number, session)[1])
        for number, picture in enumerate(pictures)
    ]
    masked = set(MASKED)
    pelvis = np.array([[a["keypoints"][0]["x"], a["keypoints"][0]["y"]] for a in answers
                       if a["has_3d"]])  # fmt: skip
    visible = [a for p, a in zip(pictures, answers, strict=True) if p not in masked]
    hidden = [a for p, a in zip(pictures, answers, strict=True) if p in masked]
    return {
        "bodies": sum(a["has_3d"] for a in answers),
        "identities": sorted({a["track_id"] for a in answers if a["track_id"] is not None}),
        "predicted": sum(a["pose_source"] == "predicted" for a in answers),
        "visible_detected": sum(a["pose_source"] == "detected" for a in visible),
        "visible_predicted": sum(a["pose_source"] == "predicted" for a in visible),
        "masked_with_body": sum(a["has_3d"] for a in hidden),
        "pelvis_step_px": float(np.mean(np.linalg.norm(np.diff(pelvis, axis=0), axis=1))),
        "errors": sum(a["error"] is not None for a in answers),
    }


def markdown(results: dict[str, dict], command: str, host: str, hmr2: str) -> str:
    """The report: one row per order."""
    visible = FRAMES - len(MASKED)
    rows = [
        f"| {order} | {r['bodies']}/{FRAMES} | {len(r['identities'])} "
        f"({', '.join(map(str, r['identities']))}) | {r['predicted']} "
        f"| {r['visible_detected']}/{visible} | {r['visible_predicted']}/{visible} "
        f"| {r['masked_with_body']}/{len(MASKED)} | {r['pelvis_step_px']:.1f} | {r['errors']} |"
        for order, r in results.items()
    ]
    return "\n".join(
        [
            "# Frame order: natural numbering vs the backend's name order",
            "",
            f"Machine: {host}. Written by `{command}` on "
            f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC (not by hand); HMR2 {hmr2}.",
            "",
            f"runner.mp4, first {FRAMES} frames, 640x360 PNG, the runner painted out in "
            f"{len(MASKED)} pictures (5 bursts of 10); one frame at a time, each after the "
            "previous answer. Name order: frame number n shows the n-th of frame-1.png … "
            f"frame-{FRAMES}.png sorted by name. Pelvis step: the mean distance, in pixels, "
            "between the answered pelvis of consecutive frame numbers (how far the body the "
            "backend receives jumps from one frame to the next).",
            "",
            "| order | bodies | identities | predicted answers | runner visible: detected "
            "| runner visible: predicted | runner hidden: with a body "
            "| pelvis step, px | errors |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    ) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hmr2", choices=["full", "tiny"], default="tiny")
    parser.add_argument("--out", type=Path, default=Path("docs/frame_order.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = "python -m scripts.frame_order " + shlex.join(sys.argv[1:] if argv is None else argv)
    host = machine()
    repository = (
        build_tiny_repository(SERVE_BUILD / "tiny_repository")
        if args.hmr2 == "tiny"
        else Path("model_repository")
    )
    port, *triton_ports = free_ports(4)
    env = {"TRACKER_LOG_LEVEL": "WARNING", "TRACKER_TRITON_TIMEOUT_S": str(TIMEOUT_S)}
    with local_stack(
        repository=repository, port=port, triton_ports=tuple(triton_ports),
        startup_timeout_s=TIMEOUT_S, service_env=env,
    ) as (url, triton, _):
        clip = backend_clip(triton.grpc_url)
        results: dict[str, Any] = {}
        for order, pictures in (("natural", range(FRAMES)), ("name", name_order(FRAMES))):
            print(f"posting runner.mp4 in {order} order ...", flush=True)
            results[order] = run_order(url, clip, list(pictures), f"order-{order}")
    text = markdown(results, command.strip(), host, args.hmr2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"\n{text}\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
import logging
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tracker_tools.backend import FRAMES, MASKED, backend_clip, name_order
from tracker_tools.client import ServiceClient
from tracker_tools.machine import machine
from tracker_tools.stack import BUILD, MODEL_REPOSITORY, local_stack
from tracker_tools.tiny_models import build_tiny_repository
from tracker_tools.triton_server import free_ports

TIMEOUT_S = 900.0


def run_order(
    client: ServiceClient, clip: Sequence[str], pictures: Sequence[int], session: str
) -> dict[str, Any]:
    """Post frame n showing ``pictures[n]``, one at a time; count what was answered."""
    answers = [
        client.post_frame(clip[picture], frame_number=number, session_id=session).answer()
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


def markdown(results: dict[str, dict[str, Any]], command: str, host: str, hmr2: str) -> str:
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
        build_tiny_repository(BUILD / "tiny_repository")
        if args.hmr2 == "tiny"
        else MODEL_REPOSITORY
    )
    port, *triton_ports = free_ports(4)
    env = {"TRACKER_LOG_LEVEL": "WARNING", "TRACKER_TRITON_TIMEOUT_S": str(TIMEOUT_S)}
    with local_stack(
        repository=repository, port=port, triton_ports=tuple(triton_ports),
        startup_timeout_s=TIMEOUT_S, service_env=env,
    ) as (url, triton, _):
        client = ServiceClient(url, timeout_s=TIMEOUT_S)
        clip = backend_clip(triton.grpc_url, TIMEOUT_S)
        results: dict[str, Any] = {}
        for order, pictures in (("natural", range(FRAMES)), ("name", name_order(FRAMES))):
            print(f"posting runner.mp4 in {order} order ...", flush=True)
            results[order] = run_order(client, clip, list(pictures), f"order-{order}")
    text = markdown(results, command.strip(), host, args.hmr2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"\n{text}\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

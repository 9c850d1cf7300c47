"""Frames as the Node.js backend sends them, and the order in which it numbers them.

The backend extracts ``frame-%d.png`` with ffmpeg ``scale=640:360`` and numbers the files in
name order (frame-1, frame-10, frame-100 …): :func:`name_order`. :func:`backend_clip` is the
test clip of the issues about it: runner.mp4's first 140 frames as 640x360 PNG, the runner
painted out in 5 bursts of 10 frames (frames in which the old service lost the person).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from tracker_service.inference import TritonModels
from tracker_tools.media import SHARED_MEDIA, encode_base64, paint_out_people, read_frames

#: The backend's frame size, (width, height): ffmpeg ``scale=640:360``.
BACKEND_SIZE = (640, 360)
#: Frames of the test clip.
FRAMES = 140
#: Pictures of the test clip in which the runner is painted out: 50 of 140, 5 bursts of 10.
MASKED = tuple(n for start in (12, 37, 62, 87, 112) for n in range(start, start + 10))


def name_order(count: int) -> list[int]:
    """Picture shown by each frame number when ``frame-1.png`` … are sorted by name (0-based)."""
    names = sorted(f"frame-{i}.png" for i in range(1, count + 1))
    return [int(name.removeprefix("frame-").removesuffix(".png")) - 1 for name in names]


def backend_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Frames scaled to the backend's 640x360."""
    return [cv2.resize(f, BACKEND_SIZE, interpolation=cv2.INTER_AREA) for f in frames]


def read_backend_frames(video: Path, count: int) -> list[np.ndarray]:
    """The video's first ``count`` frames scaled to the backend's 640x360.

    Raises:
        FileNotFoundError: The video is absent or has fewer than ``count`` frames.

    """
    frames = read_frames(video, count)
    if len(frames) < count:
        raise FileNotFoundError(f"{video}: {len(frames)} frames, {count} needed")
    return backend_frames(frames)


def backend_clip(triton_grpc_url: str, timeout_s: float = 900.0) -> list[str]:
    """runner.mp4's first 140 frames as 640x360 base64 PNG, the runner painted out in MASKED.

    Args:
        triton_grpc_url: A Triton serving the person detector (it finds what to paint out).
        timeout_s: Timeout of each detector request.

    Raises:
        FileNotFoundError: ``../shared/media/runner.mp4`` is absent or too short.

    """
    frames = read_backend_frames(SHARED_MEDIA / "runner.mp4", FRAMES)
    with TritonModels(triton_grpc_url, timeout_s=timeout_s) as models:
        paint_out_people(frames, MASKED, models.detect)
    return [encode_base64(f, ".png") for f in frames]

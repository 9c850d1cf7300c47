"""Frames for the demo, benchmarks, soak, tests and detector checks: real video or synthetic people.

Frames are read from a video (:func:`read_frames`) and written as one (:func:`write_video`,
the MP4 of a whole-video job).

Synthetic people are dark stick figures on a textured background, which the offline detector
finds; they stand in for the shared media on machines that do not have it. Real frames can
have their people painted out (:func:`paint_out_people`): frames in which the detector
finds no one, as in the backend's clips that lost frames.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from tracker_service.detection import DetectModel, PersonDetector

#: The project's shared videos (``../shared/media`` beside the repository), when present.
SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def read_frames(
    video: Path, count: int, *, width: int | None = None, start: int = 0
) -> list[np.ndarray]:
    """Frames ``start`` to ``start + count - 1`` of a video, BGR.

    Fewer if it is shorter; none if it is unreadable.

    Args:
        video: The video file.
        count: How many frames.
        width: Downscale each frame to this width (aspect kept); None keeps the size.
        start: Frames skipped first.

    """
    capture = cv2.VideoCapture(str(video))
    frames: list[np.ndarray] = []
    index = 0
    try:
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                break
            if index >= start:
                if width is not None:
                    height = round(frame.shape[0] * width / frame.shape[1])
                    frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
                frames.append(frame)
            index += 1
    finally:
        capture.release()
    return frames


def encode_image(frame: np.ndarray, ext: str = ".jpg", *, quality: int | None = None) -> bytes:
    """A BGR frame encoded as JPEG (or PNG with ``ext=".png"``).

    Raises:
        ValueError: OpenCV cannot encode it.

    """
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if quality is not None else []
    ok, data = cv2.imencode(ext, frame, params)
    if not ok:
        raise ValueError(f"OpenCV cannot encode a {frame.shape} frame as {ext}")
    return data.tobytes()


def encode_base64(frame: np.ndarray, ext: str = ".jpg") -> str:
    """A BGR frame as the base64 text of its JPEG (or PNG), as ``image_base64`` carries it."""
    return base64.b64encode(encode_image(frame, ext)).decode()


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 30.0) -> Path:
    """Write frames as an MP4 (OpenCV's ``mp4v``), as a phone's upload stands in; return ``path``.

    Args:
        path: The file to write.
        frames: (H, W, 3) uint8 BGR frames, all of one size.
        fps: Frames per second.

    Raises:
        OSError: OpenCV cannot write ``path``.

    """
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path}")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    return path


def walking_clip(count: int) -> list[np.ndarray]:
    """``count`` 640x480 frames of one figure walking across (the detector finds most of them)."""
    background = noisy_background(480, 640, np.random.default_rng(0))
    frames = []
    for i in range(count):
        frame = background.copy()
        x = 80 + 14 * (i % 36)
        draw_stick_figure(frame, x, 140, 200, (20, 20, 20), stride=(i % 6 - 3) * 5)
        frames.append(frame)
    return frames


def noisy_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A light, textured background ``(height, width, 3)`` uint8 (no flat areas, no score ties)."""
    texture = rng.normal(0, 12, size=(height, width, 3))
    return np.clip(rng.integers(150, 230, 3) + texture, 0, 255).astype(np.uint8)


def draw_stick_figure(
    image: np.ndarray, x: int, y: int, height: int, colour: tuple[int, int, int], stride: int = 0
) -> None:
    """Draw a standing figure in place: head, torso, legs (apart by ``stride`` px) and arms.

    Args:
        image: (H, W, 3) uint8 image, modified in place.
        x: Left edge of the torso.
        y: Top of the head.
        height: Figure height in pixels (width is a quarter of it).
        colour: BGR colour.
        stride: Horizontal offset of the feet from the hips, for a walking pose.
    """
    h, w = height, height // 4
    cv2.circle(image, (x + w // 2, y + h // 10), h // 10, colour, -1)  # head
    cv2.rectangle(image, (x, y + h // 5), (x + w, y + 3 * h // 5), colour, -1)  # torso
    for top, bottom, width in (
        ((x + w // 4, y + 3 * h // 5), (x - stride, y + h), w // 4),  # legs
        ((x + 3 * w // 4, y + 3 * h // 5), (x + w + stride, y + h), w // 4),
        ((x, y + h // 4), (x - w // 3, y + h // 2), w // 6),  # arms
        ((x + w, y + h // 4), (x + w + w // 3, y + h // 2), w // 6),
    ):
        cv2.line(image, top, bottom, colour, max(2, width))


def paint_out_people(
    frames: Sequence[np.ndarray], numbers: Sequence[int], detect: DetectModel
) -> None:
    """Paint every person the detector finds (score >= 0.05) over, in place, in some frames.

    Each box is painted over by :func:`paint_over`.

    Args:
        frames: (H, W, 3) uint8 BGR frames.
        numbers: Indices of the frames to paint.
        detect: The served person detector (``TritonModels.detect``).

    """
    detector = PersonDetector(detect, min_score=0.05, min_box_px=1)
    for number in numbers:
        paint_over(frames[number], detector(frames[number])[0])


def paint_over(frame: np.ndarray, boxes: np.ndarray) -> None:
    """Paint boxes over, in place, in the frame's median colour.

    Each ``(x1, y1, x2, y2)`` box is grown by a fifth of its size on every side.
    """
    colour = np.median(frame.reshape(-1, 3), axis=0)
    for x1, y1, x2, y2 in boxes.astype(int):
        w, h = x2 - x1, y2 - y1
        frame[max(y1 - h // 5, 0) : y2 + h // 5, max(x1 - w // 5, 0) : x2 + w // 5] = colour

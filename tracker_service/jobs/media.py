"""Videos on disk: the container sniffed, probed, decoded in order; the overlay video written.

OpenCV's wheel reads MP4/MOV, AVI, Matroska/WebM and MPEG through its bundled FFmpeg, in
the container's own frame order. Its FFmpeg has no H.264 *encoder* on most machines (the
wheel ships without libx264 or OpenH264): :func:`overlay_codec` tries H.264 once and falls
back to MPEG-4 Part 2 (``mp4v``, playable by browsers' ``<video>`` only in some), with a log
line saying so.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker_service.errors import PayloadTooLarge, UnprocessableVideo, UnsupportedMediaType

log = logging.getLogger(__name__)

#: Bytes read to recognise the container.
SNIFF_BYTES = 1024
#: Box types that may open an ISO base media file (MP4) or a QuickTime movie (MOV).
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
#: Frame rate assumed when the container declares none.
DEFAULT_FPS = 30.0
#: Overlay codecs, in order of preference (FourCC, name).
_CODECS = (("avc1", "H.264"), ("mp4v", "MPEG-4 Part 2"))


def sniff_container(head: bytes) -> str | None:
    """Name the container from a file's first bytes, or None when it is no known video.

    The client's file name and content type are never trusted (a QuickTime movie arrives
    named ``.mp4``).
    """
    if len(head) >= 12 and head[4:8] in _ISO_BOXES:
        return "quicktime" if head[8:10] == b"qt" else "mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return "mpeg-ts"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    return None


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video.

    Attributes:
        container: The sniffed container (see :func:`sniff_container`).
        frames: Frame count the container declares (the decoder may find fewer).
        fps: Frames per second.
        width: Frame width in pixels.
        height: Frame height in pixels.

    """

    container: str
    frames: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        """Declared duration in seconds."""
        return self.frames / self.fps


def probe(path: Path, *, max_frames: int, max_duration_s: float) -> VideoInfo:
    """Check that a file is a video within the limits, and read its first frame.

    Raises:
        UnsupportedMediaType: The file is not a known video container.
        UnprocessableVideo: It is one, but nothing decodes (truncated, zero frames, a codec
            the decoder lacks).
        PayloadTooLarge: More frames or a longer duration than the limits.

    """
    with path.open("rb") as file:
        container = sniff_container(file.read(SNIFF_BYTES))
    if container is None:
        raise UnsupportedMediaType(
            "the upload is not a video: expected MP4, QuickTime, AVI, Matroska/WebM or MPEG"
        )
    with VideoReader(path) as video:
        if not video.opened:
            raise UnprocessableVideo(
                f"the {container} video cannot be opened: it has no frames, or is truncated "
                "or damaged"
            )
        frame = next(video.frames(), None)
        if frame is None:
            raise UnprocessableVideo(
                f"no frame of the {container} video decodes: it has zero frames, is "
                "truncated, or uses a codec this service cannot decode"
            )
        fps, frames = video.fps, video.declared_frames
    info = VideoInfo(container, frames, fps, frame.shape[1], frame.shape[0])
    if info.frames > max_frames:
        raise PayloadTooLarge(
            f"the video has {info.frames} frames; at most {max_frames} are accepted"
        )
    if info.duration_s > max_duration_s:
        raise PayloadTooLarge(
            f"the video lasts {info.duration_s:.1f} s; at most {max_duration_s:g} s are accepted"
        )
    return info


class VideoReader:
    """One decoder over a video: what its container declares, then its frames in order.

    A context manager: leaving it releases the decoder.

    Args:
        path: The video file.

    """

    def __init__(self, path: Path) -> None:
        self._capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)

    def __enter__(self) -> VideoReader:
        """The reader; released on leaving."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Release the decoder."""
        self._capture.release()

    @property
    def opened(self) -> bool:
        """Whether the decoder could open the file."""
        return bool(self._capture.isOpened())

    @property
    def fps(self) -> float:
        """Frames per second the container declares (:data:`DEFAULT_FPS` when none)."""
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        return float(fps) if math.isfinite(fps) and fps > 0 else DEFAULT_FPS

    @property
    def declared_frames(self) -> int:
        """Frame count the container declares (at least 1; the decoder may find fewer)."""
        count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
        return int(count) if math.isfinite(count) and count > 0 else 1

    def frames(self) -> Iterator[np.ndarray]:
        """Decode the frames left, in the container's order, as (H, W, 3) uint8 BGR arrays."""
        while True:
            ok, frame = self._capture.read()
            if not ok:
                return
            yield frame


def read_frame(path: Path, index: int) -> np.ndarray | None:
    """Frame ``index`` of a video, or None past its end."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if index >= capture.get(cv2.CAP_PROP_FRAME_COUNT):
            return None
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        return frame if ok else None
    finally:
        capture.release()


def overlay_codec() -> tuple[str, str]:
    """The best overlay codec this machine's OpenCV can encode: (FourCC, name)."""
    with tempfile.TemporaryDirectory() as folder:
        for fourcc, name in _CODECS:
            writer = cv2.VideoWriter(
                str(Path(folder) / "probe.mp4"), cv2.VideoWriter.fourcc(*fourcc), 25, (64, 64)
            )
            opened = writer.isOpened()
            writer.release()
            if opened:
                if fourcc != _CODECS[0][0]:
                    log.warning("OpenCV has no H.264 encoder here: overlay videos are %s", name)
                return fourcc, name
    raise RuntimeError("OpenCV can encode no MP4 video on this machine")


def open_writer(path: Path, fourcc: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An MP4 writer of (width, height) frames.

    Raises:
        RuntimeError: OpenCV cannot open it.

    """
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write the overlay video {path}")
    return writer

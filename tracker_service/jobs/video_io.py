"""Videos on disk: the container sniffed, probed, decoded in order; the overlay video written.

OpenCV's wheel reads MP4/MOV, AVI, Matroska/WebM and MPEG through its bundled FFmpeg, in
the container's own frame order. The overlay is written by PyAV's FFmpeg (its wheel bundles
libx264): H.264, yuv420p, ``+faststart`` (the index before the data, so browsers and phones
stream it), at the video's own frame rate. Where PyAV or its H.264 encoder is missing,
:func:`overlay_codec` falls back to OpenCV's MPEG-4 Part 2 (``mp4v``, which browsers'
``<video>`` do not play), with a log line saying so; the job's result names the codec.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from tracker_service.exceptions import PayloadTooLarge, UnprocessableVideo, UnsupportedMediaType

log = logging.getLogger(__name__)

#: Bytes read to recognise the container.
SNIFF_BYTES = 1024
#: Box types that may open an ISO base media file (MP4) or a QuickTime movie (MOV).
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
#: Frame rate assumed when the container declares none.
DEFAULT_FPS = 30.0
#: The overlay codecs: PyAV's H.264 encoder, else OpenCV's MPEG-4 Part 2 (codec, name).
H264 = ("libx264", "H.264")
MPEG4 = ("mp4v", "MPEG-4 Part 2")
#: Ticks per second of the overlay's timestamps.
_TICKS = 90_000
#: x264's settings: constant rate factor 18 (visually lossless); preset superfast, between
#: veryfast (smaller files, more CPU time on the render path) and ultrafast (the reverse).
_X264 = {"crf": "18", "preset": "superfast"}


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


def frame_times(path: Path) -> list[float]:
    """Each frame's presentation time in seconds from the first, in order, from PyAV's demuxer.

    Exact where OpenCV gives only a mean rate: a phone's variable-rate video keeps its own
    times. Empty when PyAV is missing or the container stamps no frame (the callers then
    count frames at the mean rate: :func:`frame_time`).
    """
    try:
        import av
    except ImportError:
        return []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        stamps = sorted(
            packet.pts * base
            for packet in container.demux(stream)
            if base is not None and packet.pts is not None and packet.size
        )
    return [float(t - stamps[0]) for t in stamps]  # none stamped: empty


def frame_time(times: list[float], index: int, fps: float) -> float:
    """Frame ``index``'s time: from ``times`` (:func:`frame_times`), else ``index / fps``."""
    return times[index] if index < len(times) else index / fps


def overlay_codec() -> tuple[str, str]:
    """The best overlay codec this machine can encode: (codec, name); see the module."""
    try:
        import av

        av.codec.Codec(H264[0], "w")
    except (ImportError, ValueError) as error:  # av's UnknownCodecError is a ValueError
        log.warning("No H.264 encoder (%s): overlay videos are %s", error, MPEG4[1])
        return MPEG4
    return H264


def open_writer(
    path: Path, codec: str, fps: float, size: tuple[int, int], times: list[float] | None = None
) -> H264Writer | cv2.VideoWriter:
    """An MP4 writer of (width, height) frames in ``codec`` (from :func:`overlay_codec`).

    Both writers take BGR frames in order with ``write``, and end with ``release``. The H.264
    writer stamps frame ``k`` at ``times[k]`` (the source's, :func:`frame_times`), else at
    ``k / fps``; OpenCV's fallback knows only ``fps``.

    Raises:
        RuntimeError: The file cannot be written.

    """
    if codec == H264[0]:
        return H264Writer(path, fps, size, times or [])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*codec), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write the overlay video {path}")
    return writer


class H264Writer:
    """H.264 (libx264, yuv420p) in an MP4 with ``+faststart``, through PyAV.

    Frame ``k`` is stamped ``times[k]``, or past them ``k / fps`` (the rate as a fraction:
    OpenCV's 29.97002997 is 30000/1001), in ticks of 1/90000 s (MPEG's clock).
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int], times: list[float]) -> None:
        import av

        self._picture = av.VideoFrame.from_ndarray
        self._fps = fps
        self._times = times
        rate = Fraction(fps).limit_denominator(1001)
        try:
            self._container = av.open(
                str(path), "w", format="mp4", options={"movflags": "+faststart"}
            )
        except OSError as error:
            raise RuntimeError(f"PyAV cannot write the overlay video {path}: {error}") from error
        width, height = size
        self._stream = self._container.add_stream(
            "libx264", rate=rate, options=_X264,
            width=width + width % 2, height=height + height % 2,  # yuv420p: even sides
            pix_fmt="yuv420p", time_base=Fraction(1, _TICKS),
        )  # fmt: skip
        self._size = (self._stream.height, self._stream.width)
        self._count = 0
        self._pts = -1

    def write(self, frame: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 BGR frame (padded by one pixel to even sides)."""
        height, width = self._size
        if frame.shape[:2] != self._size:
            frame = cv2.copyMakeBorder(
                frame, 0, height - frame.shape[0], 0, width - frame.shape[1],
                cv2.BORDER_REPLICATE,
            )  # fmt: skip
        picture = self._picture(np.ascontiguousarray(frame), format="bgr24")
        time = frame_time(self._times, self._count, self._fps)
        self._pts = picture.pts = max(round(time * _TICKS), self._pts + 1)  # strictly rising
        self._count += 1
        self._container.mux(self._stream.encode(picture))

    def release(self) -> None:
        """Flush the encoder and close the file (the index moves to the front)."""
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()

"""Videos: the container sniffed from its bytes, probed within limits, decoded in order."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker_service.errors import PayloadTooLarge, UnprocessableVideo, UnsupportedMediaType
from tracker_service.jobs import media
from tracker_service.jobs.result import evenly_spaced


def _clip(path: Path, count: int, fps: float = 25.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for i in range(count):
        writer.write(np.full((48, 64, 3), 8 * i, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"\x00\x00\x00\x18ftypisom" + bytes(8), "mp4"),
        (b"\x00\x00\x00\x14ftypqt  " + bytes(8), "quicktime"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"\x1a\x45\xdf\xa3" + bytes(12), "matroska"),
        (b"\x00\x00\x01\xba" + bytes(12), "mpeg"),
        (b"\x89PNG\r\n\x1a\n" + bytes(8), None),
        (b"hello, this is text", None),
        (b"", None),
    ],
)
def test_sniff_container(head, container):
    assert media.sniff_container(head) == container


def test_probe_reads_the_declared_frames_and_rate(tmp_path):
    info = media.probe(_clip(tmp_path / "a.mp4", 12), max_frames=100, max_duration_s=10.0)
    assert (info.container, info.frames, info.width, info.height) == ("mp4", 12, 64, 48)
    assert info.fps == pytest.approx(25.0) and info.duration_s == pytest.approx(12 / 25)


def test_one_reader_declares_the_video_and_decodes_its_frames_in_order(tmp_path):
    with media.VideoReader(_clip(tmp_path / "a.mp4", 6)) as video:
        assert video.opened and video.declared_frames == 6
        assert video.fps == pytest.approx(25.0)
        frames = list(video.frames())
    assert len(frames) == 6
    means = [float(f.mean()) for f in frames]
    assert means == sorted(means)
    assert media.read_frame(tmp_path / "a.mp4", 10) is None
    assert media.read_frame(tmp_path / "a.mp4", 3) is not None


@pytest.mark.parametrize(
    ("content", "limits", "error", "words"),
    [
        (b"not a video", {}, UnsupportedMediaType, "not a video"),
        ("half", {}, UnprocessableVideo, "truncated"),
        ("clip", {"max_frames": 5}, PayloadTooLarge, "12 frames"),
        ("clip", {"max_duration_s": 0.1}, PayloadTooLarge, "lasts"),
    ],
)
def test_probe_refuses_in_words(tmp_path, content, limits, error, words):
    clip = _clip(tmp_path / "clip.mp4", 12)
    path = tmp_path / "upload"
    if content == "clip":
        path = clip
    else:
        data = clip.read_bytes()[: clip.stat().st_size // 2] if content == "half" else content
        path.write_bytes(data)
    with pytest.raises(error, match=words):
        media.probe(path, **{"max_frames": 100, "max_duration_s": 10.0, **limits})


def test_overlay_codec_can_be_written(tmp_path):
    fourcc, name = media.overlay_codec()
    writer = media.open_writer(tmp_path / "o.mp4", fourcc, 25.0, (64, 48))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    assert name and media.sniff_container((tmp_path / "o.mp4").read_bytes()[:64]) == "mp4"


@pytest.mark.parametrize(
    ("total", "wanted", "expected"),
    [(5, None, [0, 1, 2, 3, 4]), (5, 99, [0, 1, 2, 3, 4]), (20, 5, [0, 5, 10, 14, 19]),
     (10, 1, [0]), (10, 2, [0, 9])],
)  # fmt: skip
def test_evenly_spaced(total, wanted, expected):
    assert evenly_spaced(total, wanted) == expected

"""Videos: the container sniffed from its bytes, probed within limits, decoded in order."""

import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tracker_service.exceptions import PayloadTooLarge, UnprocessableVideo, UnsupportedMediaType
from tracker_service.jobs import video_io
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
    assert video_io.sniff_container(head) == container


def test_probe_reads_the_declared_frames_and_rate(tmp_path):
    info = video_io.probe(_clip(tmp_path / "a.mp4", 12), max_frames=100, max_duration_s=10.0)
    assert (info.container, info.frames, info.width, info.height) == ("mp4", 12, 64, 48)
    assert info.fps == pytest.approx(25.0) and info.duration_s == pytest.approx(12 / 25)


def test_one_reader_declares_the_video_and_decodes_its_frames_in_order(tmp_path):
    with video_io.VideoReader(_clip(tmp_path / "a.mp4", 6)) as video:
        assert video.opened and video.declared_frames == 6
        assert video.fps == pytest.approx(25.0)
        frames = list(video.frames())
    assert len(frames) == 6
    means = [float(f.mean()) for f in frames]
    assert means == sorted(means)
    assert video_io.read_frame(tmp_path / "a.mp4", 10) is None
    assert video_io.read_frame(tmp_path / "a.mp4", 3) is not None


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
        video_io.probe(path, **{"max_frames": 100, "max_duration_s": 10.0, **limits})


def test_overlay_is_h264_yuv420p_faststart_at_the_videos_rate(tmp_path):
    assert video_io.overlay_codec() == video_io.H264
    path = tmp_path / "o.mp4"
    writer = video_io.open_writer(path, video_io.H264[0], 30000 / 1001, (65, 48))  # an odd width
    for i in range(10):
        writer.write(np.full((48, 65, 3), 20 * i, np.uint8))
    writer.release()
    data = path.read_bytes()
    assert video_io.sniff_container(data[:64]) == "mp4"
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # +faststart: the index comes first
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert stream.average_rate == Fraction(30000, 1001)
        frames = list(container.decode(stream))
    assert (frames[0].width, frames[0].height) == (66, 48)  # padded to even sides
    assert [float(f.time) for f in frames] == pytest.approx([k * 1001 / 30000 for k in range(10)])
    means = [float(f.to_ndarray(format="bgr24")[:, :65].mean()) for f in frames]
    assert means == pytest.approx([20 * i for i in range(10)], abs=5)  # YUV round trip


def test_overlay_falls_back_to_mpeg4_without_pyav(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "av", None)  # import av raises ImportError
    assert video_io.overlay_codec() == video_io.MPEG4
    assert "No H.264 encoder" in caplog.text and "MPEG-4 Part 2" in caplog.text
    writer = video_io.open_writer(tmp_path / "o.mp4", video_io.MPEG4[0], 25.0, (64, 48))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    assert video_io.sniff_container((tmp_path / "o.mp4").read_bytes()[:64]) == "mp4"


@pytest.mark.parametrize(
    ("total", "wanted", "expected"),
    [(5, None, [0, 1, 2, 3, 4]), (5, 99, [0, 1, 2, 3, 4]), (20, 5, [0, 5, 10, 14, 19]),
     (10, 1, [0]), (10, 2, [0, 9])],
)  # fmt: skip
def test_evenly_spaced(total, wanted, expected):
    assert evenly_spaced(total, wanted) == expected


def _variable_rate_clip(path: Path, times: list[float]) -> Path:
    """An H.264 MP4 whose frames are stamped at ``times`` (as a phone's variable rate)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264", rate=30, width=64, height=48, pix_fmt="yuv420p",
            time_base=Fraction(1, 1000),
        )  # fmt: skip
        for i, time in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i, np.uint8), "bgr24")
            frame.pts = round(1000 * time)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_a_variable_rate_video_keeps_its_frame_times_in_the_overlay(tmp_path):
    times = [0.0, 0.033, 0.1, 0.2, 0.233, 0.5, 0.533, 0.9]
    clip = _variable_rate_clip(tmp_path / "vfr.mp4", times)
    assert video_io.frame_times(clip) == pytest.approx(times, abs=1e-3)
    out = tmp_path / "overlay.mp4"
    writer = video_io.open_writer(out, video_io.H264[0], 8.9, (64, 48), video_io.frame_times(clip))
    with video_io.VideoReader(clip) as video:
        for frame in video.frames():
            writer.write(frame)
    writer.release()
    assert video_io.frame_times(out) == pytest.approx(times, abs=1e-3)


def test_frame_time_counts_at_the_mean_rate_past_the_known_times(monkeypatch, tmp_path):
    assert video_io.frame_time([0.0, 0.04], 1, 25.0) == 0.04
    assert video_io.frame_time([0.0, 0.04], 5, 25.0) == pytest.approx(0.2)
    monkeypatch.setitem(sys.modules, "av", None)
    assert video_io.frame_times(_clip(tmp_path / "a.mp4", 3)) == []  # without PyAV

"""Frames as the backend sends them: scaled to 640x360, a short video refused in words."""

from pathlib import Path

import numpy as np
import pytest

from tracker_tools.backend import BACKEND_SIZE, name_order, read_backend_frames
from tracker_tools.media import write_video


def test_frames_are_scaled_to_the_backends_size_and_a_short_video_is_refused(
    tmp_path: Path,
) -> None:
    video = write_video(tmp_path / "clip.mp4", [np.full((96, 128, 3), 90, np.uint8)] * 3)
    frames = read_backend_frames(video, 2)
    assert [f.shape for f in frames] == [(BACKEND_SIZE[1], BACKEND_SIZE[0], 3)] * 2
    with pytest.raises(FileNotFoundError, match="3 frames, 5 needed"):
        read_backend_frames(video, 5)
    with pytest.raises(FileNotFoundError, match="0 frames, 1 needed"):
        read_backend_frames(tmp_path / "absent.mp4", 1)


def test_name_order_sorts_frame_numbers_as_file_names() -> None:
    assert name_order(11) == [0, 9, 10, 1, 2, 3, 4, 5, 6, 7, 8]

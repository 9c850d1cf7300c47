import numpy as np
import pytest

from tracker_service.detection import (
    PAD_VALUE,
    PersonDetector,
    boxes_to_frame,
    filter_detections,
    letterbox,
)

INPUT_HW = (640, 640)


def frame_with_box(frame_wh: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """A black BGR frame with a white filled rectangle covering pixels [x1, x2) x [y1, y2)."""
    frame = np.zeros((frame_wh[1], frame_wh[0], 3), np.uint8)
    x1, y1, x2, y2 = box
    frame[y1:y2, x1:x2] = 255
    return frame


def bright_box(image: np.ndarray) -> np.ndarray:
    """Bounding box [x1, y1, x2, y2) of the pixels brighter than mid-grey."""
    ys, xs = np.nonzero(image.max(axis=2) > 180)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


@pytest.mark.parametrize(
    ("frame_wh", "scale", "pad"),
    [
        ((768, 576), 640 / 768, (0, 80)),  # landscape 4:3 (vtest.avi)
        ((1920, 1088), 640 / 1920, (0, 138)),  # landscape 16:9 (runner.mp4)
        ((1080, 1920), 640 / 1920, (140, 0)),  # portrait phone video
        ((640, 640), 1.0, (0, 0)),  # already the input size
        ((320, 200), 2.0, (0, 120)),  # smaller than the input: upscaled
    ],
)
def test_letterbox_geometry(frame_wh, scale, pad):
    frame = np.full((frame_wh[1], frame_wh[0], 3), 7, np.uint8)
    image, got_scale, got_pad = letterbox(frame, INPUT_HW)
    assert image.shape == (*INPUT_HW, 3) and image.dtype == np.uint8
    assert got_scale == pytest.approx(scale)
    assert got_pad == pad
    px, py = pad
    content = image[py : py + round(frame_wh[1] * scale), px : px + round(frame_wh[0] * scale)]
    assert np.all(content == 7)
    assert np.count_nonzero(image == PAD_VALUE) == image.size - content.size


def test_letterbox_converts_bgr_to_rgb():
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[..., 0] = 200  # blue in BGR
    image, _, (px, py) = letterbox(frame, (96, 96))
    assert tuple(image[py + 5, px + 5]) == (0, 0, 200)


@pytest.mark.parametrize(
    ("frame_wh", "box"),
    [
        ((768, 576), (100, 150, 160, 330)),
        ((1920, 1088), (800, 200, 1100, 900)),
        ((1080, 1920), (300, 500, 700, 1700)),
        ((320, 200), (40, 30, 90, 170)),
    ],
)
def test_round_trip_through_the_image(frame_wh, box):
    """A box drawn in the frame, found in the letterboxed image, maps back onto itself."""
    image, scale, pad = letterbox(frame_with_box(frame_wh, box), INPUT_HW)
    found = boxes_to_frame(bright_box(image)[None], scale, pad, frame_wh)
    # One input pixel is 1/scale frame pixels; resampling blurs edges by about that much.
    np.testing.assert_allclose(found[0], box, atol=1.5 / scale + 0.5)


@pytest.mark.parametrize("frame_wh", [(768, 576), (1920, 1088), (1080, 1920), (320, 200)])
def test_boxes_to_frame_inverts_the_letterbox_transform(frame_wh):
    rng = np.random.default_rng(0)
    w, h = frame_wh
    xy1 = rng.uniform(0, [w / 2, h / 2], size=(50, 2))
    boxes = np.hstack([xy1, xy1 + rng.uniform(1, [w / 2, h / 2], size=(50, 2))]).astype(np.float32)
    _, scale, (px, py) = letterbox(np.zeros((h, w, 3), np.uint8), INPUT_HW)
    in_input = boxes * scale + np.array([px, py, px, py], np.float32)
    np.testing.assert_allclose(
        boxes_to_frame(in_input, scale, (px, py), frame_wh), boxes, rtol=1e-5, atol=1e-3
    )


def test_boxes_to_frame_clips_to_the_frame():
    # Frame 768x576 in a 640x640 input: scale 5/6, pad (0, 80).
    boxes = np.array([[-10, 60, 100, 200], [600, 500, 700, 700]], np.float32)
    out = boxes_to_frame(boxes, 640 / 768, (0, 80), (768, 576))
    np.testing.assert_allclose(out, [[0, 0, 120, 144], [720, 504, 768, 576]], atol=1e-4)


def test_boxes_to_frame_empty():
    out = boxes_to_frame(np.zeros((0, 4), np.float32), 0.5, (0, 10), (100, 100))
    assert out.shape == (0, 4) and out.dtype == np.float32


BOXES = np.array(
    [
        [0, 0, 50, 100],  # 50 x 100
        [10, 10, 20, 90],  # 10 wide
        [10, 10, 90, 15],  # 5 high
        [0, 0, 30, 30],  # 30 x 30
        [0, 0, 0, 0],  # padding
    ],
    np.float32,
)
SCORES = np.array([0.9, 0.8, 0.7, 0.3, 0.0], np.float32)


@pytest.mark.parametrize(
    ("min_score", "min_size", "kept"),
    [
        (0.0, 0.0, [0, 1, 2, 3]),  # padding (score 0) dropped even at threshold 0
        (0.3, 0.0, [0, 1, 2, 3]),  # threshold inclusive
        (0.31, 0.0, [0, 1, 2]),
        (0.5, 10.0, [0, 1]),  # size inclusive; the 5-pixel-high box goes
        (0.0, 11.0, [0, 3]),
        (0.0, 30.0, [0, 3]),
        (0.0, 31.0, [0]),
        (0.95, 0.0, []),
    ],
)
def test_filter_detections(min_score, min_size, kept):
    boxes, scores = filter_detections(BOXES, SCORES, min_score, min_size)
    np.testing.assert_array_equal(boxes, BOXES[kept].reshape(-1, 4))
    np.testing.assert_array_equal(scores, SCORES[kept])
    assert boxes.dtype == np.float32 and scores.dtype == np.float32


def test_filter_detections_orders_by_score():
    boxes, scores = filter_detections(BOXES[[3, 0, 1]], SCORES[[3, 0, 1]], 0.0, 0.0)
    np.testing.assert_array_equal(scores, SCORES[[0, 1, 3]])
    np.testing.assert_array_equal(boxes, BOXES[[0, 1, 3]])


def test_filter_detections_empty():
    boxes, scores = filter_detections(np.zeros((0, 4)), np.zeros(0), 0.3, 10)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


@pytest.mark.parametrize(
    ("boxes", "scores"),
    [(np.zeros((3, 4)), np.zeros(2)), (np.zeros((3, 5)), np.zeros(3)), (np.zeros(4), np.zeros(1))],
)
def test_filter_detections_rejects_bad_shapes(boxes, scores):
    with pytest.raises(ValueError, match="expected boxes"):
        filter_detections(boxes, scores, 0.3, 10)


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((0, 10, 3), np.uint8),
    ],
)
def test_letterbox_rejects_bad_frames(frame):
    with pytest.raises(ValueError, match="frame"):
        letterbox(frame, INPUT_HW)


def test_person_detector_letterboxes_the_frame_and_answers_in_frame_pixels():
    seen = []

    def model(images):
        seen.append(images)
        boxes = np.array([[[10, 150, 110, 350], [0, 140, 5, 145], [20, 160, 60, 200], [0] * 4]])
        return boxes.astype(np.float32), np.array([[0.9, 0.95, 0.2, 0.0]], np.float32)

    frame = np.zeros((360, 640, 3), np.uint8)  # letterboxed at scale 1, 140 px above
    boxes, scores = PersonDetector(model, min_score=0.3, min_box_px=10)(frame)
    assert seen[0].shape == (1, 640, 640, 3) and seen[0].dtype == np.uint8
    np.testing.assert_allclose(boxes, [[10, 10, 110, 210]])  # too small and too unsure: gone
    np.testing.assert_allclose(scores, [0.9])

import base64

import cv2
import numpy as np
import pytest

from tracker_service.decode import decode_frame, image_size
from tracker_service.exceptions import BadRequest, PayloadTooLarge

FRAME = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encoded(ext: str, frame: np.ndarray = FRAME) -> bytes:
    return cv2.imencode(ext, frame)[1].tobytes()


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_png_and_jpeg_decode_to_bgr(ext):
    frame = decode_frame(b64(encoded(ext)), max_pixels=10_000)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    if ext == ".png":
        np.testing.assert_array_equal(frame, FRAME)


def test_data_url_prefix_is_accepted():
    frame = decode_frame("data:image/png;base64," + b64(encoded(".png")), max_pixels=10_000)
    np.testing.assert_array_equal(frame, FRAME)


@pytest.mark.parametrize(
    ("ext", "flags"), [(".png", cv2.IMREAD_GRAYSCALE), (".png", cv2.IMREAD_UNCHANGED)]
)
def test_grey_and_alpha_images_become_three_channels(ext, flags):
    rgba = np.dstack([FRAME, np.full(FRAME.shape[:2], 255, np.uint8)])
    source = cv2.cvtColor(FRAME, cv2.COLOR_BGR2GRAY) if flags == cv2.IMREAD_GRAYSCALE else rgba
    assert decode_frame(b64(encoded(ext, source)), max_pixels=10_000).shape == (48, 64, 3)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_header_size_is_read_without_decoding(ext):
    assert image_size(encoded(ext)) == (64, 48)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("abc", "not valid base64"),
        (b64(b"GIF89a" + bytes(40)), "not a JPEG or PNG"),
        (b64(encoded(".bmp")), "not a JPEG or PNG"),
        (b64(encoded(".jpg")[:300]), "does not decode"),
        (b64(encoded(".png")[:30]), "does not decode"),
    ],
)
def test_bad_images_are_400_in_words(text, message):
    with pytest.raises(BadRequest, match=message):
        decode_frame(text, max_pixels=10_000)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_too_many_pixels_is_413_before_decoding(ext):
    with pytest.raises(PayloadTooLarge, match="64x48 pixels; at most 3000"):
        decode_frame(b64(encoded(ext)), max_pixels=3000)


def test_file_bytes_decode_like_their_base64():
    data = encoded(".png")
    np.testing.assert_array_equal(decode_frame(data, max_pixels=10_000), FRAME)
    with pytest.raises(BadRequest, match="uploaded frame is not a JPEG or PNG"):
        decode_frame(b"GIF89a", max_pixels=10_000)
    with pytest.raises(PayloadTooLarge, match="64x48"):
        decode_frame(data, max_pixels=3000)

"""The request's frame: base64 JPEG or PNG to a BGR array, with size limits.

The image size is read from the file header before decoding, so that a small file that
would decode to a huge image (a decompression bomb) is refused without allocating it.
"""

from __future__ import annotations

import base64
import binascii
import struct

import cv2
import numpy as np

from tracker_service.exceptions import BadRequest, PayloadTooLarge

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8"
#: JPEG start-of-frame markers (SOF0..SOF15 except DHT, JPG and DAC), which carry the size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def decode_frame(image: str | bytes, max_pixels: int) -> np.ndarray:
    """Decode the request's image.

    Args:
        image: Base64 of a JPEG or PNG file, optionally with a ``data:...;base64,`` prefix
            (the JSON field ``image_base64``), or the file's bytes (a multipart upload).
        max_pixels: Largest accepted width times height.

    Returns:
        (H, W, 3) uint8 BGR frame.

    Raises:
        BadRequest: Not base64, not a JPEG or PNG, or the image does not decode.
        PayloadTooLarge: The image has more than ``max_pixels`` pixels.

    """
    name = "the uploaded frame" if isinstance(image, bytes) else "image_base64"
    data = image if isinstance(image, bytes) else _from_base64(image)
    size = image_size(data)
    if size is None:
        raise BadRequest(f"{name} is not a JPEG or PNG image")
    width, height = size
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"the image is {width}x{height} pixels; at most {max_pixels} pixels are accepted"
        )
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None or frame.size == 0:
        raise BadRequest(f"{name} does not decode: the JPEG or PNG file is damaged")
    return frame


def _from_base64(text: str) -> bytes:
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        data = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as error:
        raise BadRequest(f"image_base64 is not valid base64: {error}") from error
    if not data:
        raise BadRequest("image_base64 is empty")
    return data


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG or JPEG file from its header, or None for other data."""
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        return struct.unpack(">II", data[16:24])
    if data.startswith(_JPEG_SIGNATURE):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG segments up to the first start-of-frame marker."""
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            offset += 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        if marker in _JPEG_SOF:
            if offset + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
        offset += 2 + length
    return None

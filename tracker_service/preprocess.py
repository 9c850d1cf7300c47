"""HMR2's crops, exactly as the official inference preprocessing cuts them.

Official pipeline (4D-Humans ``ViTDetDataset``): the box is grown to aspect 3:4 (w:h) on its
short side, the square crop side is ``max(h, 4w/3)``; when that side exceeds 563.2 px the image
is blurred first (Gaussian, sigma ``(d - 1) / 2`` with ``d = side / 512``, edges replicated,
truncated at 4 sigma); a 256x256 patch is warped bilinearly with the box centre at (128, 128)
and black borders; BGR becomes RGB and channels are normalized with the ImageNet mean and std.
The ViT sees columns 32..223, so the crop is cut at 256x192 directly (the same pixels).

Unlike the official code, only the region the crop reads is blurred, not the whole image:
with replicated edges at the image border the pixels that reach the crop are identical. An
unblurred crop is normalized through a lookup table holding the float64 normalization of
each of the 256 grey levels: the same float32 values as normalizing the patch in float64.
"""

from __future__ import annotations

import cv2
import numpy as np

from tracker_service.model_spec import HMR2_CROP_SIZE, HMR2_INPUT_HW

#: ImageNet mean and std (RGB) on the 0..255 scale, as HMR2 normalizes.
MEAN_RGB = 255.0 * np.array([0.485, 0.456, 0.406])
STD_RGB = 255.0 * np.array([0.229, 0.224, 0.225])
#: Per BGR channel, the normalized value of each grey level: (1, 256, 3) float32 for cv2.LUT.
_NORMALIZE_LUT = ((np.arange(256.0)[:, None] - MEAN_RGB[::-1]) / STD_RGB[::-1]).astype(
    np.float32
)[None]
#: Crops whose side exceeds this many pixels are blurred first (d > 1.1).
_BLUR_FROM = 1.1
#: Columns of the square crop cut away on each side before the ViT.
_SIDE_CUT = (HMR2_CROP_SIZE - HMR2_INPUT_HW[1]) // 2


def crop_boxes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres and square crop sides of person boxes.

    Args:
        boxes: (n, 4) x1, y1, x2, y2 in image pixels.

    Returns:
        centers (n, 2) and sizes (n,): ``max(h, 4 w / 3)``, float32 as the official code.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    sizes = np.where(h / np.maximum(w, 1e-6) < 4.0 / 3.0, w * 4.0 / 3.0, h).astype(np.float32)
    return centers, sizes


def hmr2_crops(image_bgr: np.ndarray, centers: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Cut normalized HMR2 inputs from a frame.

    Args:
        image_bgr: (H, W, 3) uint8 frame as OpenCV decodes it.
        centers: (n, 2) crop centres in pixels.
        sizes: (n,) square crop sides in pixels.

    Returns:
        (n, 3, 256, 192) float32 crops, RGB, normalized.
    """
    out_h, out_w = HMR2_INPUT_HW
    crops = np.empty((len(sizes), 3, out_h, out_w), dtype=np.float32)
    for i, ((cx, cy), side) in enumerate(zip(centers, sizes, strict=True)):
        region, origin = _source_region(image_bgr, float(cx), float(cy), float(side))
        matrix = official_affine(float(cx), float(cy), float(side))
        matrix[:, 2] += matrix[:, :2] @ np.array(origin, dtype=np.float64)
        matrix[0, 2] -= _SIDE_CUT
        patch = cv2.warpAffine(
            region, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )
        if patch.dtype == np.uint8:
            normalized = cv2.LUT(patch, _NORMALIZE_LUT)
        else:
            normalized = (patch - MEAN_RGB[::-1]) / STD_RGB[::-1]
        crops[i] = normalized.transpose(2, 0, 1)[::-1]  # BGR to RGB
    return crops


def official_affine(cx: float, cy: float, side: float) -> np.ndarray:
    """The official 2x3 crop transform: float32 point pairs through ``getAffineTransform``.

    Centre to (128, 128), centre + (0, side/2) to (128, 256), centre + (side/2, 0) to (256, 128).
    Built the same way so that OpenCV's fixed-point bilinear weights round the same.
    """
    c = np.array([cx, cy], dtype=np.float32)
    half = np.float32(side / 2.0)
    src = np.stack([c, c + np.array([0, half], np.float32), c + np.array([half, 0], np.float32)])
    mid, full = HMR2_CROP_SIZE / 2, HMR2_CROP_SIZE
    dst = np.array([[mid, mid], [mid, full], [full, mid]], dtype=np.float32)
    return cv2.getAffineTransform(src, dst)


def _source_region(
    image: np.ndarray, cx: float, cy: float, side: float
) -> tuple[np.ndarray, tuple[int, int]]:
    """The part of the image a crop reads, blurred where the official code blurs.

    Only the columns of the 192 px wide cut are read (3/4 of the side). Returns the region
    (uint8, or float64 when blurred) and its top-left corner in the image.
    """
    d = side / HMR2_CROP_SIZE / 2.0
    sigma = (d - 1.0) / 2.0 if d > _BLUR_FROM else 0.0
    radius = int(4.0 * sigma + 0.5) if sigma else 0
    reach = 2.0 + radius  # bilinear reach plus the blur kernel
    half_w = side * HMR2_INPUT_HW[1] / HMR2_CROP_SIZE / 2.0 + reach
    half_h = side / 2.0 + reach
    h, w = image.shape[:2]
    x0, y0 = max(int(np.floor(cx - half_w)), 0), max(int(np.floor(cy - half_h)), 0)
    x1, y1 = min(int(np.ceil(cx + half_w)) + 1, w), min(int(np.ceil(cy + half_h)) + 1, h)
    if x0 >= x1 or y0 >= y1:  # the crop lies wholly outside the image: all black
        return np.zeros((1, 1, 3), np.uint8), (int(cx) + int(side), int(cy) + int(side))
    region = image[y0:y1, x0:x1]
    if sigma:
        # The official float64 Gaussian, read straight from uint8 (no float64 copy first).
        kernel = cv2.getGaussianKernel(2 * radius + 1, sigma, cv2.CV_64F)
        region = cv2.sepFilter2D(
            region, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REPLICATE
        )
    return region, (x0, y0)

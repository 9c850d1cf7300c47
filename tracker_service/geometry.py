"""Camera conversion, projection and joint angles: pure, vectorized numpy.

Cameras follow HMR2 (``reference/hmr2/README.md``): the network predicts a weak-perspective
crop camera ``(s, tx, ty)``; :func:`cam_crop_to_full` turns it into the translation of the
body in a pinhole camera of focal :func:`focal_length` with its principal point at the image
centre. Every function takes a leading axis of ``n`` bodies, accepts ``n = 0`` and returns
new arrays.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: HMR2's focal length for its 256-pixel crop (EXTRA.FOCAL_LENGTH / MODEL.IMAGE_SIZE).
FOCAL_PER_PIXEL = 5000.0 / 256.0
#: Added to ``b * s`` by the official conversion, so that ``s = 0`` does not divide by zero.
_BS_EPS = 1e-9
#: Nearest depth a point is projected at (points behind the camera are clamped to it).
_MIN_DEPTH = 1e-6


def focal_length(width: int, height: int) -> float:
    """Focal length in pixels HMR2's demo uses for a full image: ``5000 / 256 * max(W, H)``."""
    return FOCAL_PER_PIXEL * max(width, height)


def cam_crop_to_full(
    crop_cam: np.ndarray,
    centers: np.ndarray,
    sizes: np.ndarray,
    image_wh: tuple[int, int],
    focal: float,
) -> np.ndarray:
    """Full-image camera translations from HMR2's crop cameras (official ``cam_crop_to_full``).

    Args:
        crop_cam: (n, 3) crop cameras ``s, tx, ty``.
        centers: (n, 2) crop centres in image pixels.
        sizes: (n,) square crop sides in pixels.
        image_wh: Image ``(width, height)``.
        focal: Focal length in pixels.

    Returns:
        (n, 3) float64 translations ``tx, ty, tz`` in metres.

    """
    crop_cam = np.asarray(crop_cam, dtype=np.float64).reshape(-1, 3)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1)
    half = np.array(image_wh, dtype=np.float64) / 2.0
    bs = sizes * crop_cam[:, 0] + _BS_EPS
    txy = 2.0 * (centers - half) / bs[:, None] + crop_cam[:, 1:]
    return np.column_stack([txy, 2.0 * focal / bs])


def cam_full_to_crop(
    translation: np.ndarray,
    centers: np.ndarray,
    sizes: np.ndarray,
    image_wh: tuple[int, int],
    focal: float,
) -> np.ndarray:
    """Inverse of :func:`cam_crop_to_full`: the crop camera of a body seen in a given crop.

    Used for bodies the tracker predicts (no crop was cut): their crop camera is expressed
    in the predicted box's crop.

    Args:
        translation: (n, 3) full-image translations ``tx, ty, tz`` (``tz > 0``).
        centers: (n, 2) crop centres in pixels.
        sizes: (n,) square crop sides in pixels.
        image_wh: Image ``(width, height)``.
        focal: Focal length in pixels.

    Returns:
        (n, 3) float64 crop cameras ``s, tx, ty``.

    """
    translation = np.asarray(translation, dtype=np.float64).reshape(-1, 3)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1)
    half = np.array(image_wh, dtype=np.float64) / 2.0
    bs = 2.0 * focal / translation[:, 2]
    scale = (bs - _BS_EPS) / sizes
    txy = translation[:, :2] - 2.0 * (centers - half) / bs[:, None]
    return np.column_stack([scale, txy])


def project(
    points: np.ndarray, translation: np.ndarray, focal: float, image_wh: tuple[int, int]
) -> np.ndarray:
    """Perspective projection with the principal point at the image centre.

    Args:
        points: (n, k, 3) points in the body frame (metres).
        translation: (n, 3) camera translation of each body.
        focal: Focal length in pixels.
        image_wh: Image ``(width, height)``.

    Returns:
        (n, k, 2) float64 pixel coordinates ``x, y``.

    """
    points = np.asarray(points, dtype=np.float64)
    camera = points + np.asarray(translation, dtype=np.float64).reshape(-1, 1, 3)
    depth = np.maximum(camera[..., 2:], _MIN_DEPTH)
    return focal * camera[..., :2] / depth + np.array(image_wh, dtype=np.float64) / 2.0


def joint_angles(
    joints: np.ndarray, triples: Mapping[str, tuple[int, int, int]]
) -> dict[str, np.ndarray]:
    """Angle at the middle joint of each triple, in degrees.

    Args:
        joints: (n, J, 3) joint positions.
        triples: name -> (a, b, c) joint indices; the angle is between ``a - b`` and ``c - b``.

    Returns:
        name -> (n,) float64 angles in [0, 180]; 0 where a segment has zero length.

    """
    joints = np.asarray(joints, dtype=np.float64)
    index = np.array(list(triples.values()), dtype=np.intp).reshape(-1, 3)
    u = joints[:, index[:, 0]] - joints[:, index[:, 1]]
    v = joints[:, index[:, 2]] - joints[:, index[:, 1]]
    norms = np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1)
    valid = norms > 0.0
    cosine = np.einsum("nkd,nkd->nk", u, v) / np.where(valid, norms, 1.0)
    degrees = np.where(valid, np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))), 0.0)
    return {name: degrees[:, i] for i, name in enumerate(triples)}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair of boxes.

    Args:
        a: (n, 4) boxes ``x1, y1, x2, y2``.
        b: (m, 4) boxes.

    Returns:
        (n, m) float64 IoU (0 where a union is empty).

    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0.0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0.0, inter / np.where(union > 0.0, union, 1.0), 0.0)

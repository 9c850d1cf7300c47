"""Rotations as numpy arrays: rotation vectors and matrices, and the log and exp maps of SO(3).

The conversions go through unit quaternions as SciPy's ``Rotation`` does (a matrix that is
not orthogonal to 1e-12 first replaced by its nearest rotation ``U V^T``, then Markley's
method; series near the zero angle), so that they agree with it to rounding (tested
against SciPy, which only the dev extras install). Every function takes any leading shape
and accepts empty input.
"""

from __future__ import annotations

import numpy as np

#: Below this angle (radians) the conversions use their Taylor series.
_SMALL_ANGLE = 1e-3


def matrix_to_rotvec(matrices: np.ndarray) -> np.ndarray:
    """``(..., 3)`` rotation vectors of ``(..., 3, 3)`` rotation matrices (angle in [0, pi])."""
    quat = _matrix_to_quat(matrices)
    quat = np.where(quat[..., 3:] < 0.0, -quat, quat)
    vector, w = quat[..., :3], quat[..., 3]
    angle = 2.0 * np.arctan2(np.linalg.norm(vector, axis=-1), w)
    small = angle <= _SMALL_ANGLE
    safe = np.where(small, 1.0, angle)
    scale = np.where(
        small, 2.0 + angle**2 / 12.0 + 7.0 * angle**4 / 2880.0, safe / np.sin(safe / 2.0)
    )
    return scale[..., None] * vector


def rotvec_to_matrix(rotvecs: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation matrices of ``(..., 3)`` rotation vectors."""
    rotvecs = np.asarray(rotvecs, dtype=np.float64)
    angle = np.linalg.norm(rotvecs, axis=-1)
    small = angle <= _SMALL_ANGLE
    safe = np.where(small, 1.0, angle)
    scale = np.where(small, 0.5 - angle**2 / 48.0 + angle**4 / 3840.0, np.sin(safe / 2.0) / safe)
    quat = np.concatenate([scale[..., None] * rotvecs, np.cos(angle / 2.0)[..., None]], axis=-1)
    return _quat_to_matrix(quat)


def orthonormalise(matrices: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)``: the rotations nearest to near-rotation matrices (via their quaternion)."""
    return _quat_to_matrix(_matrix_to_quat(matrices))


def so3_log(base: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(..., 3)`` rotation vectors of ``base^T target`` for ``(..., 3, 3)`` rotations."""
    return matrix_to_rotvec(np.swapaxes(base, -1, -2) @ target)


def so3_exp(base: np.ndarray, tangent: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations ``base exp(tangent)`` for ``(..., 3)`` rotation vectors."""
    return base @ rotvec_to_matrix(tangent)


def _matrix_to_quat(matrices: np.ndarray) -> np.ndarray:
    """``(..., 4)`` unit quaternions ``x, y, z, w`` of ``(..., 3, 3)`` matrices (Markley)."""
    m = np.asarray(matrices, dtype=np.float64)
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3).copy()
    gram = m @ np.swapaxes(m, 1, 2)
    skewed = ~np.isclose(gram, np.eye(3), rtol=1e-5, atol=1e-12).all(axis=(1, 2))
    if skewed.any():
        u, _, vt = np.linalg.svd(m[skewed])
        m[skewed] = u @ vt
    diagonal = np.diagonal(m, axis1=1, axis2=2)
    decision = np.concatenate([diagonal, diagonal.sum(axis=1, keepdims=True)], axis=1)
    choice = decision.argmax(axis=1)
    quat = np.empty((len(m), 4))
    rows = np.flatnonzero(choice != 3)
    i = choice[rows]
    j, k = (i + 1) % 3, (i + 2) % 3
    quat[rows, i] = 1.0 - decision[rows, 3] + 2.0 * m[rows, i, i]
    quat[rows, j] = m[rows, j, i] + m[rows, i, j]
    quat[rows, k] = m[rows, k, i] + m[rows, i, k]
    quat[rows, 3] = m[rows, k, j] - m[rows, j, k]
    rows = np.flatnonzero(choice == 3)
    quat[rows, 0] = m[rows, 2, 1] - m[rows, 1, 2]
    quat[rows, 1] = m[rows, 0, 2] - m[rows, 2, 0]
    quat[rows, 2] = m[rows, 1, 0] - m[rows, 0, 1]
    quat[rows, 3] = 1.0 + decision[rows, 3]
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    return quat.reshape(shape + (4,))


def _quat_to_matrix(quat: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation matrices of ``(..., 4)`` unit quaternions ``x, y, z, w``."""
    x, y, z, w = np.moveaxis(quat, -1, 0)
    xx, yy, zz, ww = x * x, y * y, z * z, w * w
    xy, zw, xz, yw, yz, xw = x * y, z * w, x * z, y * w, y * z, x * w
    rows = [
        [xx - yy - zz + ww, 2.0 * (xy - zw), 2.0 * (xz + yw)],
        [2.0 * (xy + zw), -xx + yy - zz + ww, 2.0 * (yz - xw)],
        [2.0 * (xz - yw), 2.0 * (yz + xw), -xx - yy + zz + ww],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)

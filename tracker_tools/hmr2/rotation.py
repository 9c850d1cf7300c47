"""The 6D rotation representation of HMR2 and its conversion to rotation matrices."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Normalisation floor, as in ``torch.nn.functional.normalize``.
_EPS = 1e-12


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cross product over the last axis, written out so that every exporter handles it."""
    ax, ay, az = a.unbind(-1)
    bx, by, bz = b.unbind(-1)
    return torch.stack((ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx), dim=-1)


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """Convert 6D rotations to rotation matrices by Gram-Schmidt (Zhou et al., CVPR 2019).

    For each 6-vector, ``a1`` is values 0..2 and ``a2`` values 3..5. Then
    ``b1 = a1 / |a1|``, ``b2 = normalize(a2 - (b1 . a2) b1)``, ``b3 = b1 x b2``, and the
    matrix has **columns** ``b1, b2, b3`` (HMR2's convention).

    Args:
        x: Tensor of shape ``(..., 6)``.

    Returns:
        Tensor of shape ``(..., 3, 3)`` with the same dtype.

    """
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = F.normalize(a1, dim=-1, eps=_EPS)
    b2 = F.normalize(a2 - (b1 * a2).sum(dim=-1, keepdim=True) * b1, dim=-1, eps=_EPS)
    b3 = _cross(b1, b2)
    return torch.stack((b1, b2, b3), dim=-1)

"""The one shim the tooling needs: py-motmetrics still calls ``np.asfarray``.

numpy 2 removed ``np.asfarray``; py-motmetrics 1.4 calls it while it computes distances and
metrics. :func:`numpy_for_motmetrics` puts an equivalent back, explicitly, where scoring
starts (:func:`tracker_tools.mot_score.motmetrics`); nothing patches numpy at import time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike


def _asfarray(a: Any, dtype: DTypeLike = np.float64) -> np.ndarray:
    """``np.asfarray`` as numpy 1 had it: an array of floating type."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.inexact):
        dtype = np.dtype(np.float64)
    return np.asarray(a, dtype=dtype)


def numpy_for_motmetrics() -> None:
    """Give numpy back ``asfarray`` when it lacks it (numpy 2); idempotent."""
    if not hasattr(np, "asfarray"):
        np.asfarray = _asfarray  # type: ignore[attr-defined]

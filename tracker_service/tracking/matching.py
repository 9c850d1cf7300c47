"""One Hungarian pass over all live tracks, with PHALP's gate.

PHALP (``phalp/external/deep_sort_/linear_assignment.py``, ``matching_simple``)
matches confirmed and tentative tracks together in a single pass: costs above
the gate are first lowered to ``gate + 1e-5`` (so an impossible pair cannot
distort the assignment of the others), the Hungarian algorithm runs, and the
pairs still above the gate are rejected.

By default the assignment minimises the sum of the logarithms of the costs
(the product of the costs) rather than their sum; PHALP's code carries this
line commented out. EQ_019 is a product of factors, each growing
exponentially with its cue's disagreement, so a plain sum lets one poor pair
outweigh a near-certain one: on TUD-Campus (frame 25) it chose two mediocre
pairs costing 11 + 10, swapping two identities, over the right pairs costing
1.3 + 22; their product is the smaller. The logarithm is monotonic: the gate
rejects exactly the same pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

#: PHALP's ``hungarian_th``: pairs costing more are never matched.
GATE = 100.0
#: How far above the gate rejected costs are placed before the assignment.
_GATE_MARGIN = 1e-5


@dataclass(frozen=True)
class Assignment:
    """The outcome of one matching pass.

    Attributes:
        matches: ``(K, 2)`` int rows ``(track_row, detection_column)``, by track row.
        unmatched_tracks: ``(T - K,)`` track rows left without a detection, ascending.
        unmatched_detections: ``(M - K,)`` detection columns left without a track, ascending.

    """

    matches: np.ndarray
    unmatched_tracks: np.ndarray
    unmatched_detections: np.ndarray


def assign(cost: np.ndarray, gate: float = GATE, *, log_domain: bool = True) -> Assignment:
    """Match tracks (rows) to detections (columns) at least total cost, rejecting costs > gate.

    The caller's matrix is not modified.

    Args:
        cost: ``(T, M)`` association costs (positive); ``inf`` allowed, ``T`` or ``M`` may be 0.
        gate: Largest cost of an accepted pair.
        log_domain: Minimise the sum of ``log(cost)`` (default) instead of the sum of
            costs (PHALP's code).

    Returns:
        The matches and the unmatched rows and columns.

    Raises:
        ValueError: If ``cost`` is not 2-D, contains NaN or is not positive.

    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost must have shape (T, M), got {cost.shape}")
    if np.isnan(cost).any() or (cost <= 0).any():
        raise ValueError("cost must be positive, without NaN")
    clipped = np.minimum(cost, gate + _GATE_MARGIN)
    rows, cols = linear_sum_assignment(np.log(clipped) if log_domain else clipped)
    accepted = clipped[rows, cols] <= gate
    matches = np.stack([rows[accepted], cols[accepted]], axis=1).astype(np.intp)
    return Assignment(
        matches=matches,
        unmatched_tracks=np.setdiff1d(np.arange(cost.shape[0]), matches[:, 0]),
        unmatched_detections=np.setdiff1d(np.arange(cost.shape[1]), matches[:, 1]),
    )

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

The assignment itself is :func:`linear_sum_assignment`, the shortest augmenting path
algorithm (Crouse, "On implementing 2D rectangular assignment algorithms", IEEE TAES 2016)
that SciPy's function of that name implements, with the same order of search and the same
tie-breaking, so that it returns the same pairs (tested against SciPy, which only the dev
extras install).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a least-total-cost complete assignment (as SciPy's function).

    Args:
        cost: ``(T, M)`` finite costs.

    Returns:
        ``(rows, cols)``: ``min(T, M)`` pairs, by ascending row.

    Raises:
        ValueError: If ``cost`` is not 2-D or not finite.

    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or not np.isfinite(cost).all():
        raise ValueError(f"cost must be a finite (T, M) matrix, got shape {cost.shape}")
    transposed = cost.shape[1] < cost.shape[0]
    matrix = cost.T if transposed else cost
    col4row = _augment_rows(matrix)
    if transposed:
        order = np.argsort(col4row, kind="stable")
        return col4row[order], order.astype(np.intp)
    return np.arange(len(col4row), dtype=np.intp), col4row


def _augment_rows(cost: np.ndarray) -> np.ndarray:
    """Assign every row of a wide ``(R, C)`` matrix (``R <= C``); return each row's column."""
    rows, cols = cost.shape
    u, v = np.zeros(rows), np.zeros(cols)
    col4row = np.full(rows, -1, dtype=np.intp)
    row4col = np.full(cols, -1, dtype=np.intp)
    for current in range(rows):
        path = np.full(cols, -1, dtype=np.intp)
        shortest = np.full(cols, np.inf)
        seen_rows = np.zeros(rows, dtype=bool)
        seen_cols = np.zeros(cols, dtype=bool)
        remaining = list(range(cols - 1, -1, -1))  # SciPy's scan order
        row, sink, lowest = current, -1, 0.0
        while sink < 0:
            seen_rows[row] = True
            scan = np.array(remaining, dtype=np.intp)
            reduced = lowest + cost[row, scan] - u[row] - v[scan]
            better = reduced < shortest[scan]
            path[scan[better]] = row
            shortest[scan[better]] = reduced[better]
            values = shortest[scan]
            lowest = float(values.min())
            ties = np.flatnonzero(values == lowest)
            free = ties[row4col[scan[ties]] < 0]
            index = int(free[-1]) if len(free) else int(ties[0])
            column = remaining[index]
            if row4col[column] < 0:
                sink = column
            else:
                row = int(row4col[column])
            seen_cols[column] = True
            remaining[index] = remaining[-1]
            remaining.pop()
        u[current] += lowest
        others = seen_rows.copy()
        others[current] = False
        u[others] += lowest - shortest[col4row[others]]
        v[seen_cols] -= lowest - shortest[seen_cols]
        column = sink
        while True:
            row = int(path[column])
            row4col[column] = row
            col4row[row], column = column, int(col4row[row])
            if row == current:
                break
    return col4row

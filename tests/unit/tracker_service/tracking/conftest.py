"""Every assignment the tracker's tests make is checked against SciPy's (the dev extra)."""

from collections.abc import Iterator

import numpy as np
import pytest

from tracker_service.tracking import matching


@pytest.fixture(autouse=True)
def assignments_as_scipys(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Wrap the tracker's Hungarian assignment: each call must give SciPy's pairs."""
    optimize = pytest.importorskip("scipy.optimize", reason="SciPy is the reference (dev extra)")
    own = matching.linear_sum_assignment
    calls: list[int] = []

    def checked(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = own(cost)
        for want, got in zip(optimize.linear_sum_assignment(cost), found, strict=True):
            np.testing.assert_array_equal(got, want, err_msg=f"cost:\n{cost}")
        calls.append(cost.size)
        return found

    monkeypatch.setattr(matching, "linear_sum_assignment", checked)
    yield calls

import numpy as np
import pytest

from tracker_service.tracking.matching import GATE, assign, linear_sum_assignment


@pytest.mark.parametrize(
    ("cost", "matches", "unmatched_tracks", "unmatched_detections"),
    [
        ([[1.0, 50.0], [40.0, 2.0]], [[0, 0], [1, 1]], [], []),
        ([[1.0, 2.0], [1.5, 200.0]], [[0, 1], [1, 0]], [], []),  # global optimum, not greedy
        ([[150.0, 300.0], [2.0, np.inf]], [[1, 0]], [0], [1]),  # gated
        ([[1.0], [2.0], [3.0]], [[0, 0]], [1, 2], []),
        ([[5.0, 1.0, 7.0]], [[0, 1]], [], [0, 2]),
        ([[GATE, GATE + 1e-3]], [[0, 0]], [], [1]),  # the gate itself is accepted
        (np.zeros((0, 3)) + 1, np.zeros((0, 2)), [], [0, 1, 2]),
        (np.zeros((2, 0)) + 1, np.zeros((0, 2)), [0, 1], []),
    ],
)
def test_assign_table(cost, matches, unmatched_tracks, unmatched_detections):
    result = assign(np.array(cost, dtype=float))
    np.testing.assert_array_equal(result.matches.reshape(-1, 2), np.array(matches).reshape(-1, 2))
    np.testing.assert_array_equal(result.unmatched_tracks, unmatched_tracks)
    np.testing.assert_array_equal(result.unmatched_detections, unmatched_detections)
    assert result.matches.dtype == np.intp


def test_log_domain_changes_the_choice_between_poor_and_near_certain_pairs():
    # TUD-Campus frame 25 (location cues alone): rows are tracks, columns detections.
    cost = np.array([[11.0, 22.0], [1.3, 10.0]])
    np.testing.assert_array_equal(assign(cost, log_domain=False).matches, [[0, 0], [1, 1]])
    np.testing.assert_array_equal(assign(cost).matches, [[0, 1], [1, 0]])


@pytest.mark.parametrize("log_domain", [True, False])
def test_assign_does_not_modify_the_callers_matrix(log_domain):
    cost = np.array([[1.0, 500.0], [np.inf, 3.0]])
    before = cost.copy()
    assign(cost, gate=10.0, log_domain=log_domain)
    np.testing.assert_array_equal(cost, before)


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        (np.ones(3), "shape"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[0.0, 1.0]]), "positive"),
    ],
)
def test_assign_rejects_invalid_costs(cost, message):
    with pytest.raises(ValueError, match=message):
        assign(cost)


def _random_costs(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Cost matrices of every shape up to 12x12: uniform, few integer levels (ties), log-gated."""
    costs = []
    for k in range(count):
        rows, cols = rng.integers(0, 13, 2)
        kind = k % 3
        if kind == 0:
            costs.append(rng.random((rows, cols)))
        elif kind == 1:
            costs.append(rng.integers(0, 4, (rows, cols)).astype(float))
        else:
            gated = np.minimum(np.exp(rng.normal(0.0, 3.0, (rows, cols))), GATE + 1e-5)
            costs.append(np.log(gated))
    return costs


def test_linear_sum_assignment_returns_scipys_pairs_on_random_matrices():
    optimize = pytest.importorskip("scipy.optimize", reason="SciPy is the reference (dev extra)")
    for cost in _random_costs(np.random.default_rng(0), 3000):
        expected = optimize.linear_sum_assignment(cost)
        found = linear_sum_assignment(cost)
        for want, got in zip(expected, found, strict=True):
            np.testing.assert_array_equal(got, want, err_msg=f"cost:\n{cost}")


@pytest.mark.parametrize("cost", [np.ones(3), np.array([[1.0, np.inf]]), np.array([[np.nan]])])
def test_linear_sum_assignment_rejects_what_is_no_finite_matrix(cost):
    with pytest.raises(ValueError, match="finite"):
        linear_sum_assignment(cost)


def test_every_assignment_of_these_tests_is_checked_against_scipy(assignments_as_scipys):
    assign(np.array([[1.0, 2.0], [2.0, 1.0]]))
    assert assignments_as_scipys == [4]  # conftest.py compares each call with SciPy's

import numpy as np
import pytest

from tracker_service.tracking.matching import GATE, assign


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

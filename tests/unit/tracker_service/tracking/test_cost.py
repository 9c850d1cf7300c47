import numpy as np
import pytest

from tracker_service.tracking import cost

BETAS = cost.BETAS


def one(value):
    return np.array([[value]], dtype=float)


@pytest.mark.parametrize(
    ("a", "p", "loc", "n", "c_xy", "c_n", "expected"),
    [
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
        (0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 1 + BETAS[0] * 0.5),
        (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1 + BETAS[1]),
        (0.0, 0.0, 0.05, 0.0, 0.0, 0.0, np.exp(0.05 / 0.1 / BETAS[2])),
        (0.0, 0.0, 0.05, 0.0, 0.2, 0.0, np.exp(0.05 / (0.1 + np.tanh(0.2)) / BETAS[2])),
        (0.0, 0.0, 0.0, 0.3, 0.0, 0.1, np.exp(0.3 / (0.1 + np.tanh(0.1)) / BETAS[3])),
        (0.0, 0.0, 0.05, 0.0, np.inf, 0.0, np.exp(0.05 / 1.1 / BETAS[2])),  # unbounded interval
        (np.nan, np.nan, 0.0, 0.0, 0.0, 0.0, 1.0),  # missing cues: neutral factors
        (0.2, 0.4, 0.01, 0.1, 0.02, 0.05,
         (1 + BETAS[0] * 0.2) * (1 + BETAS[1] * 0.4)
         * np.exp(0.01 / (0.1 + np.tanh(0.02)) / BETAS[2])
         * np.exp(0.1 / (0.1 + np.tanh(0.05)) / BETAS[3])),
    ],
)  # fmt: skip
def test_eq019_cost_table(a, p, loc, n, c_xy, c_n, expected):
    got = cost.eq019_cost(one(a), one(p), one(loc), one(n), one(c_xy), one(c_n))
    np.testing.assert_allclose(got, [[expected]], rtol=1e-12)


@pytest.mark.parametrize("name", ["location", "depth", "width_xy", "width_depth"])
def test_eq019_cost_rejects_nan_location_terms(name):
    args = {"location": one(0.1), "depth": one(0.1), "width_xy": one(0.1), "width_depth": one(0.1)}
    args[name] = one(np.nan)
    with pytest.raises(ValueError, match=name):
        cost.eq019_cost(one(0.0), one(0.0), **args)


def test_eq019_cost_stays_finite_far_away():
    got = cost.eq019_cost(one(4.0), one(1.5), one(1e6), one(1e6), one(0.0), one(0.0))
    assert np.isfinite(got).all() and got[0, 0] > 1e100


def test_appearance_distance():
    e = np.eye(3)
    track = np.array([[1.0, 0, 0], [np.nan] * 3])
    detection = np.stack([e[0] * 5, -e[0], e[1]])
    got = cost.appearance_distance(track, detection)
    np.testing.assert_allclose(got[0], [0.0, 4.0, 2.0], atol=1e-12)
    assert np.isnan(got[1]).all()


def test_pose_distance_is_squared_l2_capped():
    track = np.array([[0.0, 0.0], [0.0, 0.0]])
    detection = np.array([[0.5, 0.5], [3.0, 0.0]])
    np.testing.assert_allclose(cost.pose_distance(track, detection), [[0.5, 1.5], [0.5, 1.5]])


def test_pose_vectors_layout():
    rotations = np.arange(2 * 24 * 9, dtype=float).reshape(2, 24, 3, 3)
    betas = np.ones((2, 10))
    vectors = cost.pose_vectors(rotations, betas)
    assert vectors.shape == (2, 226)
    np.testing.assert_array_equal(vectors[1, :216], rotations[1].ravel())
    np.testing.assert_array_equal(vectors[:, 216:], betas)


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ([0, 0, 10, 10], 0.0),
        ([20, 20, 30, 30], 1.0),
        ([5, 0, 15, 10], 1 - 50 / 150),
        ([0, 0, 5, 5], 1 - 25 / 100),
    ],
)
def test_box_overlap_distance(detection, expected):
    got = cost.box_overlap_distance(np.array([[0, 0, 10, 10]], float), np.array([detection], float))
    np.testing.assert_allclose(got, [[expected]])


def test_location_distance_in_units_of_the_longer_side():
    got = cost.location_distance(
        np.array([[0.0, 0.0]]), np.array([[30.0, 40.0], [0.0, 0.0]]), 500.0
    )
    np.testing.assert_allclose(got, [[0.1, 0.0]])


def cues(n, *, depth=None, appearance=None, pose=None, boxes=None, heights=None):
    boxes = np.tile([0.0, 0.0, 40.0, 100.0], (n, 1)) if boxes is None else np.asarray(boxes, float)
    height = boxes[:, 3] - boxes[:, 1] if heights is None else np.asarray(heights, float)
    return cost.Cues(
        point=(boxes[:, :2] + boxes[:, 2:]) / 2,
        log_depth=np.full(n, np.nan) if depth is None else np.log(depth),
        log_height=np.log(height),
        box=boxes,
        appearance=appearance,
        pose=pose,
    )


def widths(n, xy=0.0, depth=0.1, height=0.2):
    return cost.Widths(
        xy=np.full(n, xy), log_depth=np.full(n, depth), log_height=np.full(n, height)
    )


def test_depth_terms_use_the_camera_only_where_both_sides_have_it():
    track = cues(2, depth=[4.0, np.nan], heights=[100, 100])
    detection = cues(2, depth=[5.0, np.nan], heights=[80, 125])
    n, c_n = cost.depth_terms(track, detection, widths(2))
    np.testing.assert_allclose(n[0, 0], np.log(5 / 4))
    np.testing.assert_allclose(n[0, 1], np.log(125 / 100))
    np.testing.assert_allclose(n[1], [np.log(100 / 80), np.log(125 / 100)])
    np.testing.assert_allclose(c_n, [[0.1, 0.2], [0.2, 0.2]])


def test_association_cost_box_only_uses_the_box_overlap_for_appearance():
    track = cues(1, boxes=[[0, 0, 40, 100]])
    detection = cues(2, boxes=[[0, 0, 40, 100], [20, 0, 60, 100]])
    got = cost.association_cost(track, detection, widths(1), scale=1000.0)
    iou = 20 * 100 / (2 * 4000 - 20 * 100)
    location = np.exp(20 / 1000 / 0.1 / BETAS[2])
    np.testing.assert_allclose(got, [[1.0, (1 + BETAS[0] * (1 - iou)) * location]])


def test_association_cost_prefers_the_appearance_and_neutralises_missing_pose():
    e = np.eye(4)
    track = cues(1, appearance=e[:1], pose=None)
    detection = cues(2, appearance=np.stack([e[0], e[1]]), pose=np.zeros((2, 226)))
    got = cost.association_cost(track, detection, widths(1), scale=1000.0)
    np.testing.assert_allclose(got, [[1.0, 1 + BETAS[0] * 2.0]])


def test_association_cost_uses_the_overlap_only_for_pairs_lacking_appearance():
    e = np.eye(4)
    track = cues(2, appearance=np.stack([e[0], np.full(4, np.nan)]))
    detection = cues(1, appearance=e[1:2], boxes=[[100, 0, 140, 100]])
    got = cost.association_cost(track, detection, widths(2, xy=np.inf), scale=1000.0)
    location = np.exp(0.1 / 1.1 / BETAS[2])
    np.testing.assert_allclose(
        got[:, 0], [(1 + BETAS[0] * 2.0) * location, (1 + BETAS[0]) * location]
    )


def test_association_cost_pose_term():
    track = cues(1, pose=np.zeros((1, 226)))
    pose = np.zeros((2, 226))
    pose[1, 0] = 0.5
    got = cost.association_cost(track, cues(2, pose=pose), widths(1), scale=1000.0)
    np.testing.assert_allclose(got, [[1.0, 1 + BETAS[1] * 0.25]])


@pytest.mark.parametrize(("t", "m"), [(0, 3), (3, 0), (0, 0)])
def test_association_cost_empty(t, m):
    got = cost.association_cost(cues(t), cues(m), widths(t), scale=100.0)
    assert got.shape == (t, m)

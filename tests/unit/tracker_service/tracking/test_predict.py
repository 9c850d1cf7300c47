import numpy as np
import pytest
from scipy import stats
from scipy.spatial.transform import Rotation

from tracker_service.tracking import predict


def ridge_reference(t: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, float]:
    """Intercept and slope of min ||y - a - b t||^2 + alpha b^2 (scikit-learn's Ridge), by lstsq."""
    design = np.vstack([np.column_stack([np.ones_like(t), t]), [0.0, np.sqrt(alpha)]])
    target = np.append(y, 0.0)
    (a, b), *_ = np.linalg.lstsq(design, target, rcond=None)
    return a, b


def interval_reference(t, y, alpha, at):
    """PHALP's get_prediction_interval, written out."""
    a, b = ridge_reference(t, y, alpha)
    n = len(t)
    s_err = np.sqrt(np.sum((y - (a + b * t)) ** 2) / (n - 2))
    q = stats.t.ppf(0.975, n - 2)
    return a + b * at, q * s_err * np.sqrt(
        1 + 1 / n + (at - t.mean()) ** 2 / np.sum((t - t.mean()) ** 2)
    )


@pytest.mark.parametrize(
    ("times", "values", "alpha", "at"),
    [
        ([0, 1, 2, 3, 4, 5, 6], [0.0, 1.1, 1.9, 3.2, 3.9, 5.1, 6.0], 1.2, 7),
        ([0, 1, 2, 3, 4, 5, 6], [5.0, 4.0, 3.5, 2.0, 1.0, 0.5, -1.0], 2.0, 12),
        ([3, 3, 3, 3, 4, 5, 6], [1.0, 1.0, 1.0, 1.0, 1.2, 1.1, 1.5], 5.0, 7),  # padded history
        ([0, 2, 3, 7, 8, 9, 12], [0.0, 0.3, 0.2, 1.0, 1.4, 1.3, 2.0], 1.2, 14),  # skipped frames
    ],
)
def test_ridge_matches_reference(times, values, alpha, at):
    t, y = np.array(times, float), np.array(values, float)
    fit = predict.fit_ridge(t[None], y[None, :, None], alpha)
    a, b = ridge_reference(t, y, alpha)
    np.testing.assert_allclose(fit.slope[0, 0], b, rtol=1e-10)
    np.testing.assert_allclose(fit.predict(np.array([0.0]))[0, 0], a, rtol=1e-10, atol=1e-12)
    value, width = interval_reference(t, y, alpha, at)
    np.testing.assert_allclose(fit.predict(np.array([at], float))[0, 0], value, rtol=1e-10)
    np.testing.assert_allclose(fit.half_width(np.array([at], float))[0, 0], width, rtol=1e-10)


def test_ridge_is_vectorized_over_tracks_and_features():
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.integers(1, 3, size=(4, 7)), axis=1).astype(float)
    values = rng.normal(size=(4, 7, 3))
    alphas = np.array([1.2, 2.0, 5.0])
    fit = predict.fit_ridge(times, values, alphas)
    at = times[:, -1] + 2
    for i in range(4):
        for f in range(3):
            value, width = interval_reference(times[i], values[i, :, f], alphas[f], at[i])
            np.testing.assert_allclose(fit.predict(at)[i, f], value, rtol=1e-10)
            np.testing.assert_allclose(fit.half_width(at)[i, f], width, rtol=1e-10)


def test_single_distinct_time_gives_unbounded_interval():
    times = np.full((1, 7), 4.0)
    values = np.full((1, 7, 2), 3.0)
    prediction, width = predict.predict_with_intervals(times, values, 5, 1.2)
    np.testing.assert_allclose(prediction, 3.0)
    assert np.isinf(width).all()


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([0, 1, 2, 3, 4, 5, 6], 1),
        ([2, 2, 2, 2, 2, 2, 3], 6),
        ([2, 2, 2, 2, 2, 2, 2], 7),
        ([1, 1, 4], 2),
    ],
)
def test_interval_divisor_counts_padding(times, expected):
    assert predict.interval_divisor(np.array([times], float))[0] == expected


def test_widths_of_young_tracks_are_divided():
    times = np.array([[0, 0, 0, 0, 0, 1, 2], [0, 1, 2, 3, 4, 5, 6]], float)
    values = np.stack(
        [np.array([0, 0, 0, 0, 0, 1.3, 1.8]), np.arange(7) + [0, 0.2, -0.1, 0, 0.3, 0, 0.1]]
    )
    _, width = predict.predict_with_intervals(times, values[..., None], 7, 1.2)
    fit = predict.fit_ridge(times, values[..., None], 1.2)
    raw = fit.half_width(np.array([7.0, 7.0]))
    np.testing.assert_allclose(width[:, 0], raw[:, 0] / [5, 1])


@pytest.mark.parametrize(("at", "expected_target"), [(10, 10.0), (100, 6 + predict.MAX_HORIZON)])
def test_prediction_horizon_is_capped(at, expected_target):
    times = np.arange(7, dtype=float)[None]
    values = (2.0 * np.arange(7, dtype=float))[None, :, None]
    prediction, _ = predict.predict_with_intervals(times, values, at, 0.0)
    np.testing.assert_allclose(prediction[0, 0], 2.0 * expected_target)


def test_empty_inputs_give_empty_outputs():
    prediction, width = predict.predict_with_intervals(
        np.zeros((0, 7)), np.zeros((0, 7, 3)), 5, 1.0
    )
    assert prediction.shape == (0, 3) and width.shape == (0, 3)
    assert predict.extrapolate_anchored(np.zeros((0, 7)), np.zeros((0, 7, 2)), 5, 1.0).shape == (
        0,
        2,
    )
    empty = np.zeros((0, 24, 3, 3))
    out = predict.extrapolate_rotations(
        empty, empty, np.zeros(0), np.zeros(0), decay=0.8, max_speed=1, max_angle=1
    )
    assert out.shape == (0, 24, 3, 3)


@pytest.mark.parametrize(
    ("times", "values", "message"),
    [
        (np.zeros((2, 7)), np.zeros((2, 6, 1)), "expected times"),
        (np.zeros(7), np.zeros((1, 7, 1)), "expected times"),
        (np.zeros((1, 2)), np.zeros((1, 2, 1)), "at least 3"),
    ],
)
def test_fit_ridge_rejects_bad_shapes(times, values, message):
    with pytest.raises(ValueError, match=message):
        predict.fit_ridge(times, values, 1.0)


def test_anchored_extrapolation_starts_at_last_observation_and_is_linear():
    times = np.arange(7, dtype=float)[None]
    values = np.stack([3.0 * np.arange(7) + [0, 1, -1, 0, 2, -2, 1], np.full(7, 5.0)], axis=-1)[
        None
    ]
    at_last = predict.extrapolate_anchored(times, values, 6, 1.2)
    np.testing.assert_allclose(at_last[0], values[0, -1])
    steps = np.array([predict.extrapolate_anchored(times, values, 6 + k, 1.2)[0] for k in range(5)])
    np.testing.assert_allclose(np.diff(steps, n=2, axis=0), 0.0, atol=1e-12)
    assert np.all(np.diff(steps[:, 0]) > 2.0)  # follows the motion (3 per frame, shrunk)
    np.testing.assert_allclose(steps[:, 1], 5.0)


@pytest.mark.parametrize(
    ("steps", "decay", "expected"),
    [(0, 0.8, 0.0), (1, 0.8, 1.0), (2, 0.8, 1.8), (1000, 0.8, 5.0), (3, 1.0, 3.0), (4, 0.0, 1.0)],
)
def test_damped_steps(steps, decay, expected):
    np.testing.assert_allclose(predict.damped_steps(np.array(steps), decay), expected)


def random_rotations(rng, shape, scale):
    return (
        Rotation.from_rotvec(rng.normal(scale=scale, size=shape + (3,)).reshape(-1, 3))
        .as_matrix()
        .reshape(shape + (3, 3))
    )


def turning(seed, people, speed):
    """Random poses of ``people`` turning at a constant angular velocity: frame k's pose."""
    rng = np.random.default_rng(seed)
    start = random_rotations(rng, (people, 24), 0.5)
    omega = rng.normal(scale=speed, size=(people, 24, 3))

    def at(k):
        flat = Rotation.from_matrix(start.reshape(-1, 3, 3)) * Rotation.from_rotvec(
            k * omega.reshape(-1, 3)
        )
        return flat.as_matrix().reshape(people, 24, 3, 3)

    return at


def test_rotation_extrapolation_continues_a_constant_angular_velocity():
    at = turning(1, 2, 0.05)
    out = predict.extrapolate_rotations(
        at(0), at(2), np.array([2, 2]), np.array([3, 3]), decay=1.0, max_speed=1.0, max_angle=3.0
    )
    np.testing.assert_allclose(out, at(5), atol=1e-9)
    np.testing.assert_allclose(
        out @ np.swapaxes(out, -1, -2), np.broadcast_to(np.eye(3), out.shape), atol=1e-9
    )


def test_rotation_extrapolation_beats_repeating_the_last_pose_and_stays_bounded():
    at = turning(2, 1, 0.04)
    errors_extrapolated, errors_repeated, travelled = [], [], []
    for k in range(1, 40):
        out = predict.extrapolate_rotations(
            at(-1), at(0), np.array([1]), np.array([k]), decay=0.8, max_speed=0.35, max_angle=0.6
        )
        errors_extrapolated.append(np.linalg.norm(out - at(k)))
        errors_repeated.append(np.linalg.norm(at(0) - at(k)))
        delta = Rotation.from_matrix(at(0).reshape(-1, 3, 3)).inv() * Rotation.from_matrix(
            out.reshape(-1, 3, 3)
        )
        travelled.append(delta.magnitude().max())
    assert all(e < r for e, r in zip(errors_extrapolated[:5], errors_repeated[:5], strict=True))
    assert max(travelled) <= 0.6 + 1e-9
    assert np.all(np.diff(travelled) >= -1e-12)  # monotone, saturating: smooth
    assert travelled[-1] - travelled[-2] < 1e-3


@pytest.mark.parametrize(("speed_cap", "angle_cap", "expected"), [(0.1, 3.0, 0.1), (1.0, 0.2, 0.2)])
def test_rotation_extrapolation_caps(speed_cap, angle_cap, expected):
    last = np.eye(3)[None, None]
    previous = Rotation.from_rotvec([0.0, 0.0, -0.5]).as_matrix()[None, None]
    out = predict.extrapolate_rotations(
        previous,
        last,
        np.array([1]),
        np.array([1]),
        decay=1.0,
        max_speed=speed_cap,
        max_angle=angle_cap,
    )
    np.testing.assert_allclose(
        Rotation.from_matrix(out[0, 0]).as_rotvec(), [0, 0, expected], atol=1e-9
    )


@pytest.mark.parametrize("dof", [*range(1, 40), 99, 100, 1000])
@pytest.mark.parametrize("coverage", [0.5, 0.9, predict.CONFIDENCE, 0.999])
def test_student_t_quantile_is_scipys(dof, coverage):
    expected = stats.t.ppf(0.5 + coverage / 2.0, dof)
    assert predict.student_t_quantile(coverage, dof) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("coverage", "dof"), [(0.0, 3), (1.0, 3), (0.95, 0)])
def test_student_t_quantile_rejects_what_has_none(coverage, dof):
    with pytest.raises(ValueError, match="coverage"):
        predict.student_t_quantile(coverage, dof)

"""Where a track will be: PHALP's ridge-regression predictor and pose extrapolation.

PHALP predicts each track's location for the frame being matched by fitting,
per coordinate, a ridge regression ``value ~ a + b * time`` over the track's
last ``track_history`` observations (x: alpha 1.2, y: alpha 2.0, log-depth:
alpha 5.0), and gives the 95 % prediction interval of that fit; the interval
widths loosen or tighten the location terms of the association cost.

Facts of the original kept here (``phalp/trackers/PHALP.py``,
``forward_for_tracking``; ``phalp/utils/utils.py``, ``get_prediction_interval``):

* The fit is scikit-learn's ``Ridge(alpha)`` on ``[1, t]`` with an intercept:
  the intercept is free and only the slope is shrunk,
  ``b = S_ty / (S_tt + alpha)``, ``a = mean(v) - b * mean(t)``.
* The interval is ``t_{0.975, n-2} * s * sqrt(1 + 1/n + (t* - mean t)^2 / S_tt)``
  with ``s^2 = sum(residual^2) / (n - 2)``.
* A new track's history is padded with copies of its first observation, and
  the widths are divided by ``1 + (number of repeated times)``: young tracks get
  tight intervals (:func:`interval_divisor`).
* The prediction looks at most 49 frames past the last observation
  (the original caps the gap at 48, then adds one).

One deviation: the original stores the log-depth width as
``exp(width) / divisor`` in a slot meant for a depth and later takes
``|log|`` of it, so its ``c_n`` is ``|width - log(divisor)|`` (loose for young
tracks, a side effect of the encoding); here every width, log-depth included,
is divided by the divisor, which is what the x and y widths get.

With a single distinct time the interval is undefined (the original computes
``0 * inf = NaN`` there and its cost then turns NaN into 0); here it is
``inf``: an unbounded interval, which the cost maps to its loosest setting.

For frames where a confirmed track is not detected the service also needs a
body: :func:`extrapolate_rotations` continues each joint's last relative
rotation as a damped, bounded angular velocity in SO(3), and
:func:`extrapolate_anchored` moves boxes and cameras from their last observed
value along the ridge slope, so predicted outputs start where the detections
ended (no jump) and move smoothly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tracker_service.tracking.rotation import orthonormalise, so3_exp, so3_log

#: PHALP's ridge penalties for the x coordinate, the y coordinate and log-depth.
ALPHA_X = 1.2
ALPHA_Y = 2.0
ALPHA_DEPTH = 5.0
#: PHALP predicts at most this many frames past a track's last observation.
MAX_HORIZON = 49
#: Coverage of the prediction interval.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class RidgeFit:
    """Per-track, per-feature ridge lines ``value = mean_value + slope * (t - mean_time)``.

    Attributes:
        mean_time: ``(T,)`` mean observation time of each track.
        mean_value: ``(T, F)`` mean of each feature.
        slope: ``(T, F)`` shrunk slope, in feature units per frame.
        residual_std: ``(T, F)`` standard error of the residuals (``n - 2`` degrees of freedom).
        time_spread: ``(T,)`` ``S_tt``, the sum of squared time deviations.
        n: Number of observations per track.

    """

    mean_time: np.ndarray
    mean_value: np.ndarray
    slope: np.ndarray
    residual_std: np.ndarray
    time_spread: np.ndarray
    n: int

    def predict(self, at: np.ndarray) -> np.ndarray:
        """``(T, F)`` values of the lines at times ``at`` ``(T,)``."""
        return self.mean_value + self.slope * (at - self.mean_time)[:, None]

    def half_width(self, at: np.ndarray, confidence: float = CONFIDENCE) -> np.ndarray:
        """``(T, F)`` half-widths of the prediction intervals at times ``at`` ``(T,)``.

        ``inf`` where a track has a single distinct observation time.
        """
        quantile = student_t_quantile(confidence, self.n - 2)
        spread = self.time_spread
        degenerate = spread <= 0.0
        leverage = np.divide(
            (at - self.mean_time) ** 2,
            spread,
            out=np.zeros_like(spread),
            where=~degenerate,
        )
        width = quantile * self.residual_std * np.sqrt(1.0 + 1.0 / self.n + leverage)[:, None]
        width[degenerate] = np.inf
        return width


def student_t_quantile(coverage: float, dof: int) -> float:
    """Student's t quantile ``t`` with ``P(|T| <= t) = coverage``, for ``dof >= 1`` (integer).

    Solves the closed form of the two-sided probability for an integer ``dof``
    (Abramowitz and Stegun 26.7.3 and 26.7.4, in ``theta = atan(t / sqrt(dof))``) by
    bisection to machine precision; equal to SciPy's ``stats.t.ppf(0.5 + coverage / 2,
    dof)`` to 1e-12 (tested).

    Raises:
        ValueError: If ``coverage`` is not in ``(0, 1)`` or ``dof < 1``.

    """
    if not 0.0 < coverage < 1.0 or dof < 1:
        raise ValueError(f"need 0 < coverage < 1 and dof >= 1, got {coverage} and {dof}")

    def probability(theta: float) -> float:
        c, s = math.cos(theta), math.sin(theta)
        term, total = (c, c) if dof % 2 else (1.0, 1.0)
        for k in range(2 + dof % 2, dof - 1, 2):  # the series' later terms, c^k factors
            term *= c * c * (k - 1) / k
            total += term
        if dof % 2 == 0:
            return s * total
        return 2.0 / math.pi * (theta + (s * total if dof > 1 else 0.0))

    low, high = 0.0, math.pi / 2.0
    while True:
        middle = (low + high) / 2.0
        if middle in (low, high):
            return math.sqrt(dof) * math.tan(middle)
        if probability(middle) < coverage:
            low = middle
        else:
            high = middle


def fit_ridge(times: np.ndarray, values: np.ndarray, alphas: np.ndarray | float) -> RidgeFit:
    """Fit one ridge line per track and feature, as scikit-learn's ``Ridge`` with intercept.

    Args:
        times: ``(T, n)`` observation times (frame indices), ``n >= 3``.
        values: ``(T, n, F)`` observed features; NaN propagates to that feature's fit.
        alphas: ``(F,)`` or scalar ridge penalties on the slope.

    Returns:
        The fitted lines; ``T = 0`` gives empty arrays.

    Raises:
        ValueError: If shapes disagree or ``n < 3``.

    """
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if times.ndim != 2 or values.ndim != 3 or values.shape[:2] != times.shape:
        raise ValueError(
            f"expected times (T, n) and values (T, n, F), got {times.shape} and {values.shape}"
        )
    n = times.shape[1]
    if n < 3:
        raise ValueError(f"a prediction interval needs at least 3 observations, got {n}")
    mean_time = times.mean(axis=1)
    dt = times - mean_time[:, None]
    time_spread = np.square(dt).sum(axis=1)
    mean_value = values.mean(axis=1)
    centred = values - mean_value[:, None, :]
    slope = np.einsum("tn,tnf->tf", dt, centred) / (time_spread[:, None] + alphas)
    residual = centred - slope[:, None, :] * dt[:, :, None]
    residual_std = np.sqrt(np.square(residual).sum(axis=1) / (n - 2))
    return RidgeFit(mean_time, mean_value, slope, residual_std, time_spread, n)


def interval_divisor(times: np.ndarray) -> np.ndarray:
    """``(T,)`` PHALP's divisor of the interval widths: 1 + repeated times in each history.

    Args:
        times: ``(T, n)`` observation times, padded with copies of the first one.

    """
    times = np.asarray(times, dtype=np.float64)
    return 1.0 + np.count_nonzero(np.diff(times, axis=1) == 0.0, axis=1)


def horizon_times(last_times: np.ndarray, at: float, max_horizon: int = MAX_HORIZON) -> np.ndarray:
    """``(T,)`` the time to predict at: ``at``, but at most ``max_horizon`` from ``last_times``.

    A time before the last observation (a late frame, associated read-only) is bounded
    the same way, ``max_horizon`` frames back.
    """
    last = np.asarray(last_times, dtype=np.float64)
    return np.clip(float(at), last - max_horizon, last + max_horizon)


def predict_with_intervals(
    times: np.ndarray,
    values: np.ndarray,
    at: float,
    alphas: np.ndarray | float,
    max_horizon: int = MAX_HORIZON,
) -> tuple[np.ndarray, np.ndarray]:
    """PHALP's location prediction: ridge value and shrunk interval half-width at ``at``.

    Args:
        times: ``(T, n)`` padded observation times (ascending along ``n``).
        values: ``(T, n, F)`` observed features.
        at: The frame to predict.
        alphas: ``(F,)`` or scalar ridge penalties.
        max_horizon: Furthest prediction past the last observation, in frames.

    Returns:
        ``(prediction, width)``, both ``(T, F)``; ``width`` is the 95 % half-width divided
        by :func:`interval_divisor` (``inf`` for a single distinct time).

    """
    fit = fit_ridge(times, values, alphas)
    target = horizon_times(np.asarray(times)[:, -1], at, max_horizon)
    width = fit.half_width(target) / interval_divisor(times)[:, None]
    return fit.predict(target), width


def extrapolate_anchored(
    times: np.ndarray,
    values: np.ndarray,
    at: float,
    alphas: np.ndarray | float,
    max_horizon: int = MAX_HORIZON,
) -> np.ndarray:
    """``(T, F)`` last observed values moved along the ridge slope up to frame ``at``.

    Continuous with the last observation (unlike the ridge line itself), linear
    in time, and frozen after ``max_horizon`` frames.

    Args:
        times: ``(T, n)`` observation times; the last column is the last observation.
        values: ``(T, n, F)`` observed features.
        at: The frame to predict.
        alphas: ``(F,)`` or scalar ridge penalties.
        max_horizon: Furthest extrapolation past the last observation, in frames.

    """
    fit = fit_ridge(times, values, alphas)
    last = np.asarray(times, dtype=np.float64)[:, -1]
    steps = horizon_times(last, at, max_horizon) - last
    return np.asarray(values, dtype=np.float64)[:, -1, :] + fit.slope * steps[:, None]


def damped_steps(steps: np.ndarray, decay: float) -> np.ndarray:
    """Distance covered in ``steps`` frames by a velocity multiplied by ``decay`` each frame.

    ``sum(decay ** i for i in range(steps))``: 1 after one frame, at most
    ``1 / (1 - decay)`` however long the gap.

    Args:
        steps: ``(...)`` non-negative frame counts.
        decay: Per-frame factor in ``[0, 1]``; 1 means no damping.

    """
    steps = np.asarray(steps, dtype=np.float64)
    if decay >= 1.0:
        return steps
    return (1.0 - decay**steps) / (1.0 - decay)


def _clip_norm(vectors: np.ndarray, limit: float) -> np.ndarray:
    """``vectors`` ``(..., 3)`` scaled down where their norm exceeds ``limit``."""
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors * np.minimum(1.0, limit / np.maximum(norm, 1e-12))


def extrapolate_rotations(
    previous: np.ndarray,
    last: np.ndarray,
    gap: np.ndarray,
    steps: np.ndarray,
    *,
    decay: float,
    max_speed: float,
    max_angle: float,
) -> np.ndarray:
    """Continue each joint's rotation at a damped, bounded constant angular velocity.

    The velocity is the relative rotation between the last two observations,
    ``log(previous^T last) / gap`` (radians per frame, in the joint's own
    frame), capped at ``max_speed``; it is integrated over ``steps`` frames
    with per-frame damping ``decay`` and the total rotation is capped at
    ``max_angle``: ``last @ exp(omega * damped_steps(steps))``.

    Args:
        previous: ``(T, J, 3, 3)`` rotations at the observation before the last.
        last: ``(T, J, 3, 3)`` rotations at the last observation.
        gap: ``(T,)`` frames between those two observations (> 0).
        steps: ``(T,)`` frames from the last observation to the predicted frame (>= 0).
        decay: Per-frame damping of the angular velocity, in ``[0, 1]``.
        max_speed: Largest angular speed used, radians per frame.
        max_angle: Largest total extrapolated rotation per joint, radians.

    Returns:
        ``(T, J, 3, 3)`` extrapolated rotation matrices (orthonormalised).

    """
    last = np.asarray(last, dtype=np.float64)
    shape = last.shape
    if shape[0] == 0:
        return last.copy()
    last = orthonormalise(last)
    speed = so3_log(orthonormalise(np.asarray(previous, dtype=np.float64)), last)
    speed = _clip_norm(speed / np.asarray(gap, dtype=np.float64)[:, None, None], max_speed)
    travel = damped_steps(steps, decay)[:, None, None]
    delta = _clip_norm(speed * travel, max_angle)
    return so3_exp(last, delta)

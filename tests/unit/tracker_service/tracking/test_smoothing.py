"""The live filters: One Euro on values and on SO(3), the per-track shape, the wrapper."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tracker_service.tracking import BodyPose, Detection, PhalpTracker, TrackerConfig
from tracker_service.tracking.smoothing import (
    LiveSmoother,
    SmoothedTracker,
    SmoothingConfig,
    one_euro,
    so3_exp,
    so3_log,
)

CONFIG = SmoothingConfig()


def run_values(samples: np.ndarray, config: SmoothingConfig = CONFIG) -> np.ndarray:
    state, out = None, []
    for frame, value in enumerate(samples):
        state = one_euro(state, np.atleast_1d(value).astype(float), frame, config)
        out.append(state.value.copy())
    return np.array(out)


def run_rotations(samples: np.ndarray) -> np.ndarray:
    state, out = None, []
    for frame, value in enumerate(samples):
        state = one_euro(state, value, frame, CONFIG)
        out.append(state.value)
    return np.array(out)


def angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(so3_log(a, b), axis=-1)


@pytest.mark.parametrize(
    ("field", "value"),
    [("min_cutoff", 0.0), ("beta", -1.0), ("derivative_cutoff", float("inf")), ("strength", 0)],
)
def test_invalid_config_raises(field, value):
    with pytest.raises(ValueError, match=field):
        SmoothingConfig(**{field: value})


def test_step_is_followed_quickly_with_little_overshoot():
    out = run_values(np.r_[np.zeros(20), np.ones(40)])[:, 0]
    assert np.all(out[:20] == 0.0)
    assert out[22] > 0.9  # the speed raises the cutoff: no long smear
    assert out.max() <= 1.05  # the trend overshoots a step a little
    assert np.all(np.abs(out[40:] - 1.0) < 0.01)


def test_ramp_is_followed_without_lag():
    slope = 0.05  # units per frame, like a limb swinging at 3 rad/s
    out = run_values(slope * np.arange(120))[:, 0]
    lag = (slope * np.arange(120) - out)[20:] / slope
    assert np.all(np.abs(lag) < 0.05)


def test_stillness_with_noise_is_smoothed_and_does_not_drift():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.01, 300)
    out = run_values(1.0 + noise)[:, 0]
    assert np.std(out[30:]) < 0.7 * np.std(noise)
    assert np.std(np.diff(out[30:], 2)) < 0.2 * np.std(np.diff(noise[30:], 2))  # jitter
    assert abs(np.mean(out[30:]) - 1.0) < 0.002


def test_still_pose_with_rotation_noise_is_smoothed_and_orthonormal():
    rng = np.random.default_rng(1)
    truth = Rotation.from_rotvec(rng.normal(0, 0.5, (24, 3))).as_matrix()
    noisy = np.stack([so3_exp(truth, rng.normal(0, np.radians(1), (24, 3))) for _ in range(200)])
    out = run_rotations(noisy)
    assert np.mean(angles(truth, out[30:])) < 0.7 * np.mean(angles(truth, noisy[30:]))

    def jitter(r: np.ndarray) -> float:  # mean angular acceleration
        return np.linalg.norm(so3_log(r[1:-1], r[2:]) - so3_log(r[:-2], r[1:-1]), axis=-1).mean()

    assert jitter(out[30:]) < 0.2 * jitter(noisy[30:])
    eye = np.broadcast_to(np.eye(3), out.shape)
    np.testing.assert_allclose(out @ np.swapaxes(out, -1, -2), eye, atol=1e-9)


def test_turn_through_180_degrees_across_the_quaternion_sign_flip():
    step = np.radians(6.0)  # a full turn in 60 frames: w of the quaternion changes sign at 180
    yaw = step * np.arange(90)
    truth = Rotation.from_euler("y", yaw[:, None]).as_matrix()[:, None]
    quaternions = Rotation.from_matrix(truth[:, 0]).as_quat()
    assert np.any(np.diff(np.sign(quaternions[:, 3])) != 0)  # the canonical sign flips
    out = run_rotations(truth)
    moved = angles(out[:-1], out[1:])[:, 0]
    assert moved.max() <= 2.0 * step  # never the long way round, no jump
    lag = angles(out, truth)[20:, 0] / step
    assert lag.max() < 0.05


def posed(seed: int, x: float) -> Detection:
    rng = np.random.default_rng(seed)
    return Detection(
        box=[x, 100.0, x + 60.0, 260.0],
        score=0.9,
        appearance=[1.0, 0.0, 0.0],
        pose=BodyPose.from_rotations(
            Rotation.from_rotvec(rng.normal(0, 0.05, (24, 3))).as_matrix(),
            rng.normal(0, 0.3, 10),
        ),
        camera=[0.0, 0.0, 10.0 + 0.01 * rng.normal()],
        root_2d=[x + 30.0, 180.0],
    )


def test_no_tracks_and_one_track():
    smoother = LiveSmoother()
    assert smoother.smooth([], 0) == []
    tracker = SmoothedTracker(PhalpTracker(TrackerConfig(n_init=2)), LiveSmoother())
    first = tracker.update([posed(0, 100.0)], 0, image_size=(480, 640))
    assert len(first) == 1 and not first[0].smoothed  # nothing to smooth yet
    outputs = [tracker.update([posed(f, 100.0 + f)], f, image_size=(480, 640)) for f in (1, 2, 3)]
    assert all(len(o) == 1 and o[0].smoothed and o[0].detected for o in outputs)
    # One shape per track: the score-weighted mean of the detections' betas.
    expected = np.mean([posed(f, 0.0).pose.betas for f in range(4)], axis=0)
    np.testing.assert_allclose(outputs[-1][0].pose.betas, expected)
    tracker.reset()
    again = tracker.update([posed(9, 100.0)], 0, image_size=(480, 640))
    assert again[0].track_id == 1 and not again[0].smoothed


@pytest.mark.parametrize("gap", [1, TrackerConfig().max_age])
def test_a_gap_starts_and_ends_without_a_jump(gap):
    tracker = SmoothedTracker(PhalpTracker(TrackerConfig()), LiveSmoother())
    centres, flags = [], []
    for frame in range(20 + gap + 20):
        hidden = 20 <= frame < 20 + gap
        detections = [] if hidden else [posed(frame, 100.0 + 4.0 * frame)]
        (out,) = tracker.update(detections, frame, image_size=(480, 640))
        centres.append((out.box[0] + out.box[2]) / 2.0)
        flags.append(out.detected)
    assert flags.count(False) == gap
    steps = np.abs(np.diff(centres))
    assert steps.max() <= 2.25 * 4.0  # the detections move 4 px a frame

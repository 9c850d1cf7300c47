"""The offline pass: backfill, interpolation, zero-lag smoothing, stitching, renumbering."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tracker_service.tracking import (
    BodyPose,
    Detection,
    PhalpTracker,
    TrackerConfig,
    TrackOutput,
    TrackState,
)
from tracker_service.tracking.offline import OfflineConfig, refine_video
from tracker_service.tracking.smoothing import so3_log

IMAGE = (480, 640)


def box_at(x: float, y: float = 100.0, h: float = 160.0) -> np.ndarray:
    return np.array([x, y, x + h / 2.0, y + h])


def body(yaw: float, betas: np.ndarray | None = None) -> BodyPose:
    rotations = np.tile(np.eye(3), (24, 1, 1))
    rotations[0] = Rotation.from_euler("y", yaw).as_matrix()
    return BodyPose.from_rotations(rotations, np.zeros(10) if betas is None else betas)


def run(detections_per_frame: list[list[Detection]], **config) -> list[list[TrackOutput]]:
    tracker = PhalpTracker(TrackerConfig(**config))
    return [tracker.update(d, f, image_size=IMAGE) for f, d in enumerate(detections_per_frame)]


def walker(frames: range, hidden: set[int] = frozenset(), speed: float = 4.0, **fields):
    return [
        [] if f in hidden else [Detection(box=box_at(50.0 + speed * f), score=0.9, **fields)]
        for f in frames
    ]


@pytest.mark.parametrize(
    ("field", "value"), [("window", -1), ("sigma", 0.0), ("max_stitch_gap", 1.5)]
)
def test_invalid_config_raises(field, value):
    with pytest.raises(ValueError, match=field):
        OfflineConfig(**{field: value})


def test_no_frames_and_no_tracks():
    assert refine_video([]) == []
    assert refine_video([[], [], []]) == [[], [], []]


def test_one_track_is_backfilled_and_unconfirmed_ones_dropped():
    frames = walker(range(30))
    frames[2].append(Detection(box=box_at(500.0, 300.0, 80.0), score=0.9))  # a one-frame ghost
    online = run(frames)
    assert online[0][0].state is TrackState.TENTATIVE
    refined = refine_video(online)
    assert len(refined) == 30
    assert all(len(f) == 1 and f[0].track_id == 1 for f in refined)
    assert all(f[0].state is TrackState.CONFIRMED and f[0].detected for f in refined)
    assert [f[0].detection_index for f in refined] == [0] * 30
    # A steady walk is already smooth: the zero-lag fit leaves it where it is.
    np.testing.assert_allclose(refined[0][0].box, online[0][0].box, atol=1e-6)


@pytest.mark.parametrize("gap", [1, TrackerConfig().max_age])
def test_gaps_are_interpolated_between_observations(gap):
    hidden = set(range(15, 15 + gap))
    online = run(walker(range(15 + gap + 15), hidden))
    refined = refine_video(online)
    for f in hidden:
        (out,) = refined[f]
        assert not out.detected and out.interpolated and out.detection_index is None
        assert out.frames_since_seen == f - 14
        np.testing.assert_allclose(out.box, box_at(50.0 + 4.0 * f), atol=1e-6)  # on the line
    assert all(not o.interpolated for f in refined if f for o in f if o.detected)


def test_frames_after_the_last_observation_stay_predicted_and_continue_the_smoothed_track():
    online = run(walker(range(40), hidden=set(range(30, 40))))
    refined = refine_video(online)
    tail = [f[0] for f in refined[30:]]
    assert all(not o.detected and not o.interpolated for o in tail)
    assert tail[0].frames_since_seen == 1
    last = refined[29][0].box
    assert np.abs(tail[0].box - last).max() < 2 * 4.0  # no jump from the last observation


def test_smoothing_removes_noise_and_outliers_without_lag():
    rng = np.random.default_rng(0)
    truth = [box_at(50.0 + 3.0 * f) for f in range(80)]
    noisy = [b + rng.normal(0, 3.0, 4) for b in truth]
    noisy[40] = noisy[40] + [40.0, 0.0, 40.0, 0.0]  # one outlier
    online = run([[Detection(box=b, score=0.9)] for b in noisy])
    refined = refine_video(online)
    error_raw = np.abs(np.array(noisy) - truth).mean()
    boxes = np.array([f[0].box for f in refined])
    assert np.abs(boxes - truth).mean() < 0.5 * error_raw
    assert np.abs(boxes[40] - truth[40]).max() < 6.0  # the outlier barely counts
    assert np.abs((boxes - truth).mean(axis=0)).max() < 1.5  # a lag of 1 frame would be 3 px
    assert all(f[0].smoothed for f in refined)
    off = refine_video(online, OfflineConfig(window=0))
    assert not any(f[0].smoothed for f in off)


def test_rotations_are_smoothed_on_so3_and_slerped_in_gaps():
    rng = np.random.default_rng(1)
    step = np.radians(5.0)  # one turn and more, across the quaternion sign flip
    hidden = set(range(40, 46))
    frames = [
        []
        if f in hidden
        else [Detection(box=box_at(100.0), score=0.9, pose=body(step * f + rng.normal(0, 0.02)))]
        for f in range(90)
    ]
    refined = refine_video(run(frames))
    yaw = [Rotation.from_euler("y", step * f).as_matrix() for f in range(90)]
    errors = np.array(
        [np.linalg.norm(so3_log(yaw[f], refined[f][0].pose.global_orient[0])) for f in range(90)]
    )
    assert errors.mean() < 0.01
    assert all(refined[f][0].interpolated for f in hidden)
    assert errors[sorted(hidden)].max() < 0.02


def test_shape_is_one_per_track():
    rng = np.random.default_rng(2)
    shapes = rng.normal(0, 0.2, (30, 10))
    frames = [
        [Detection(box=box_at(50.0 + 4.0 * f), score=0.9, pose=body(0.0, shapes[f]))]
        for f in range(30)
    ]
    refined = refine_video(run(frames))
    betas = np.array([f[0].pose.betas for f in refined])
    np.testing.assert_allclose(betas, np.tile(shapes.mean(axis=0), (30, 1)))


def test_a_track_that_ends_and_one_that_starts_where_it_would_be_are_stitched():
    # The walker vanishes for longer than max_age, so the tracker starts a second identity.
    hidden = set(range(20, 40))
    frames = walker(range(70), hidden)
    frames = [
        f + [Detection(box=box_at(550.0, 300.0, 100.0), score=0.9)] for f in frames
    ]  # a stander
    online = run(frames, max_age=10)
    assert len({o.track_id for f in online for o in f}) == 3
    refined = refine_video(online)
    ids = [sorted(o.track_id for o in f) for f in refined]
    assert all(i == [1, 2] for i in ids)  # renumbered in order of appearance
    walker_outputs = [next(o for o in f if o.box[1] < 200) for f in refined]
    assert {o.track_id for o in walker_outputs} == {1}
    assert all(walker_outputs[f].interpolated for f in hidden)
    assert refine_video(online, OfflineConfig(max_stitch_gap=0))[50][0].track_id != 1


def test_tracks_that_disagree_are_not_stitched():
    early = walker(range(20))
    late = [[Detection(box=box_at(500.0, 250.0, 60.0), score=0.9)] for _ in range(30, 50)]
    online = run(early + [[] for _ in range(20, 30)] + late, max_age=5)
    refined = refine_video(online)
    assert {o.track_id for o in refined[10]} == {1}
    assert {o.track_id for o in refined[45]} == {2}

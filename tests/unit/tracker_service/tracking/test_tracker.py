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

SIZE = (720, 1280)  # height, width


def box_at(x: float, y: float = 360.0, h: float = 200.0) -> np.ndarray:
    return np.array([x - 0.2 * h, y - h / 2, x + 0.2 * h, y + h / 2])


def run(tracker: PhalpTracker, frames: dict[int, list[Detection]]) -> dict[int, list[TrackOutput]]:
    return {f: tracker.update(dets, f, image_size=SIZE) for f, dets in sorted(frames.items())}


# --- configuration and inputs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("track_history", 2),
        ("track_history", 7.0),
        ("max_age", -1),
        ("n_init", 0),
        ("n_init", True),
        ("max_horizon", 0),
        ("alpha", -0.1),
        ("alpha", 1.5),
        ("detection_threshold", 1.2),
        ("confidence_decay", -1.0),
        ("rotation_decay", 2.0),
        ("gate", 0.5),
        ("gate", float("nan")),
        ("betas", (1.0, 1.0, 1.0)),
        ("betas", (1.0, 1.0, 0.0, 1.0)),
        ("pose_distance_cap", 0.0),
        ("max_angular_speed", float("inf")),
        ("max_extrapolated_angle", -0.1),
    ],
)
def test_invalid_config_raises(field, value):
    with pytest.raises(ValueError, match=field):
        TrackerConfig(**{field: value})


def test_config_defaults_are_phalps():
    config = TrackerConfig()
    assert (config.track_history, config.max_age, config.n_init) == (7, 50, 5)
    assert (config.alpha, config.detection_threshold, config.gate) == (0.1, 0.8, 100.0)
    assert config.betas == (4.0536, 1.3070, 0.3792, 4.1658)
    with pytest.raises(TypeError):
        TrackerConfig(7)  # keyword-only


def body(rng=None) -> BodyPose:
    rng = rng or np.random.default_rng(0)
    rotations = Rotation.from_rotvec(rng.normal(scale=0.2, size=(24, 3))).as_matrix()
    return BodyPose.from_rotations(rotations, rng.normal(size=10))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"box": [0, 0, 10]}, r"box must have shape \(4\), got \(3,\)"),
        ({"box": [10, 0, 5, 10]}, "x2 > x1"),
        ({"box": [0, 0, 10, np.nan]}, "finite"),
        ({"score": 1.5}, r"score must lie in \[0, 1\]"),
        ({"appearance": np.zeros(8)}, "non-zero"),
        ({"appearance": np.ones((2, 4))}, r"appearance must have shape \(n\), got \(2, 4\)"),
        ({"camera": [0.0, 0.0, -1.0]}, "tz must be positive"),
        ({"camera": [0.0, 1.0]}, r"camera must have shape \(3\), got \(2,\)"),
        ({"root_2d": [1.0, 2.0, 3.0]}, r"root_2d must have shape \(2\), got \(3,\)"),
        ({"pose": "standing"}, "BodyPose"),
    ],
)
def test_invalid_detection_raises(kwargs, message):
    fields = {"box": [0, 0, 10, 20], "score": 0.9} | kwargs
    with pytest.raises(ValueError, match=message):
        Detection(**fields)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"global_orient": np.eye(3)}, r"global_orient must have shape \(1, 3, 3\), got \(3, 3\)"),
        ({"body_pose": np.zeros((24, 3, 3))}, r"body_pose must have shape \(23, 3, 3\)"),
        ({"betas": np.zeros(11)}, r"betas must have shape \(10\)"),
    ],
)
def test_invalid_body_raises(kwargs, message):
    fields = {
        "global_orient": np.eye(3)[None],
        "body_pose": np.zeros((23, 3, 3)),
        "betas": np.zeros(10),
    }
    with pytest.raises(ValueError, match=message):
        BodyPose(**(fields | kwargs))


def test_detection_copies_and_freezes_its_arrays():
    box = np.array([0.0, 0.0, 10.0, 20.0])
    detection = Detection(box=box, score=0.9)
    box[0] = 5.0
    assert detection.box[0] == 0.0
    with pytest.raises(ValueError):
        detection.box[0] = 1.0


# --- the loop, frame by frame -----------------------------------------------------------------


def test_track_is_confirmed_after_n_init_hits():
    tracker = PhalpTracker(TrackerConfig(n_init=5))
    states = []
    for f in range(7):
        (out,) = tracker.update([Detection(box=box_at(300 + 4 * f), score=0.9)], f, image_size=SIZE)
        states.append(out.state)
        assert out.track_id == 1 and out.detected and out.hits == f + 1 and out.age == f + 1
    assert states == [TrackState.TENTATIVE] * 4 + [TrackState.CONFIRMED] * 3


def test_tentative_track_is_deleted_on_its_first_miss():
    tracker = PhalpTracker()
    tracker.update([Detection(box=box_at(300), score=0.9)], 0, image_size=SIZE)
    tracker.update([Detection(box=box_at(304), score=0.9)], 1)
    assert tracker.update([], 2) == []
    (out,) = tracker.update([Detection(box=box_at(312), score=0.9)], 3)
    assert out.track_id == 2 and out.hits == 1


def test_confirmed_track_is_predicted_then_deleted_after_max_age():
    tracker = PhalpTracker(TrackerConfig(n_init=2, max_age=3))
    for f in range(3):
        tracker.update([Detection(box=box_at(300 + 5 * f), score=0.9)], f, image_size=SIZE)
    predicted = [tracker.update([], f) for f in range(3, 8)]
    assert [len(o) for o in predicted] == [1, 1, 1, 0, 0]
    for missed, (out,) in enumerate(predicted[:3], start=1):
        assert not out.detected and out.detection_index is None
        assert out.frames_since_seen == missed and out.state is TrackState.CONFIRMED


def test_predicted_outputs_are_flagged_smooth_and_decay_in_confidence():
    rng = np.random.default_rng(3)
    omega = np.zeros((24, 3))
    omega[5] = [0.0, 0.0, 0.05]  # one joint turning at a steady 0.05 rad per frame
    start = Rotation.from_rotvec(rng.normal(scale=0.3, size=(24, 3)))
    betas = rng.normal(size=10)

    def detection(f):
        rotations = (start * Rotation.from_rotvec(f * omega)).as_matrix()
        camera = np.array([0.5 + 0.02 * f, 0.1, 6.0])
        return Detection(
            box=box_at(700 + 4 * f),
            score=0.95,
            appearance=np.ones(16),
            pose=BodyPose.from_rotations(rotations, betas),
            camera=camera,
            root_2d=np.array([700 + 4 * f, 360.0]),
        )

    tracker = PhalpTracker()
    for f in range(10):
        tracker.update([detection(f)], f, image_size=SIZE)
    outs = [tracker.update([], f)[0] for f in range(10, 20)]
    assert all(not o.detected and o.track_id == 1 for o in outs)
    confidences = [o.confidence for o in outs]
    assert confidences[0] < 0.95 and np.all(np.diff(confidences) < 0) and confidences[-1] > 0

    centres = np.array([(o.box[0] + o.box[2]) / 2 for o in outs])
    np.testing.assert_allclose(np.diff(centres, n=2), 0.0, atol=1e-6)  # linear in time
    assert 3.0 < centres[0] - 736 < 5.0  # continues from the last detection (x = 736)
    cams = np.array([o.camera for o in outs])
    assert np.all(np.diff(cams[:, 0]) > 0) and np.allclose(cams[:, 2], 6.0, rtol=1e-3)

    angles = [Rotation.from_matrix(o.pose.rotations[5]).as_rotvec()[2] for o in outs]
    last = Rotation.from_rotvec(9 * omega[5]) * Rotation.from_matrix(start.as_matrix()[5])
    assert angles[0] != pytest.approx(last.as_rotvec()[2])  # extrapolated, not repeated
    steps = np.diff(np.unwrap(np.r_[last.as_rotvec()[2], angles]))
    assert np.all(steps > 0) and np.all(np.diff(steps) <= 1e-9)  # damped: smaller and smaller
    np.testing.assert_allclose(outs[0].pose.betas, betas)


def test_skipped_frame_indices_use_the_real_time_gap():
    tracker = PhalpTracker(TrackerConfig(n_init=3))
    speed = 12.0  # pixels per frame
    for f in range(8):
        tracker.update([Detection(box=box_at(200 + speed * f), score=0.9)], f, image_size=SIZE)
    (out,) = tracker.update([], 10)  # frames 8 and 9 were lost upstream
    assert out.frames_since_seen == 3 and out.age == 11
    np.testing.assert_allclose((out.box[0] + out.box[2]) / 2, 200 + speed * 10, rtol=0.02)
    (out,) = tracker.update([Detection(box=box_at(200 + speed * 14), score=0.9)], 14)
    assert out.track_id == 1 and out.detected and out.age == 15


def test_low_scores_are_ignored_and_indices_refer_to_the_input():
    tracker = PhalpTracker(TrackerConfig(detection_threshold=0.8))
    outs = tracker.update(
        [Detection(box=box_at(100), score=0.3), Detection(box=box_at(600), score=0.9)],
        0,
        image_size=SIZE,
    )
    assert [o.detection_index for o in outs] == [1]


def test_frame_index_and_image_size_are_checked():
    tracker = PhalpTracker()
    with pytest.raises(ValueError, match="image_size"):
        tracker.update([Detection(box=box_at(100), score=0.9)], 0)
    tracker.update([], 0)
    with pytest.raises(ValueError, match="increase"):
        tracker.update([], 0)
    with pytest.raises(ValueError, match="image_size"):
        tracker.update([], 1, image_size=(0, 640))
    with pytest.raises(ValueError, match="integer"):
        tracker.update([], 2.5)


def test_reset_and_per_instance_ids():
    first, second = PhalpTracker(), PhalpTracker()
    for tracker in (first, second):
        (out,) = tracker.update([Detection(box=box_at(100), score=0.9)], 5, image_size=SIZE)
        assert out.track_id == 1
    first.update([Detection(box=box_at(900), score=0.9)], 6)
    first.reset()
    (out,) = first.update([Detection(box=box_at(100), score=0.9)], 0, image_size=SIZE)
    assert out.track_id == 1


# --- identity on a synthetic multi-person sequence --------------------------------------------

FOCAL = 1000.0
HIDDEN = range(30, 46)


def make_walkers(rng: np.random.Generator, n_frames: int) -> list[dict]:
    """Four people, each with a path, depth, body, shape and appearance of their own.

    Walker 0 crosses walker 2 (frame 30) and walker 1 (about frame 50). Walker 1
    is hidden in HIDDEN, and turns back meanwhile: its location prediction misses.
    """
    shared = rng.normal(size=1280)  # embeddings of different people are alike, as ViT tokens are
    t = np.arange(n_frames)
    paths = [  # x0, vx (metres, per frame), depth z0, vz, height offset y, vx factor once hidden
        (-2.4, 0.06, 6.0, 0.00, 0.1, 1.0),
        (2.2, -0.06, 6.6, 0.00, 0.1, -0.4),
        (-1.0, 0.02, 4.5, -0.01, 0.2, 1.0),
        (3.0, -0.01, 7.5, 0.00, 0.05, 1.0),
    ]
    walkers = []
    for x0, vx, z0, vz, y, turn in paths:
        velocity = np.where(t < HIDDEN.start + 2, vx, vx * turn)
        x = x0 + np.concatenate([[0.0], np.cumsum(velocity[:-1])])
        walkers.append(
            {
                "position": np.stack([x, np.full(n_frames, y), z0 + vz * t], axis=1),
                "appearance": shared + 0.8 * rng.normal(size=1280),
                "body": rng.normal(scale=0.25, size=(23, 3)),
                "heading": np.pi / 2 * np.sign(vx),
                "betas": rng.normal(size=10),
                "phase": rng.uniform(0, 2 * np.pi),
            }
        )
    return walkers


def observe(rng: np.random.Generator, walker: dict, t: int) -> Detection:
    """A noisy HMR2-like detection: box, root, camera, body, embedding."""
    x, y, z = walker["position"][t]
    z *= 1 + rng.normal(scale=0.02)
    u, v = FOCAL * x / z + SIZE[1] / 2, FOCAL * y / z + SIZE[0] / 2
    h = FOCAL * 1.7 / z * (1 + rng.normal(scale=0.02))
    swing = 0.4 * np.sin(0.3 * t + walker["phase"])
    body = walker["body"] + rng.normal(scale=0.03, size=(23, 3))
    body[0, 0] += swing
    body[1, 0] -= swing
    orient = Rotation.from_rotvec([0.0, walker["heading"], 0.0]) * Rotation.from_rotvec(
        rng.normal(scale=0.03, size=3)
    )
    rotations = np.concatenate([orient.as_matrix()[None], Rotation.from_rotvec(body).as_matrix()])
    embedding = walker["appearance"] + 0.3 * rng.normal(size=1280)
    return Detection(
        box=np.array([u - 0.2 * h, v - h / 2, u + 0.2 * h, v + h / 2])
        + rng.normal(scale=2, size=4),
        score=float(rng.uniform(0.85, 1.0)),
        appearance=embedding / np.linalg.norm(embedding),
        pose=BodyPose.from_rotations(rotations, walker["betas"] + rng.normal(scale=0.05, size=10)),
        camera=np.array([x, y, z]),
        root_2d=np.array([u, v]) + rng.normal(scale=2.0, size=2),
    )


def run_walkers(seed: int, *, boxes_only: bool = False) -> tuple[dict[int, set[int]], int]:
    """Track the walkers; returns each walker's track ids and the predicted outputs while hidden."""
    rng = np.random.default_rng(seed)
    n_frames = 80
    walkers = make_walkers(rng, n_frames)
    tracker = PhalpTracker()
    identities: dict[int, set[int]] = {}
    predicted_while_hidden = 0
    for t in range(n_frames):
        who = [i for i in range(len(walkers)) if not (i == 1 and t in HIDDEN)]
        who = [who[k] for k in rng.permutation(len(who))]  # detections come in any order
        detections = [observe(rng, walkers[i], t) for i in who]
        if boxes_only:
            detections = [Detection(box=d.box, score=d.score) for d in detections]
        for out in tracker.update(detections, t, image_size=SIZE):
            if out.detected:
                identities.setdefault(who[out.detection_index], set()).add(out.track_id)
            elif t in HIDDEN:
                predicted_while_hidden += 1
    return identities, predicted_while_hidden


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_identity_switch_when_people_cross_and_one_is_occluded(seed):
    identities, predicted_while_hidden = run_walkers(seed)
    assert all(len(ids) == 1 for ids in identities.values()), identities
    assert len(set.union(*identities.values())) == 4
    assert predicted_while_hidden == len(HIDDEN)


def test_boxes_alone_lose_the_walker_that_turned_while_hidden():
    identities, _ = run_walkers(0, boxes_only=True)
    assert len(identities[1]) > 1  # the 3D cues, not the boxes, carried its identity above


# --- late frames: read-only association --------------------------------------------------------


def test_late_frames_are_associated_to_their_tracks_without_changing_them():
    rng = np.random.default_rng(0)
    walkers = make_walkers(rng, 81)
    frames = [[observe(rng, w, t) for w in walkers] for t in range(81)]
    late = (30, 52, 71)  # arrive after frame 79 was tracked: up to 49 frames back
    tracker, twin = PhalpTracker(), PhalpTracker()
    for t in range(80):
        if t not in late:
            outputs = tracker.update(frames[t], t, image_size=SIZE)
            twin.update(frames[t], t, image_size=SIZE)
    identity = {o.detection_index: o.track_id for o in outputs}
    assert len(set(identity.values())) == 4

    for t in late:
        associated = tracker.associate(frames[t], t)
        assert all(o.detected for o in associated)
        assert {o.detection_index: o.track_id for o in associated} == identity, t
    (alone,) = [o for o in tracker.associate(frames[30][:1], 30) if o.detected]
    assert alone.track_id == identity[0]
    predicted = [o for o in tracker.associate(frames[30][:1], 30) if not o.detected]
    assert len(predicted) == 3 and all(o.frames_since_seen == 49 for o in predicted)
    assert all(0.0 < o.confidence <= 1.0 and o.pose is not None for o in predicted)

    after, untouched = (
        trk.update(frames[80], 80, image_size=SIZE) for trk in (tracker, twin)
    )
    assert [(o.track_id, o.hits, o.detection_index) for o in after] == [
        (o.track_id, o.hits, o.detection_index) for o in untouched
    ]
    np.testing.assert_array_equal([o.box for o in after], [o.box for o in untouched])


def test_association_before_any_track_is_empty():
    tracker = PhalpTracker()
    assert tracker.associate([Detection(box=box_at(300), score=0.9)], 5) == []
    tracker.update([Detection(box=box_at(300), score=0.9)], 6, image_size=SIZE)
    (out,) = tracker.associate([Detection(box=box_at(302), score=0.9)], 5)
    assert out.track_id == 1 and out.detected and out.age == 1 and out.hits == 1


def test_a_late_frame_of_a_track_that_has_ended_keeps_its_identity():
    tracker = PhalpTracker()
    tracker.update([Detection(box=box_at(300), score=0.9)], 0, image_size=SIZE)
    tracker.update([Detection(box=box_at(304), score=0.9)], 1)
    assert tracker.update([], 40) == []  # tentative, missed after a gap: deleted
    (late,) = tracker.associate([Detection(box=box_at(308), score=0.9)], 2)
    assert late.track_id == 1 and late.detected and late.state is TrackState.DELETED
    assert tracker.associate([], 2) == []  # an ended track is never predicted
    (new,) = tracker.update([Detection(box=box_at(600), score=0.9)], 41)
    assert new.track_id == 2

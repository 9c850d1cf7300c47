import numpy as np
import pytest

from tracker_service.geometry import (
    box_iou,
    cam_crop_to_full,
    cam_full_to_crop,
    focal_length,
    joint_angles,
    project,
)
from tracker_service.skeleton import LEGACY_ANGLES, SMPL_JOINT_NAMES, SMPL_PARENTS


def test_focal_length_is_hmr2s():
    assert focal_length(1920, 1088) == pytest.approx(5000 / 256 * 1920)
    assert focal_length(480, 640) == pytest.approx(5000 / 256 * 640)


def official_cam_crop_to_full(cam, center, size, img_wh, focal):
    """A line-by-line transcription of 4D-Humans' ``cam_crop_to_full`` (README formulas)."""
    w_2, h_2 = img_wh[0] / 2.0, img_wh[1] / 2.0
    bs = size * cam[0] + 1e-9
    tz = 2 * focal / bs
    tx = (2 * (center[0] - w_2) / bs) + cam[1]
    ty = (2 * (center[1] - h_2) / bs) + cam[2]
    return np.array([tx, ty, tz])


@pytest.mark.parametrize(
    ("cam", "center", "size", "img_wh"),
    [
        ((0.9, 0.05, -0.05), (960, 544), 600.0, (1920, 1088)),  # centred
        ((2.18, 0.63, -1.39), (100, 700), 250.0, (1920, 1088)),  # off-centre
        ((1.2, 0.0, 0.0), (300, 200), 80.0, (384, 288)),
    ],
)
def test_cam_crop_to_full_matches_the_official_formula(cam, center, size, img_wh):
    focal = focal_length(*img_wh)
    got = cam_crop_to_full(np.array([cam]), np.array([center]), np.array([size]), img_wh, focal)
    np.testing.assert_allclose(got[0], official_cam_crop_to_full(cam, center, size, img_wh, focal))


def test_cam_full_to_crop_inverts_cam_crop_to_full():
    rng = np.random.default_rng(0)
    crop = np.column_stack([rng.uniform(0.3, 3, 20), rng.normal(0, 0.3, (20, 2))])
    centers = rng.uniform(0, 640, (20, 2))
    sizes = rng.uniform(30, 600, 20)
    focal = focal_length(640, 480)
    full = cam_crop_to_full(crop, centers, sizes, (640, 480), focal)
    np.testing.assert_allclose(
        cam_full_to_crop(full, centers, sizes, (640, 480), focal), crop, rtol=1e-9, atol=1e-9
    )


def test_projection_of_the_body_centre_lands_on_the_crop_centre():
    # HMR2's full camera places the crop camera's origin at the box centre (tx = ty = 0).
    focal = focal_length(1920, 1088)
    full = cam_crop_to_full(
        np.array([[1.1, 0.0, 0.0]]), np.array([[400.0, 300.0]]), np.array([500.0]),
        (1920, 1088), focal,
    )
    pixel = project(np.zeros((1, 1, 3)), full, focal, (1920, 1088))
    np.testing.assert_allclose(pixel[0, 0], [400.0, 300.0], atol=1e-6)


def test_projection_is_a_pinhole_with_the_principal_point_at_the_centre():
    points = np.array([[[0.0, 0.0, 0.0], [1.0, -0.5, 0.0], [0.0, 0.0, 5.0]]])
    pixels = project(points, np.array([[0.0, 0.0, 5.0]]), 1000.0, (640, 480))
    np.testing.assert_allclose(pixels[0], [[320, 240], [520, 140], [320, 240]])


def test_projection_handles_no_bodies():
    assert project(np.zeros((0, 24, 3)), np.zeros((0, 3)), 500.0, (64, 48)).shape == (0, 24, 2)
    assert cam_crop_to_full(np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0), (64, 48), 1).shape \
        == (0, 3)
    assert cam_full_to_crop(np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0), (64, 48), 1).shape \
        == (0, 3)


def _straight_body() -> np.ndarray:
    """24 joints: legs straight down, arms straight out: knees and elbows at 180 degrees."""
    joints = np.zeros((24, 3))
    named = dict(zip(SMPL_JOINT_NAMES, range(24), strict=True))
    for side, x in (("left", 0.1), ("right", -0.1)):
        joints[named[f"{side}_hip"]] = (x, 0.0, 0)
        joints[named[f"{side}_knee"]] = (x, -0.4, 0)
        joints[named[f"{side}_ankle"]] = (x, -0.8, 0)
        joints[named[f"{side}_shoulder"]] = (2 * x, 0.5, 0)
        joints[named[f"{side}_elbow"]] = (4 * x, 0.5, 0)
        joints[named[f"{side}_wrist"]] = (6 * x, 0.5, 0)
    joints[named["spine1"]] = (0, 0.1, 0)
    joints[named["spine2"]] = (0, 0.3, 0)
    joints[named["neck"]] = (0, 0.5, 0)
    return joints


def test_joint_angles_of_a_straight_body():
    angles = joint_angles(_straight_body()[None], LEGACY_ANGLES)
    assert set(angles) == set(LEGACY_ANGLES)
    for name in ("left_knee", "right_knee", "left_elbow", "right_elbow", "spine"):
        assert angles[name][0] == pytest.approx(180.0), name
    for name in ("left_shoulder", "right_shoulder"):  # neck - shoulder - elbow: a straight line
        assert angles[name][0] == pytest.approx(180.0), name
    # spine1 (0, 0.1) - hip (0.1, 0) - knee (0.1, -0.4): 135 degrees.
    assert angles["left_hip"][0] == pytest.approx(135.0)


def test_a_bent_knee_is_ninety_degrees_and_angles_are_vectorized():
    bent = _straight_body()
    bent[SMPL_JOINT_NAMES.index("left_ankle")] = (0.1, -0.4, 0.4)
    angles = joint_angles(np.stack([_straight_body(), bent]), LEGACY_ANGLES)
    np.testing.assert_allclose(angles["left_knee"], [180.0, 90.0])
    np.testing.assert_allclose(angles["right_knee"], [180.0, 180.0])


def test_joint_angles_handle_no_bodies_and_degenerate_segments():
    assert joint_angles(np.zeros((0, 24, 3)), LEGACY_ANGLES)["spine"].shape == (0,)
    assert joint_angles(np.zeros((1, 24, 3)), LEGACY_ANGLES)["spine"][0] == 0.0


def test_joint_angles_do_not_change_their_input():
    joints = _straight_body()[None]
    before = joints.copy()
    joint_angles(joints, LEGACY_ANGLES)
    np.testing.assert_array_equal(joints, before)


def test_skeleton_tables_agree():
    assert len(SMPL_JOINT_NAMES) == len(SMPL_PARENTS) == 24
    assert SMPL_PARENTS[0] == -1 and all(p < j for j, p in enumerate(SMPL_PARENTS))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([[0, 0, 10, 10]], [[0, 0, 10, 10]], [[1.0]]),
        ([[0, 0, 10, 10]], [[5, 0, 15, 10]], [[50 / 150]]),
        ([[0, 0, 10, 10]], [[20, 20, 30, 30], [0, 0, 5, 10]], [[0.0, 0.5]]),
        ([[0, 0, 0, 0]], [[0, 0, 0, 0]], [[0.0]]),
        (np.zeros((0, 4)), [[0, 0, 1, 1]], np.zeros((0, 1))),
    ],
)
def test_box_iou(a, b, expected):
    np.testing.assert_allclose(box_iou(np.array(a), np.array(b)), expected)

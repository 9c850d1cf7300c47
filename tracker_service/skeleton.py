"""The SMPL skeleton: joint names, parents, and the joint triples of the legacy angles."""

from __future__ import annotations

#: The 24 SMPL joints, in SMPL order, named as the legacy API answers them.
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip

#: Parent of each SMPL joint in the kinematic tree (-1 for the root).
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)  # fmt: skip

_J = {name: index for index, name in enumerate(SMPL_JOINT_NAMES)}


def _triple(a: str, b: str, c: str) -> tuple[int, int, int]:
    return _J[a], _J[b], _J[c]


#: ``joint_angles_3d`` of the legacy answer: name -> (a, b, c), the angle is taken at b.
LEGACY_ANGLES: dict[str, tuple[int, int, int]] = {
    "left_knee": _triple("left_hip", "left_knee", "left_ankle"),
    "right_knee": _triple("right_hip", "right_knee", "right_ankle"),
    "left_hip": _triple("spine1", "left_hip", "left_knee"),
    "right_hip": _triple("spine1", "right_hip", "right_knee"),
    "left_elbow": _triple("left_shoulder", "left_elbow", "left_wrist"),
    "right_elbow": _triple("right_shoulder", "right_elbow", "right_wrist"),
    "left_shoulder": _triple("neck", "left_shoulder", "left_elbow"),
    "right_shoulder": _triple("neck", "right_shoulder", "right_elbow"),
    "spine": _triple("pelvis", "spine2", "neck"),
}

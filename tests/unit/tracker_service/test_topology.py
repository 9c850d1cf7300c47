import numpy as np
import pytest

from tracker_service.geometry import focal_length
from tracker_service.legacy import FrameInfo, build_answer
from tracker_service.model_spec import SMPL_FACES, SMPL_JOINTS, SMPL_VERTICES
from tracker_service.render import draw
from tracker_service.topology import BodyTopology, load_topology, smpl_topology
from tracker_service.values import Body

FACES = np.random.default_rng(0).integers(0, SMPL_VERTICES, (SMPL_FACES, 3))


def test_smpl_topology_carries_the_mesh_and_skeleton():
    smpl = smpl_topology(FACES)
    assert (smpl.vertex_count, smpl.joint_count, smpl.faces.shape) == (
        SMPL_VERTICES, SMPL_JOINTS, (SMPL_FACES, 3)
    )
    assert smpl.faces.dtype == np.int32 and smpl.faces.flags.c_contiguous
    assert smpl.bones.shape == (SMPL_JOINTS - 1, 2)
    assert all(parent < joint for joint, parent in smpl.bones)


def test_load_topology_reads_the_triangles_file(tmp_path):
    np.save(tmp_path / "faces.npy", FACES.astype(np.int64))
    np.testing.assert_array_equal(load_topology(tmp_path / "faces.npy").faces, FACES)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"faces": np.zeros((4, 2), int)}, r"\(F, 3\) integers"),
        ({"faces": np.zeros((4, 3))}, r"\(F, 3\) integers"),
        ({"faces": np.full((1, 3), 3)}, r"vertices 0\.\.2"),
        ({"joint_parents": (-1, 0)}, "expected 3 joint parents"),
        ({"joint_parents": (-1, 2, 0)}, "before it"),
        ({"angles": {"knee": (0, 1, 3)}}, r"indices 0\.\.2"),
    ],
)
def test_an_inconsistent_topology_is_refused(change, message):
    values = {
        "name": "toy", "vertex_count": 3, "faces": np.array([[0, 1, 2]]),
        "joint_names": ("root", "a", "b"), "joint_parents": (-1, 0, 1),
        "angles": {"knee": (0, 1, 2)},
    }  # fmt: skip
    with pytest.raises(ValueError, match=message):
        BodyTopology(**{**values, **change})


def test_a_second_body_model_is_one_topology_value():
    """A toy body (4 vertices, 3 joints): the answer and the drawing follow its topology."""
    toy = BodyTopology(
        name="toy", vertex_count=4, faces=np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]]),
        joint_names=("root", "knee", "ankle"), joint_parents=(-1, 0, 1),
        angles={"knee": (0, 1, 2)},
    )  # fmt: skip
    body = Body(
        track_id=1, detected=True, box=np.array([100.0, 100.0, 200.0, 300.0]), confidence=0.9,
        camera=np.array([0.0, 0.0, 10.0]), crop_camera=np.array([1.0, 0.0, 0.0]),
        joints=np.array([[0.0, 0.0, 0.0], [0.0, 0.4, 0.0], [0.3, 0.8, 0.0]]),
        vertices=np.array([[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]),
    )  # fmt: skip
    info = FrameInfo(frame_number=0, width=320, height=240, focal=focal_length(320, 240),
                     session_id="s", model_version="m", tracked=True)  # fmt: skip
    answer = build_answer(info, toy, [body], 0)
    assert [k["name"] for k in answer["keypoints"]] == ["root", "knee", "ankle"]
    assert list(answer["joint_angles_3d"]) == ["knee"]
    assert answer["joint_angles_3d"]["knee"] != 0.0
    frame = np.zeros((240, 320, 3), np.uint8)
    assert draw(frame, [body], 0, info.focal, toy).any()

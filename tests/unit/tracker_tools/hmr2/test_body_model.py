"""The SMPL file loader, the stand-in generator and the PyTorch body model, exported to ONNX."""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import subprocess
import sys
import types
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import scipy.sparse
import torch

from tracker_tools.hmr2 import standin_smpl as make_standin_smpl
from tracker_tools.hmr2.body_model import OPENPOSE_JOINT_MAP, VERTEX_JOINT_IDS, BodyModel
from tracker_tools.hmr2.smpl_file import (
    ChumpyStandIn,
    SMPLData,
    SMPLFileError,
    load_extra_regressor,
    load_smpl,
    read_pickle,
)

FIELDS = [f.name for f in dataclasses.fields(SMPLData)]
LEFT_LEG_CHAIN = (4, 7, 10)  # left knee, ankle, foot
# Skinning weights are float32, so a vertex's weights sum to 1 only within ~1e-7 and a
# float64 run reproduces the vertex up to that relative error.
WEIGHT_ROUNDING = 2e-7


@pytest.fixture(scope="module")
def standin() -> SMPLData:
    return make_standin_smpl.make_standin()


@pytest.fixture(scope="module")
def model64(standin: SMPLData) -> BodyModel:
    return BodyModel(standin).double().eval()


def axis_angle(vectors: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) from axis-angle vectors (..., 3) (Rodrigues)."""
    angle = vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x, y, z = (vectors / angle).unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*x.shape, 3, 3)
    eye = torch.eye(3, dtype=vectors.dtype)
    angle = angle[..., None]
    return eye + torch.sin(angle) * k + (1 - torch.cos(angle)) * (k @ k)


def identity_pose(batch: int = 1, dtype: torch.dtype = torch.float64):
    eye = torch.eye(3, dtype=dtype)
    return eye.expand(batch, 1, 3, 3).clone(), eye.expand(batch, 23, 3, 3).clone()


def random_params(batch: int, seed: int, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    rotations = axis_angle(0.6 * torch.randn(batch, 24, 3, generator=g, dtype=dtype))
    betas = torch.randn(batch, 10, generator=g, dtype=dtype)
    return rotations[:, :1], rotations[:, 1:], betas


def run(model: BodyModel, *params: torch.Tensor) -> tuple[np.ndarray, ...]:
    with torch.no_grad():
        return tuple(t.numpy() for t in model(*params))


# --- linear blend skinning ---------------------------------------------------------------


def test_zero_pose_and_betas_give_the_template(standin, model64):
    betas = torch.zeros(2, 10, dtype=torch.float64)
    vertices, joints, _ = run(model64, *identity_pose(2), betas)
    template = standin.v_template.astype(np.float64)
    np.testing.assert_allclose(vertices[1], template, rtol=0, atol=WEIGHT_ROUNDING)
    np.testing.assert_allclose(joints[1], standin.J_regressor @ template, rtol=0, atol=1e-12)


def test_betas_move_vertices_by_shapedirs(standin, model64):
    betas = torch.tensor([[1.5, -1.0, 0.5, 2.0, -0.3, 0.0, 0.7, -2.0, 1.0, 0.2]]).double()
    vertices, joints, _ = run(model64, *identity_pose(), betas)
    shaped = standin.v_template + standin.shapedirs.astype(np.float64) @ betas[0].numpy()
    np.testing.assert_allclose(vertices[0], shaped, rtol=0, atol=WEIGHT_ROUNDING)
    np.testing.assert_allclose(joints[0], standin.J_regressor @ shaped, rtol=0, atol=1e-12)
    assert np.abs(vertices[0] - standin.v_template).max() > 0.02


def test_left_knee_rotation_moves_only_its_chain(standin, model64):
    betas = torch.zeros(1, 10, dtype=torch.float64)
    rest = run(model64, *identity_pose(), betas)
    global_orient, body_pose = identity_pose()
    body_pose[0, 4 - 1] = axis_angle(torch.tensor([math.pi / 3, 0.0, 0.0], dtype=torch.float64))
    vertices, joints, _ = run(model64, global_orient, body_pose, betas)

    moved = np.linalg.norm(vertices[0] - rest[0][0], axis=1)
    in_chain = standin.weights[:, LEFT_LEG_CHAIN].sum(axis=1) > 0
    assert moved[~in_chain].max() < 1e-12
    assert moved[in_chain].max() > 0.2  # the foot swings by tens of centimetres
    joint_moved = np.linalg.norm(joints[0] - rest[1][0], axis=1)
    assert np.flatnonzero(joint_moved > 1e-12).tolist() == [7, 10]  # the knee turns in place
    assert joint_moved[0] == 0.0  # pelvis


def test_global_rotation_turns_everything_about_the_root(standin, model64):
    betas = torch.zeros(1, 10, dtype=torch.float64)
    rest_vertices, rest_joints, _ = run(model64, *identity_pose(), betas)
    quarter_turn = axis_angle(torch.tensor([0.0, math.pi / 2, 0.0], dtype=torch.float64))
    _, body_pose = identity_pose()
    vertices, joints, _ = run(model64, quarter_turn.reshape(1, 1, 3, 3), body_pose, betas)

    root = rest_joints[0, 0]
    rotation = quarter_turn.numpy()
    turned_joints = (rest_joints[0] - root) @ rotation.T + root
    np.testing.assert_allclose(joints[0], turned_joints, rtol=0, atol=1e-12)
    turned_vertices = (rest_vertices[0] - root) @ rotation.T + root
    np.testing.assert_allclose(vertices[0], turned_vertices, rtol=0, atol=WEIGHT_ROUNDING)
    # A quarter turn about y takes the left hand (+x) to the back (-z).
    assert joints[0, 22, 2] < root[2] - 0.5


@pytest.mark.parametrize(
    ("keypoint", "source", "index"),
    [
        (0, "vertex", 332),  # Nose
        (1, "joint", 12),  # Neck
        (2, "joint", 17),  # RShoulder
        (4, "joint", 21),  # RWrist
        (7, "joint", 20),  # LWrist
        (8, "joint", 0),  # MidHip = pelvis
        (9, "joint", 2),  # RHip
        (14, "joint", 7),  # LAnkle
        (15, "vertex", 6260),  # REye
        (18, "vertex", 583),  # LEar
        (19, "vertex", 3216),  # LBigToe
        (24, "vertex", 6787),  # RHeel
    ],
)
def test_keypoints_pick_the_openpose_joints(model64, keypoint, source, index):
    vertices, joints, keypoints = run(model64, *random_params(2, seed=3))
    expected = vertices[:, index] if source == "vertex" else joints[:, index]
    np.testing.assert_array_equal(keypoints[:, keypoint], expected)


def test_last_19_keypoints_come_from_the_extra_regressor(standin, model64):
    vertices, joints, keypoints = run(model64, *random_params(2, seed=4))
    assert keypoints.shape == (2, 44, 3)
    expected = standin.joint_regressor_extra @ vertices
    np.testing.assert_allclose(keypoints[:, 25:], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("extra", "joint"), [(14, 0), (12, 12), (0, 8), (5, 7), (11, 20)])
def test_standin_extra_joints_follow_spin_order(model64, extra, joint):
    """At rest, J19 row 14 is the pelvis, 12 the neck, 0 the right ankle... (SPIN's order)."""
    _, joints, keypoints = run(model64, *identity_pose(), torch.zeros(1, 10).double())
    assert np.linalg.norm(keypoints[0, 25 + extra] - joints[0, joint]) < 0.01


def test_joint_tables_have_the_official_sizes():
    assert len(VERTEX_JOINT_IDS) == 21 and len(OPENPOSE_JOINT_MAP) == 25
    assert max(OPENPOSE_JOINT_MAP) == 34


def test_float32_matches_float64(standin, model64):
    params = random_params(3, seed=5)
    expected = run(model64, *params)
    actual = run(BodyModel(standin).eval(), *(p.float() for p in params))
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, e, atol=1e-5)


def test_body_model_requires_the_extra_regressor(standin):
    with pytest.raises(ValueError, match="SMPL_to_J19"):
        BodyModel(dataclasses.replace(standin, joint_regressor_extra=None))


def test_onnx_export_matches_torch(standin, tmp_path):
    model = BodyModel(standin).eval()
    names_in, names_out = ["global_orient", "body_pose", "betas"], ["vertices", "joints", "kp"]
    path = tmp_path / "smpl.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        # torch's legacy TorchScript exporter announces its own deprecation.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            tuple(p.float() for p in random_params(2, seed=6)),
            str(path),
            input_names=names_in,
            output_names=names_out,
            dynamic_axes={name: {0: "batch"} for name in names_in + names_out},
            opset_version=17,
            dynamo=False,
        )
    params = tuple(p.float() for p in random_params(3, seed=7))  # another batch size
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(names_out, {n: p.numpy() for n, p in zip(names_in, params, strict=True)})
    for a, e in zip(actual, run(model, *params), strict=True):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-5)


# --- file loading ------------------------------------------------------------------------


def _fake_chumpy(monkeypatch: pytest.MonkeyPatch) -> type:
    """A class that pickles as ``chumpy.ch.Ch`` (state: its __dict__ with the array in x)."""
    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x: np.ndarray):
            self.x = x
            self._dirty_vars = {"x"}
            self._itr = None
            self._make_dense = False

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch, chumpy.ch = Ch, ch
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    return Ch


def _official_pickle(data: SMPLData, ch: type, protocol: int) -> bytes:
    """The official SMPL pickle's layout: chumpy arrays, a sparse J_regressor, uint32 tables."""
    kintree = np.stack([data.parents, np.arange(24)]).astype(np.uint32)  # root: 2**32 - 1
    return pickle.dumps(
        {
            "v_template": ch(data.v_template.astype(np.float64)),
            "shapedirs": ch(data.shapedirs.astype(np.float64)),
            "posedirs": ch(data.posedirs.astype(np.float64)),
            "weights": ch(data.weights.astype(np.float64)),
            "J": ch(data.J_regressor @ data.v_template),
            "J_regressor": scipy.sparse.csc_matrix(data.J_regressor.astype(np.float64)),
            "f": data.faces.astype(np.uint32),
            "kintree_table": kintree,
            "bs_style": "lbs",
            "bs_type": "lrotmin",
        },
        protocol=protocol,
    )


def assert_same_model(a: SMPLData, b: SMPLData) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("protocol", [2, 4])  # 2: as Python 2 wrote it; 4: 4D-Humans' re-dump
def test_chumpy_pkl_and_npz_load_identically(standin, tmp_path, monkeypatch, protocol):
    with monkeypatch.context() as patch:
        payload = _official_pickle(standin, _fake_chumpy(patch), protocol)
    assert "chumpy" not in sys.modules
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(payload)
    make_standin_smpl.write_npz(standin, tmp_path / "SMPL_NEUTRAL.npz")
    make_standin_smpl.write_extra_regressor(standin.joint_regressor_extra, tmp_path / "J19.pkl")

    from_pkl = load_smpl(tmp_path / "SMPL_NEUTRAL.pkl", tmp_path / "J19.pkl")
    from_npz = load_smpl(tmp_path / "SMPL_NEUTRAL.npz", tmp_path / "J19.pkl")
    assert "chumpy" not in sys.modules
    assert_same_model(from_pkl, from_npz)
    assert_same_model(from_npz, standin)


def test_generator_pkl_layout_loads_like_the_npz(standin, tmp_path):
    make_standin_smpl.write_pkl(standin, tmp_path / "m.pkl")
    assert scipy.sparse.issparse(pickle.loads((tmp_path / "m.pkl").read_bytes())["J_regressor"])
    assert_same_model(
        load_smpl(tmp_path / "m.pkl"), dataclasses.replace(standin, joint_regressor_extra=None)
    )


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_read_pickle_maps_chumpy_objects_to_their_arrays(tmp_path, monkeypatch, protocol):
    array = np.arange(12, dtype=np.float64).reshape(3, 4)
    with monkeypatch.context() as patch:
        ch = _fake_chumpy(patch)
        payload = pickle.dumps(
            {"a": ch(array), "s": {1, 2}, "m": scipy.sparse.csr_matrix(array)}, protocol=protocol
        )
    (tmp_path / "x.pkl").write_bytes(payload)
    loaded = read_pickle(tmp_path / "x.pkl")
    assert isinstance(loaded["a"], ChumpyStandIn)
    np.testing.assert_array_equal(loaded["a"].to_array(), array)
    np.testing.assert_array_equal(loaded["m"].toarray(), array)


class _Exploit:
    """Pickles as a call of ``func(*args)``, the way a malicious pickle runs code."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize(
    "func",
    [os.system, subprocess.check_call, eval, np.fromfile],
    ids=["os.system", "subprocess", "eval", "numpy.fromfile"],
)
def test_malicious_pickle_is_refused(tmp_path, func):
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    args = {
        os.system: (command,),
        subprocess.check_call: (["touch", str(marker)],),
        eval: (f"open({str(marker)!r}, 'w')",),
        np.fromfile: (str(marker),),
    }[func]
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"v_template": _Exploit(func, args)}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle"):
        load_smpl(tmp_path / "evil.pkl")
    assert not marker.exists()


def test_codecs_encode_is_limited_to_latin1(tmp_path):
    import codecs

    (tmp_path / "c.pkl").write_bytes(pickle.dumps(_Exploit(codecs.encode, ("x", "rot13"))))
    with pytest.raises(pickle.UnpicklingError, match="rot13"):
        read_pickle(tmp_path / "c.pkl")


def test_wrong_shapes_say_expected_and_actual(standin, tmp_path):
    message = r"v_template: expected shape \(6890, 3\), got \(6889, 3\)"
    with pytest.raises(SMPLFileError, match=message):
        dataclasses.replace(standin, v_template=standin.v_template[:-1])
    (tmp_path / "j19.pkl").write_bytes(pickle.dumps(np.zeros((17, 6890))))
    with pytest.raises(SMPLFileError, match=r"expected shape \(19, 6890\), got \(17, 6890\)"):
        load_extra_regressor(tmp_path / "j19.pkl")
    npz = tmp_path / "bad.npz"
    np.savez(npz, v_template=standin.v_template)
    with pytest.raises(SMPLFileError, match="missing keys"):
        load_smpl(npz)


# --- the stand-in generator --------------------------------------------------------------


def test_standin_has_the_official_layout(standin):
    # SMPLData validates the shapes and dtypes; check the content is sane too.
    assert standin.joint_regressor_extra is not None
    np.testing.assert_array_equal(standin.parents, make_standin_smpl.PARENTS)
    for regressor in (standin.weights.T, standin.J_regressor, standin.joint_regressor_extra):
        assert regressor.min() >= 0
    np.testing.assert_allclose(standin.weights.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(standin.J_regressor.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(standin.joint_regressor_extra.sum(axis=1), 1, atol=1e-6)
    regressed = standin.J_regressor @ standin.v_template
    assert np.linalg.norm(regressed - make_standin_smpl.JOINTS, axis=1).max() < 0.01
    height = np.ptp(standin.v_template[:, 1])
    assert 1.6 < height < 1.9


def test_standin_mesh_is_closed_and_consistently_oriented(standin):
    faces = standin.faces
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, per_edge = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert (per_edge == 2).all()  # every edge shared by exactly two faces
    _, per_directed_edge = np.unique(directed, axis=0, return_counts=True)
    assert (per_directed_edge == 1).all()  # neighbours agree on orientation
    assert len(np.unique(faces)) == 6890  # no unused vertex
    v = standin.v_template.astype(np.float64)[faces]
    volume = np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6
    assert volume > 0.05  # outward normals; a body's worth of cubic metres


def test_standin_is_deterministic(standin):
    assert_same_model(make_standin_smpl.make_standin(), standin)

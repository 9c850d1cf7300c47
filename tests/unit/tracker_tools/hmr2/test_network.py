"""Tests of the HMR2 re-implementation against the shared reference data.

The full-size tests build the released network twice (float64, then float32, each shared
by one test class and freed after it): about 5.4 GB, then 2.7 GB of weights.
"""

from __future__ import annotations

import csv
import logging
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import SHARED
from tracker_tools.hmr2.checkpoint import load_official_checkpoint
from tracker_tools.hmr2.network import HMR2Config, HMR2Network, HMR2Output
from tracker_tools.hmr2.recipe import (
    config_shapes,
    load_mean_params,
    read_state_dict_spec,
    recipe_network,
    standin_mean_params,
    verify_checksums,
)
from tracker_tools.hmr2.rotation import rot6d_to_rotmat

logger = logging.getLogger(__name__)

REFERENCE_DIR = SHARED / "reference" / "hmr2"
HEAD_ARRAYS = ("global_orient", "body_pose", "betas", "pred_cam", "pred_pose_6d")
F64_ATOL = 1e-8
F32_TOKENS_ATOL = 1e-4
F32_HEAD_ATOL = 5e-5


@pytest.fixture(scope="module")
def reference_dir() -> Path:
    """The shared HMR2 reference folder; skips the test when it is absent."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"shared HMR2 reference data not found at {REFERENCE_DIR.resolve()}")
    return REFERENCE_DIR


def _max_abs_diff(actual: torch.Tensor, expected: np.ndarray) -> float:
    assert tuple(actual.shape) == expected.shape
    return float(np.abs(actual.numpy().astype(np.float64) - expected.astype(np.float64)).max())


def _run_full(model: HMR2Network, reference_dir: Path, dtype: torch.dtype) -> dict[str, float]:
    """Run the reference input; max abs difference of each array from the reference run."""
    ref_name = "reference_outputs_f64.npz" if dtype == torch.float64 else "reference_outputs.npz"
    with np.load(reference_dir / "reference_outputs.npz") as data:
        crops = torch.from_numpy(data["input"]).to(dtype)
    with np.load(reference_dir / ref_name) as data:
        expected = dict(data)
    with torch.no_grad():
        features = model.backbone(crops)
        out = model.decode(features)
    diffs = {"backbone_tokens": _max_abs_diff(features, expected["backbone_tokens"])}
    diffs |= {name: _max_abs_diff(getattr(out, name), expected[name]) for name in HEAD_ARRAYS}
    logger.info("HMR2 %s max abs differences from the reference: %s", dtype, diffs)
    return diffs


def test_full_state_dict_matches_spec(reference_dir: Path) -> None:
    """Keys, shapes, dtypes and param/buffer kinds of the full network equal the spec."""
    with torch.device("meta"):
        model = HMR2Network(HMR2Config.full())
    params = {k for k, _ in model.named_parameters()}
    with open(reference_dir / "state_dict_spec.tsv", newline="") as f:
        spec = {row["key"]: row for row in csv.DictReader(f, delimiter="\t")}
    state = model.state_dict()
    assert set(state) == set(spec)
    for key, tensor in state.items():
        row = spec[key]
        assert "x".join(map(str, tensor.shape)) == row["shape"], key
        assert str(tensor.dtype).removeprefix("torch.") == row["dtype"], key
        assert ("param" if key in params else "buffer") == row["kind"], key
    assert config_shapes(HMR2Config.full()) == read_state_dict_spec(
        reference_dir / "state_dict_spec.tsv"
    )


def test_standin_mean_params_match_shared_file(reference_dir: Path) -> None:
    """The generated stand-in mean parameters equal the shared npz bit for bit."""
    loaded = load_mean_params(reference_dir / "smpl_mean_params_standin.npz")
    generated = standin_mean_params()
    for name in ("pose", "shape", "cam"):
        np.testing.assert_array_equal(getattr(generated, name), getattr(loaded, name))
        assert getattr(generated, name).dtype == np.float32


# Class scope: each full-size network lives only while its test class runs.
@pytest.fixture(scope="class")
def full_model_f64(reference_dir: Path) -> HMR2Network:
    """The float64 full network with recipe weights (mean params from the shared npz)."""
    mean_params = load_mean_params(reference_dir / "smpl_mean_params_standin.npz")
    return recipe_network(HMR2Config.full(), mean_params, torch.float64)


@pytest.fixture(scope="class")
def full_model_f32() -> HMR2Network:
    """The float32 full network with recipe weights (generated stand-in mean params)."""
    return recipe_network(HMR2Config.full(), standin_mean_params())


class TestFullFloat64:
    """The released network in float64 against ``reference_outputs_f64.npz``."""

    def test_matches_reference(self, full_model_f64: HMR2Network, reference_dir: Path) -> None:
        """Backbone tokens and all head outputs within 1e-8."""
        diffs = _run_full(full_model_f64, reference_dir, torch.float64)
        assert all(d <= F64_ATOL for d in diffs.values()), diffs


class TestFullFloat32:
    """The released network in float32: recipe checksums and ``reference_outputs.npz``."""

    def test_recipe_checksums(self, full_model_f32: HMR2Network, reference_dir: Path) -> None:
        """Every one of the 503 entries matches weights_checksums.tsv."""
        state_dict = full_model_f32.state_dict()
        problems = verify_checksums(state_dict, reference_dir / "weights_checksums.tsv")
        assert problems == []

    def test_matches_reference(self, full_model_f32: HMR2Network, reference_dir: Path) -> None:
        """Tokens within 1e-4 and head outputs within 5e-5."""
        diffs = _run_full(full_model_f32, reference_dir, torch.float32)
        assert diffs["backbone_tokens"] <= F32_TOKENS_ATOL, diffs
        assert all(diffs[name] <= F32_HEAD_ATOL for name in HEAD_ARRAYS), diffs


@pytest.fixture(scope="module")
def tiny_model() -> HMR2Network:
    """The tiny network with recipe weights, float32."""
    return recipe_network(HMR2Config.tiny(), standin_mean_params())


def _crops(batch: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, 256, 192, generator=torch.Generator().manual_seed(seed))


def test_tiny_forward_shapes_and_embedding(tiny_model: HMR2Network) -> None:
    """Output shapes, unit-norm embedding, orthonormal rotations, decode(backbone) == forward."""
    crops = _crops(3)
    with torch.no_grad():
        out = tiny_model(crops)
        features = tiny_model.backbone(crops)
        decoded = tiny_model.decode(features)
    dim = HMR2Config.tiny().embed_dim
    assert features.shape == (3, dim, 16, 12)
    expected_shapes = {
        "global_orient": (3, 1, 3, 3),
        "body_pose": (3, 23, 3, 3),
        "betas": (3, 10),
        "pred_cam": (3, 3),
        "pred_pose_6d": (3, 144),
        "embedding": (3, dim),
    }
    assert {k: tuple(v.shape) for k, v in out._asdict().items()} == expected_shapes
    torch.testing.assert_close(out.embedding.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(
        out.embedding, torch.nn.functional.normalize(features.mean(dim=(2, 3)), dim=1)
    )
    rotmats = torch.cat([out.global_orient, out.body_pose], dim=1)
    torch.testing.assert_close(
        rotmats.transpose(-1, -2) @ rotmats, torch.eye(3).expand(3, 24, 3, 3)
    )
    torch.testing.assert_close(torch.linalg.det(rotmats), torch.ones(3, 24))
    for name in HMR2Output._fields:
        assert torch.equal(getattr(out, name), getattr(decoded, name)), name


def test_tiny_batch_independence_float64() -> None:
    """A sample's outputs do not depend on the rest of the batch (checked in float64)."""
    model = recipe_network(HMR2Config.tiny(), standin_mean_params(), torch.float64)
    crops = _crops(3, seed=1).double()
    with torch.no_grad():
        batched = model(crops)
        single = model(crops[1:2])
    for name in HMR2Output._fields:
        torch.testing.assert_close(
            getattr(batched, name)[1:2], getattr(single, name), rtol=0, atol=1e-12
        )
        assert getattr(batched, name).dtype == torch.float64


def test_rot6d_identity_and_columns() -> None:
    """The 6D identity maps to I; a1 and the orthogonalised a2 become the first two columns."""
    identity = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(rot6d_to_rotmat(identity), torch.eye(3, dtype=torch.float64))
    x = torch.tensor([[0.0, 2.0, 0.0, 3.0, 1.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]]).double()
    torch.testing.assert_close(rot6d_to_rotmat(x), expected)


class CfgNode(dict):
    """Stands for the yacs config that Lightning pickles into the real checkpoint."""


@pytest.fixture
def yacs_config(monkeypatch: pytest.MonkeyPatch) -> CfgNode:
    """A config pickled as ``yacs.config.CfgNode``, as if yacs were installed when saving."""
    module = types.ModuleType("yacs.config")
    module.CfgNode = CfgNode
    monkeypatch.setattr(CfgNode, "__module__", "yacs.config")
    monkeypatch.setitem(sys.modules, "yacs", types.ModuleType("yacs"))
    monkeypatch.setitem(sys.modules, "yacs.config", module)
    return CfgNode(MODEL=CfgNode(IMAGE_SIZE=256))


def _fake_checkpoint(state_dict: dict[str, torch.Tensor], path: Path, **extra: object) -> None:
    """Save a Lightning-style checkpoint: ``state_dict`` plus entries the network ignores."""
    state_dict = state_dict | {
        "discriminator.D_conv1.weight": torch.zeros(32, 9, 1),
        "discriminator.D_conv1.bias": torch.zeros(32),
        "smpl.v_template": torch.zeros(6, 3),
        "smpl.faces_tensor": torch.zeros(4, 3, dtype=torch.int64),
        "initialized": torch.tensor(True),
    }
    torch.save({"epoch": 35, "global_step": 1_000_000, "state_dict": state_dict, **extra}, path)


def test_checkpoint_loader(
    tiny_model: HMR2Network, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Kept entries load exactly; the ignored prefixes are logged with their counts."""
    path = tmp_path / "epoch=35-step=1000000.ckpt"
    _fake_checkpoint(tiny_model.state_dict(), path)
    model = HMR2Network(HMR2Config.tiny())
    with caplog.at_level(logging.INFO, logger="tracker_tools.hmr2.checkpoint"):
        load_official_checkpoint(model, path)
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    messages = [r.getMessage() for r in caplog.records if r.name == "tracker_tools.hmr2.checkpoint"]
    assert len(messages) == 1
    assert messages[0].endswith("ignored 5: discriminator. (2), initialized (1), smpl. (2)")


def test_checkpoint_loader_missing_key_raises(tiny_model: HMR2Network, tmp_path: Path) -> None:
    """A checkpoint lacking one network weight is rejected (strict loading)."""
    path = tmp_path / "broken.ckpt"
    state_dict = dict(tiny_model.state_dict())
    del state_dict["smpl_head.deccam.weight"]
    _fake_checkpoint(state_dict, path)
    with pytest.raises(RuntimeError, match="smpl_head.deccam.weight"):
        load_official_checkpoint(HMR2Network(HMR2Config.tiny()), path)


def test_checkpoint_loader_reads_a_pickled_config_without_yacs(
    tiny_model: HMR2Network, tmp_path: Path, yacs_config: CfgNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A yacs config in hyper_parameters loads as a plain dict, yacs not being installed."""
    path = tmp_path / "with_cfg.ckpt"
    _fake_checkpoint(tiny_model.state_dict(), path, hyper_parameters={"cfg": yacs_config})
    monkeypatch.delitem(sys.modules, "yacs.config")
    monkeypatch.delitem(sys.modules, "yacs")
    model = HMR2Network(HMR2Config.tiny())
    load_official_checkpoint(model, path)
    assert torch.equal(model.smpl_head.deccam.weight, tiny_model.smpl_head.deccam.weight)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch exploited",))


def test_checkpoint_loader_refuses_code(tiny_model: HMR2Network, tmp_path: Path) -> None:
    """A checkpoint whose pickle calls a function is refused; the function never runs."""
    path = tmp_path / "evil.ckpt"
    _fake_checkpoint(tiny_model.state_dict(), path, hyper_parameters=_Exploit())
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.system"):
        load_official_checkpoint(HMR2Network(HMR2Config.tiny()), path)
    assert not (tmp_path / "exploited").exists() and not Path("exploited").exists()

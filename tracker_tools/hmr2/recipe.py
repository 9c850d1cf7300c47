"""Deterministic stand-in weights for HMR2 (the recipe of the shared reference README).

Every state-dict entry is drawn independently of the others: a CPU generator seeded with
``zlib.crc32`` of the UTF-8 key gives ``randn(shape)`` in float32, times 0.02 in float32;
LayerNorm weights then get ``+ 1.0``. The three ``smpl_head.init_*`` buffers hold the SMPL
mean parameters instead. The recipe works per key, so it serves any :class:`HMR2Config`.
"""

from __future__ import annotations

import csv
import logging
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tracker_service.model_spec import SMPL_BETAS, SMPL_JOINTS
from tracker_tools.hmr2.network import HMR2Config, HMR2Network

logger = logging.getLogger(__name__)

#: Keys of LayerNorm weights, which get ``+ 1.0`` after the random draw.
_NORM_WEIGHT = re.compile(r"(^|\.)(norm\d*|last_norm)\.weight$")
#: Random scale of every drawn entry.
_SCALE = 0.02
#: Relative tolerance (w.r.t. the absolute sum) on the float64 sums of a checksum row.
_SUM_RTOL = 1e-11


@dataclass(frozen=True)
class MeanParams:
    """SMPL mean parameters, the head's starting point (all float32).

    Attributes:
        pose: Mean 6D pose ``(144,)``.
        shape: Mean betas ``(10,)``.
        cam: Mean crop camera ``(3,)`` ordered ``(s, tx, ty)``.

    """

    pose: np.ndarray
    shape: np.ndarray
    cam: np.ndarray

    def buffers(self) -> dict[str, np.ndarray]:
        """Return the head buffers these values fill, keyed by full state-dict key."""
        return {
            "smpl_head.init_body_pose": self.pose[None],
            "smpl_head.init_betas": self.shape[None],
            "smpl_head.init_cam": self.cam[None],
        }


def load_mean_params(npz_path: str | Path) -> MeanParams:
    """Read ``smpl_mean_params.npz`` (or the stand-in) with keys ``pose``, ``shape``, ``cam``.

    Args:
        npz_path: Path of the ``.npz`` file.

    Returns:
        The mean parameters, cast to float32 as the official head does.

    """
    with np.load(npz_path) as data:
        return MeanParams(**{k: data[k].astype(np.float32) for k in ("pose", "shape", "cam")})


def standin_mean_params() -> MeanParams:
    """Generate the documented stand-in mean parameters (no file needed).

    ``pose[i] = b[i mod 6] + 0.1 sin(i + 1)`` with ``b = (1, 0, 0, 0, 1, 0)`` (the 6D
    identity), ``shape[i] = 0.1 cos(i + 1)`` and ``cam = (0.9, 0.05, -0.05)``, computed in
    float64 and stored as float32.

    Returns:
        The stand-in mean parameters.

    """
    identity_6d = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    i = np.arange(6 * SMPL_JOINTS)
    j = np.arange(SMPL_BETAS)
    return MeanParams(
        pose=(identity_6d[i % 6] + 0.1 * np.sin(i + 1)).astype(np.float32),
        shape=(0.1 * np.cos(j + 1)).astype(np.float32),
        cam=np.array([0.9, 0.05, -0.05]).astype(np.float32),
    )


def read_state_dict_spec(tsv_path: str | Path) -> dict[str, tuple[int, ...]]:
    """Read ``state_dict_spec.tsv`` (``key  shape  dtype  kind``, shapes written ``AxBxC``).

    Args:
        tsv_path: Path of the spec file.

    Returns:
        Shape of each key, in file order.

    """
    with open(tsv_path, newline="") as f:
        rows = csv.DictReader(f, delimiter="\t")
        return {row["key"]: tuple(int(n) for n in row["shape"].split("x")) for row in rows}


def config_shapes(config: HMR2Config) -> dict[str, tuple[int, ...]]:
    """State-dict shapes of :class:`HMR2Network` for ``config``, built on the meta device.

    Args:
        config: Network sizes.

    Returns:
        Shape of each state-dict key.

    """
    with torch.device("meta"):
        model = HMR2Network(config)
    return {key: tuple(t.shape) for key, t in model.state_dict().items()}


def recipe_tensor(key: str, shape: Sequence[int], mean_params: MeanParams) -> torch.Tensor:
    """Generate the recipe value of one state-dict entry, in float32.

    Args:
        key: Full state-dict key, e.g. ``backbone.blocks.0.norm1.weight``.
        shape: Its shape.
        mean_params: Values of the ``smpl_head.init_*`` buffers.

    Returns:
        A float32 tensor of ``shape``.

    Raises:
        ValueError: If a mean-parameter buffer does not have the requested shape.

    """
    buffers = mean_params.buffers()
    if key in buffers:
        value = buffers[key]
        if value.shape != tuple(shape):
            raise ValueError(f"{key}: mean params have shape {value.shape}, expected {shape}")
        return torch.from_numpy(value.copy())
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
    tensor = torch.randn(tuple(shape), generator=generator, dtype=torch.float32) * _SCALE
    if _NORM_WEIGHT.search(key):
        tensor += 1.0
    return tensor


def recipe_state_dict(
    spec: Mapping[str, Sequence[int]] | HMR2Config,
    mean_params: MeanParams,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Generate the recipe weights of a whole state dict.

    Args:
        spec: Key-to-shape mapping (e.g. from :func:`read_state_dict_spec`) or a config
            whose :class:`HMR2Network` shapes are used.
        mean_params: Values of the ``smpl_head.init_*`` buffers.
        dtype: Output dtype; each float32 recipe tensor is cast as soon as it is drawn.

    Returns:
        The state dict, keys in ``spec`` order.

    """
    shapes = config_shapes(spec) if isinstance(spec, HMR2Config) else spec
    return {key: recipe_tensor(key, shape, mean_params).to(dtype) for key, shape in shapes.items()}


def recipe_network(
    config: HMR2Config, mean_params: MeanParams, dtype: torch.dtype = torch.float32
) -> HMR2Network:
    """Build an :class:`HMR2Network` in eval mode holding the recipe weights.

    The module is built on the meta device and the generated tensors are assigned to it,
    so the weights are allocated only once.

    Args:
        config: Network sizes.
        mean_params: Values of the ``smpl_head.init_*`` buffers.
        dtype: Parameter dtype (the float32 recipe values cast to it).

    Returns:
        The network, on CPU.

    """
    with torch.device("meta"):
        model = HMR2Network(config)
    model.load_state_dict(recipe_state_dict(config, mean_params, dtype), strict=True, assign=True)
    logger.debug("Built HMR2 with recipe weights: %s, %s", config, dtype)
    return model.eval()


def _close(value: float, expected: float, scale: float) -> bool:
    return abs(value - expected) <= _SUM_RTOL * scale


def verify_checksums(
    state_dict: Mapping[str, torch.Tensor], checksums_tsv: str | Path
) -> list[str]:
    """Compare a state dict with ``weights_checksums.tsv``.

    Each row gives ``numel``, the float64 sum and absolute sum of the float32 values
    (compared with a relative tolerance of 1e-11 of the absolute sum) and the first and last
    values in row-major order (compared exactly in float32). Tensors of another dtype are
    cast to float32 first.

    Args:
        state_dict: The weights to check.
        checksums_tsv: Path of the checksum file
            (``key  numel  sum_f64  abs_sum_f64  first  last``).

    Returns:
        One message per mismatch, missing key or key absent from the file; empty if all match.

    """
    problems: list[str] = []
    with open(checksums_tsv, newline="") as f:
        rows = {row["key"]: row for row in csv.DictReader(f, delimiter="\t")}
    problems += [f"{key}: not in the checksum file" for key in state_dict if key not in rows]
    for key, row in rows.items():
        if key not in state_dict:
            problems.append(f"{key}: missing from the state dict")
            continue
        values = state_dict[key].detach().to("cpu", torch.float32).numpy().ravel()
        abs_sum = float(row["abs_sum_f64"])
        checks = {
            "numel": values.size == int(row["numel"]),
            "sum": _close(float(values.sum(dtype=np.float64)), float(row["sum_f64"]), abs_sum),
            "abs_sum": _close(float(np.abs(values).sum(dtype=np.float64)), abs_sum, abs_sum),
            "first": values.size > 0 and values[0] == np.float32(row["first"]),
            "last": values.size > 0 and values[-1] == np.float32(row["last"]),
        }
        problems += [f"{key}: {name} differs" for name, ok in checks.items() if not ok]
    return problems

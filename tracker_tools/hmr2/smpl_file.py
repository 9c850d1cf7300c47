"""Read the SMPL body-model file (official ``.pkl`` or ``.npz``) and HMR2's extra joint regressor.

The official ``SMPL_NEUTRAL.pkl`` is a latin1 pickle of a dict whose arrays are partly chumpy
``Ch`` objects, with ``J_regressor`` a scipy sparse matrix. It is read here *without* chumpy
and without running code from the file: see :func:`read_pickle`. A ``.npz`` with the same key
names (``v_template``, ``f``, ``J_regressor``, ``weights``, ``kintree_table``, ``shapedirs``,
``posedirs``) is read as well; the stand-in body model is written that way.

numpy and scipy only (no torch): the same loader serves the exporter and the tests.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from tracker_service.model_spec import SMPL_BETAS, SMPL_FACES, SMPL_JOINTS, SMPL_VERTICES

logger = logging.getLogger(__name__)

#: Pose blend-shape features: (R - I) of the 23 non-root joints, 9 values each.
NUM_POSE_BASIS = 9 * (SMPL_JOINTS - 1)
#: Rows of ``SMPL_to_J19.pkl``.
NUM_EXTRA_JOINTS = 19

#: numpy callables a pickled array needs, by (module, name) as pickles spell them.
_NUMPY_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
#: numpy < 2 wrote ``numpy.core``; numpy 2 keeps the same objects in ``numpy._core``.
_NUMPY_MODULE_ALIASES = {
    "numpy.core.multiarray": "numpy._core.multiarray",
    "numpy.core.numeric": "numpy._core.numeric",
}
_SPARSE_CLASSES = {
    "csc_matrix",
    "csr_matrix",
    "coo_matrix",
    "csc_array",
    "csr_array",
    "coo_array",
}
#: What the pickle machinery itself references for plain objects, sets and (protocol < 3)
#: bytes, spelled the Python 2 and the Python 3 way.
_BUILTIN_GLOBALS = {
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
    ("__builtin__", "set"),
    ("builtins", "set"),
    ("__builtin__", "frozenset"),
    ("builtins", "frozenset"),
}


class SMPLFileError(ValueError):
    """A body-model file lacks a key or holds an array of the wrong shape."""


class ChumpyStandIn:
    """Stands in for any chumpy class while unpickling: keeps the array of the object's state.

    A plain chumpy ``Ch`` pickles its ``__dict__``, where the value lives under ``x``.
    """

    def __setstate__(self, state: Any) -> None:
        """Keep the pickled state (a dict, or a ``(dict, slots)`` pair)."""
        self.state = state[0] if isinstance(state, tuple) else state

    def to_array(self) -> np.ndarray:
        """Return the array held under ``x`` in the pickled state."""
        value = self.state.get("x") if isinstance(self.state, dict) else None
        if value is None:
            raise SMPLFileError("chumpy object without an array under 'x' in its state")
        return np.asarray(value)


def _latin1_encode(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` limited to what pickle protocols 0-2 use it for: latin1 bytes."""
    if encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only numpy array, scipy.sparse matrix and chumpy classes; refuses the rest."""

    def find_class(self, module: str, name: str) -> Any:
        module = _NUMPY_MODULE_ALIASES.get(module, module)
        if (module, name) in _NUMPY_GLOBALS or (module, name) in _BUILTIN_GLOBALS:
            return super().find_class(module, name)
        if module.startswith("scipy.sparse") and name in _SPARSE_CLASSES:
            return getattr(scipy.sparse, name)
        if module == "chumpy" or module.startswith("chumpy."):
            return ChumpyStandIn
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise pickle.UnpicklingError(
            f"refusing to unpickle {module}.{name}: a body-model pickle may only reference "
            "numpy arrays, scipy.sparse matrices and chumpy objects"
        )


def read_pickle(path: str | Path) -> Any:
    """Unpickle a body-model file safely, without chumpy installed.

    The official SMPL pickle holds chumpy ``Ch`` objects and a scipy sparse matrix, and was
    written by Python 2 (so it is read with ``encoding="latin1"``). A restricted
    ``pickle.Unpickler`` resolves only the numpy globals that rebuild arrays, the scipy.sparse
    matrix classes, and chumpy classes, which it maps to :class:`ChumpyStandIn`; chumpy itself
    is never imported. Every other global (``os.system``, ``builtins.eval``, any other numpy
    function...) raises ``pickle.UnpicklingError``. This is also a security measure: a
    pickle can otherwise run arbitrary code when loaded.

    Args:
        path: A ``.pkl`` file.

    Returns:
        The unpickled object, with chumpy objects as :class:`ChumpyStandIn`.

    Raises:
        pickle.UnpicklingError: If the file references a class outside the allowed set.

    """
    with open(path, "rb") as stream:
        return _RestrictedUnpickler(stream, encoding="latin1").load()


def _as_array(value: Any) -> np.ndarray:
    """Return a dense ndarray from an array, a scipy sparse matrix or a chumpy stand-in."""
    if isinstance(value, ChumpyStandIn):
        return value.to_array()
    if scipy.sparse.issparse(value):
        return value.toarray()
    return np.asarray(value)


def _check_shape(name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    if array.shape != expected:
        raise SMPLFileError(f"{name}: expected shape {expected}, got {array.shape}")


@dataclass(frozen=True, eq=False)
class SMPLData:
    """The arrays of the SMPL body model, validated.

    Attributes:
        v_template: (6890, 3) float32 template mesh in metres (T-pose).
        faces: (13776, 3) int64 triangles.
        J_regressor: (24, 6890) float32 dense joint regressor.
        weights: (6890, 24) float32 skinning weights.
        parents: (24,) int64 kinematic tree, ``parents[0] == -1``, ``parents[i] < i``.
        shapedirs: (6890, 3, 10) float32 shape blend shapes (the first 10 components).
        posedirs: (6890, 3, 207) float32 pose blend shapes.
        joint_regressor_extra: (19, 6890) float32 regressor of HMR2's 19 extra joints
            (``SMPL_to_J19.pkl``), or None when not loaded.

    """

    v_template: np.ndarray
    faces: np.ndarray
    J_regressor: np.ndarray  # noqa: N815 (the official name)
    weights: np.ndarray
    parents: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    joint_regressor_extra: np.ndarray | None = None

    def __post_init__(self) -> None:
        """Check every array's dtype and shape, the face indices and the kinematic tree."""
        expected = {
            "v_template": ((SMPL_VERTICES, 3), np.float32),
            "faces": ((SMPL_FACES, 3), np.int64),
            "J_regressor": ((SMPL_JOINTS, SMPL_VERTICES), np.float32),
            "weights": ((SMPL_VERTICES, SMPL_JOINTS), np.float32),
            "parents": ((SMPL_JOINTS,), np.int64),
            "shapedirs": ((SMPL_VERTICES, 3, SMPL_BETAS), np.float32),
            "posedirs": ((SMPL_VERTICES, 3, NUM_POSE_BASIS), np.float32),
            "joint_regressor_extra": ((NUM_EXTRA_JOINTS, SMPL_VERTICES), np.float32),
        }
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None and field.name == "joint_regressor_extra":
                continue
            shape, dtype = expected[field.name]
            if not isinstance(value, np.ndarray) or value.dtype != dtype:
                raise SMPLFileError(
                    f"{field.name}: expected a {np.dtype(dtype)} ndarray, got "
                    f"{getattr(value, 'dtype', type(value).__name__)}"
                )
            _check_shape(field.name, value, shape)
        if self.faces.min() < 0 or self.faces.max() >= SMPL_VERTICES:
            raise SMPLFileError(f"faces: indices must lie in [0, {SMPL_VERTICES})")
        if self.parents[0] != -1 or np.any(self.parents[1:] >= np.arange(1, SMPL_JOINTS)):
            raise SMPLFileError(
                f"parents: expected parents[0] == -1 and parents[i] < i, got {self.parents}"
            )


def _from_mapping(raw: Any, source: str | Path) -> SMPLData:
    """Build :class:`SMPLData` from the official key names (values may be sparse or chumpy)."""
    keys = ("v_template", "f", "J_regressor", "weights", "kintree_table", "shapedirs", "posedirs")
    missing = [k for k in keys if k not in raw]
    if missing:
        raise SMPLFileError(f"{source}: missing keys {missing}")
    arrays = {k: _as_array(raw[k]) for k in keys}

    kintree = arrays["kintree_table"]
    _check_shape("kintree_table", kintree, (2, SMPL_JOINTS))
    # Row 0 holds the parents; the root's entry is a placeholder (not -1 in every file).
    parents = kintree[0].astype(np.int64)
    parents[0] = -1

    shapedirs = arrays["shapedirs"]
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (SMPL_VERTICES, 3):
        raise SMPLFileError(
            f"shapedirs: expected shape ({SMPL_VERTICES}, 3, K>={SMPL_BETAS}), "
            f"got {shapedirs.shape}"
        )
    if shapedirs.shape[2] < SMPL_BETAS:
        raise SMPLFileError(
            f"shapedirs: expected at least {SMPL_BETAS} components, got {shapedirs.shape[2]}"
        )

    return SMPLData(
        v_template=arrays["v_template"].astype(np.float32),
        faces=arrays["f"].astype(np.int64),
        J_regressor=arrays["J_regressor"].astype(np.float32),
        weights=arrays["weights"].astype(np.float32),
        parents=parents,
        shapedirs=np.ascontiguousarray(shapedirs[:, :, :SMPL_BETAS], dtype=np.float32),
        posedirs=arrays["posedirs"].astype(np.float32),
    )


def load_extra_regressor(path: str | Path) -> np.ndarray:
    """Read ``SMPL_to_J19.pkl``: HMR2's (19, 6890) regressor of its 19 extra joints.

    Args:
        path: The pickled array (dense, sparse or chumpy), read with :func:`read_pickle`.

    Returns:
        A (19, 6890) float32 array.

    Raises:
        SMPLFileError: If the array has another shape.

    """
    regressor = _as_array(read_pickle(path)).astype(np.float32)
    _check_shape(f"{path}", regressor, (NUM_EXTRA_JOINTS, SMPL_VERTICES))
    return regressor


def load_smpl(path: str | Path, extra_regressor_path: str | Path | None = None) -> SMPLData:
    """Load an SMPL body model from the official ``.pkl`` layout or an ``.npz`` with its keys.

    Args:
        path: ``SMPL_NEUTRAL.pkl`` (or ``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl``), or an
            ``.npz`` with the keys ``v_template``, ``f``, ``J_regressor``, ``weights``,
            ``kintree_table``, ``shapedirs`` and ``posedirs``.
        extra_regressor_path: Optional ``SMPL_to_J19.pkl``, stored as
            ``joint_regressor_extra``.

    Returns:
        The validated arrays, float32 (int64 faces and parents); ``shapedirs`` keeps its
        first 10 components and ``J_regressor`` is dense.

    Raises:
        SMPLFileError: On a missing key or an array of the wrong shape.
        pickle.UnpicklingError: If a pickle references a class outside the allowed set.

    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            data = _from_mapping({k: npz[k] for k in npz.files}, path)
    else:
        raw = read_pickle(path)
        if not isinstance(raw, dict):
            raise SMPLFileError(f"{path}: expected a pickled dict, got {type(raw).__name__}")
        data = _from_mapping(raw, path)
    if extra_regressor_path is not None:
        data = replace(data, joint_regressor_extra=load_extra_regressor(extra_regressor_path))
    logger.debug("loaded body model %s (extra regressor: %s)", path, extra_regressor_path)
    return data

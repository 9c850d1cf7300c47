"""Load the official HMR2 Lightning checkpoint into :class:`~.network.HMR2Network`."""

from __future__ import annotations

import logging
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from tracker_tools.hmr2.network import HMR2Network

logger = logging.getLogger(__name__)

#: State-dict prefixes of the official ``HMR2`` LightningModule that the network uses.
KEPT_PREFIXES = ("backbone.", "smpl_head.")


class _ConfigStandIn(dict):
    """Takes the place of a pickled training config (yacs ``CfgNode``, ...): keeps its items."""

    def __setstate__(self, state: object) -> None:
        """Drop the object state (yacs' immutability flags); the items are kept."""


class _CheckpointUnpickler(pickle.Unpickler):
    """Rebuilds tensors and plain containers; stands in for config classes; refuses the rest.

    ``torch.load`` wraps this class and resolves its own storage types first. Anything that
    could run code (``os.system``, ``builtins.eval``, arbitrary callables) raises
    ``pickle.UnpicklingError``, so a checkpoint from a mirror is read without trusting it.
    """

    def find_class(self, module: str, name: str) -> Any:
        """Resolve a global the pickle names, if it is on the allowlist."""
        if f"{module}.{name}" in _TENSOR_GLOBALS or (module, name) in _PLAIN_GLOBALS:
            return super().find_class(module, name)
        if module.split(".")[0] in _CONFIG_MODULES:
            return _ConfigStandIn
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a checkpoint")


#: Globals torch's own pickles use to rebuild tensors and parameters.
_TENSOR_GLOBALS = {
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.Size",
    "torch.float32",
    "torch.float16",
    "torch.bfloat16",
    "torch.int64",
    "torch.bool",
}
_PLAIN_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("copyreg", "_reconstructor"),
    ("builtins", "dict"),
    ("builtins", "object"),
    ("pathlib", "PosixPath"),
}
#: Packages whose classes Lightning checkpoints pickle as hyper-parameters.
_CONFIG_MODULES = {"yacs", "omegaconf", "argparse"}


class _RestrictedPickle:
    """A ``pickle_module`` for ``torch.load`` with :class:`_CheckpointUnpickler`."""

    Unpickler = _CheckpointUnpickler
    load = staticmethod(pickle.load)
    UnpicklingError = pickle.UnpicklingError


def _read_checkpoint(ckpt_path: Path) -> dict[str, Any]:
    """Read a checkpoint without running code from it.

    ``weights_only=True`` first; Lightning checkpoints also pickle their training config (a
    yacs ``CfgNode``), which that mode refuses, so such a file is read again with
    :class:`_CheckpointUnpickler`, which keeps the config as a plain dict.
    """
    try:
        return torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        logger.info(
            "%s pickles more than tensors (%s); reading it with the restricted unpickler",
            ckpt_path.name,
            str(error).splitlines()[0][:80],
        )
    restricted = _RestrictedPickle
    return torch.load(ckpt_path, map_location="cpu", mmap=True, pickle_module=restricted)


def _prefix(key: str) -> str:
    """Return the first component of a key with its dot (``smpl.`` for ``smpl.v_template``)."""
    head, dot, _ = key.partition(".")
    return head + dot


def load_official_checkpoint(model: HMR2Network, ckpt_path: str | Path) -> None:
    """Load ``backbone.*`` and ``smpl_head.*`` of an official HMR2 ``.ckpt`` into ``model``.

    The weights sit under the checkpoint's ``state_dict`` key. Every other entry
    (``smpl.``, ``discriminator.``, ``initialized``...) is dropped and one INFO line names
    the dropped prefixes with their counts. The kept entries are loaded with
    ``strict=True`` and cast to the model's dtype.

    Args:
        model: The network to fill, in place.
        ckpt_path: Path of the Lightning checkpoint.

    Raises:
        KeyError: If the checkpoint has no ``state_dict`` entry.
        RuntimeError: If a weight of ``model`` is missing from it or has the wrong shape.
        pickle.UnpicklingError: If the file pickles anything but tensors, containers and a
            training config (it could run code).

    """
    ckpt_path = Path(ckpt_path)
    checkpoint = _read_checkpoint(ckpt_path)
    if "state_dict" not in checkpoint:
        raise KeyError(f"{ckpt_path} has no 'state_dict' entry (keys: {sorted(checkpoint)})")
    state_dict = checkpoint["state_dict"]
    kept = {k: v for k, v in state_dict.items() if k.startswith(KEPT_PREFIXES)}
    ignored = Counter(_prefix(k) for k in state_dict if k not in kept)
    model.load_state_dict(kept, strict=True)
    logger.info(
        "Loaded %d entries from %s; ignored %d: %s",
        len(kept),
        ckpt_path.name,
        sum(ignored.values()),
        ", ".join(f"{prefix} ({count})" for prefix, count in sorted(ignored.items())) or "none",
    )

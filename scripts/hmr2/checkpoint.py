"""Load the official HMR2 Lightning checkpoint into :class:`~scripts.hmr2.network.HMR2Network`."""

from __future__ import annotations

import logging
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from scripts.hmr2.network import HMR2Network

logger = logging.getLogger(__name__)

#: State-dict prefixes of the official ``HMR2`` LightningModule that the network uses.
KEPT_PREFIXES = ("backbone.", "smpl_head.")


def _read_checkpoint(ckpt_path: Path, allow_pickle: bool) -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``, else (if allowed) a full unpickle."""
    try:
        return torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        if not allow_pickle:
            raise
        logger.warning(
            "%s needs full unpickling (weights_only=True failed: %s); loading it as trusted",
            ckpt_path,
            str(error).splitlines()[0],
        )
        return torch.load(ckpt_path, map_location="cpu", weights_only=False, mmap=True)


def _prefix(key: str) -> str:
    """Return the first component of a key with its dot (``smpl.`` for ``smpl.v_template``)."""
    head, dot, _ = key.partition(".")
    return head + dot


def load_official_checkpoint(
    model: HMR2Network, ckpt_path: str | Path, *, allow_pickle: bool = True
) -> None:
    """Load ``backbone.*`` and ``smpl_head.*`` of an official HMR2 ``.ckpt`` into ``model``.

    The weights sit under the checkpoint's ``state_dict`` key. Every other entry
    (``smpl.``, ``discriminator.``, ``initialized``...) is dropped and one INFO line names
    the dropped prefixes with their counts. The kept entries are loaded with
    ``strict=True`` and cast to the model's dtype.

    Args:
        model: The network to fill, in place.
        ckpt_path: Path of the Lightning checkpoint.
        allow_pickle: The file is first read with ``weights_only=True``. Lightning
            checkpoints may also pickle their hyper-parameters (a yacs config), which
            that mode rejects; if True, such a file is then read with a full unpickle,
            which runs code from the file, so only use it on trusted checkpoints.

    Raises:
        KeyError: If the checkpoint has no ``state_dict`` entry.
        RuntimeError: If a weight of ``model`` is missing from it or has the wrong shape.
        pickle.UnpicklingError: If ``weights_only`` loading fails and ``allow_pickle`` is False.

    """
    ckpt_path = Path(ckpt_path)
    checkpoint = _read_checkpoint(ckpt_path, allow_pickle)
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

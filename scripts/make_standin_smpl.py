"""Write a deterministic stand-in SMPL body model with the official file layout.

The model itself: :mod:`tracker_tools.hmr2.standin_smpl`.

Example:
    python -m scripts.make_standin_smpl --out build/smpl --pkl

"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.hmr2.standin_smpl import (
    make_standin,
    write_extra_regressor,
    write_npz,
    write_pkl,
)

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Write ``SMPL_NEUTRAL.npz`` and ``SMPL_to_J19.pkl`` (and ``SMPL_NEUTRAL.pkl``) to --out."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--pkl", action="store_true", help="also write SMPL_NEUTRAL.pkl")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    data = make_standin()
    args.out.mkdir(parents=True, exist_ok=True)
    written = [args.out / "SMPL_NEUTRAL.npz", args.out / "SMPL_to_J19.pkl"]
    write_npz(data, written[0])
    write_extra_regressor(data.joint_regressor_extra, written[1])
    if args.pkl:
        written.append(args.out / "SMPL_NEUTRAL.pkl")
        write_pkl(data, written[-1])
    for path in written:
        logger.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    print(f"stand-in SMPL written to {args.out}: {', '.join(p.name for p in written)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

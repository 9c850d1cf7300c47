"""CPU configs of the production repository, for Triton on a machine without a GPU.

See :mod:`tracker_tools.cpu_configs`.

Usage::

    python -m scripts.cpu_configs [--root model_repository]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.cpu_configs import write_cpu_configs


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: (re)write the CPU configs of a repository."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("model_repository"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    written = write_cpu_configs(args.root)
    print(f"wrote {len(written)} CPU configs under {args.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

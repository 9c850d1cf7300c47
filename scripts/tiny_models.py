"""The tiny model set: the real graphs with a shallow HMR2 (:mod:`tracker_tools.tiny_models`).

Example:
    python -m scripts.tiny_models build/tiny_repository
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.tiny_models import build_tiny_repository


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, nargs="?", default=Path("build/tiny_repository"))
    args = parser.parse_args(argv)
    print(f"tiny model set in {build_tiny_repository(args.root)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

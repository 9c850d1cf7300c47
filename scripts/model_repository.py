"""Triton model repository: production configs and the local CPU variant.

See :mod:`tracker_tools.model_repository`.

Usage::

    python -m scripts.model_repository production [--root model_repository]
    python -m scripts.model_repository local [--production-root model_repository]
        [--out build/triton_repository] [--intra-op-threads N]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.model_repository import build_local_repository, write_production_repository


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the production configs or build the local repository."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    production = commands.add_parser("production", help="write model_repository/*/config.pbtxt")
    production.add_argument("--root", type=Path, default=Path("model_repository"))
    local = commands.add_parser("local", help="build the local Python-backend repository")
    local.add_argument("--production-root", type=Path, default=Path("model_repository"))
    local.add_argument("--out", type=Path, default=Path("build/triton_repository"))
    local.add_argument("--intra-op-threads", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.command == "production":
        written = write_production_repository(args.root)
        print(f"wrote {len(written)} configs under {args.root}")
    else:
        names = build_local_repository(
            args.production_root, args.out, intra_op_threads=args.intra_op_threads
        )
        print(f"local repository {args.out}: {', '.join(names) or 'no models'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The local stack without Docker: a real Triton server and the tracker service.

Runs :func:`tracker_tools.stack.local_stack` in the foreground until Ctrl-C (``make serve``).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.stack import BUILD, MODEL_REPOSITORY, StackError, local_stack
from tracker_tools.tiny_models import build_tiny_repository

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the local stack in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--repository", type=Path, default=MODEL_REPOSITORY)
    parser.add_argument(
        "--hmr2", choices=["full", "tiny"], default="full",
        help="tiny: serve the tiny model set (tracker_tools.tiny_models) instead of --repository",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    repository = args.repository
    if args.hmr2 == "tiny":
        repository = build_tiny_repository(BUILD / "tiny_repository")
    try:
        with local_stack(repository=repository, port=args.port) as (url, triton, service):
            print(f"The viewer {url}/  POST {url}/pose/hybrid  GET {url}/health  GET {url}/metrics")
            print(f"Triton: gRPC {triton.grpc_url}, metrics {triton.metrics_url}; Ctrl-C stops")
            try:
                service.wait()
            except KeyboardInterrupt:
                log.info("stopping")
    except StackError as error:
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

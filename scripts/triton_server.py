"""A real ``tritonserver`` on a CPU machine (:mod:`tracker_tools.triton_server`).

Usage::

    python -m scripts.triton_server --repository build/triton_repository

builds the local repository from ``model_repository/`` and serves it in the
foreground until Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from tracker_tools.model_repository import build_local_repository
from tracker_tools.triton_server import LocalTritonServer

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the local repository and serve it in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Serve the models with a local tritonserver.")
    parser.add_argument("--repository", type=Path, default=Path("build/triton_repository"))
    parser.add_argument("--production-repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--models", nargs="*", help="models to load (default: all built)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--intra-op-threads", type=int, default=None)
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--log-file", type=Path, default=None, help="default: beside --repository")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    built = build_local_repository(
        args.production_repository, args.repository, intra_op_threads=args.intra_op_threads
    )
    models = args.models or built
    if not models:
        parser.error(
            f"no model in {args.production_repository} has 1/model.onnx: run the exporters first"
        )
    server = LocalTritonServer(
        repository=args.repository,
        models=models,
        log_file=args.log_file or args.repository.parent / "tritonserver.log",
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        host=args.host,
        startup_timeout_s=args.startup_timeout,
    )
    try:
        with server:
            logger.info(
                "Serving %s: HTTP %s, gRPC %s, metrics %s; log %s. Ctrl-C to stop.",
                ", ".join(models),
                server.http_url,
                server.grpc_url,
                server.metrics_url,
                server.log_file,
            )
            code = server.wait()
    except KeyboardInterrupt:
        print("stopped")
        return 0
    print(f"tritonserver exited with code {code}; log {server.log_file}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())

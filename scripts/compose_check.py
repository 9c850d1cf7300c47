"""The compose stack for real: images built, ``docker compose up``, frames through the containers.

Run by ``make test-compose`` (``scripts/compose_test.sh``, which provides the Docker Engine,
the Compose v2 binary as ``$COMPOSE_BIN`` and the base image). With ``compose.yaml`` +
``compose.pytriton.yaml`` (the documented CPU variant: the real ``tritonserver`` of
``nvidia-pytriton`` with the Python backend) + ``tests/compose/compose.test.yaml`` (the tiny
model set, ports published on 127.0.0.1 only), it checks:

- the tracker image (``docker/tracker.Dockerfile``, as users build it) and the Triton image
  build; their sizes and the build time are recorded;
- ``docker compose up``: Triton becomes healthy, the tracker starts only then, ``/health``
  turns ``ready``;
- real video (``../shared/media/runner.mp4``, 640x360 PNG as the backend posts it, in order)
  through the tracker's published port: every answer's body, identity and mesh;
- Triton killed mid-video (SIGKILL, a crash): the tracker answers 503 in words, the restart
  policy brings Triton back, the tracker recovers without a restart, the identity survives;
- ``/metrics`` of both; the tracker runs unprivileged on a read-only root with no secret;
- ``docker compose stop``: the tracker finishes the request in flight and exits 0 in time;
- the same frames through the same stack without containers
  (:func:`tracker_tools.stack.local_stack`).

Prints the figures as Markdown and writes them to ``build/compose/figures.json``. Every wait
has a timeout and says what did not come up, with the last lines of the container's log.

The steps: :mod:`tracker_tools.compose_check`.

Example:
    scripts/compose_test.sh            # what make test-compose runs
    python -m scripts.compose_check --down   # remove what a killed run left
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from tracker_tools.client import ClientError
from tracker_tools.compose_check import (
    STATE,
    TEST_VARIABLES,
    ComposeCheckError,
    Stack,
    check,
    markdown,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the check (or only ``--down``), print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--down", action="store_true", help="only remove the test project")
    args = parser.parse_args(argv)
    compose_bin = os.environ.get("COMPOSE_BIN")
    if not compose_bin:
        parser.error("COMPOSE_BIN is not set: run scripts/compose_test.sh (make test-compose)")
    # SIGTERM (CI's timeout, the shell's trap) unwinds like Ctrl-C: the project comes down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.down:
        env = {**os.environ, **dict.fromkeys(TEST_VARIABLES, "0"), TEST_VARIABLES[0]: "/none"}
        Stack(compose_bin, env).compose("down", "--volumes", "--remove-orphans")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        figures = check(compose_bin)
    except (ComposeCheckError, ClientError, FileNotFoundError, AssertionError) as exc:
        traceback.print_exc()
        print(f"compose-check: FAILED: {exc!r}", file=sys.stderr)
        return 1
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(markdown(figures))
    print("compose-check: passed", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

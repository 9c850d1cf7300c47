"""A real ``tritonserver`` on a CPU machine, for ``make serve``, the demo and tests.

The PyPI wheel ``nvidia-pytriton`` bundles ``tritonserver`` with only the
Python backend. It lives in its own virtual environment, ``.venv-triton``
(``nvidia-pytriton==0.7.0 "numpy<2" onnxruntime``: with numpy 2 the Python
backend reads zero tensors). The models run there through
``tracker_tools/triton_python_runner.py``, in a repository that
``tracker_tools.model_repository`` derives from the production one.

Usage::

    python -m scripts.triton_server --repository build/triton_repository

builds the local repository from ``model_repository/`` and serves it in the
foreground until Ctrl-C.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

from tracker_tools.client import ClientError, ServiceClient
from tracker_tools.machine import peak_rss_mb

logger = logging.getLogger(__name__)

#: The Triton virtual environment, beside the app's ``.venv``.
DEFAULT_VENV = Path(__file__).resolve().parents[1] / ".venv-triton"

_PR_SET_PDEATHSIG = 1
_PROBE = """\
import importlib.util, json, sys, sysconfig
spec = importlib.util.find_spec("pytriton")
print(json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "libdir": sysconfig.get_config_var("LIBDIR"),
    "pytriton": spec.submodule_search_locations[0] if spec else None,
}))
"""


def free_ports(count: int) -> list[int]:
    """Loopback ports free right now (held open together, so that they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class TritonServerError(RuntimeError):
    """The local Triton server could not be installed, started or made ready."""


@dataclass(frozen=True, kw_only=True)
class TritonInstallation:
    """Where ``tritonserver`` and its Python backend live in a virtual environment.

    Attributes:
        venv: The virtual environment (``.venv-triton``).
        python_version: Its Python, e.g. ``"3.11"``; the stub must match it.
        libdir: The directory holding that Python's ``libpython``.
        server_root: ``site-packages/pytriton/tritonserver``.

    """

    venv: Path
    python_version: str
    libdir: Path
    server_root: Path

    @classmethod
    def find(cls, venv: Path = DEFAULT_VENV) -> TritonInstallation:
        """Locate the server inside ``venv`` by asking its Python.

        Raises:
            TritonServerError: The environment or ``pytriton`` is missing.

        """
        python = venv / "bin" / "python"
        if not python.exists():
            raise TritonServerError(
                f"{venv} does not exist: create it with `make install` (python3.11 -m venv "
                f"{venv} && {venv}/bin/pip install -r requirements/triton.txt)"
            )
        probe = json.loads(
            subprocess.run(
                [str(python), "-c", _PROBE], check=True, capture_output=True, text=True
            ).stdout
        )
        if probe["pytriton"] is None:
            raise TritonServerError(f"nvidia-pytriton is not installed in {venv}")
        return cls(
            venv=venv,
            python_version=probe["python"],
            libdir=Path(probe["libdir"]),
            server_root=Path(probe["pytriton"]) / "tritonserver",
        )

    @property
    def binary(self) -> Path:
        """The ``tritonserver`` executable."""
        return self.server_root / "bin" / "tritonserver"

    @property
    def backends(self) -> Path:
        """The ``--backend-directory``."""
        return self.server_root / "backends"

    @property
    def stub(self) -> Path:
        """Where the Python backend expects its stub executable."""
        return self.backends / "python" / "triton_python_backend_stub"

    @property
    def stub_source(self) -> Path:
        """The stub built for this environment's Python version."""
        return self.server_root / "python_backend_stubs" / self.python_version / self.stub.name

    def environment(self) -> dict[str, str]:
        """Return the server's environment: this venv first on PATH, libpython findable.

        The Python stub finds its interpreter (and so the venv's numpy and
        onnxruntime) as the first ``python3`` on ``PATH``. ``PYTHONPATH`` and
        ``PYTHONHOME`` are dropped so that the app's packages (numpy 2) stay out.
        """
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["PATH"] = os.pathsep.join(filter(None, [str(self.venv / "bin"), env.get("PATH")]))
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            filter(None, [str(self.libdir), env.get("LD_LIBRARY_PATH")])
        )
        return env

    def prepare_stub(self, env: dict[str, str]) -> None:
        """Copy the stub into the backend once, then check it can load libpython.

        A stub that cannot load libpython makes the server hang instead of fail,
        so this checks ``ldd`` first.

        Raises:
            TritonServerError: A shared library of the stub is missing.

        """
        if not self.stub.exists():
            logger.info("Installing the Python %s backend stub", self.python_version)
            with tempfile.NamedTemporaryFile(dir=self.stub.parent, delete=False) as tmp:
                shutil.copyfile(self.stub_source, tmp.name)
            os.chmod(tmp.name, 0o755)
            os.replace(tmp.name, self.stub)  # atomic: parallel starts never see half a file
        ldd = subprocess.run(
            ["ldd", str(self.stub)], env=env, capture_output=True, text=True, check=False
        )
        missing = [line.strip() for line in ldd.stdout.splitlines() if "not found" in line]
        if ldd.returncode != 0 or missing:
            raise TritonServerError(
                f"the Python backend stub {self.stub} cannot load {missing or ldd.stderr.strip()} "
                f"with LD_LIBRARY_PATH={env['LD_LIBRARY_PATH']}: the Python of {self.venv} "
                "must be a shared-library build (libpython3.x.so in its LIBDIR)"
            )


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """Return a ``preexec_fn`` that makes the child get SIGTERM when the parent dies.

    The kernel sends the signal when the *thread* that forked exits, so start
    the server from a thread that lives as long as it should.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before the fork

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class LocalTritonServer:
    """A ``tritonserver`` child process serving a local (Python backend) repository.

    Example::

        with LocalTritonServer(repository=repo, models=["smpl"], log_file=log) as server:
            client = tritonclient.grpc.InferenceServerClient(server.grpc_url)
    """

    def __init__(
        self,
        *,
        repository: Path,
        models: Sequence[str],
        log_file: Path,
        http_port: int = 8000,
        grpc_port: int = 8001,
        metrics_port: int = 8002,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 60.0,
        venv: Path = DEFAULT_VENV,
    ) -> None:
        """Configure the server; nothing starts until :meth:`start`.

        Args:
            repository: The local model repository.
            models: Models to load (explicit model control).
            log_file: Where the server's output goes (overwritten).
            http_port: HTTP/REST port.
            grpc_port: gRPC port.
            metrics_port: Prometheus metrics port.
            host: Address every endpoint binds to.
            startup_timeout_s: Default timeout of :meth:`wait_ready`.
            venv: The virtual environment holding ``nvidia-pytriton``.

        Raises:
            ValueError: No model, or a non-positive timeout.

        """
        if not models:
            raise ValueError("models must name at least one model to load")
        if startup_timeout_s <= 0:
            raise ValueError(f"startup_timeout_s must be positive, got {startup_timeout_s}")
        self._repository = Path(repository)
        self._models = tuple(models)
        self._log_file = Path(log_file)
        self._ports = {"http": http_port, "grpc": grpc_port, "metrics": metrics_port}
        self._host = host
        self._startup_timeout_s = startup_timeout_s
        self._venv = venv
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP endpoint, e.g. ``http://127.0.0.1:8000``."""
        return f"http://{self._host}:{self._ports['http']}"

    @property
    def grpc_url(self) -> str:
        """Target ``host:port`` of the gRPC endpoint (gRPC targets have no scheme)."""
        return f"{self._host}:{self._ports['grpc']}"

    @property
    def metrics_url(self) -> str:
        """URL of the Prometheus metrics page."""
        return f"http://{self._host}:{self._ports['metrics']}/metrics"

    @property
    def models(self) -> tuple[str, ...]:
        """The models this server loads."""
        return self._models

    @property
    def log_file(self) -> Path:
        """The server's log file."""
        return self._log_file

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def _command(self, installation: TritonInstallation) -> list[str]:
        return [
            str(installation.binary),
            f"--model-repository={self._repository.resolve()}",
            f"--backend-directory={installation.backends}",
            "--model-control-mode=explicit",
            *(f"--load-model={name}" for name in self._models),
            f"--http-address={self._host}",
            f"--grpc-address={self._host}",
            f"--metrics-address={self._host}",
            f"--http-port={self._ports['http']}",
            f"--grpc-port={self._ports['grpc']}",
            f"--metrics-port={self._ports['metrics']}",
            "--allow-gpu-metrics=false",
            "--pinned-memory-pool-byte-size=0",
            "--exit-timeout-secs=5",
        ]

    def start(self) -> None:
        """Start the server process (returns at once; see :meth:`wait_ready`).

        Raises:
            TritonServerError: Already started, or the installation is unusable.

        """
        if self._process is not None:
            raise TritonServerError("server already started")
        installation = TritonInstallation.find(self._venv)
        env = installation.environment()
        installation.prepare_stub(env)
        command = self._command(installation)
        self._log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self._log_file.open("wb")
        logger.info("Starting %s (log: %s)", " ".join(command), self._log_file)
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - needed for prctl
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
        )

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of the server log."""
        try:
            text = self._log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _ready(self) -> bool:
        paths = ["/v2/health/ready", *(f"/v2/models/{name}/ready" for name in self._models)]
        server = ServiceClient(self.http_url, timeout_s=1.0)
        try:  # 400 while loading; refused or timed out: ClientError
            return all(server.request("GET", path).status == 200 for path in paths)
        except ClientError:
            return False

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Block until the server and every model report ready.

        Args:
            timeout_s: How long to wait; defaults to the constructor's ``startup_timeout_s``.

        Raises:
            TritonServerError: Not started, or the process exited (message has the log tail).
            TimeoutError: Not ready in time (message has the log tail).

        """
        if self._process is None:
            raise TritonServerError("server not started")
        timeout_s = self._startup_timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        while not self._ready():
            code = self._process.poll()
            if code is not None:
                raise TritonServerError(
                    f"tritonserver exited with code {code} during startup; "
                    f"log {self._log_file}:\n{self.log_tail()}"
                )
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(
                    f"tritonserver not ready after {timeout_s:.0f} s; "
                    f"log {self._log_file}:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        logger.info(
            "Triton ready in %.1f s: %s", time.monotonic() - started, ", ".join(self._models)
        )

    def pids(self) -> set[int]:
        """The server's process and its children (the Python-backend stubs)."""
        if self._process is None:
            raise TritonServerError("server not started")
        pids = {self._process.pid}
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
            except (OSError, ValueError):
                continue  # the process ended while we read it
            if int(fields.get("PPid", "0")) == self._process.pid:
                pids.add(int(status.parent.name))
        return pids

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the server and its children (Python-backend stubs), in MB."""
        return sum(peak_rss_mb(pid) for pid in self.pids())

    def wait(self) -> int:
        """Block until the server exits; return its exit code."""
        if self._process is None:
            raise TritonServerError("server not started")
        return self._process.wait()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the server: SIGINT, wait up to ``timeout_s``, then kill. Idempotent.

        ``timeout_s=0`` kills at once, as a crash would (used to test outages).
        """
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGINT if timeout_s > 0 else signal.SIGKILL)
                try:
                    process.wait(timeout=timeout_s or None)
                except subprocess.TimeoutExpired:
                    logger.warning("tritonserver ignored SIGINT for %.0f s; killing it", timeout_s)
                    process.kill()
                    process.wait()
            logger.info("tritonserver stopped (exit code %s)", process.returncode)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        """Start and wait until ready; stop again if that fails."""
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

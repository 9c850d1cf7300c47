"""The processes of a scaled-out deployment on one machine, for ``make test-scale``.

A throwaway PostgreSQL cluster (Debian's package: ``initdb`` and ``postgres`` in a temporary
folder, on a free port), an nginx proxy with consistent hashing on ``X-Session-Id`` (the
rules of ``docker/nginx/tracker-proxy.conf``), and the tracker's own processes (API replicas,
``python -m tracker_service.worker``). Each is a :class:`Child`: started with its output in
a log file, stopped by its PID (SIGINT or SIGTERM, a timed wait, then SIGKILL), and dying
with the test when the test dies.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

from tracker_tools.client import ClientError, ServiceClient
from tracker_tools.triton_server import _die_with_parent

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
PROXY_RULES = REPO_ROOT / "docker" / "nginx" / "tracker-proxy.conf"


class ClusterError(RuntimeError):
    """A process did not come up (the message says which, and its log's tail)."""


class Child:
    """One child process, its output in a log file.

    Args:
        name: Its name in messages.
        command: The command line.
        log_file: Where its stdout and stderr go (appended: a restart keeps the first run's).
        env: Its environment (the test's own when None).
        cwd: Its working folder.
        user: Run it as this user (PostgreSQL refuses to run as root).
        stop_signal: Asks it to stop (SIGINT: PostgreSQL's fast shutdown).

    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_file: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO_ROOT,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self._command = list(command)
        self.log_file = log_file
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._user = user
        self._stop_signal = stop_signal
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start it (again, after a kill)."""
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                self._command, stdout=out, stderr=subprocess.STDOUT, env=self._env,
                cwd=self._cwd, user=self._user, preexec_fn=_die_with_parent(os.getpid()),
            )  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        """Its process id."""
        assert self.process is not None, f"{self.name} was not started"
        return self.process.pid

    def running(self) -> bool:
        """Whether it runs."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or an out-of-memory kill would."""
        if self.running():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Its stop signal, a wait of ``timeout_s``, then SIGKILL; its exit code. Idempotent."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(self._stop_signal)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored its stop signal for %.0f s; killed", self.name, timeout_s)
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def tail(self, lines: int = 30) -> str:
        """The end of its log."""
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], timeout_s: float, what: str) -> float:
        """Poll ``ready`` until true; seconds waited.

        Raises:
            ClusterError: It exited, or ``timeout_s`` passed: says ``what`` did not come up.

        """
        started = time.monotonic()
        while not ready():
            if not self.running():
                raise ClusterError(f"{self.name} exited before {what}:\n{self.tail()}")
            if time.monotonic() - started > timeout_s:
                raise ClusterError(f"{what} within {timeout_s:.0f} s: no\n{self.tail()}")
            time.sleep(0.2)
        return time.monotonic() - started

    def __enter__(self) -> Self:
        """Start it."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop it."""
        self.stop()


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL binaries (the newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> int:
    return int(Path(path).parts[4]) if Path(path).parts[4].isdigit() else 0


class LocalPostgres(Child):
    """A throwaway PostgreSQL cluster on ``port`` of the loopback interface.

    Its data, socket and log live in a new folder under the system's temporary folder (the
    ``postgres`` user must reach it: when this process is root, the server runs as that
    user, since PostgreSQL refuses root); :meth:`stop` removes it. Trust authentication on
    the loopback: a test cluster, never a deployment's.

    Args:
        port: Its TCP port.

    """

    def __init__(self, port: int) -> None:
        binaries = postgres_bin()
        if binaries is None:
            raise ClusterError("PostgreSQL is not installed (apt-get install postgresql)")
        user = "postgres" if os.geteuid() == 0 else None
        self.folder = Path(tempfile.mkdtemp(prefix="tracker-postgres-"))
        if user is not None:
            account = pwd.getpwnam(user)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self.port = port
        self.url = f"postgresql://tracker@127.0.0.1:{port}/tracker"
        data = self.folder / "data"
        initdb = subprocess.run(
            [binaries / "initdb", "-D", data, "-U", "tracker", "--auth=trust", "-E", "UTF8"],
            capture_output=True, text=True, user=user, cwd=self.folder,
        )  # fmt: skip
        if initdb.returncode:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise ClusterError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        super().__init__(
            "postgres",
            [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(self.folder),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=50"],
            self.folder / "postgres.log", cwd=self.folder, user=user, stop_signal=signal.SIGINT,
        )  # fmt: skip

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Fast shutdown (SIGINT) by PID, then remove its folder."""
        code = super().stop(timeout_s)
        shutil.rmtree(self.folder, ignore_errors=True)
        return code

    def wait_ready(self, timeout_s: float = 60.0) -> float:
        """Wait until it accepts connections, then create the ``tracker`` database."""
        import psycopg

        admin = f"postgresql://tracker@127.0.0.1:{self.port}/postgres"

        def accepts() -> bool:
            try:
                with psycopg.connect(admin, connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                return False

        waited = self.wait_until(accepts, timeout_s, f"PostgreSQL accepting on port {self.port}")
        with psycopg.connect(admin, autocommit=True) as db:
            if not db.execute("SELECT 1 FROM pg_database WHERE datname = 'tracker'").fetchone():
                db.execute("CREATE DATABASE tracker")
        return waited


def nginx_bin() -> str | None:
    """The path of nginx, or None when it is not installed."""
    return shutil.which("nginx") or next(iter(glob.glob("/usr/sbin/nginx")), None)


class LocalNginx(Child):
    """nginx in front of API replicas: consistent hashing on ``X-Session-Id``.

    Its configuration, logs and temporary files live in a new folder under the system's
    temporary folder (its workers run as ``nobody`` when this process is root, and must
    reach it); :meth:`stop` removes it.

    Args:
        port: The port it listens on (loopback).
        upstreams: The replicas, ``host:port``.

    """

    def __init__(self, port: int, upstreams: Sequence[str]) -> None:
        binary = nginx_bin()
        if binary is None:
            raise ClusterError("nginx is not installed (apt-get install nginx)")
        self.folder = folder = Path(tempfile.mkdtemp(prefix="tracker-nginx-"))
        folder.chmod(0o777)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        servers = "\n".join(f"    server {u} max_fails=1 fail_timeout=3s;" for u in upstreams)
        temp = " ".join(
            f"{kind}_temp_path {folder}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (folder / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\n"
            f"error_log {folder}/error.log warn;\nevents {{ worker_connections 512; }}\n"
            f"http {{\n  access_log {folder}/access.log;\n  {temp}\n"
            f"  upstream tracker {{\n    hash $http_x_session_id consistent;\n{servers}\n  }}\n"
            f"  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n"
            f"      proxy_pass http://tracker;\n      include {PROXY_RULES};\n    }}\n  }}\n}}\n"
        )
        super().__init__(
            "nginx", [binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
            folder / "nginx.out", stop_signal=signal.SIGQUIT,
        )  # fmt: skip

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Graceful stop (SIGQUIT) by PID, then remove its folder."""
        code = super().stop(timeout_s)
        shutil.rmtree(self.folder, ignore_errors=True)
        return code

    def wait_ready(self, timeout_s: float = 30.0) -> float:
        """Wait until it listens."""
        return self.wait_until(lambda: _answers(self.url), timeout_s, f"nginx on {self.url}")


def tracker_process(
    name: str, module: str, log_file: Path, settings: Mapping[str, str]
) -> Child:
    """``python -m tracker_service`` (an API replica) or ``tracker_service.worker``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    return Child(name, [sys.executable, "-m", module], log_file, env={**env, **settings})


def _answers(url: str) -> bool:
    try:  # any HTTP status is an answer
        ServiceClient(url, timeout_s=2.0).request("GET", "")
    except ClientError:
        return False
    return True

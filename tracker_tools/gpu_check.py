"""Every GPU figure in one bounded command: ``make gpu-check`` (``scripts/gpu_check.sh``).

The check orchestrates the repository's own commands, each a child process with its own time
budget, all within one deadline (10 minutes from a fresh clone on a GPU machine, installs
included); a step that fails or runs out of time is reported with its reason and the rest go
on:

1. the GPU wheels (``requirements/gpu.txt`` in both virtual environments, in place of the
   CPU ``onnxruntime``; ``requirements/tensorrt.txt`` in the app's);
2. HMR2 exported in float32 and in float16 (``scripts/export_hmr2.py``), and float16 checked
   against float32 on the reference input (:func:`precision`: vertex differences in mm);
3. per-crop throughput, latency, GPU memory and setup time at batch 1 to 64, one engine per
   step (``scripts/benchmark_hmr2.py``);
4. the local stack (``tracker_tools.stack``: the pytriton wheel's ``tritonserver``, its
   Python backend running ONNX Runtime on ``--providers``): runner.mp4 as 640x360 PNG frames
   one at a time and from a FIFO pool of 4 (``scripts/benchmark.py``), and as one
   whole-video job (``scripts/benchmark_video.py``), with Triton's batch sizes.

:mod:`tracker_tools.gpu_report` turns the outcomes and the steps' JSON into ``docs/gpu.md``
and a one-screen summary. ``cpu=True`` runs the same plan on the CPU with the
tiny model set (CI's proof that it cannot rot); :func:`dry_run` resolves the GPU wheels
against the registry without installing anything. Nothing here imports more than the
standard library at import time, so the dry run needs no virtual environment.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Where the steps write their reports (``build/`` is ignored by git).
WORK = REPO_ROOT / "build" / "gpu_check"
APP_VENV = REPO_ROOT / ".venv"
TRITON_VENV = REPO_ROOT / ".venv-triton"
SMPL_DIR = REPO_ROOT / "build" / "smpl"
MODEL_REPOSITORY = REPO_ROOT / "model_repository"
#: The whole check's bound on a GPU machine, from a fresh clone (installs included).
GPU_DEADLINE_S = 600.0
#: The CPU form's bound (CI's budget for it is 3 minutes).
CPU_DEADLINE_S = 175.0
#: How long a step may take to stop after SIGTERM before it is killed.
STOP_GRACE_S = 10.0
GPU_ENGINES = ("PyTorch eager CUDA", "ONNX Runtime CUDA", "ONNX Runtime TensorRT FP16")
CPU_ENGINES = ("PyTorch eager", "ONNX Runtime")
#: The reference input of the shared HMR2 data (two crops), when it is beside the repository.
REFERENCE_INPUT = REPO_ROOT.parent / "shared" / "reference" / "hmr2" / "reference_outputs.npz"


@dataclass(frozen=True)
class Step:
    """One command of the check.

    Attributes:
        name: What it measures, as the report names it.
        budget_s: Its share of the deadline: it is stopped beyond.
        argv: The command, run from the repository's root.
        report: The JSON it writes, read by the report (None: it writes none).
        needs: Steps that must have succeeded before it (else it is skipped, saying which).

    """

    name: str
    budget_s: float
    argv: tuple[str, ...]
    report: Path | None = None
    needs: tuple[str, ...] = ()


@dataclass
class Outcome:
    """How a step went.

    Attributes:
        name: The step's name.
        budget_s: Its budget.
        seconds: How long it ran (0 when skipped).
        status: ``ok``, ``failed``, ``timed out`` or ``skipped``.
        detail: Why, when not ok: the last line of its output, or why it did not run.
        log: Its full output.

    """

    name: str
    budget_s: float
    seconds: float = 0.0
    status: str = "skipped"
    detail: str = ""
    log: str = ""


@dataclass(frozen=True, kw_only=True)
class Options:
    """What one run of the check does.

    Attributes:
        cpu: CPU providers and the tiny model set (no GPU, no GPU wheels).
        frames: runner.mp4's frames posted to the stack and sent as one job.
        batches: Per-crop batch sizes.
        repeats: Timed runs per batch (after one warm-up).
        python: The app environment's interpreter that runs every step.
        work: Where the steps write their models, reports and logs.

    """

    cpu: bool
    frames: int
    batches: tuple[int, ...]
    repeats: int
    python: str = str(APP_VENV / "bin" / "python")
    work: Path = WORK


def gpu_options() -> Options:
    """The GPU form: the full model, the issue's batch sizes, the 140-frame clip."""
    return Options(cpu=False, frames=140, batches=(1, 8, 16, 32, 64), repeats=5)


def cpu_options() -> Options:
    """The CPU form: the same plan, small enough for CI."""
    return Options(cpu=True, frames=8, batches=(1, 8), repeats=2)


def _install_script(wheels: Path) -> str:
    """The GPU wheels, in place of the CPU ``onnxruntime`` of both environments.

    Each environment's wheels are downloaded into ``wheels`` first, so that a machine that
    cannot reach the registry keeps its CPU ``onnxruntime``.
    """
    commands = ["set -e"]
    for venv, constraints in ((APP_VENV, ""), (TRITON_VENV, " -c requirements/triton.txt")):
        pip, wanted = venv / "bin" / "pip", f"-r requirements/gpu.txt{constraints}"
        commands += [
            f"{pip} download -q -d {wheels} {wanted}",
            f"{pip} uninstall -y -q onnxruntime",
            f"{pip} install -q --no-index --find-links {wheels} {wanted}",
        ]
    return "; ".join(commands)


#: Each step's budget in seconds, (CPU form, GPU form). The GPU budgets leave
#: ``GPU_SETUP_S`` of the 10 minutes to ``make``; they are planned for a 16-core machine with
#: an H200-class GPU and were not measured there (no GPU was at hand where this was written).
#: The CPU ones were measured on this project's 2-core machine while it was loaded.
BUDGETS_S = {
    "GPU wheels": (0, 60),
    "TensorRT wheels": (0, 20),
    "export float32": (25, 50),
    "export float16": (25, 35),
    "float16 vs float32": (10, 15),
    "per crop: PyTorch eager": (20, 0),
    "per crop: ONNX Runtime": (15, 0),
    "per crop: PyTorch eager CUDA": (0, 30),
    "per crop: ONNX Runtime CUDA": (0, 30),
    "per crop: ONNX Runtime TensorRT FP16": (0, 60),
    "stack: frames one at a time and from a FIFO pool of 4": (40, 45),
    "stack: one whole-video job": (40, 45),
}
#: What ``make`` (virtual environments, stand-in body model, detector) may take on a fresh
#: GPU machine within the 10 minutes (three jobs at once; planned, not measured).
GPU_SETUP_S = 210.0


def plan(options: Options) -> list[Step]:
    """The steps of one run, in order, each with its budget from :data:`BUDGETS_S`."""
    python, work, cpu = options.python, options.work, options.cpu
    size = "tiny" if cpu else "full"
    float32 = work / "float32" if cpu else MODEL_REPOSITORY
    float16 = work / "float16"
    providers = () if cpu else ("--providers", "CUDAExecutionProvider")
    export = (
        python, "-m", "scripts.export_hmr2", "--weights", "generated", "--config", size,
        "--smpl", str(SMPL_DIR / "SMPL_NEUTRAL.npz"),
        "--extra-regressor", str(SMPL_DIR / "SMPL_to_J19.pkl"),
    )  # fmt: skip
    commands: list[tuple[str, tuple[str, ...], Path | None]] = []
    if not cpu:
        commands += [
            ("GPU wheels", ("bash", "-c", _install_script(work / "wheels")), None),
            ("TensorRT wheels", (str(APP_VENV / "bin" / "pip"), "install", "-q", "-r",
                                 "requirements/tensorrt.txt"), None),
        ]  # fmt: skip
    commands += [
        ("export float32", (*export, "--repository", str(float32)), None),
        ("export float16", (*export, "--fp16", "--no-verify", "--repository", str(float16)), None),
        ("float16 vs float32",
         (python, "-m", "scripts.gpu_check", "precision", str(float32), str(float16),
          "--providers", "CPUExecutionProvider" if cpu else "CUDAExecutionProvider",
          "--out", str(work / "precision.json")),
         work / "precision.json"),
    ]  # fmt: skip
    for engine in CPU_ENGINES if cpu else GPU_ENGINES:
        out = work / f"hmr2_{engine.lower().replace(' ', '_')}.md"
        commands.append((
            f"per crop: {engine}",
            (python, "-m", "scripts.benchmark_hmr2", "--config", size, "--repository",
             str(float32), "--engines", engine, "--batches", *map(str, options.batches),
             "--repeats", str(options.repeats), "--out", str(out)),
            out.with_suffix(".json"),
        ))  # fmt: skip
    frames = str(options.frames)
    commands += [
        ("stack: frames one at a time and from a FIFO pool of 4",
         (python, "-m", "scripts.benchmark", "--hmr2", size, "--videos", "runner.mp4:backend",
          "--frames", frames, "--workers", "1", "4", "--sessions", "1", "--session-frames", "2",
          "--throughput-video", "runner.mp4:backend", *providers, "--out", str(work / "stack.md")),
         work / "stack.json"),
        ("stack: one whole-video job",
         (python, "-m", "scripts.benchmark_video", "--hmr2", size, "--frames", frames,
          *providers, "--out", str(work / "video.md")),
         work / "video.json"),
    ]  # fmt: skip
    return [Step(name, BUDGETS_S[name][0 if cpu else 1], argv, report, _needs(name, cpu))
            for name, argv, report in commands]  # fmt: skip


def _needs(name: str, cpu: bool) -> tuple[str, ...]:
    """The steps whose outputs a step uses: the exported models, and the GPU wheels.

    PyTorch builds its own network; the CPU form's stack serves the tiny set of
    ``tracker_tools.tiny_models``, the GPU form's the float32 export in ``model_repository``.
    """
    needs = []
    if name == "float16 vs float32":
        needs = ["export float32", "export float16"]
    elif (name.startswith("per crop") and "PyTorch" not in name) or (
        name.startswith("stack") and not cpu
    ):
        needs = ["export float32"]
    if needs and not cpu:
        needs += ["GPU wheels", *(["TensorRT wheels"] if "TensorRT" in name else [])]
    return tuple(needs)


def gpu_environment() -> dict[str, str]:
    """This process's environment, the GPU wheels' libraries first on the loader's path."""
    current = os.environ.get("LD_LIBRARY_PATH", "")
    return {**os.environ, "LD_LIBRARY_PATH": library_path((APP_VENV, TRITON_VENV), current)}


def library_path(venvs: Sequence[Path], current: str = "") -> str:
    """``LD_LIBRARY_PATH`` with the CUDA, cuDNN and TensorRT libraries the wheels installed.

    ONNX Runtime's CUDA and TensorRT providers load them by name; pip puts them under
    ``site-packages/nvidia/**/lib`` and ``site-packages/tensorrt_libs``, off the loader's path.
    """
    found = []
    for venv in venvs:
        for site in sorted(venv.glob("lib/python3*/site-packages")):
            found += sorted(str(p) for p in site.glob("nvidia/**/lib") if p.is_dir())
            found += [str(p) for p in [site / "tensorrt_libs"] if p.is_dir()]
    return os.pathsep.join(filter(None, [*found, current]))


def run_step(step: Step, timeout_s: float, env: Mapping[str, str], log_file: Path) -> Outcome:
    """Run one step as its own process group; stop it (SIGTERM, then kill) past the timeout.

    Args:
        step: The step.
        timeout_s: How long it may run.
        env: Its environment.
        log_file: Where its output goes.

    Returns:
        Its outcome; the detail holds its last lines when it did not succeed.

    """
    outcome = Outcome(step.name, step.budget_s, log=str(log_file))
    log_file.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log_file.open("wb") as out:
        process = subprocess.Popen(
            step.argv, cwd=REPO_ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            code = process.wait(timeout=timeout_s)
            outcome.status = "ok" if code == 0 else "failed"
        except subprocess.TimeoutExpired:
            _stop_group(process)
            outcome.status = "timed out"
    outcome.seconds = time.perf_counter() - start
    if outcome.status != "ok":
        lines = log_file.read_text(errors="replace").strip().splitlines()
        reason = f"stopped after {timeout_s:.0f} s" if outcome.status == "timed out" else ""
        outcome.detail = " / ".join([reason, *lines[-1:]]).strip(" /")
    return outcome


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the step's process group, then kill what is left after the grace time."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        log.warning("step pid %d ignored SIGTERM; killing its group", process.pid)
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its children too (the service, Triton)
    except ProcessLookupError:
        pass
    process.wait()


def run_plan(
    steps: Sequence[Step],
    deadline: float,
    environment: Callable[[], Mapping[str, str]],
    log_dir: Path,
) -> list[Outcome]:
    """Run the steps in order, each within its budget and the time left before ``deadline``.

    Args:
        steps: The plan.
        deadline: ``time.monotonic()`` by which everything must have ended.
        environment: Each step's environment, made when it starts (after earlier installs).
        log_dir: Where each step's output goes (``<index>.log``).

    Returns:
        One outcome per step; those left without time are ``skipped``.

    """
    outcomes: list[Outcome] = []
    for index, step in enumerate(steps):
        left = deadline - time.monotonic()
        failed = [o.name for o in outcomes if o.name in step.needs and o.status != "ok"]
        if failed or left < 1.0:
            reason = f"needs {', '.join(failed)}" if failed else "no time left"
            outcomes.append(Outcome(step.name, step.budget_s, detail=reason))
            continue
        log.info("%s (budget %.0f s) ...", step.name, step.budget_s)
        outcome = run_step(
            step, min(step.budget_s, left), environment(), log_dir / f"{index:02d}.log"
        )
        log.info("%s: %s in %.1f s %s", step.name, outcome.status, outcome.seconds, outcome.detail)
        outcomes.append(outcome)
    return outcomes


class ProviderError(RuntimeError):
    """ONNX Runtime fell back from a requested execution provider (a CUDA library missing)."""


def require_providers(session: Any, requested: Sequence[Any]) -> list[str]:
    """The session's providers; raise when one requested is not among them.

    ONNX Runtime falls back to the CPU with only a warning when a GPU provider cannot load:
    a figure measured so would be no GPU figure.

    Args:
        session: An ``onnxruntime.InferenceSession``.
        requested: The providers it was made with: names, or (name, options) pairs.

    Raises:
        ProviderError: A requested provider is not active.

    """
    active = list(session.get_providers())
    names = [p if isinstance(p, str) else p[0] for p in requested]
    missing = [name for name in names if name not in active]
    if missing:
        raise ProviderError(f"ONNX Runtime could not use {missing} (active: {active}); see its "
                            "warnings above for the library it could not load")  # fmt: skip
    return active


def precision(
    float32_model: Path, float16_model: Path, providers: Sequence[str]
) -> dict[str, Any]:
    """HMR2's float16 export against its float32 export, on the reference input.

    Args:
        float32_model: The float32 ``model.onnx``.
        float16_model: The float16 one (float32 inputs and outputs).
        providers: ONNX Runtime's execution providers.

    Returns:
        The input's name and batch, the providers used, and the max and mean vertex
        difference in millimetres (vertices are in metres).

    """
    import numpy as np
    import onnxruntime as ort

    if REFERENCE_INPUT.is_file():
        with np.load(REFERENCE_INPUT) as data:
            crops, source = data["input"], f"the shared reference input ({REFERENCE_INPUT.name})"
    else:
        crops = np.random.default_rng(0).standard_normal((2, 3, 256, 192)).astype(np.float32)
        source = f"random crops (no {REFERENCE_INPUT})"
    vertices = []
    used: list[str] = []
    for path in (float32_model, float16_model):
        session = ort.InferenceSession(str(path), providers=list(providers))
        used = require_providers(session, providers)
        vertices.append(session.run(["vertices"], {"crops": crops})[0].astype(np.float64))
    millimetres = 1000.0 * np.linalg.norm(vertices[1] - vertices[0], axis=-1)
    return {
        "input": source,
        "crops": int(crops.shape[0]),
        "providers": used,
        "vertex_max_mm": float(millimetres.max()),
        "vertex_mean_mm": float(millimetres.mean()),
    }


_VERSIONS = """\
import importlib.metadata as m, json, sys
names = sys.argv[1:]
found = {}
for name in names:
    try:
        found[name] = m.version(name)
    except m.PackageNotFoundError:
        pass
print(json.dumps(found))
"""
#: The packages whose versions the report gives (the CUDA runtime and cuDNN as wheels).
PACKAGES = ("torch", "onnxruntime", "onnxruntime-gpu", "tensorrt-cu13-libs", "nvidia-pytriton",
            "nvidia-cuda-runtime", "nvidia-cudnn-cu13", "numpy")  # fmt: skip


def versions() -> dict[str, dict[str, str]]:
    """The packages that make the figures, per virtual environment (none when it is absent)."""
    found = {}
    for venv in (APP_VENV, TRITON_VENV):
        python = venv / "bin" / "python"
        if python.exists():
            done = subprocess.run([str(python), "-c", _VERSIONS, *PACKAGES], capture_output=True,
                                  text=True, timeout=60, check=False)  # fmt: skip
            found[venv.name] = json.loads(done.stdout or "{}")
    return found


def dry_run_groups() -> list[tuple[str, list[str]]]:
    """What a GPU machine would install, as ``pip install`` arguments per environment.

    TensorRT's group is the last and optional: without it only the TensorRT engine is not run.
    """
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    torch = next(r for r in pyproject["project"]["optional-dependencies"]["export"]
                 if r.startswith("torch"))  # fmt: skip
    return [
        (f"{APP_VENV.name}: PyTorch ({torch}, from `make install`; PyPI's Linux wheel is the "
         "CUDA build)", [torch]),
        (f"{APP_VENV.name}: ONNX Runtime GPU (replaces onnxruntime)",
         ["-r", "requirements/gpu.txt"]),
        (f"{TRITON_VENV.name}: ONNX Runtime GPU (replaces onnxruntime; numpy<2 kept)",
         ["-r", "requirements/gpu.txt", "-c", "requirements/triton.txt"]),
        (f"{APP_VENV.name}: TensorRT libraries (optional: the TensorRT engine)",
         ["-r", "requirements/tensorrt.txt"]),
    ]  # fmt: skip


def dry_run(timeout_s: float = 180.0) -> list[dict[str, Any]]:
    """Resolve each group against the registry with ``pip install --dry-run --report``.

    ``--isolated`` ignores this machine's pip configuration (local mirrors, constraints), and
    ``--ignore-installed`` and ``--only-binary :all:`` resolve what a fresh machine would
    download; nothing is installed.

    Returns:
        Per group: its label, the ``pip`` command, and the packages (name, version) or the
        error that stopped the resolution.

    """
    results: list[dict[str, Any]] = []
    for label, arguments in dry_run_groups():
        command = [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run",
                   "--ignore-installed", "--only-binary", ":all:", "--quiet", "--report", "-",
                   *arguments]  # fmt: skip
        shown = "pip install --dry-run --ignore-installed --only-binary :all: " + " ".join(
            arguments
        )
        try:
            done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=timeout_s, check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            results.append({"group": label, "command": shown,
                            "error": f"no answer in {timeout_s:.0f} s"})  # fmt: skip
            continue
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
            results.append({"group": label, "command": shown,
                            "error": " ".join(errors) or done.stderr.strip()[-300:]})  # fmt: skip
            continue
        report = json.loads(done.stdout)
        packages = [(i["metadata"]["name"], i["metadata"]["version"]) for i in report["install"]]
        results.append({"group": label, "command": shown, "packages": packages})
    return results

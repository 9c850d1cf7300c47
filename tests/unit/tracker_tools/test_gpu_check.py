"""The GPU check's plan, step runner, precision check and install lists (runs: CI's CPU form)."""

import os
import re
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tracker_tools import gpu_check as check
from tracker_tools import machine
from tracker_tools.gpu_check import Options, Step
from tracker_tools.hmr2.benchmark import ENGINES

REPO = Path(__file__).resolve().parents[3]


def modules(steps):
    return [s.argv[s.argv.index("-m") + 1] for s in steps if "-m" in s.argv]


@pytest.mark.parametrize(
    ("options", "deadline"),
    [(check.gpu_options(), check.GPU_DEADLINE_S - check.GPU_SETUP_S),
     (check.cpu_options(), check.CPU_DEADLINE_S)],
)  # fmt: skip
def test_plan_fits_its_deadline_and_runs_the_repos_own_commands(options, deadline):
    steps = check.plan(options)
    assert sum(s.budget_s for s in steps) <= deadline and all(s.budget_s > 0 for s in steps)
    for module in modules(steps):
        assert (REPO / Path(*module.split("."))).with_suffix(".py").is_file(), module
    for step in steps:
        if "--engines" in step.argv:
            assert step.argv[step.argv.index("--engines") + 1] in ENGINES


def test_cpu_plan_installs_nothing_and_stays_on_the_cpu_with_the_tiny_set():
    steps = check.plan(check.cpu_options())
    assert not any("pip" in " ".join(s.argv) for s in steps)
    assert not any("CUDAExecutionProvider" in s.argv for s in steps)
    for flag in ("--config", "--hmr2"):
        assert all(s.argv[s.argv.index(flag) + 1] == "tiny" for s in steps if flag in s.argv)


def test_gpu_plan_installs_the_gpu_wheels_then_measures_every_engine_on_cuda():
    steps = check.plan(check.gpu_options())
    assert [s.name for s in steps[:2]] == ["GPU wheels", "TensorRT wheels"]
    script = steps[0].argv[-1].split("; ")
    for venv in (check.APP_VENV, check.TRITON_VENV):  # nothing uninstalled before the download
        pip = str(venv / "bin" / "pip")
        mine = [command.split()[1] for command in script if command.startswith(pip + " ")]
        assert mine == ["download", "uninstall", "install"]
    assert all("requirements/gpu.txt" in c for c in script if "download" in c or "--no-index" in c)
    engines = [s.argv[s.argv.index("--engines") + 1] for s in steps if "--engines" in s.argv]
    assert engines == list(check.GPU_ENGINES)
    stack = [s for s in steps if s.name.startswith("stack")]
    assert all("CUDAExecutionProvider" in s.argv and "full" in s.argv for s in stack)
    assert "140" in stack[1].argv  # the whole 140-frame clip as one job


def test_a_step_past_its_time_is_stopped_with_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    step = Step("sleeper", 1.0, ("bash", "-c", f"sleep 60 & echo $! > {pid_file}; wait"))
    start = time.monotonic()
    outcome = check.run_step(step, 1.0, os.environ, tmp_path / "sleeper.log")
    assert outcome.status == "timed out" and "stopped after 1 s" in outcome.detail
    assert time.monotonic() - start < 1.0 + check.STOP_GRACE_S
    assert not running(int(pid_file.read_text()))


def running(pid: int) -> bool:
    """Whether a process runs (a zombie no longer does: only its exit status is left)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_failing_step_says_why_and_the_rest_go_on_until_the_deadline(tmp_path):
    steps = [
        Step("fails", 10.0, ("bash", "-c", "echo first; echo 'no CUDA here' >&2; exit 3")),
        Step("slow", 10.0, ("sleep", "30")),
        Step("late", 10.0, ("true",)),
    ]
    outcomes = check.run_plan(steps, time.monotonic() + 2.0, lambda: dict(os.environ), tmp_path)
    assert [o.status for o in outcomes] == ["failed", "timed out", "skipped"]
    assert outcomes[0].detail == "no CUDA here" and outcomes[2].detail == "no time left"
    assert outcomes[1].seconds < 2.0 + check.STOP_GRACE_S


def test_library_path_finds_the_wheels_cuda_and_tensorrt_libraries(tmp_path):
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    for folder in ("nvidia/cudnn/lib", "nvidia/cu13/lib", "tensorrt_libs", "nvidia/cudnn/include"):
        (site / folder).mkdir(parents=True)
    path = check.library_path([tmp_path / "venv", tmp_path / "absent"], "/usr/lib/x")
    assert path.split(os.pathsep) == [
        str(site / "nvidia/cu13/lib"), str(site / "nvidia/cudnn/lib"), str(site / "tensorrt_libs"),
        "/usr/lib/x",
    ]  # fmt: skip


def _model(path: Path, float16: bool) -> Path:
    """A graph with the check's names: vertices = crops as (n, -1, 3), through float16 or not."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Reshape", ["x", "shape"], ["vertices"])]
    if float16:
        nodes[:0] = [helper.make_node("Cast", ["crops"], ["half"], to=TensorProto.FLOAT16),
                     helper.make_node("Cast", ["half"], ["x"], to=TensorProto.FLOAT)]  # fmt: skip
    else:
        nodes.insert(0, helper.make_node("Identity", ["crops"], ["x"]))
    graph = helper.make_graph(
        nodes, "vertices",
        [helper.make_tensor_value_info("crops", TensorProto.FLOAT, ["n", 3, 256, 192])],
        [helper.make_tensor_value_info("vertices", TensorProto.FLOAT, None)],
        [helper.make_tensor("shape", TensorProto.INT64, [3], [0, -1, 3])],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_precision_is_the_vertex_distance_in_millimetres(tmp_path, monkeypatch):
    crops = np.random.default_rng(1).standard_normal((2, 3, 256, 192)).astype(np.float32)
    np.savez(tmp_path / "reference.npz", input=crops)
    monkeypatch.setattr(check, "REFERENCE_INPUT", tmp_path / "reference.npz")
    float32, float16 = _model(tmp_path / "32.onnx", False), _model(tmp_path / "16.onnx", True)
    result = check.precision(float32, float16, ["CPUExecutionProvider"])
    rounded = crops.astype(np.float16).astype(np.float64) - crops
    expected = 1000.0 * np.linalg.norm(rounded.reshape(2, -1, 3), axis=-1)
    assert result["crops"] == 2 and result["providers"] == ["CPUExecutionProvider"]
    assert "reference input" in result["input"]
    assert result["vertex_max_mm"] == pytest.approx(expected.max(), rel=1e-6)
    assert result["vertex_mean_mm"] == pytest.approx(expected.mean(), rel=1e-6)
    assert result["vertex_max_mm"] > 0


def test_the_gpu_wheels_are_pinned_and_the_dry_run_installs_what_the_check_does():
    pins = {}
    for name in ("gpu.txt", "tensorrt.txt"):
        for line in (REPO / "requirements" / name).read_text().splitlines():
            if line and not line.startswith("#"):
                assert re.fullmatch(r"[a-z0-9-]+(\[[a-z,]+\])?==[0-9.]+", line), line
                pins[line.split("[")[0].split("==")[0]] = line
    assert set(pins) == {"onnxruntime-gpu", "tensorrt-cu13-libs"}
    groups = dict(check.dry_run_groups())
    export = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    torch = next(r for r in export["optional-dependencies"]["export"] if r.startswith("torch"))
    assert [torch] in groups.values()
    assert sum("requirements/gpu.txt" in args for args in groups.values()) == 2
    assert list(groups.values())[-1] == ["-r", "requirements/tensorrt.txt"]  # optional, last


def test_options_are_what_the_issue_asks():
    gpu, cpu = check.gpu_options(), check.cpu_options()
    assert gpu.batches == (1, 8, 16, 32, 64) and gpu.frames == 140 and not gpu.cpu
    assert cpu.cpu and isinstance(cpu, Options) and cpu.frames < gpu.frames


def test_gpus_and_their_memory_from_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  --query-gpu=*) echo "NVIDIA H200, 580.159.04, 143771" ;;\n'
        '  --query-compute-apps=*) printf "41, 5120\\n42, 512\\n41, 100\\n" ;;\n'
        "esac\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path), prepend=os.pathsep)
    assert machine.gpus() == [{"name": "NVIDIA H200", "driver": "580.159.04",
                               "memory_mib": "143771"}]  # fmt: skip
    assert machine.gpu_memory_mb(41) == 5220.0 and machine.gpu_memory_mb(7) is None


def test_no_gpu_without_nvidia_smi(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert machine.gpus() == [] and machine.gpu_memory_mb(os.getpid()) is None


def test_a_gpu_figure_is_refused_when_onnx_runtime_falls_back_to_the_cpu(tmp_path, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here: no fallback to see")
    monkeypatch.setattr(check, "REFERENCE_INPUT", tmp_path / "absent.npz")  # random crops
    model = _model(tmp_path / "32.onnx", False)
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"), pytest.raises(
        check.ProviderError, match=r"could not use \['CUDAExecutionProvider'\]"
    ):
        check.precision(model, model, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    same = check.precision(model, model, ["CPUExecutionProvider"])
    assert same["input"].startswith("random crops") and same["vertex_max_mm"] == 0.0


def test_a_step_whose_inputs_failed_is_skipped_saying_which(tmp_path):
    steps = [
        Step("export float16", 10.0, ("false",)),
        Step("float16 vs float32", 10.0, ("true",), needs=("export float16",)),
        Step("independent", 10.0, ("true",)),
    ]
    outcomes = check.run_plan(steps, time.monotonic() + 30.0, lambda: dict(os.environ), tmp_path)
    assert [o.status for o in outcomes] == ["failed", "skipped", "ok"]
    assert outcomes[1].detail == "needs export float16"


def test_each_measurement_needs_the_models_and_wheels_it_uses():
    gpu = {s.name: set(s.needs) for s in check.plan(check.gpu_options())}
    assert gpu["per crop: PyTorch eager CUDA"] == set()
    assert gpu["per crop: ONNX Runtime TensorRT FP16"] == {
        "export float32", "GPU wheels", "TensorRT wheels"
    }
    assert gpu["stack: one whole-video job"] == {"export float32", "GPU wheels"}
    cpu = {s.name: set(s.needs) for s in check.plan(check.cpu_options())}
    assert cpu["float16 vs float32"] == {"export float32", "export float16"}
    assert cpu["stack: one whole-video job"] == set()  # the tiny set of tiny_models
    for needs in [*gpu.values(), *cpu.values()]:
        assert needs <= set(gpu) | set(cpu)

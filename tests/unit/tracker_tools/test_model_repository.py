import dataclasses
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tests.conftest import REPO_ROOT
from tracker_service.model_spec import HMR2, MODELS, Deployment
from tracker_tools.model_repository import (
    CONFIG_FILENAME,
    INTRA_OP_THREADS_PARAMETER,
    ONNX_FILENAME,
    PROVIDERS_PARAMETER,
    RUNNER_PATH,
    build_local_repository,
    config_to_text,
    derive_local_config,
    parse_config,
    production_config,
    read_config,
    write_production_repository,
)

REPOSITORY = REPO_ROOT / "model_repository"
SPECS = list(MODELS.values())
IDS = list(MODELS)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_production_config_round_trips(spec):
    config = production_config(spec)
    assert parse_config(config_to_text(config)) == config


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_production_config_follows_spec(spec):
    config = production_config(spec)
    assert config.name == spec.name
    assert config.backend == "onnxruntime"
    assert [(t.name, mc.DataType.Name(t.data_type), tuple(t.dims)) for t in config.input] == [
        (t.name, t.dtype, t.dims) for t in spec.inputs
    ]
    assert [(t.name, mc.DataType.Name(t.data_type), tuple(t.dims)) for t in config.output] == [
        (t.name, t.dtype, t.dims) for t in spec.outputs
    ]
    assert tuple(config.dynamic_batching.preferred_batch_size) == spec.preferred_batch_sizes
    assert config.dynamic_batching.max_queue_delay_microseconds == spec.max_queue_delay_us
    assert [(g.count, g.kind) for g in config.instance_group] == [
        (1, mc.ModelInstanceGroup.KIND_GPU)
    ]
    (trt,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert trt.name == "tensorrt"
    assert trt.parameters["precision_mode"] == "FP16"
    assert int(trt.parameters["max_workspace_size_bytes"]) >= 1 << 30
    first = spec.inputs[0]
    max_shape = "x".join(str(d) for d in (spec.max_batch_size, *first.dims))
    assert f"{first.name}:{max_shape}" in trt.parameters["trt_profile_max_shapes"]
    (warmup,) = config.model_warmup
    assert 1 <= warmup.batch_size <= spec.max_batch_size
    assert set(warmup.inputs) == set(spec.input_names)
    for tensor in spec.inputs:
        assert warmup.inputs[tensor.name].zero_data
        assert tuple(warmup.inputs[tensor.name].dims) == tensor.dims


@pytest.mark.parametrize(
    ("deployment", "instances", "accelerators", "precision"),
    [
        (Deployment(), 1, ["tensorrt"], "FP16"),
        (Deployment(precision="FP32", instances=2), 2, ["tensorrt"], "FP32"),
        (Deployment(engine="onnxruntime", instances=3), 3, [], None),
    ],
)
def test_production_config_follows_the_deployment(deployment, instances, accelerators, precision):
    config = production_config(dataclasses.replace(HMR2, deployment=deployment))
    assert [g.count for g in config.instance_group] == [instances]
    found = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in found] == accelerators
    if precision:
        assert found[0].parameters["precision_mode"] == precision


@pytest.mark.parametrize(
    ("choice", "words"),
    [
        ({"engine": "tvm"}, "engine"),
        ({"precision": "INT4"}, "precision"),
        ({"instances": 0}, "instances"),
    ],
)
def test_deployment_rejects_unknown_choices(choice, words):
    with pytest.raises(ValueError, match=words):
        Deployment(**choice)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_model_batches(spec):
    config = production_config(spec)
    assert config.max_batch_size >= 16
    assert config.HasField("dynamic_batching")
    assert config.dynamic_batching.preferred_batch_size


@pytest.mark.parametrize("name", IDS)
def test_committed_config_is_up_to_date(name):
    path = REPOSITORY / name / CONFIG_FILENAME
    expected = config_to_text(production_config(MODELS[name]))
    assert path.is_file() and path.read_text() == expected, (
        f"{path} is stale or missing: run `python -m scripts.model_repository production`"
    )


def test_no_uncommitted_model_folder():
    folders = {p.name for p in REPOSITORY.iterdir() if p.is_dir()}
    assert folders == set(MODELS), "model_repository/ folders must match tracker_service.MODELS"


def _without_local_differences(config: mc.ModelConfig) -> mc.ModelConfig:
    stripped = mc.ModelConfig()
    stripped.CopyFrom(config)
    stripped.ClearField("platform")
    stripped.ClearField("backend")
    for group in stripped.instance_group:
        group.ClearField("kind")
    stripped.ClearField("optimization")
    return stripped


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_local_config_differs_only_in_backend_kind_and_accelerators(spec):
    production = production_config(spec)
    local = derive_local_config(parse_config(config_to_text(production)))
    assert local.backend == "python"
    assert not local.platform
    assert [g.kind for g in local.instance_group] == [mc.ModelInstanceGroup.KIND_CPU]
    assert not local.optimization.execution_accelerators.gpu_execution_accelerator
    assert _without_local_differences(local) == _without_local_differences(production)
    # Spelled out, the parts that must never drift:
    assert list(local.input) == list(production.input)
    assert list(local.output) == list(production.output)
    assert local.max_batch_size == production.max_batch_size
    assert local.dynamic_batching == production.dynamic_batching
    assert list(local.model_warmup) == list(production.model_warmup)


def test_derive_local_config_leaves_production_unchanged():
    production = production_config(MODELS["hmr2"])
    before = text_format.MessageToString(production)
    derive_local_config(production)
    assert text_format.MessageToString(production) == before


def _production_repository(root: Path) -> Path:
    write_production_repository(root)
    version = root / "smpl" / "1"
    version.mkdir()
    (version / ONNX_FILENAME).write_bytes(b"graph")
    (version / f"{ONNX_FILENAME}.data").write_bytes(b"weights")
    return root


def test_build_local_repository(tmp_path):
    production = _production_repository(tmp_path / "production")
    out = tmp_path / "local"

    providers = ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert build_local_repository(
        production, out, intra_op_threads=2, providers=providers
    ) == ["smpl"]

    assert sorted(p.name for p in out.iterdir()) == ["smpl"]
    config = read_config(out / "smpl" / CONFIG_FILENAME)
    expected = derive_local_config(read_config(production / "smpl" / CONFIG_FILENAME))
    expected.parameters[INTRA_OP_THREADS_PARAMETER].string_value = "2"
    expected.parameters[PROVIDERS_PARAMETER].string_value = ",".join(providers)
    assert config == expected
    version = out / "smpl" / "1"
    assert (version / "model.py").read_text() == RUNNER_PATH.read_text()
    for name in (ONNX_FILENAME, f"{ONNX_FILENAME}.data"):
        assert (version / name).is_symlink()
        assert (version / name).resolve() == (production / "smpl" / "1" / name).resolve()


def test_build_local_repository_replaces_stale_model(tmp_path):
    production = _production_repository(tmp_path / "production")
    out = tmp_path / "local"
    stale = out / "smpl" / "1" / "stale.onnx"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")

    build_local_repository(production, out)

    assert not stale.exists()
    parameters = read_config(out / "smpl" / CONFIG_FILENAME).parameters
    assert INTRA_OP_THREADS_PARAMETER not in parameters and PROVIDERS_PARAMETER not in parameters

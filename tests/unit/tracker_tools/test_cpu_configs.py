
import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tests.conftest import REPO_ROOT
from tracker_service.model_spec import MODELS
from tracker_tools.cpu_configs import (
    CPU_CONFIG_NAME,
    cpu_config_path,
    cpu_config_text,
    derive_cpu_config,
    write_cpu_configs,
)
from tracker_tools.model_repository import (
    CONFIG_FILENAME,
    parse_config,
    production_config,
    write_production_repository,
)

REPOSITORY = REPO_ROOT / "model_repository"
SPECS = list(MODELS.values())


@pytest.mark.parametrize("spec", SPECS, ids=list(MODELS))
def test_committed_cpu_config_is_up_to_date(spec):
    path = cpu_config_path(REPOSITORY / spec.name)
    assert path == REPOSITORY / spec.name / "configs" / f"{CPU_CONFIG_NAME}.pbtxt"
    assert path.read_text() == cpu_config_text(REPOSITORY / spec.name / CONFIG_FILENAME), (
        "stale: run `python -m scripts.cpu_configs`"
    )


@pytest.mark.parametrize("spec", SPECS, ids=list(MODELS))
def test_cpu_config_changes_only_the_device(spec):
    production = production_config(spec)
    cpu = derive_cpu_config(production)
    assert [(g.count, g.kind) for g in cpu.instance_group] == [(1, mc.ModelInstanceGroup.KIND_CPU)]
    assert not cpu.HasField("optimization")
    assert cpu.backend == production.backend == "onnxruntime"
    same = mc.ModelConfig()
    same.CopyFrom(cpu)
    same.instance_group[0].kind = mc.ModelInstanceGroup.KIND_GPU
    same.optimization.CopyFrom(production.optimization)
    assert same == production


def test_other_optimization_settings_survive():
    production = production_config(MODELS["hmr2"])
    production.optimization.input_pinned_memory.enable = True
    production.instance_group[0].gpus.append(0)
    cpu = derive_cpu_config(production)
    assert cpu.optimization.input_pinned_memory.enable
    assert not cpu.optimization.execution_accelerators.gpu_execution_accelerator
    assert list(cpu.instance_group[0].gpus) == []


def test_cpu_config_parses_back_with_the_model_name(tmp_path):
    write_production_repository(tmp_path)
    written = write_cpu_configs(tmp_path)
    assert sorted(p.parent.parent.name for p in written) == sorted(MODELS)
    for path in written:
        assert parse_config(path.read_text()).name == path.parent.parent.name

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tracker_service.model_spec import HMR2, SMPL
from tracker_tools.hmr2.body_model import BodyModel
from tracker_tools.hmr2.export import (
    FP32_TOLERANCE,
    ServedHMR2,
    ServedSMPL,
    build_network,
    export_model,
    max_difference,
    random_crops,
)
from tracker_tools.hmr2.network import HMR2Config
from tracker_tools.hmr2.standin_smpl import make_standin


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    body = BodyModel(make_standin()).eval()
    served = ServedHMR2(build_network(HMR2Config.tiny(), weights="generated"), body)
    smpl = ServedSMPL(body)
    export_model(served, HMR2, (random_crops(2),), root / "hmr2.onnx")
    with torch.no_grad():
        params = tuple(served(random_crops(2))[:3])
    export_model(smpl, SMPL, params, root / "smpl.onnx")
    return root, served, smpl


@pytest.mark.parametrize("spec", [HMR2, SMPL], ids=lambda s: s.name)
def test_graph_has_the_spec_tensors(exported, spec):
    session = ort.InferenceSession(str(exported[0] / f"{spec.name}.onnx"))
    for tensors, declared in ((session.get_inputs(), spec.inputs),
                              (session.get_outputs(), spec.outputs)):
        assert [t.name for t in tensors] == [t.name for t in declared]
        for tensor, spec_tensor in zip(tensors, declared, strict=True):
            assert tensor.type == "tensor(float)"
            assert isinstance(tensor.shape[0], str), f"{tensor.name}: batch axis must be dynamic"
            assert tuple(tensor.shape[1:]) == spec_tensor.dims


def test_onnx_runtime_equals_pytorch_at_another_batch_size(exported):
    root, served, smpl = exported
    crops = (random_crops(5, seed=3),)
    assert max_difference(served, root / "hmr2.onnx", HMR2, crops) <= FP32_TOLERANCE
    with torch.no_grad():
        params = tuple(served(*crops)[:3])
    assert max_difference(smpl, root / "smpl.onnx", SMPL, params) <= FP32_TOLERANCE


def test_served_hmr2_body_outputs_equal_the_standalone_body_model(exported):
    root, served, smpl = exported
    crops = random_crops(3, seed=4).numpy()
    hmr2 = ort.InferenceSession(str(root / "hmr2.onnx")).run(None, {"crops": crops})
    out = dict(zip(HMR2.output_names, hmr2, strict=True))
    body = ort.InferenceSession(str(root / "smpl.onnx")).run(
        None, {name: out[name] for name in SMPL.input_names}
    )
    for name, value in zip(SMPL.output_names, body, strict=True):
        np.testing.assert_allclose(out[name], value, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out["embedding"], axis=1), 1.0, atol=1e-5)


def test_fp16_export_keeps_float32_io_and_agrees_with_float32(tmp_path):
    body = BodyModel(make_standin()).eval()
    network = build_network(HMR2Config.tiny(), weights="generated")
    crops = random_crops(2, seed=5)
    with torch.no_grad():
        reference = [t.numpy() for t in ServedHMR2(network, body)(crops)]
    half = ServedHMR2(build_network(HMR2Config.tiny(), weights="generated"), body, fp16=True)
    export_model(half, HMR2, (crops,), tmp_path / "hmr2.onnx")
    session = ort.InferenceSession(str(tmp_path / "hmr2.onnx"))
    assert {t.type for t in (*session.get_inputs(), *session.get_outputs())} == {"tensor(float)"}
    outputs = session.run(None, {"crops": crops.numpy()})
    for name, ours, expected in zip(HMR2.output_names, outputs, reference, strict=True):
        np.testing.assert_allclose(ours, expected, atol=5e-2, err_msg=name)

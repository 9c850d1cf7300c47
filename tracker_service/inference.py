"""The Triton boundary: typed calls to the served models over gRPC.

One ``TritonModels`` per application (the gRPC client is thread-safe). Every call has a
timeout; tritonclient's errors become the service's own (``errors.py``), chained.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tracker_service.errors import InferenceFailed, InferenceTimeout, ModelsUnavailable
from tracker_service.model_spec import HMR2, PERSON_DETECTOR, SMPL, ModelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BodyMeshes:
    """The body model's output for n bodies.

    Attributes:
        vertices: (n, 6890, 3) mesh vertices in metres, body frame.
        joints: (n, 24, 3) SMPL joints.
        keypoints_3d: (n, 44, 3) HMR2's keypoints (BODY_25 then 19 extra).
    """

    vertices: np.ndarray
    joints: np.ndarray
    keypoints_3d: np.ndarray


@dataclass(frozen=True)
class HMR2Result:
    """HMR2's output for n crops.

    Attributes:
        global_orient: (n, 1, 3, 3) root rotation.
        body_pose: (n, 23, 3, 3) joint rotations.
        betas: (n, 10) shape coefficients.
        pred_cam: (n, 3) crop camera (s, tx, ty).
        meshes: the body model run on those parameters.
        embedding: (n, D) unit-norm appearance embedding.
    """

    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    pred_cam: np.ndarray
    meshes: BodyMeshes
    embedding: np.ndarray


class TritonModels:
    """Typed access to ``person_detector``, ``hmr2`` and ``smpl`` on one Triton server.

    Args:
        url: Triton's gRPC address, ``host:port``.
        timeout_s: Per-request timeout (gRPC's default would wait far too long).
    """

    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client = grpcclient.InferenceServerClient(url=url)

    def close(self) -> None:
        """Close the gRPC channel."""
        self._client.close()

    def not_ready_reason(self, models: tuple[str, ...] = ("person_detector", "hmr2", "smpl")) -> str:
        """Why the models cannot serve now, or ``""`` when every one is ready."""
        try:
            if not self._client.is_server_ready(client_timeout=self.timeout_s):
                return f"Triton at {self.url} is not ready"
            missing = [m for m in models if not self._client.is_model_ready(m, client_timeout=5.0)]
        except InferenceServerException as exc:
            return f"Triton at {self.url} is unreachable: {exc.message()}"
        return f"models not ready on Triton: {', '.join(missing)}" if missing else ""

    def detect(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the person detector.

        Args:
            images: (B, H, W, 3) uint8 RGB frames letterboxed to ``DETECTOR_INPUT_HW``.

        Returns:
            boxes (B, N, 4) x1, y1, x2, y2 in letterboxed pixels, and scores (B, N).
        """
        out = self._infer(PERSON_DETECTOR, images)
        return out["boxes"], out["scores"]

    def hmr2(self, crops: np.ndarray) -> HMR2Result:
        """Run HMR2 on (n, 3, 256, 192) normalized crops, in chunks of ``max_batch_size``."""
        parts = [
            self._infer(HMR2, crops[i : i + HMR2.max_batch_size])
            for i in range(0, len(crops), HMR2.max_batch_size)
        ]
        out = {name: np.concatenate([p[name] for p in parts]) for name in HMR2.output_names}
        return HMR2Result(
            global_orient=out["global_orient"],
            body_pose=out["body_pose"],
            betas=out["betas"],
            pred_cam=out["pred_cam"],
            meshes=BodyMeshes(out["vertices"], out["joints"], out["keypoints_3d"]),
            embedding=out["embedding"],
        )

    def smpl(self, global_orient: np.ndarray, body_pose: np.ndarray, betas: np.ndarray) -> BodyMeshes:
        """Run the body model on n bodies given as rotation matrices and betas."""
        out = self._infer(SMPL, global_orient, body_pose, betas)
        return BodyMeshes(out["vertices"], out["joints"], out["keypoints_3d"])

    def _infer(self, spec: ModelSpec, *arrays: np.ndarray) -> dict[str, np.ndarray]:
        inputs = []
        for tensor, array in zip(spec.inputs, arrays, strict=True):
            array = np.ascontiguousarray(array, dtype=tensor.np_dtype)
            item = grpcclient.InferInput(tensor.name, list(array.shape), tensor.client_dtype)
            item.set_data_from_numpy(array)
            inputs.append(item)
        outputs = [grpcclient.InferRequestedOutput(name) for name in spec.output_names]
        try:
            result = self._client.infer(
                spec.name, inputs, outputs=outputs, client_timeout=self.timeout_s
            )
        except InferenceServerException as exc:
            raise _translate(spec.name, exc, self.timeout_s) from exc
        return {name: result.as_numpy(name) for name in spec.output_names}


def _translate(model: str, exc: InferenceServerException, timeout_s: float) -> Exception:
    status = str(exc.status() or "")
    if "DEADLINE_EXCEEDED" in status:
        return InferenceTimeout(f"Triton did not answer for {model} within {timeout_s:g} s")
    if "UNAVAILABLE" in status or "not ready" in exc.message() or "unknown model" in exc.message():
        return ModelsUnavailable(f"Triton cannot serve {model} now: {exc.message()}")
    return InferenceFailed(f"Triton failed on {model}: {exc.message()}")

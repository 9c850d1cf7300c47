"""The Triton boundary: typed calls to the served models over gRPC or HTTP.

One ``TritonModels`` per application (a context manager: leaving it closes the clients).
The gRPC client is thread-safe and shared; the HTTP client is not, so with
``protocol="http"`` each thread gets its own. Every call has a timeout; tritonclient's
errors become the service's own (``exceptions.py``), chained; every answer is checked against
the model spec (names, dtypes, shapes), so that a model exported against another spec is a
502 naming the tensor, not a failure deep in the pipeline.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol, Self

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tracker_service.exceptions import InferenceFailed, InferenceTimeout, ModelsUnavailable
from tracker_service.model_spec import HMR2, PERSON_DETECTOR, SMPL, ModelSpec, TensorSpec

log = logging.getLogger(__name__)

#: Timeout of the readiness calls (health checks must answer within the backend's 5 s).
READY_TIMEOUT_S = 2.0
#: How often :meth:`TritonModels.wait_ready` asks again.
WAIT_POLL_S = 0.2
#: Timeout of a model (re)load over gRPC: loading ViT-H and building its engines can take minutes.
RELOAD_TIMEOUT_S = 600.0
_CLIENTS: dict[str, ModuleType] = {"grpc": grpcclient, "http": httpclient}


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
class MeshOutput:
    """A mesh model's output for n person crops (HMR2's, or any :class:`MeshModel`'s).

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


class MeshModel(Protocol):
    """The served mesh model's seam: crops in; body parameters, camera, mesh, embedding out.

    :meth:`TritonModels.hmr2` is one; a newer or distilled model is another adapter with
    this call, served under its own :class:`~tracker_service.model_spec.ModelSpec`.
    """

    def __call__(self, crops: np.ndarray) -> MeshOutput:
        """Run the model on (n, 3, H, W) normalized crops."""
        ...


@dataclass(frozen=True, kw_only=True)
class ModelNames:
    """The names the served models have on this Triton server (the spec's names by default)."""

    detector: str = PERSON_DETECTOR.name
    hmr2: str = HMR2.name
    smpl: str = SMPL.name

    def of(self, spec: ModelSpec) -> str:
        """Return the served name of a model spec."""
        return {PERSON_DETECTOR.name: self.detector, HMR2.name: self.hmr2, SMPL.name: self.smpl}[
            spec.name
        ]


@dataclass(frozen=True)
class Readiness:
    """Whether Triton can serve, per model.

    Attributes:
        models: served model name -> ready.
        error: Why not everything is ready, or ``""``.

    """

    models: dict[str, bool] = field(default_factory=dict)
    error: str = ""

    @property
    def ready(self) -> bool:
        """True when the server and every model are ready."""
        return not self.error


class TritonModels:
    """Typed access to the person detector, HMR2 and the body model on one Triton server.

    Args:
        url: Triton's address, ``host:port`` (the gRPC port for ``grpc``, HTTP for ``http``).
        protocol: ``"grpc"`` or ``"http"``.
        timeout_s: Per-request timeout (gRPC's default would wait far too long).
        names: The models' names on the server.

    """

    def __init__(
        self,
        url: str,
        *,
        protocol: str = "grpc",
        timeout_s: float = 30.0,
        names: ModelNames | None = None,
    ) -> None:
        if protocol not in _CLIENTS:
            raise ValueError(f"protocol must be one of {sorted(_CLIENTS)}, got {protocol!r}")
        self.url = url
        self.protocol = protocol
        self.timeout_s = timeout_s
        self.names = names or ModelNames()
        self._module = _CLIENTS[protocol]
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[Any] = []
        self._shared = self._new_client() if protocol == "grpc" else None

    def _new_client(self) -> Any:
        if self.protocol == "grpc":
            client = grpcclient.InferenceServerClient(url=self.url)
        else:
            client = httpclient.InferenceServerClient(
                url=self.url, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
            )
        with self._lock:
            self._clients.append(client)
        return client

    @property
    def _client(self) -> Any:
        if self._shared is not None:
            return self._shared
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client()
        return client

    def _timeout(self, seconds: float) -> dict[str, float]:
        """Per-call timeout keyword (the HTTP client has its timeouts set at construction)."""
        return {"client_timeout": seconds} if self.protocol == "grpc" else {}

    def close(self) -> None:
        """Close every client this object opened."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def __enter__(self) -> Self:
        """The models; :meth:`close` on leaving."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the clients."""
        self.close()

    def wait_ready(self, timeout_s: float) -> Readiness:
        """Block until the server and every model are ready.

        Args:
            timeout_s: How long to wait.

        Returns:
            The readiness, all ready.

        Raises:
            ModelsUnavailable: Not ready in time (with why not).

        """
        deadline = time.monotonic() + timeout_s
        while not (readiness := self.readiness()).ready:
            if time.monotonic() >= deadline:
                raise ModelsUnavailable(
                    f"Triton not ready after {timeout_s:g} s: {readiness.error}"
                )
            time.sleep(WAIT_POLL_S)
        return readiness

    def readiness(self) -> Readiness:
        """Ask Triton whether the server and each model are ready (never raises)."""
        models = {name: False for name in (self.names.detector, self.names.hmr2, self.names.smpl)}
        try:
            if not self._client.is_server_ready(**self._timeout(READY_TIMEOUT_S)):
                return Readiness(models, f"Triton at {self.url} is not ready")
            for name in models:
                models[name] = bool(
                    self._client.is_model_ready(name, **self._timeout(READY_TIMEOUT_S))
                )
        except (InferenceServerException, OSError) as exc:
            return Readiness(models, f"Triton at {self.url} is unreachable: {_message(exc)}")
        missing = [name for name, ready in models.items() if not ready]
        error = f"models not ready on Triton: {', '.join(missing)}" if missing else ""
        return Readiness(models, error)

    def device(self) -> str:
        """Where HMR2 runs: ``"cuda"`` for GPU instances, ``"cpu"``, or ``"unknown"``."""
        try:
            config = self._client.get_model_config(
                self.names.hmr2, **({"as_json": True} if self.protocol == "grpc" else {}),
                **self._timeout(READY_TIMEOUT_S),
            )
        except (InferenceServerException, OSError):
            return "unknown"
        config = config.get("config", config)
        kinds = {group.get("kind", "KIND_AUTO") for group in config.get("instance_group", [])}
        return "cuda" if "KIND_GPU" in kinds else "cpu" if kinds == {"KIND_CPU"} else "unknown"

    def reload(self, name: str) -> None:
        """Ask Triton to (re)load a model from its repository (explicit model control).

        Triton serves the model's current version until the new one is loaded.

        Raises:
            ModelsUnavailable, InferenceFailed, InferenceTimeout: Triton refused or failed.

        """
        timeout_s = max(self.timeout_s, RELOAD_TIMEOUT_S)
        try:
            self._client.load_model(name, **self._timeout(timeout_s))
        except (InferenceServerException, OSError) as exc:
            raise _translate(name, exc, timeout_s) from exc

    def detect(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the person detector.

        Args:
            images: (B, H, W, 3) uint8 RGB frames letterboxed to ``DETECTOR_INPUT_HW``.

        Returns:
            boxes (B, N, 4) x1, y1, x2, y2 in letterboxed pixels, and scores (B, N).

        """
        out = self._infer(PERSON_DETECTOR, images)
        return out["boxes"], out["scores"]

    def hmr2(self, crops: np.ndarray) -> MeshOutput:
        """Run HMR2 on (n, 3, 256, 192) normalized crops, in chunks of ``max_batch_size``."""
        parts = [
            self._infer(HMR2, crops[i : i + HMR2.max_batch_size])
            for i in range(0, len(crops), HMR2.max_batch_size)
        ]
        out = {name: np.concatenate([p[name] for p in parts]) for name in HMR2.output_names}
        return MeshOutput(
            global_orient=out["global_orient"],
            body_pose=out["body_pose"],
            betas=out["betas"],
            pred_cam=out["pred_cam"],
            meshes=BodyMeshes(out["vertices"], out["joints"], out["keypoints_3d"]),
            embedding=out["embedding"],
        )

    def smpl(
        self, global_orient: np.ndarray, body_pose: np.ndarray, betas: np.ndarray
    ) -> BodyMeshes:
        """Run the body model on n bodies given as rotation matrices and betas."""
        out = self._infer(SMPL, global_orient, body_pose, betas)
        return BodyMeshes(out["vertices"], out["joints"], out["keypoints_3d"])

    def _infer(self, spec: ModelSpec, *arrays: np.ndarray) -> dict[str, np.ndarray]:
        name = self.names.of(spec)
        inputs = []
        for tensor, array in zip(spec.inputs, arrays, strict=True):
            array = np.ascontiguousarray(array, dtype=tensor.np_dtype)
            item = self._module.InferInput(tensor.name, list(array.shape), tensor.client_dtype)
            item.set_data_from_numpy(array)
            inputs.append(item)
        outputs = [self._module.InferRequestedOutput(output) for output in spec.output_names]
        try:
            result = self._client.infer(
                name, inputs, outputs=outputs, **self._timeout(self.timeout_s)
            )
        except (InferenceServerException, OSError) as exc:
            raise _translate(name, exc, self.timeout_s) from exc
        batch = len(arrays[0])
        return {t.name: _checked(name, t, batch, result.as_numpy(t.name)) for t in spec.outputs}


def _checked(model: str, tensor: TensorSpec, batch: int, array: np.ndarray | None) -> np.ndarray:
    """An output as the spec promises it (name, dtype, shape), or a 502 naming the tensor.

    Raises:
        InferenceFailed: The output is missing or has another dtype or shape (a model
            exported against another spec).

    """
    expected = (batch, *tensor.dims)
    if array is None:
        raise InferenceFailed(f"{model} answered without its output {tensor.name!r}")
    if array.dtype != tensor.np_dtype or array.shape != expected:
        raise InferenceFailed(
            f"{model} output {tensor.name!r} is {array.dtype} {list(array.shape)}, "
            f"expected {tensor.np_dtype} {list(expected)} (model spec)"
        )
    return array


def _message(exc: Exception) -> str:
    return exc.message() if isinstance(exc, InferenceServerException) else str(exc)


def _translate(model: str, exc: Exception, timeout_s: float) -> Exception:
    message = _message(exc) or type(exc).__name__
    status = str(exc.status() or "") if isinstance(exc, InferenceServerException) else ""
    if "DEADLINE_EXCEEDED" in status or isinstance(exc, TimeoutError) or "timed out" in message:
        return InferenceTimeout(f"Triton did not answer for {model} within {timeout_s:g} s")
    if (
        "UNAVAILABLE" in status
        or isinstance(exc, OSError)
        or "not ready" in message
        or "unknown model" in message
    ):
        return ModelsUnavailable(f"Triton cannot serve {model} now: {message}")
    return InferenceFailed(f"Triton failed on {model}: {message}")

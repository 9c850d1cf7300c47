"""The Triton boundary over gRPC and HTTP, against the real server."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tracker_service.exceptions import ModelsUnavailable
from tracker_service.inference import ModelNames, TritonModels
from tracker_service.readiness import ReadinessCache
from tracker_tools.triton_server import LocalTritonServer

pytestmark = pytest.mark.integration


def clients(server: LocalTritonServer) -> dict[str, TritonModels]:
    return {
        "grpc": TritonModels(server.grpc_url, protocol="grpc", timeout_s=60),
        "http": TritonModels(server.http_url.removeprefix("http://"), protocol="http",
                             timeout_s=60),
    }


def test_grpc_and_http_give_the_same_outputs(triton_server: LocalTritonServer) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (2, 640, 640, 3), np.uint8)
    crops = rng.normal(size=(3, 3, 256, 192)).astype(np.float32)
    results = {}
    for protocol, models in clients(triton_server).items():
        try:
            boxes, scores = models.detect(images)
            people = models.hmr2(crops)
            bodies = models.smpl(people.global_orient, people.body_pose, people.betas)
            results[protocol] = (boxes, scores, people.pred_cam, people.embedding, bodies.joints)
            assert models.readiness().ready and models.device() == "cpu"
        finally:
            models.close()
    for grpc_out, http_out in zip(results["grpc"], results["http"], strict=True):
        np.testing.assert_allclose(grpc_out, http_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(results["grpc"][4], results["http"][4], atol=1e-5)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_one_client_serves_many_threads(triton_server: LocalTritonServer, protocol) -> None:
    models = clients(triton_server)[protocol]
    crops = np.random.default_rng(1).normal(size=(8, 3, 256, 192)).astype(np.float32)
    try:
        expected = models.hmr2(crops).pred_cam
        with ThreadPoolExecutor(8) as pool:
            cams = list(pool.map(lambda i: models.hmr2(crops[i : i + 1]).pred_cam[0], range(8)))
    finally:
        models.close()
    np.testing.assert_allclose(np.stack(cams), expected, atol=1e-5)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_unknown_model_is_unavailable_in_words(triton_server, protocol) -> None:
    url = triton_server.grpc_url if protocol == "grpc" else triton_server.http_url[7:]
    models = TritonModels(url, protocol=protocol, names=ModelNames(hmr2="no_such_model"))
    try:
        readiness = models.readiness()
        assert not readiness.ready and "no_such_model" in readiness.error
        assert readiness.models == {"person_detector": True, "no_such_model": False,
                                    "smpl": True}
        with pytest.raises(ModelsUnavailable, match="no_such_model"):
            models.hmr2(np.zeros((1, 3, 256, 192), np.float32))
    finally:
        models.close()


def test_readiness_is_cached_for_its_ttl(triton_server: LocalTritonServer) -> None:
    now = [0.0]
    models = TritonModels(triton_server.grpc_url)
    cache = ReadinessCache(models, ttl_s=2.0, clock=lambda: now[0])
    try:
        first = cache.get()
        assert first.readiness.ready and first.device == "cpu"
        now[0] = 1.9
        assert cache.get() is first
        now[0] = 2.0
        assert cache.get() is not first and cache.get().readiness.ready
    finally:
        models.close()


def test_models_are_a_context_manager_that_waits_until_ready(
    triton_server: LocalTritonServer,
) -> None:
    with TritonModels(triton_server.grpc_url) as models:
        readiness = models.wait_ready(10.0)
        assert readiness.ready and all(readiness.models.values())
        assert models.smpl(
            np.eye(3, dtype=np.float32)[None, None].repeat(2, 0),
            np.eye(3, dtype=np.float32)[None, None].repeat(23, 1).repeat(2, 0),
            np.zeros((2, 10), np.float32),
        ).vertices.shape == (2, 6890, 3)
    assert models._clients == []  # closed on leaving


def test_wait_ready_gives_up_in_time_naming_what_is_missing(
    triton_server: LocalTritonServer,
) -> None:
    with TritonModels(triton_server.grpc_url, names=ModelNames(smpl="no_such_model")) as models:
        started = time.monotonic()
        with pytest.raises(ModelsUnavailable, match="not ready after 0.5 s.*no_such_model"):
            models.wait_ready(0.5)
        assert time.monotonic() - started < 5.0

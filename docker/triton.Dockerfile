# Triton Inference Server for the model repository in model_repository/ (mounted at /models,
# never baked in: the exporter writes the models on the user's machine).
#
# Image: NGC release 24.10 = Triton 2.51.0, the very server version the local tests run
# (nvidia-pytriton 0.7.0 bundles tritonserver 2.51.0). It has the ONNX Runtime backend
# (ORT 1.19.2 with TensorRT 10 and CUDA 12.6): it reads ONNX IR <= 10 and opset <= 21, and
# our graphs are IR 8, opset 17. It also honours --model-config-name (Triton >= 2.47), which
# the CPU variant (compose.cpu.yaml) uses. CUDA 12.6 needs an NVIDIA driver >= 560 on the
# Windows side under WSL2. A newer tag works too; pin one and rerun the integration tests.
FROM nvcr.io/nvidia/tritonserver:24.10-py3

# The TensorRT engine cache named by every config (trt_engine_cache_path). compose.yaml mounts
# a named volume here: on first use it takes this folder's owner, so the unprivileged user of
# the image (triton-server, uid 1000, created by the NGC image) can write the engines, and a
# restart reuses them instead of rebuilding for minutes.
RUN mkdir -p /var/cache/trt_engines \
    && chown 1000:1000 /var/cache/trt_engines

# triton-server (the NGC image asserts its ids are 1000:1000), by number for the host's sake.
USER 1000:1000

# 8000 HTTP, 8001 gRPC (the tracker's), 8002 Prometheus metrics.
EXPOSE 8000 8001 8002

# curl ships in the NGC image. Ready = the server and every loaded model are ready.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30m --retries=4 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/v2/health/ready"]

# Explicit model control loads exactly the served models (tracker_service/model_spec.py);
# a model that fails to load stops the server (--exit-on-error, the default) rather than
# leaving a half-ready stack. GPU metrics need DCGM: absent under WSL2 (docs/deployment.md).
CMD ["tritonserver", \
     "--model-repository=/models", \
     "--model-control-mode=explicit", \
     "--load-model=person_detector", \
     "--load-model=hmr2", \
     "--load-model=smpl", \
     "--strict-readiness=true", \
     "--http-port=8000", \
     "--grpc-port=8001", \
     "--allow-metrics=true", \
     "--metrics-port=8002", \
     "--log-verbose=0"]

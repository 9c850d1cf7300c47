"""The tooling around the service: what the scripts, benchmarks and tests share.

The command-line entry points (``python -m scripts.NAME``) are thin wrappers of these modules.

- :mod:`~tracker_tools.client`: the one HTTP client (the service's API, Triton's and nginx's
  probes).
- :mod:`~tracker_tools.stack`, :mod:`~tracker_tools.triton_server`,
  :mod:`~tracker_tools.triton_python_runner`, :mod:`~tracker_tools.cluster`: the local stack
  (a real ``tritonserver`` and the service), the Triton launcher and its Python-backend model,
  the scaled-out deployment of ``make test-scale``.
- :mod:`~tracker_tools.model_repository`, :mod:`~tracker_tools.cpu_configs`,
  :mod:`~tracker_tools.tiny_models`: generated Triton configs, the local and CPU variants,
  the tiny model set.
- :mod:`~tracker_tools.hmr2`, :mod:`~tracker_tools.detector_export`,
  :mod:`~tracker_tools.weights`, :mod:`~tracker_tools.production`: the PyTorch HMR2/SMPL code
  and the exporters (``export`` extra), the official weights and the production export.
- :mod:`~tracker_tools.media`, :mod:`~tracker_tools.backend`, :mod:`~tracker_tools.machine`:
  frames (as the Node.js backend sends them too), and the machine a figure ran on.
- :mod:`~tracker_tools.mot`, :mod:`~tracker_tools.mot_score`, :mod:`~tracker_tools.compat`:
  MOTChallenge tracking and scoring, and the one numpy shim py-motmetrics needs.
- :mod:`~tracker_tools.service_benchmark`, :mod:`~tracker_tools.hmr2.benchmark`,
  :mod:`~tracker_tools.smoothness_benchmark` (on :mod:`~tracker_tools.smoothness`),
  :mod:`~tracker_tools.soak`, :mod:`~tracker_tools.compose_check`: the benchmarks, the soak
  run and the compose check; :mod:`~tracker_tools.report`, :mod:`~tracker_tools.plots`:
  their Markdown, JSON and pictures.
- :mod:`~tracker_tools.gpu_check`, :mod:`~tracker_tools.gpu_report`: ``make gpu-check``, every
  GPU figure in one bounded command on the tools above, and its report.

Nothing here is imported by the service (``tracker_service``), and nothing runs at import.
"""

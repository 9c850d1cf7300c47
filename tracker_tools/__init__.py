"""The tooling around the service: what the scripts, benchmarks and tests share.

- :mod:`~tracker_tools.client`: the one client of the service's HTTP API.
- :mod:`~tracker_tools.stack`, :mod:`~tracker_tools.triton_server`: the local stack (a real
  ``tritonserver`` and the service) and the Triton launcher.
- :mod:`~tracker_tools.model_repository`, :mod:`~tracker_tools.cpu_configs`,
  :mod:`~tracker_tools.tiny_models`: generated Triton configs, the local and CPU variants,
  the tiny model set.
- :mod:`~tracker_tools.hmr2`, :mod:`~tracker_tools.detector_export`,
  :mod:`~tracker_tools.weights`: the PyTorch HMR2/SMPL code and the exporters (``export``
  extra), the official weights.
- :mod:`~tracker_tools.media`, :mod:`~tracker_tools.machine`: frames, and the machine a
  figure ran on.
- :mod:`~tracker_tools.mot`, :mod:`~tracker_tools.mot_score`, :mod:`~tracker_tools.compat`:
  MOTChallenge tracking and scoring, and the one numpy shim py-motmetrics needs.
- :mod:`~tracker_tools.gpu_check`, :mod:`~tracker_tools.gpu_report`: ``make gpu-check``, every
  GPU figure in one bounded command on the tools above, and its report.

Nothing here is imported by the service (``tracker_service``), and nothing runs at import.
"""

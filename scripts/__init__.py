"""Command-line entry points (``python -m scripts.NAME``): thin ``main(argv)`` wrappers.

The code they run lives in :mod:`tracker_tools` (the tooling library: the PyTorch HMR2 and
its exporters, the detector export, the local Triton server and stack, the benchmarks' client
and reports) and :mod:`tracker_service`; torch is imported only by :mod:`tracker_tools` and
the scripts on it, never by the service.
"""

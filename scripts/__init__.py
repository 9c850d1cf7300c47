"""Command-line entry points (``python -m scripts.NAME``): thin ``main(argv)`` wrappers.

Each parses its arguments and calls :mod:`tracker_tools` (the tooling library: the PyTorch
HMR2 and its exporters, the local Triton server and stack, the one HTTP client, the
benchmarks and checks) or :mod:`tracker_service`; the tests run them as subprocesses
(``tests/unit/scripts``) and test the library directly. torch is imported only by
:mod:`tracker_tools` (``hmr2``, the exporters), never by the service.
"""

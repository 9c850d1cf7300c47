import os
import signal
import threading

import pytest

from tracker_service.process import on_stop_signals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_calls_stop_and_is_logged(signum: signal.Signals, caplog) -> None:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stopped = threading.Event()
    try:
        on_stop_signals(stopped.set)
        with caplog.at_level("INFO", logger="tracker_service.process"):
            os.kill(os.getpid(), signum)
        assert stopped.is_set()
        assert f"Received {signum.name}" in caplog.text
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)

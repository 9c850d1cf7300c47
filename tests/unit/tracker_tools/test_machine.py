import os
import subprocess
import sys
import time

from tracker_tools.machine import cpu_seconds


def test_cpu_seconds_counts_a_busy_process_and_nothing_for_one_gone():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        start = time.monotonic()
        while cpu_seconds([busy.pid]) < 0.2:
            assert time.monotonic() - start < 30, "the busy child used no CPU in 30 s"
            time.sleep(0.05)
    finally:
        busy.kill()
        busy.wait()
    assert cpu_seconds([busy.pid]) == 0.0  # reaped: no /proc entry
    assert cpu_seconds([os.getpid()]) > 0.0

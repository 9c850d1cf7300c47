"""The machine a figure was measured on, and what its processes use (Linux ``/proc``)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """The CPU's model name, core count and system, and how busy the machine is."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{name}, {os.cpu_count()} cores, {platform.system()} {platform.release()} "
        f"(load average {load:.1f} when the run started)"
    )


def cpu_times() -> tuple[float, float]:
    """The machine's CPU time so far, (busy, total), in clock ticks of every core."""
    values = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def peak_rss_mb(pid: int) -> float:
    """``VmHWM`` (peak resident memory) of a process, in MB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0

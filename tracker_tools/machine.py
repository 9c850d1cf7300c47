"""The machine a figure was measured on, and what its processes use (Linux ``/proc``)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

#: How long an ``nvidia-smi`` query may take.
NVIDIA_SMI_TIMEOUT_S = 30.0


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


def cpu_seconds(pids: Iterable[int]) -> float:
    """User and system CPU time the processes have used so far, in seconds (0 for one gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _nvidia_smi(*query: str) -> list[list[str]]:
    """Rows of an ``nvidia-smi`` CSV query; none without the tool or a GPU."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(
            ["nvidia-smi", *query, "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [[cell.strip() for cell in line.split(",")] for line in done.stdout.splitlines() if line]


def gpus() -> list[dict[str, str]]:
    """The NVIDIA GPUs ``nvidia-smi`` sees: name, driver version, memory (MiB); [] without."""
    rows = _nvidia_smi("--query-gpu=name,driver_version,memory.total")
    return [{"name": n, "driver": d, "memory_mib": m} for n, d, m in rows]


def gpu_memory_mb(pid: int) -> float | None:
    """GPU memory a process holds now, in MiB; None when ``nvidia-smi`` does not list it.

    ONNX Runtime's arena and PyTorch's caching allocator keep what they took, so read at the
    end of a run this is the run's peak (with the CUDA context). None also without a GPU, or
    in a container whose process ids ``nvidia-smi`` does not see.
    """
    used = [float(mib) for owner, mib in _nvidia_smi("--query-compute-apps=pid,used_memory")
            if owner == str(pid)]  # fmt: skip
    return sum(used) if used else None

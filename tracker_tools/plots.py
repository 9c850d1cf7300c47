"""The benchmarks' pictures: PNG files beside their Markdown (matplotlib, the dev extras).

- :func:`stage_chart`: milliseconds per frame by stage, per video and HMR2 size
  (``scripts/benchmark.py``);
- :func:`series_chart`: per-frame values of raw / live / offline tracking against a
  reference (``scripts/benchmark_smoothness.py``: a joint angle and the pelvis against the
  ground truth; the runner's box through painted-out bursts against the clean detections).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

#: The methods drawn dashed: what the others are compared with.
REFERENCES = ("truth", "clean detections")
#: One colour per method, the same in every picture.
COLOURS = {"truth": "black", "clean detections": "black", "raw": "#b42318",
           "live": "#d97706", "offline": "#1a7f37"}  # fmt: skip
_DPI = 110


def stage_chart(results: Sequence[Mapping[str, Any]], out: Path, caption: str) -> Path:
    """Horizontal bars of each stage's milliseconds per frame (log scale), one panel per size.

    Args:
        results: ``scripts.benchmark``'s results: ``hmr2`` and ``latency`` runs (``video``,
            ``stages_ms``).
        out: The PNG file.
        caption: The machine and command, written under the chart.

    Returns:
        ``out``.

    """
    figure, axes = plt.subplots(
        1, len(results), figsize=(6.2 * len(results), 4.8), sharey=True, squeeze=False
    )
    for axis, result in zip(axes[0], results, strict=True):
        runs = result["latency"]
        stages = list(dict.fromkeys(s for run in runs for s in run["stages_ms"]))
        height = 0.8 / len(runs)
        for k, run in enumerate(runs):
            values = [run["stages_ms"].get(stage, np.nan) for stage in stages]  # NaN: no bar
            positions = np.arange(len(stages)) + (k - (len(runs) - 1) / 2) * height
            axis.barh(positions, values, height=height, label=run["video"])
        axis.set_yticks(np.arange(len(stages)), stages)
        axis.set_xscale("log")
        axis.set_xlabel("milliseconds per frame (log scale)")
        axis.set_title(f"HMR2 {result['hmr2']}")
        axis.grid(axis="x", alpha=0.3)
        axis.legend(fontsize=8, loc="lower right")
    axes[0][0].invert_yaxis()  # the stages top down, in their order (the y axis is shared)
    return _save(figure, out, caption)


def series_chart(
    panels: Sequence[tuple[str, Mapping[str, Sequence[float]]]],
    *,
    shaded: Sequence[int],
    shade_label: str,
    title: str,
    x_label: str,
    out: Path,
    caption: str,
) -> Path:
    """Per-frame values, one panel each: every method against its reference (dashed).

    Args:
        panels: (y-axis label, method to per-frame values, NaN where nothing was answered);
            the methods are keys of :data:`COLOURS`, the reference among them ``truth`` or
            ``clean detections``.
        shaded: Frames to shade (no detection, or painted out).
        shade_label: What the shaded frames are.
        title: Above the first panel.
        x_label: Under the last panel.
        out: The PNG file.
        caption: The machine and command, written under the chart.

    Returns:
        ``out``.

    """
    figure, axes = plt.subplots(len(panels), 1, figsize=(11, 3.3 * len(panels)), sharex=True)
    for axis, (label, methods) in zip(np.atleast_1d(axes), panels, strict=True):
        _shade(axis, shaded, shade_label)
        for method, values in methods.items():
            reference = method in REFERENCES
            axis.plot(values, color=COLOURS[method], label=method,
                      linewidth=2.2 if reference else 1.2, linestyle="--" if reference else "-")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    first = np.atleast_1d(axes)[0]
    first.set_title(title)
    first.legend(fontsize=8, ncol=5, loc="upper right")
    np.atleast_1d(axes)[-1].set_xlabel(x_label)
    return _save(figure, out, caption)


def _shade(axis: Axes, frames: Sequence[int], label: str) -> None:
    """Grey spans over runs of consecutive frames."""
    runs: list[list[int]] = []
    for frame in sorted(frames):
        if runs and frame == runs[-1][-1] + 1:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    for k, run in enumerate(runs):
        axis.axvspan(run[0] - 0.5, run[-1] + 0.5, color="#d0d5dd", alpha=0.6,
                     label=label if k == 0 else None)  # fmt: skip


def _save(figure: Any, out: Path, caption: str) -> Path:
    figure.text(0.01, 0.005, caption, fontsize=7, color="#475467", va="bottom")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=_DPI)
    plt.close(figure)
    return out

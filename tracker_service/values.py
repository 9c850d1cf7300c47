"""Value types of the answer: what the legacy JSON and the drawing read, whatever computed it.

Plain frozen dataclasses of arrays, with no dependency on Triton or the pipeline, so that
:mod:`tracker_service.legacy` and :mod:`tracker_service.render` stand on their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Body:
    """One person's 3D body in one frame, as the answer reports it.

    Attributes:
        track_id: The track, or None for a body answered without the tracker.
        detected: False when the tracker predicted it (no detection this frame).
        box: (4,) x1, y1, x2, y2 in pixels.
        confidence: Detection score, or the tracker's decayed confidence when predicted.
        camera: (3,) full-image camera translation tx, ty, tz (metres).
        crop_camera: (3,) weak-perspective crop camera s, tx, ty.
        joints: (J, 3) the body topology's joints, body frame (metres).
        vertices: (V, 3) mesh vertices, body frame (metres).
        smoothed: True when a temporal filter changed the body from HMR2's or the
            tracker's (the mesh is then the filtered pose's).

    """

    track_id: int | None
    detected: bool
    box: np.ndarray
    confidence: float
    camera: np.ndarray
    crop_camera: np.ndarray
    joints: np.ndarray
    vertices: np.ndarray
    smoothed: bool = False

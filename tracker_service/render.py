"""The answer's ``visualization``: the frame with every body drawn on it, as a JPEG data URI.

The old service answered ``data:image/png;base64,...`` and the apps put the string straight
into an image source, so the answer is a data URI too (``data:image/jpeg;base64,...``).

Each body gets the outline of its projected mesh, its skeleton and its track id; the main
subject is drawn in green, the others in orange, predicted bodies with thinner lines. The
outline is filled from the triangles of one orientation on screen (those facing the camera,
with the winding :class:`~tracker_service.topology.BodyTopology` states): the body mesh is
closed, so every line of sight through its silhouette meets such a triangle, and half the
triangles fill the same silhouette.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import cv2
import numpy as np

from tracker_service.geometry import project
from tracker_service.topology import BodyTopology
from tracker_service.values import Body

#: What the visualization starts with; the base64 JPEG follows.
DATA_URI_PREFIX = "data:image/jpeg;base64,"
_MAIN, _OTHER = (60, 200, 60), (0, 150, 255)  # BGR
_JPEG_QUALITY = 85
_FAR_PX = 1e5


def render(
    frame_bgr: np.ndarray,
    bodies: Sequence[Body],
    main: int | None,
    focal: float,
    topology: BodyTopology,
) -> str:
    """Draw the bodies on a copy of the frame (see :func:`draw`).

    Returns:
        The drawing as a data URI, ``data:image/jpeg;base64,`` then the JPEG in base64.

    """
    jpeg = encode_jpeg(draw(frame_bgr, bodies, main, focal, topology))
    return DATA_URI_PREFIX + base64.b64encode(jpeg).decode("ascii")


def encode_jpeg(image_bgr: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 image as JPEG."""
    ok, jpeg = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the image as JPEG")
    return jpeg.tobytes()


def draw(
    frame_bgr: np.ndarray,
    bodies: Sequence[Body],
    main: int | None,
    focal: float,
    topology: BodyTopology,
) -> np.ndarray:
    """Draw the bodies on a copy of the frame.

    Args:
        frame_bgr: (H, W, 3) uint8 frame.
        bodies: The bodies of the frame.
        main: Index of the main subject in ``bodies``, or None.
        focal: Focal length of the full-image camera, pixels.
        topology: The body model's mesh triangles and bones.

    Returns:
        The drawing, (H, W, 3) uint8.

    """
    canvas = frame_bgr.copy()
    height, width = canvas.shape[:2]
    faces, bones = topology.faces, topology.bones
    for index, body in enumerate(bodies):
        colour = _MAIN if index == main else _OTHER
        thickness = 2 if body.detected else 1
        points = np.concatenate([body.vertices, body.joints])[None]
        pixels = project(points, body.camera[None], focal, (width, height))[0]
        pixels = np.clip(pixels, -_FAR_PX, _FAR_PX)  # keep OpenCV's integer coordinates sane
        mesh, joints = pixels[: len(body.vertices)], pixels[len(body.vertices) :]
        mask = np.zeros((height, width), np.uint8)
        for triangle in _facing(np.round(mesh[faces]).astype(np.int32)):  # fillPoly: slower
            cv2.fillConvexPoly(mask, triangle, 255)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, colour, thickness, cv2.LINE_AA)
        ends = np.round(joints[bones]).astype(np.int32)
        cv2.polylines(canvas, list(ends), False, colour, thickness + 1, cv2.LINE_AA)
        label = "?" if body.track_id is None else str(body.track_id)
        if not body.detected:
            label += " (predicted)"
        x1, y1 = int(body.box[0]), max(int(body.box[1]) - 6, 12)
        cv2.putText(canvas, label, (x1, y1), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2, cv2.LINE_AA)
    return canvas


def _facing(triangles: np.ndarray) -> np.ndarray:
    """The ``(F, 3, 2)`` image triangles of negative signed area: those facing the camera."""
    a, b, c = (triangles[:, k].astype(np.int64) for k in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return triangles[cross < 0]

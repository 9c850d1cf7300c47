"""The person detector's adapter: a frame in; boxes and scores in frame pixels out.

The person detector (see :data:`tracker_service.model_spec.PERSON_DETECTOR`
and ``docs/detector.md``) takes RGB uint8 frames letterboxed into a fixed
(height, width) and returns boxes in that letterboxed image's pixels, already
de-duplicated inside the model. :class:`PersonDetector` is the one place that
letterboxes a frame, runs the model, moves its boxes back into frame pixels and
filters them; the service, the warm-up, the tooling and the benchmarks all use it.

Boxes are ``(n, 4)`` float arrays of ``x1, y1, x2, y2`` in pixels; scores are
``(n,)`` float arrays. Every function accepts ``n = 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from tracker_service.model_spec import DETECTOR_INPUT_HW

#: The served model: (B, H, W, 3) uint8 RGB letterboxed frames to boxes (B, N, 4) in
#: letterboxed pixels and scores (B, N) (``TritonModels.detect``, or an ONNX session).
DetectModel = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

#: Grey used for the letterbox borders (the value YOLO-style pipelines use).
PAD_VALUE = 114


def letterbox(
    frame_bgr: np.ndarray, input_hw: tuple[int, int]
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize a frame into ``input_hw`` keeping its aspect ratio, padding the rest.

    The frame is scaled by one factor so that it fits, centred, and the
    borders are filled with :data:`PAD_VALUE`.

    Args:
        frame_bgr: Frame as OpenCV decodes it, uint8 ``(h, w, 3)`` BGR.
        input_hw: Model input size ``(height, width)``.

    Returns:
        ``(image, scale, (pad_x, pad_y))``: the RGB uint8 image of shape
        ``(*input_hw, 3)``, the factor from frame to input pixels and the
        left and top border widths in input pixels.

    Raises:
        ValueError: If the frame is not a non-empty ``(h, w, 3)`` uint8 array.

    """
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 (h, w, 3), got {frame_bgr.dtype} {frame_bgr.shape}")
    h, w = frame_bgr.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"frame must not be empty, got {frame_bgr.shape}")
    in_h, in_w = input_hw
    scale = min(in_h / h, in_w / w)
    new_w, new_h = min(in_w, round(w * scale)), min(in_h, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(frame_bgr, (new_w, new_h), interpolation=interpolation)
    pad_x, pad_y = (in_w - new_w) // 2, (in_h - new_h) // 2
    image = np.full((in_h, in_w, 3), PAD_VALUE, dtype=np.uint8)
    image[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    return image, scale, (pad_x, pad_y)


def boxes_to_frame(
    boxes: np.ndarray, scale: float, pad: tuple[int, int], frame_wh: tuple[int, int]
) -> np.ndarray:
    """Map boxes from letterboxed input pixels back to frame pixels.

    Args:
        boxes: ``(n, 4)`` boxes ``x1, y1, x2, y2`` in model input pixels.
        scale: The factor :func:`letterbox` returned.
        pad: The ``(pad_x, pad_y)`` :func:`letterbox` returned.
        frame_wh: Frame ``(width, height)``; boxes are clipped to it.

    Returns:
        ``(n, 4)`` float32 boxes in frame pixels (a new array).

    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    offset = np.array([pad[0], pad[1], pad[0], pad[1]], dtype=np.float32)
    out = (boxes - offset) / np.float32(scale)
    w, h = frame_wh
    np.clip(out[:, 0::2], 0.0, w, out=out[:, 0::2])
    np.clip(out[:, 1::2], 0.0, h, out=out[:, 1::2])
    return out


def filter_detections(
    boxes: np.ndarray, scores: np.ndarray, min_score: float, min_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Keep confident detections that are large enough.

    No non-maximum suppression is applied: the detector's output is already
    de-duplicated (NMS inside the offline SSD graph, an NMS-free detector in
    production; see ``docs/detector.md``). Padding rows (score 0) are always
    dropped.

    Args:
        boxes: ``(n, 4)`` boxes ``x1, y1, x2, y2``, in the pixels ``min_size`` refers to.
        scores: ``(n,)`` person scores.
        min_score: Lowest score kept (inclusive); padding is dropped even at 0.
        min_size: Lowest box width and height kept, in pixels (inclusive).

    Returns:
        ``(boxes, scores)``: the kept rows, ``(m, 4)`` and ``(m,)`` float32, ordered
        by decreasing score.

    Raises:
        ValueError: If the shapes do not match.

    """
    boxes = np.asarray(boxes, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(
            f"expected boxes (n, 4) and scores (n,), got {boxes.shape} and {scores.shape}"
        )
    wh = boxes[:, 2:] - boxes[:, :2]
    keep = (scores > 0.0) & (scores >= min_score) & np.all(wh >= min_size, axis=1)
    order = np.argsort(-scores[keep], kind="stable")
    return boxes[keep][order], scores[keep][order]


@dataclass(frozen=True)
class PersonDetector:
    """The person detector as its users see it: a frame in; people in frame pixels out.

    Attributes:
        model: The served model (see :data:`DetectModel`).
        min_score: Lowest score kept (inclusive).
        min_box_px: Smallest box width and height kept, in frame pixels.

    """

    model: DetectModel
    min_score: float
    min_box_px: float

    def __call__(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detect the people of one frame.

        Args:
            frame_bgr: ``(h, w, 3)`` uint8 BGR frame.

        Returns:
            ``(boxes, scores)``: ``(n, 4)`` float32 boxes ``x1, y1, x2, y2`` in frame
            pixels and ``(n,)`` scores, by decreasing score.

        """
        image, scale, pad = letterbox(frame_bgr, DETECTOR_INPUT_HW)
        boxes, scores = self.model(image[None])
        boxes = boxes_to_frame(boxes[0], scale, pad, (frame_bgr.shape[1], frame_bgr.shape[0]))
        return filter_detections(boxes, scores[0], self.min_score, self.min_box_px)

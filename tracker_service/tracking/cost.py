"""PHALP's association cost (distance type EQ_019), vectorized over tracks x detections.

``cost = (1 + b0*A) * (1 + b1*P) * exp(L / (0.1 + tanh(c_xy)) / b2)
* exp(N / (0.1 + tanh(c_n)) / b3)`` with ``b = (4.0536, 1.3070, 0.3792, 4.1658)``
(``phalp/external/deep_sort_/nn_matching.py``). Every factor is at least 1, so
the cost is at least 1; PHALP rejects pairs above 100.

The cues and how each is measured here:

* ``A`` appearance: squared L2 distance between unit-normalised embeddings,
  ``2 - 2 cos`` in ``[0, 4]``. PHALP used its texture autoencoder's codes; the
  service uses HMR2's L2-normalised mean ViT token instead (not re-tuned: no
  labelled data with those embeddings is available here).
* ``P`` pose: squared L2 distance between PHALP's pose vectors (root and body
  rotation matrices flattened, then betas: 226 values), capped at 1.5.
* ``L`` location: image distance between the track's predicted root and the
  detection's root, divided by ``max(height, width)`` of the frame (PHALP
  measures 2D joints in its square, padded render frame, i.e. in units of the
  longer image side). ``c_xy``: the hypotenuse of the x and y interval widths,
  in the same units.
* ``N`` depth: ``|log(depth_track / depth_detection)|``; ``c_n`` the
  log-depth interval width.

Missing cues, pair by pair:

* Pose missing on either side: ``P = 0``, the neutral factor 1. Absence of
  evidence neither helps nor hurts a pair, so the other cues decide.
* Root missing: the box centre stands in (the pelvis is near it).
* Camera depth missing on either side: the log box height stands in. A
  pinhole camera's depth is inversely proportional to a person's image
  height, so ``|log(h_track / h_detection)|`` equals the depth term it
  replaces, in the same units; its interval comes from the same ridge
  predictor run on the log heights.
* Appearance missing on either side: ``A = 1 - IoU`` of the track's predicted
  box and the detection's box, in ``[0, 1]``. With a neutral factor
  instead, boxes-only tracking has no identity cue at all, and on
  TUD-Campus a stale track then takes over a neighbour whenever its
  extrapolated centre lands closer (IDF1 0.570, MOTA 0.607, below SORT's
  0.717 / 0.630); the box overlap, the cue box-only trackers rely on,
  restores that discrimination (0.745 / 0.655) with the same weight, formula
  and gate. Detections from HMR2 always carry an embedding, so the service
  never uses this substitute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: EQ_019's weights of appearance, pose, location and depth.
BETAS = (4.0536, 1.3070, 0.3792, 4.1658)
#: EQ_019 caps the pose distance here.
POSE_DISTANCE_CAP = 1.5
#: Offset of the interval-width denominators, ``0.1 + tanh(width)``.
WIDTH_OFFSET = 0.1
#: Exponents are clipped here so that far pairs cost about 1e304, not inf.
_MAX_EXPONENT = 700.0


@dataclass(frozen=True)
class Cues:
    """One side's cues (tracks or detections), one row each.

    Attributes:
        point: ``(n, 2)`` root position in pixels (box centre without a root).
        log_depth: ``(n,)`` log camera depth; NaN without a camera.
        log_height: ``(n,)`` log box height in pixels.
        box: ``(n, 4)`` ``x1, y1, x2, y2`` in pixels.
        appearance: ``(n, D)`` embeddings with NaN rows where missing, or None if all are.
        pose: ``(n, 226)`` pose vectors (:func:`pose_vectors`) with NaN rows where
            missing, or None if all are.

    """

    point: np.ndarray
    log_depth: np.ndarray
    log_height: np.ndarray
    box: np.ndarray
    appearance: np.ndarray | None = None
    pose: np.ndarray | None = None


@dataclass(frozen=True)
class Widths:
    """The tracks' prediction-interval half-widths (:mod:`~tracker_service.tracking.predict`).

    Attributes:
        xy: ``(T,)`` ``c_xy`` in pixels (``inf`` allowed).
        log_depth: ``(T,)`` width of the log camera depth (NaN without a camera).
        log_height: ``(T,)`` width of the log box height.

    """

    xy: np.ndarray
    log_depth: np.ndarray
    log_height: np.ndarray


def pose_vectors(rotations: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """PHALP's pose vectors without the camera: flattened rotations then betas.

    Args:
        rotations: ``(T, 24, 3, 3)`` root and body rotations.
        betas: ``(T, 10)`` shape coefficients.

    Returns:
        ``(T, 226)``.

    """
    rotations = np.asarray(rotations, dtype=np.float64)
    return np.concatenate([rotations.reshape(len(rotations), -1), betas], axis=1)


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(T, M)`` squared L2 distances between rows of ``a`` ``(T, K)`` and ``b`` ``(M, K)``.

    A row containing NaN (a missing cue) gives NaN distances.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.square(a[:, None, :] - b[None, :, :]).sum(axis=-1)


def appearance_distance(track: np.ndarray, detection: np.ndarray) -> np.ndarray:
    """``(T, M)`` squared L2 distances between unit-normalised embeddings, in ``[0, 4]``.

    Args:
        track: ``(T, D)`` track embeddings; NaN rows are missing.
        detection: ``(M, D)`` detection embeddings; NaN rows are missing.

    """
    track = np.asarray(track, dtype=np.float64)
    detection = np.asarray(detection, dtype=np.float64)
    unit_track = track / np.linalg.norm(track, axis=1, keepdims=True)
    unit_detection = detection / np.linalg.norm(detection, axis=1, keepdims=True)
    return np.clip(2.0 - 2.0 * unit_track @ unit_detection.T, 0.0, 4.0)


def box_overlap_distance(track: np.ndarray, detection: np.ndarray) -> np.ndarray:
    """``(T, M)`` ``1 - IoU`` between boxes ``(T, 4)`` and ``(M, 4)`` (``x1, y1, x2, y2``)."""
    track = np.asarray(track, dtype=np.float64)
    detection = np.asarray(detection, dtype=np.float64)
    top_left = np.maximum(track[:, None, :2], detection[None, :, :2])
    bottom_right = np.minimum(track[:, None, 2:], detection[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0.0, None), axis=-1)
    area_t = np.prod(track[:, 2:] - track[:, :2], axis=1)
    area_d = np.prod(detection[:, 2:] - detection[:, :2], axis=1)
    return 1.0 - inter / (area_t[:, None] + area_d[None, :] - inter)


def pose_distance(
    track: np.ndarray, detection: np.ndarray, cap: float = POSE_DISTANCE_CAP
) -> np.ndarray:
    """``(T, M)`` squared L2 distances between pose vectors, capped at ``cap``.

    Args:
        track: ``(T, K)`` track pose vectors (:func:`pose_vectors`); NaN rows are missing.
        detection: ``(M, K)`` detection pose vectors; NaN rows are missing.
        cap: Largest distance reported.

    """
    return np.minimum(squared_distances(track, detection), cap)


def location_distance(track: np.ndarray, detection: np.ndarray, scale: float) -> np.ndarray:
    """``(T, M)`` image distances between points, divided by ``scale``.

    Args:
        track: ``(T, 2)`` predicted track positions in pixels.
        detection: ``(M, 2)`` detection positions in pixels.
        scale: The frame's longer side, ``max(height, width)``, in pixels.

    """
    return np.sqrt(squared_distances(track, detection)) / scale


def depth_terms(track: Cues, detection: Cues, widths: Widths) -> tuple[np.ndarray, np.ndarray]:
    """``N`` and ``c_n``: camera log-depth where both sides have it, log box height otherwise.

    Returns:
        ``(N, c_n)``, both ``(T, M)``.

    """
    both = np.isfinite(track.log_depth)[:, None] & np.isfinite(detection.log_depth)[None, :]
    from_camera = np.abs(np.subtract.outer(track.log_depth, detection.log_depth))
    from_box = np.abs(np.subtract.outer(track.log_height, detection.log_height))
    width = np.where(both, widths.log_depth[:, None], widths.log_height[:, None])
    return np.where(both, from_camera, from_box), width


def eq019_cost(
    appearance: np.ndarray,
    pose: np.ndarray,
    location: np.ndarray,
    depth: np.ndarray,
    width_xy: np.ndarray,
    width_depth: np.ndarray,
    betas: tuple[float, float, float, float] = BETAS,
) -> np.ndarray:
    """Combine the per-cue distances into PHALP's EQ_019 cost.

    Args:
        appearance: ``(T, M)`` ``A``; NaN means missing (neutral factor 1).
        pose: ``(T, M)`` ``P``, already capped; NaN means missing (neutral factor 1).
        location: ``(T, M)`` ``L``, in units of the frame's longer side.
        depth: ``(T, M)`` ``N``, absolute log-depth ratio.
        width_xy: ``c_xy``, broadcastable to ``(T, M)`` (``(T, 1)`` per track); ``inf`` allowed.
        width_depth: ``c_n``, broadcastable to ``(T, M)``; ``inf`` allowed.
        betas: The four weights.

    Returns:
        ``(T, M)`` costs, each at least 1.

    Raises:
        ValueError: If a location, depth or width is NaN.

    """
    terms = {"location": location, "depth": depth, "width_xy": width_xy, "width_depth": width_depth}
    for name, value in terms.items():
        if np.isnan(value).any():
            raise ValueError(f"{name} must not contain NaN")
    b_app, b_pose, b_loc, b_depth = betas
    a = np.nan_to_num(np.asarray(appearance, dtype=np.float64), nan=0.0)
    p = np.nan_to_num(np.asarray(pose, dtype=np.float64), nan=0.0)
    exponent = location / (WIDTH_OFFSET + np.tanh(width_xy)) / b_loc
    exponent = exponent + depth / (WIDTH_OFFSET + np.tanh(width_depth)) / b_depth
    exponent = np.minimum(exponent, _MAX_EXPONENT)
    return (1.0 + b_app * a) * (1.0 + b_pose * p) * np.exp(exponent)


def association_cost(
    track: Cues,
    detection: Cues,
    widths: Widths,
    *,
    scale: float,
    betas: tuple[float, float, float, float] = BETAS,
    pose_cap: float = POSE_DISTANCE_CAP,
) -> np.ndarray:
    """``(T, M)`` EQ_019 costs between predicted tracks and detections, missing cues handled.

    Args:
        track: The tracks' cues, predicted for this frame.
        detection: The detections' cues.
        widths: The tracks' interval widths.
        scale: The frame's longer side in pixels.
        betas: EQ_019's weights.
        pose_cap: Cap on the pose distance.

    """
    shape = (len(track.point), len(detection.point))
    appearance = np.full(shape, np.nan)
    if track.appearance is not None and detection.appearance is not None:
        appearance = appearance_distance(track.appearance, detection.appearance)
    appearance = np.where(
        np.isnan(appearance), box_overlap_distance(track.box, detection.box), appearance
    )
    pose = np.full(shape, np.nan)
    if track.pose is not None and detection.pose is not None:
        pose = pose_distance(track.pose, detection.pose, pose_cap)
    depth, width_depth = depth_terms(track, detection, widths)
    return eq019_cost(
        appearance,
        pose,
        location_distance(track.point, detection.point, scale),
        depth,
        (widths.xy / scale)[:, None],
        width_depth,
        betas,
    )

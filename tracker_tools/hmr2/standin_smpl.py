"""Generate a deterministic stand-in SMPL body model with the official file layout.

The real SMPL files cannot be downloaded here, so tests and the offline demo use this one.
It has the official keys and shapes and looks like a person as far as cheap:

- 24 joints at T-pose positions in metres on SMPL's kinematic tree (y up, z forward, the
  body's left towards +x).
- The mesh is one closed tube (UV-sphere topology: 287 rings of 24 vertices plus 2 poles,
  6890 vertices, 13776 faces) swept from the left toe tip to the right toe tip along a walk
  through the skeleton that goes out and back along every bone off that path, with elliptic
  cross-sections, hemispherical caps at the toes, head and hands, and outward-facing faces.
- The vertex ids HMR2 reads as keypoints (nose 332, eyes, ears, toes, heels, fingertips) are
  given vertices at roughly those body parts.
- Skinning weights sit on the nearest bone, blended over a few centimetres at the joints.
- Each ``J_regressor`` row is a convex combination of the two rings around the joint, so
  the regressed joints lie within millimetres of the skeleton.
- ``shapedirs`` are smooth: size, girth and eight low-frequency fields.
  ``posedirs`` of joint j only move vertices skinned to j.
- ``SMPL_to_J19.pkl`` holds 19 rows in SPIN's order, built the same way.

Example:
    python -m scripts.make_standin_smpl --out build/smpl --pkl

"""

from __future__ import annotations

import io
import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tracker_service.model_spec import SMPL_JOINTS, SMPL_VERTICES
from tracker_tools.hmr2.smpl_file import SMPLData

logger = logging.getLogger(__name__)

PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21], np.int64
)
#: Vertices around each ring, and rings between the two poles: 2 + 287 * 24 = 6890 vertices.
RING_SIZE = 24
NUM_RINGS = (SMPL_VERTICES - 2) // RING_SIZE
SEED = 20240517

# Left (+x) and central joints; the right side mirrors the left. Metres, T-pose.
# fmt: off
_LEFT_JOINTS = {
    0: (0.000, -0.240, 0.020), 3: (0.000, -0.115, 0.000), 6: (0.000, 0.020, 0.025),
    9: (0.000, 0.075, 0.028), 12: (0.000, 0.288, 0.000), 15: (0.000, 0.354, 0.050),
    1: (0.060, -0.330, 0.010), 4: (0.105, -0.705, 0.012), 7: (0.090, -1.145, -0.025),
    10: (0.117, -1.200, 0.100), 13: (0.080, 0.190, 0.003), 16: (0.173, 0.228, -0.014),
    18: (0.433, 0.216, -0.033), 20: (0.689, 0.223, -0.034), 22: (0.774, 0.212, -0.048),
}
_MIRROR = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21, 22: 23}
# Cross-section half-axes (along the tube frame's n, roughly depth; along b, the other).
_LEFT_RADII = {
    0: (0.11, 0.15), 3: (0.10, 0.14), 6: (0.10, 0.145), 9: (0.10, 0.15), 12: (0.055, 0.055),
    15: (0.095, 0.085), 1: (0.085, 0.085), 4: (0.055, 0.055), 7: (0.04, 0.04),
    10: (0.035, 0.045), 13: (0.06, 0.06), 16: (0.05, 0.05), 18: (0.04, 0.04),
    20: (0.025, 0.03), 22: (0.045, 0.015),
}
# fmt: on
# Where the surface ends beyond each leaf joint (toes, top of the head, fingers).
_LEFT_TIP_OFFSETS = {10: (0.0, -0.015, 0.09), 15: (0.0, 0.17, -0.005), 22: (0.09, -0.005, 0.0)}
#: The tube starts at the left toe tip and ends at the right toe tip.
_START_LEAF, _END_LEAF = 10, 11
#: Softness of the skinning blend at the joints, metres.
_SKIN_SOFTNESS = 0.01
#: Weights below this fraction of a vertex's largest are dropped.
_SKIN_CUTOFF = 0.02


def _mirrored(left: Mapping[int, tuple[float, ...]], flip_x: bool) -> np.ndarray:
    """Complete a per-joint table with the right side (x negated when ``flip_x``)."""
    table = dict(left)
    sign = np.array([-1.0 if flip_x else 1.0, 1.0, 1.0][: len(next(iter(left.values())))])
    for joint, twin in _MIRROR.items():
        if joint in left:
            table[twin] = tuple(np.asarray(left[joint]) * sign)
    return np.array([table[j] for j in sorted(table)], np.float64)


JOINTS = _mirrored(_LEFT_JOINTS, flip_x=True)
RADII = _mirrored(_LEFT_RADII, flip_x=False)
LEAVES = (10, 11, 15, 22, 23)
TIPS = {
    j: JOINTS[j] + offset
    for j, offset in zip(LEAVES, _mirrored(_LEFT_TIP_OFFSETS, flip_x=True), strict=True)
}

_HEAD, _LHAND, _RHAND = JOINTS[15], TIPS[22], TIPS[23]
# fmt: off
#: HMR2's vertex keypoints (smplx's VertexJointSelector ids) and where they should sit.
LANDMARKS: dict[int, np.ndarray] = {
    332: _HEAD + (0.0, 0.05, 0.10),  # nose
    6260: _HEAD + (-0.03, 0.08, 0.09), 2800: _HEAD + (0.03, 0.08, 0.09),  # eyes
    4071: _HEAD + (-0.09, 0.06, 0.0), 583: _HEAD + (0.09, 0.06, 0.0),  # ears
    3216: TIPS[10] + (-0.02, 0.0, 0.0), 3226: TIPS[10] + (0.03, 0.0, -0.01),  # left toes
    3387: JOINTS[7] + (0.0, -0.05, -0.05),  # left heel
    6617: TIPS[11] + (0.02, 0.0, 0.0), 6624: TIPS[11] + (-0.03, 0.0, -0.01),  # right toes
    6787: JOINTS[8] + (0.0, -0.05, -0.05),  # right heel
    **{v: _LHAND + (0.0, 0.0, dz) for v, dz in
       zip((2746, 2319, 2445, 2556, 2673), (0.04, 0.02, 0.0, -0.02, -0.04), strict=True)},
    **{v: _RHAND + (0.0, 0.0, dz) for v, dz in
       zip((6191, 5782, 5905, 6016, 6133), (0.04, 0.02, 0.0, -0.02, -0.04), strict=True)},
}
# fmt: on


def _walk() -> list[tuple[int, bool]]:
    """List the sweep's stops as (joint, at_tip): toe to toe, out and back along side branches."""
    neighbours: list[list[int]] = [[] for _ in range(SMPL_JOINTS)]
    for child, parent in enumerate(PARENTS[1:].tolist(), start=1):
        neighbours[parent].append(child)
        neighbours[child].append(parent)

    def to_root(joint: int) -> list[int]:
        chain = [joint]
        while chain[-1] != 0:
            chain.append(int(PARENTS[chain[-1]]))
        return chain

    up, down = to_root(_START_LEAF), to_root(_END_LEAF)
    meet = next(j for j in up if j in down)
    main = up[: up.index(meet) + 1] + down[: down.index(meet)][::-1]

    def excursion(joint: int, came_from: int) -> list[tuple[int, bool]]:
        stops = [(joint, False)]
        onward = [n for n in neighbours[joint] if n != came_from]
        if not onward:
            stops += [(joint, True), (joint, False)]
        for nxt in onward:
            stops += excursion(nxt, joint) + [(joint, False)]
        return stops

    stops = [(_START_LEAF, True)]
    for i, joint in enumerate(main):
        stops.append((joint, False))
        on_path = set(main[max(i - 1, 0) : i + 2])
        for branch in neighbours[joint]:
            if branch not in on_path:
                stops += excursion(branch, joint) + [(joint, False)]
    return stops + [(_END_LEAF, True)]


def _sweep(stops: list[tuple[int, bool]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sweep the closed tube along the walk's stops.

    Returns:
        vertices (6890, 3) (pole, rings in order, pole), ``ring_arc`` (287,) the arc length
        of each ring along the walk, and ``stop_arc`` (stops,) that of each stop.

    """
    points = np.array([TIPS[j] if tip else JOINTS[j] for j, tip in stops])
    radii = RADII[[j for j, _ in stops]]
    steps = np.diff(points, axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    stop_arc = np.concatenate([[0.0], np.cumsum(lengths)])
    tip_arc = stop_arc[[i for i, (_, tip) in enumerate(stops) if tip]]
    tip_cap = np.array([RADII[j].max() for j, tip in stops if tip])

    ring_arc = stop_arc[-1] * np.arange(1, NUM_RINGS + 1) / (NUM_RINGS + 1)
    seg = np.clip(np.searchsorted(stop_arc, ring_arc, side="right") - 1, 0, len(steps) - 1)
    u = ((ring_arc - stop_arc[seg]) / lengths[seg])[:, None]
    centres = points[seg] + u * steps[seg]
    tangents = steps[seg] / lengths[seg, None]
    # Hemispherical caps: the radius falls to 0 at each tip over the tip's largest radius.
    near = np.abs(ring_arc[:, None] - tip_arc[None, :])
    depth = np.clip(near / tip_cap, 0.0, 1.0).min(axis=1)
    cap = np.sqrt(1.0 - (1.0 - depth) ** 2)
    half_axes = ((1 - u) * radii[seg] + u * radii[seg + 1]) * cap[:, None]

    # Frames by parallel transport, so the tube does not twist between bones.
    normals = np.empty_like(tangents)
    normal = np.array([0.0, 1.0, 0.0])
    for k, tangent in enumerate(tangents):
        projected = normal - (normal @ tangent) * tangent
        normal = projected / np.linalg.norm(projected)
        normals[k] = normal
    binormals = np.cross(tangents, normals)
    angles = 2 * np.pi * np.arange(RING_SIZE) / RING_SIZE
    rings = (
        centres[:, None]
        + half_axes[:, None, :1] * np.cos(angles)[None, :, None] * normals[:, None]
        + half_axes[:, None, 1:] * np.sin(angles)[None, :, None] * binormals[:, None]
    )
    vertices = np.concatenate([points[:1], rings.reshape(-1, 3), points[-1:]])
    return vertices, ring_arc, stop_arc


def _sphere_faces() -> np.ndarray:
    """Triangles of the UV sphere: pole 0, rings 1..6888 in order, pole 6889 (outward)."""
    ring = 1 + RING_SIZE * np.arange(NUM_RINGS)[:, None] + np.arange(RING_SIZE)[None, :]
    nxt = np.roll(ring, -1, axis=1)
    last = SMPL_VERTICES - 1
    start_cap = np.stack([np.zeros(RING_SIZE, np.int64), nxt[0], ring[0]], axis=1)
    a, b, c, d = ring[:-1], nxt[:-1], ring[1:], nxt[1:]
    bands = np.stack([np.stack([a, b, c], -1), np.stack([b, d, c], -1)], axis=2).reshape(-1, 3)
    end_cap = np.stack([ring[-1], nxt[-1], np.full(RING_SIZE, last)], axis=1)
    return np.concatenate([start_cap, bands, end_cap]).astype(np.int64)


def _landmark_order(vertices: np.ndarray) -> np.ndarray:
    """Permute vertices so that each landmark id gets the nearest free vertex to its target.

    Returns:
        ``order`` with ``new_vertices = vertices[order]``.

    """
    order = np.arange(SMPL_VERTICES)
    position = np.arange(SMPL_VERTICES)  # where each old vertex currently sits in ``order``
    taken: set[int] = set()
    for vertex_id, target in LANDMARKS.items():
        distance = np.linalg.norm(vertices - target, axis=1)
        distance[list(taken)] = np.inf
        chosen = int(np.argmin(distance))
        taken.add(chosen)
        here, displaced = position[chosen], order[vertex_id]
        order[here], order[vertex_id] = displaced, chosen
        position[displaced], position[chosen] = here, vertex_id
    return order


def _bones() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bone segments (start, end) and the joint each one is skinned to.

    A bone from a joint to its child moves with that joint; a leaf's bone runs to its tip.
    """
    children = np.arange(1, SMPL_JOINTS)
    starts = np.concatenate([JOINTS[PARENTS[children]], JOINTS[list(LEAVES)]])
    ends = np.concatenate([JOINTS[children], np.array([TIPS[j] for j in LEAVES])])
    owners = np.concatenate([PARENTS[children], LEAVES])
    return starts, ends, owners


def _nearest_on_bones(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance to every bone (V, bones) and each vertex's nearest point on its nearest bone."""
    starts, ends, _ = _bones()
    axis = ends - starts
    t = np.einsum("vbk,bk->vb", vertices[:, None] - starts, axis) / np.sum(axis**2, axis=1)
    closest = starts + np.clip(t, 0.0, 1.0)[..., None] * axis
    distance = np.linalg.norm(vertices[:, None] - closest, axis=2)
    return distance, closest[np.arange(len(vertices)), distance.argmin(axis=1)]


def _skinning_weights(bone_distance: np.ndarray) -> np.ndarray:
    """(V, 24) weights on the nearest bone's joint, blended where bones are equally near."""
    _, _, owners = _bones()
    per_joint = np.full((SMPL_JOINTS, len(bone_distance)), np.inf)
    np.minimum.at(per_joint, owners, bone_distance.T)
    excess = per_joint.T - per_joint.min(axis=0)[:, None]
    weights = np.exp(-excess / _SKIN_SOFTNESS)
    weights[weights < _SKIN_CUTOFF] = 0.0
    return weights / weights.sum(axis=1, keepdims=True)


def _arc_regressor(arc: np.ndarray, ring_arc: np.ndarray, ring_of: np.ndarray) -> np.ndarray:
    """Rows (len(arc), V): each point of the walk as a convex mix of its two nearest rings.

    Each ring's vertices average to the ring's centre, so a row times the vertices gives the
    point on the walk (up to the chord between the two rings where the walk bends).
    """
    k = np.clip(np.searchsorted(ring_arc, arc) - 1, 0, NUM_RINGS - 2)
    u = np.clip((arc - ring_arc[k]) / (ring_arc[k + 1] - ring_arc[k]), 0.0, 1.0)
    ring_weight = np.zeros((len(arc), NUM_RINGS))
    np.add.at(ring_weight, (np.arange(len(arc)), k), 1 - u)
    np.add.at(ring_weight, (np.arange(len(arc)), k + 1), u)
    on_ring = ring_of >= 0
    rows = np.zeros((len(arc), SMPL_VERTICES))
    rows[:, on_ring] = ring_weight[:, ring_of[on_ring]] / RING_SIZE
    return rows


def _regressors(
    stops: list[tuple[int, bool]], stop_arc: np.ndarray, ring_arc: np.ndarray, ring_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``J_regressor`` (24, V) and the 19-row extra regressor (SPIN's order)."""
    at_joint = [
        [a for (j, tip), a in zip(stops, stop_arc, strict=True) if j == joint and not tip]
        for joint in range(SMPL_JOINTS)
    ]
    # Every visit of a joint weighs the same: the mean of convex rows is convex.
    joint_rows = np.stack(
        [_arc_regressor(np.array(a), ring_arc, ring_of).mean(axis=0) for a in at_joint]
    )
    head_arc = at_joint[15][0]
    head_tip_arc = next(a for (j, tip), a in zip(stops, stop_arc, strict=True) if j == 15 and tip)
    head_top, head_centre = _arc_regressor(
        np.array([head_tip_arc, (head_arc + head_tip_arc) / 2]), ring_arc, ring_of
    )
    r = joint_rows
    extra = np.stack(
        [
            *r[[8, 5, 2, 1, 4, 7]],  # right ankle, knee, hip, left hip, knee, ankle
            *r[[21, 19, 17, 16, 18, 20]],  # right wrist, elbow, shoulder, left shoulder...
            r[12],  # neck
            head_top,
            r[0],  # pelvis
            0.3 * r[9] + 0.7 * r[12],  # thorax
            0.5 * r[3] + 0.5 * r[6],  # spine (H36M)
            0.5 * r[12] + 0.5 * r[15],  # jaw (H36M)
            head_centre,  # head (H36M)
        ]
    )
    return joint_rows, extra


def _smooth_fields(vertices: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` smooth displacement fields (V, 3, count) of unit amplitude, wavelengths ~2 m."""
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    waves = rng.normal(scale=3.0, size=(count, 3))
    phases = rng.uniform(0, 2 * np.pi, size=count)
    return np.sin(vertices @ waves.T + phases)[:, None, :] * directions.T[None]


def _shapedirs(vertices: np.ndarray, nearest: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(V, 3, 10): size about the pelvis, girth about the bones, then 8 smooth fields."""
    size = 0.03 * (vertices - JOINTS[0])
    girth = 0.08 * (vertices - nearest)
    fields = 0.006 * _smooth_fields(vertices, 8, rng)
    return np.concatenate([size[..., None], girth[..., None], fields], axis=2)


def _posedirs(
    vertices: np.ndarray, nearest: np.ndarray, weights: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(V, 3, 207): feature 9(j-1)+m (joint j, matrix entry m) moves only vertices skinned to j."""
    count = 9 * (SMPL_JOINTS - 1)
    feature_joint = 1 + np.arange(count) // 9
    outward = vertices - nearest
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-9)
    bulge = rng.normal(scale=0.005, size=count)
    fields = bulge * outward[..., None] + 0.004 * _smooth_fields(vertices, count, rng)
    return fields * weights[:, None, feature_joint]


def make_standin() -> SMPLData:
    """Build the stand-in body model, with ``joint_regressor_extra``; always the same arrays."""
    rng = np.random.default_rng(SEED)
    stops = _walk()
    vertices, ring_arc, stop_arc = _sweep(stops)
    faces = _sphere_faces()
    ring_of = np.concatenate([[-1], np.repeat(np.arange(NUM_RINGS), RING_SIZE), [-1]])

    order = _landmark_order(vertices)
    new_index = np.empty_like(order)
    new_index[order] = np.arange(SMPL_VERTICES)
    vertices, faces, ring_of = vertices[order], new_index[faces], ring_of[order]

    bone_distance, nearest = _nearest_on_bones(vertices)
    weights = _skinning_weights(bone_distance)
    j_regressor, extra = _regressors(stops, stop_arc, ring_arc, ring_of)
    return SMPLData(
        v_template=vertices.astype(np.float32),
        faces=faces,
        J_regressor=j_regressor.astype(np.float32),
        weights=weights.astype(np.float32),
        parents=PARENTS.copy(),
        shapedirs=_shapedirs(vertices, nearest, rng).astype(np.float32),
        posedirs=_posedirs(vertices, nearest, weights, rng).astype(np.float32),
        joint_regressor_extra=extra.astype(np.float32),
    )


def _official_layout(data: SMPLData) -> dict[str, np.ndarray]:
    """Map the official key names to arrays (``kintree_table``: parents, then joint ids)."""
    return {
        "v_template": data.v_template,
        "f": data.faces,
        "J_regressor": data.J_regressor,
        "weights": data.weights,
        "kintree_table": np.stack([data.parents, np.arange(SMPL_JOINTS, dtype=np.int64)]),
        "shapedirs": data.shapedirs,
        "posedirs": data.posedirs,
    }


def _write_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file, so no reader sees half a file."""
    temporary = path.with_name(path.name + ".partial")
    temporary.write_bytes(payload)
    os.replace(temporary, path)


def write_npz(data: SMPLData, path: Path) -> None:
    """Write the body model as an ``.npz`` with the official key names (dense J_regressor)."""
    buffer = io.BytesIO()
    arrays: dict[str, Any] = _official_layout(data)
    np.savez(buffer, **arrays)
    _write_atomically(path, buffer.getvalue())


def write_pkl(data: SMPLData, path: Path) -> None:
    """Write the body model as a pickle in the official layout, J_regressor as scipy CSC.

    Plain numpy arrays stand for the official chumpy objects; ``bs_style`` and ``bs_type``
    are set as in the official file.
    """
    import scipy.sparse  # only the pickle layout needs scipy

    layout = _official_layout(data) | {
        "J_regressor": scipy.sparse.csc_matrix(data.J_regressor.astype(np.float64)),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    _write_atomically(path, pickle.dumps(layout, protocol=2))


def write_extra_regressor(regressor: np.ndarray, path: Path) -> None:
    """Write ``SMPL_to_J19.pkl``: the pickled (19, 6890) array."""
    _write_atomically(path, pickle.dumps(regressor, protocol=2))

"""The body topology: what the answers need to know of the mesh model's body, as one value.

The legacy answer names the joints and measures angles between them, the renderer fills the
mesh's triangles and draws its bones, and every answer carries the triangles once. None of
that is written against SMPL in the answer code: each takes a :class:`BodyTopology`, loaded
once at start (:func:`load_topology`: the served body model's triangles file, read by
:func:`~tracker_service.model_spec.load_faces`, and its skeleton). A second mesh model is
then one adapter (:class:`~tracker_service.inference.MeshModel`) and one topology, not a hunt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracker_service.model_spec import SMPL_VERTICES, load_faces
from tracker_service.skeleton import LEGACY_ANGLES, SMPL_JOINT_NAMES, SMPL_PARENTS


@dataclass(frozen=True, kw_only=True)
class BodyTopology:
    """A body model's mesh and skeleton.

    Attributes:
        name: The body model, e.g. ``"smpl"``.
        vertex_count: V, the mesh's vertices.
        faces: (F, 3) int32 vertex indices of the mesh triangles, wound so that a triangle
            facing the camera has a negative signed area in the image (SMPL's winding).
        joint_names: The J joints in the model's order, named as the answers name them.
        joint_parents: (J,) parent of each joint in the kinematic tree, -1 for the root.
        angles: The legacy joint angles: name -> (a, b, c) joint indices, the angle at b.

    Raises:
        ValueError: The faces are not (F, 3) indices below ``vertex_count``, or the
            skeleton's names, parents and angles do not agree (expected vs actual).

    """

    name: str
    vertex_count: int
    faces: np.ndarray
    joint_names: tuple[str, ...]
    joint_parents: tuple[int, ...]
    angles: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the arrays' shapes and the skeleton's indices; store the faces as int32."""
        faces = np.asarray(self.faces)
        if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
            raise ValueError(f"faces must be (F, 3) integers, got {faces.dtype} {faces.shape}")
        if faces.size and (faces.min() < 0 or faces.max() >= self.vertex_count):
            raise ValueError(f"faces must index vertices 0..{self.vertex_count - 1}")
        joints = len(self.joint_names)
        if len(self.joint_parents) != joints:
            raise ValueError(
                f"expected {joints} joint parents (one per name), got {len(self.joint_parents)}"
            )
        if any(not -1 <= p < j for j, p in enumerate(self.joint_parents)):
            raise ValueError("each joint's parent must come before it (-1 for the root)")
        if any(not 0 <= i < joints for triple in self.angles.values() for i in triple):
            raise ValueError(f"angle joints must be indices 0..{joints - 1}")
        object.__setattr__(self, "faces", np.ascontiguousarray(faces, dtype=np.int32))

    @property
    def joint_count(self) -> int:
        """J, the skeleton's joints."""
        return len(self.joint_names)

    @property
    def bones(self) -> np.ndarray:
        """(J - 1, 2) joint index pairs (joint, parent), one per non-root joint."""
        pairs = [(j, p) for j, p in enumerate(self.joint_parents) if p >= 0]
        return np.array(pairs, dtype=np.intp).reshape(-1, 2)


def smpl_topology(faces: np.ndarray) -> BodyTopology:
    """SMPL's topology: its 6,890 vertices and 24 joints, with the given (13776, 3) triangles.

    Raises:
        ValueError: The triangles are not (F, 3) indices of SMPL's vertices.

    """
    return BodyTopology(
        name="smpl",
        vertex_count=SMPL_VERTICES,
        faces=faces,
        joint_names=SMPL_JOINT_NAMES,
        joint_parents=SMPL_PARENTS,
        angles=LEGACY_ANGLES,
    )


def load_topology(path: str | Path) -> BodyTopology:
    """SMPL's topology with the triangles the exporter wrote beside the body model.

    Raises:
        FileNotFoundError: The triangles file is missing (the message says how to write it).
        ValueError: The array is not (13776, 3) vertex indices.

    """
    return smpl_topology(load_faces(path))

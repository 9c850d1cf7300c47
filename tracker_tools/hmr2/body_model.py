"""The SMPL body model as HMR2 runs it, in PyTorch and exportable to ONNX.

:class:`BodyModel` computes what the official HMR2 gets from its smplx ``SMPLLayer``
(``pose2rot=False``: the pose comes as rotation matrices) and its wrapper: the mesh, the 24
SMPL joints and HMR2's 44 keypoints. Buffer names follow the official module's
``smpl.*`` state_dict entries (``extra_joints_idxs`` there sits under
``vertex_joint_selector.``).

Linear blend skinning, for a batch:

1. ``v_shaped = v_template + shapedirs . betas``
2. ``J = J_regressor @ v_shaped`` (rest-pose joints of this body shape)
3. ``v_posed = v_shaped + posedirs . vec(R[1:] - I)`` (pose blend shapes)
4. forward kinematics along ``parents``: each joint's world rotation and position
5. each vertex moves by the ``weights``-blend of the joints' rigid transforms.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from tracker_service.model_spec import SMPL_BETAS, SMPL_JOINTS, SMPL_VERTICES
from tracker_tools.hmr2.smpl_file import SMPLData

logger = logging.getLogger(__name__)

# fmt: off
#: smplx's vertex joints (VertexJointSelector with hands): nose, right eye, left eye, right
#: ear, left ear, left big toe, left small toe, left heel, right big toe, right small toe,
#: right heel, then the left and right thumb, index, middle, ring and pinky tips.
VERTEX_JOINT_IDS = (
    332, 6260, 2800, 4071, 583, 3216, 3226, 3387, 6617, 6624, 6787,
    2746, 2319, 2445, 2556, 2673, 6191, 5782, 5905, 6016, 6133,
)
#: HMR2's map from the 45 SMPL-layer joints (24 + 21 vertex joints) to OpenPose BODY_25.
OPENPOSE_JOINT_MAP = (
    24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
)
# fmt: on


class BodyModel(nn.Module):
    """SMPL with rotation-matrix pose, returning the mesh, the joints and HMR2's 44 keypoints.

    Buffers are float32 as built; ``.double()`` runs it in float64. The forward pass uses
    only MatMul, Gather, Concat and element-wise ops with a batch axis that stays dynamic
    when exported to ONNX.

    Args:
        data: The body model. ``data.joint_regressor_extra`` (``SMPL_to_J19.pkl``) is
            required: HMR2's keypoints 25..43 come from it, and a model without them would
            silently output wrong keypoints. The stand-in generator always writes one.

    Raises:
        ValueError: If ``data.joint_regressor_extra`` is None.

    """

    # The buffers (registered in __init__), for the type checker.
    v_template: torch.Tensor
    shapedirs: torch.Tensor
    J_regressor: torch.Tensor
    posedirs: torch.Tensor
    lbs_weights: torch.Tensor
    joint_regressor_extra: torch.Tensor
    faces_tensor: torch.Tensor
    parents: torch.Tensor
    extra_joints_idxs: torch.Tensor
    joint_map: torch.Tensor

    def __init__(self, data: SMPLData) -> None:
        """Register the body model's arrays as buffers (see the class docstring for ``data``)."""
        super().__init__()
        if data.joint_regressor_extra is None:
            raise ValueError(
                "BodyModel needs the extra joint regressor (SMPL_to_J19.pkl): "
                "load_smpl(path, extra_regressor_path=...)"
            )
        self.parent_of: tuple[int, ...] = tuple(data.parents.tolist())

        def buffer(name: str, array: np.ndarray, dtype: torch.dtype = torch.float32) -> None:
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(array), dtype=dtype))

        buffer("v_template", data.v_template)
        buffer("shapedirs", data.shapedirs)
        buffer("J_regressor", data.J_regressor)
        # smplx's layout: (207, 6890 * 3), so that pose features @ posedirs gives offsets.
        buffer("posedirs", data.posedirs.reshape(-1, data.posedirs.shape[-1]).T)
        buffer("lbs_weights", data.weights)
        buffer("joint_regressor_extra", data.joint_regressor_extra)
        buffer("faces_tensor", data.faces, torch.int64)
        buffer("parents", data.parents, torch.int64)
        buffer("extra_joints_idxs", np.array(VERTEX_JOINT_IDS), torch.int64)
        buffer("joint_map", np.array(OPENPOSE_JOINT_MAP), torch.int64)

    def forward(
        self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pose and shape the body.

        Args:
            global_orient: (B, 1, 3, 3) root rotation matrices.
            body_pose: (B, 23, 3, 3) rotation matrices of joints 1..23, relative to their parents.
            betas: (B, 10) shape coefficients.

        Returns:
            vertices (B, 6890, 3), joints (B, 24, 3) and keypoints_3d (B, 44, 3), in the
            model's frame (no translation; the root joint stays where the shape puts it).

        """
        shape_offsets = betas @ self.shapedirs.reshape(-1, SMPL_BETAS).T
        v_shaped = self.v_template + shape_offsets.reshape(-1, SMPL_VERTICES, 3)
        rest_joints = self.J_regressor @ v_shaped

        eye = torch.eye(3, dtype=body_pose.dtype, device=body_pose.device)
        pose_features = (body_pose - eye).reshape(-1, self.posedirs.shape[0])
        v_posed = v_shaped + (pose_features @ self.posedirs).reshape(-1, SMPL_VERTICES, 3)

        rotations, positions = self._forward_kinematics(
            torch.cat([global_orient, body_pose], dim=1), rest_joints
        )
        # Rigid transform of each joint, moving rest positions to posed ones: x -> R x + t.
        translations = positions - (rotations @ rest_joints.unsqueeze(-1)).squeeze(-1)
        blended_rotations = (self.lbs_weights @ rotations.reshape(-1, SMPL_JOINTS, 9)).reshape(
            -1, SMPL_VERTICES, 3, 3
        )
        vertices = (blended_rotations @ v_posed.unsqueeze(-1)).squeeze(-1) + (
            self.lbs_weights @ translations
        )

        smpl_layer_joints = torch.cat([positions, vertices[:, self.extra_joints_idxs]], dim=1)
        keypoints = torch.cat(
            [smpl_layer_joints[:, self.joint_map], self.joint_regressor_extra @ vertices], dim=1
        )
        return vertices, positions, keypoints

    def _forward_kinematics(
        self, local_rotations: torch.Tensor, rest_joints: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """World rotations (B, 24, 3, 3) and positions (B, 24, 3) of the joints.

        Joint i is placed at its parent's world position plus the parent's world rotation
        applied to its rest offset from the parent; ``parents[i] < i``, so one pass in index
        order suffices. The loop unrolls into 23 small MatMuls when traced.
        """
        rotations = [local_rotations[:, 0]]
        positions = [rest_joints[:, 0]]
        for i in range(1, SMPL_JOINTS):
            parent = self.parent_of[i]
            offset = (rest_joints[:, i] - rest_joints[:, parent]).unsqueeze(-1)
            rotations.append(rotations[parent] @ local_rotations[:, i])
            positions.append(positions[parent] + (rotations[parent] @ offset).squeeze(-1))
        return torch.stack(rotations, dim=1), torch.stack(positions, dim=1)

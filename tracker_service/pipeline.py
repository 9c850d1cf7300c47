"""The per-frame model steps: detect, crop, HMR2, cameras; and the bodies of tracked people.

:meth:`FramePipeline.analyse` runs as soon as a frame arrives (concurrently across
requests, so that Triton batches the crops of different sessions together); it makes one
detector request and one HMR2 request with every crop of the frame. After the ordered
tracking step, :meth:`FramePipeline.bodies` turns the tracker's outputs into bodies: a
detected person's body is HMR2's; the bodies of predicted people come from one ``smpl``
request on their extrapolated poses, batched with the smoothed bodies of detected people
(whose answered pose is no longer HMR2's own). :meth:`FramePipeline.posed_bodies` meshes
any outputs from their poses alone (a whole-video job keeps no mesh between its passes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tracker_service.detection import PersonDetector
from tracker_service.geometry import cam_crop_to_full, cam_full_to_crop, focal_length, project
from tracker_service.inference import BodyMeshes, MeshModel, MeshOutput, TritonModels
from tracker_service.preprocess import crop_boxes, hmr2_crops
from tracker_service.telemetry import Stopwatch
from tracker_service.tracking import BodyPose, Detection, TrackOutput
from tracker_service.values import Body

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameGeometry:
    """What meshing and drawing a frame's poses need of the frame.

    Attributes:
        width: Frame width in pixels.
        height: Frame height in pixels.
        focal: Focal length of the full-image camera, pixels.

    """

    width: int
    height: int
    focal: float


@dataclass(frozen=True)
class FrameAnalysis(FrameGeometry):
    """Everything computed for a frame before tracking (n people detected), on its geometry.

    Attributes:
        boxes: (n, 4) person boxes in pixels, by decreasing score.
        scores: (n,) detector scores.
        mesh: The mesh model's output for the n crops (None when n = 0).
        cameras: (n, 3) full-image camera translations.
        roots_2d: (n, 2) pelvis projected into the image, pixels.

    """

    boxes: np.ndarray
    scores: np.ndarray
    mesh: MeshOutput | None
    cameras: np.ndarray
    roots_2d: np.ndarray

    def __len__(self) -> int:
        """People detected."""
        return len(self.boxes)

    @property
    def geometry(self) -> FrameGeometry:
        """The frame's size and focal length alone (without the arrays)."""
        return FrameGeometry(self.width, self.height, self.focal)

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)``, as the tracker takes it."""
        return self.height, self.width

    def detections(self) -> list[Detection]:
        """Build the tracker's input: box, score, appearance, pose, camera and root of each."""
        if self.mesh is None:
            return []
        out = self.mesh
        return [
            Detection(
                box=self.boxes[i],
                score=float(self.scores[i]),
                appearance=out.embedding[i],
                pose=BodyPose(out.global_orient[i], out.body_pose[i], out.betas[i]),
                camera=self.cameras[i],
                root_2d=self.roots_2d[i],
            )
            for i in range(len(self))
        ]

    def body(self, index: int, track_id: int | None) -> Body:
        """Return the body HMR2 found for detection ``index``."""
        if self.mesh is None:
            raise IndexError(f"no person {index}: nobody was detected in this frame")
        return Body(
            track_id=track_id,
            detected=True,
            box=self.boxes[index],
            confidence=float(self.scores[index]),
            camera=self.cameras[index],
            crop_camera=self.mesh.pred_cam[index].astype(np.float64),
            joints=self.mesh.meshes.joints[index],
            vertices=self.mesh.meshes.vertices[index],
        )


class FramePipeline:
    """The model steps of a frame, on Triton.

    Args:
        models: The Triton client.
        min_score: Lowest detector score kept.
        min_box_px: Smallest box side kept, in frame pixels.
        mesh_model: The mesh model (``models.hmr2`` when None).

    """

    def __init__(
        self,
        models: TritonModels,
        *,
        min_score: float,
        min_box_px: float,
        mesh_model: MeshModel | None = None,
    ) -> None:
        self._models = models
        self._detector = PersonDetector(models.detect, min_score, min_box_px)
        self._mesh_model = mesh_model or models.hmr2

    def analyse(self, frame_bgr: np.ndarray, watch: Stopwatch) -> FrameAnalysis:
        """Detect the people of a frame and run HMR2 on all of them in one request.

        Args:
            frame_bgr: (H, W, 3) uint8 BGR frame.
            watch: Receives the stages ``detect``, ``crop``, ``hmr2``, ``cameras``.

        Returns:
            The frame's analysis.

        """
        height, width = frame_bgr.shape[:2]
        with watch.stage("detect"):
            boxes, scores = self._detector(frame_bgr)
        with watch.stage("crop"):
            centers, sizes = crop_boxes(boxes)
            crops = hmr2_crops(frame_bgr, centers, sizes)
        focal = focal_length(width, height)
        if not len(boxes):
            return FrameAnalysis(
                width, height, focal, boxes, scores, None, np.zeros((0, 3)), np.zeros((0, 2))
            )
        with watch.stage("hmr2"):
            result = self._mesh_model(crops)
        with watch.stage("cameras"):
            cameras = cam_crop_to_full(result.pred_cam, centers, sizes, (width, height), focal)
            valid = (result.pred_cam[:, 0] > 0) & np.isfinite(cameras).all(axis=1)
            if not valid.all():
                log.warning("Dropping %d people with a degenerate HMR2 camera", (~valid).sum())
                boxes, scores, cameras = boxes[valid], scores[valid], cameras[valid]
                result = _rows(result, valid)
            pelvis = result.meshes.joints[:, :1]
            roots = project(pelvis, cameras, focal, (width, height))[:, 0]
        return FrameAnalysis(width, height, focal, boxes, scores, result, cameras, roots)

    def bodies(
        self, analysis: FrameAnalysis, outputs: Sequence[TrackOutput], watch: Stopwatch
    ) -> list[Body]:
        """Return the body of every tracked person, in the order of ``outputs``.

        Detected people keep HMR2's body; the others (predicted, interpolated, or smoothed
        by a temporal filter: a pose that is not the detection's own) get theirs from one
        ``smpl`` request. Such outputs without pose or camera are left out.

        Args:
            analysis: The frame's analysis.
            outputs: The tracker's outputs for the frame.
            watch: Receives the stage ``smpl`` when a request is made.

        """
        remeshed = [o for o in outputs if not _own_pose(o)]
        meshes = {b.track_id: b for b in self.posed_bodies(analysis.geometry, remeshed, watch)}
        bodies = []
        for o in outputs:
            if o.track_id in meshes:
                bodies.append(meshes[o.track_id])
            elif o.detected and o.detection_index is not None:
                bodies.append(analysis.body(o.detection_index, o.track_id))
        return bodies

    def posed_bodies(
        self, geometry: FrameGeometry, outputs: Sequence[TrackOutput], watch: Stopwatch
    ) -> list[Body]:
        """Mesh the outputs' poses in one ``smpl`` request (those without pose or camera: none).

        Args:
            geometry: The frame's size and focal length.
            outputs: Tracker outputs of one frame.
            watch: Receives the stage ``smpl`` when a request is made.

        Returns:
            One body per output with pose and camera, in the order of ``outputs``.

        """
        posed = [o for o in outputs if o.pose is not None and o.camera is not None]
        if not posed:
            return []
        poses = [o.pose for o in posed if o.pose is not None]
        with watch.stage("smpl"):
            found = self._models.smpl(
                np.stack([pose.global_orient for pose in poses]),
                np.stack([pose.body_pose for pose in poses]),
                np.stack([pose.betas for pose in poses]),
            )
        cameras = np.stack([o.camera for o in posed if o.camera is not None])
        centers, sizes = crop_boxes(np.stack([o.box for o in posed]))
        crop_cameras = cam_full_to_crop(
            cameras, centers, sizes, (geometry.width, geometry.height), geometry.focal
        )
        return [
            Body(
                track_id=o.track_id,
                detected=o.detected,
                box=o.box,
                confidence=o.confidence,
                camera=cameras[i],
                crop_camera=crop_cameras[i],
                joints=found.joints[i],
                vertices=found.vertices[i],
                smoothed=o.smoothed,
            )
            for i, o in enumerate(posed)
        ]


def _own_pose(output: TrackOutput) -> bool:
    """Whether the output's body is its detection's own, as HMR2 found it."""
    return output.detected and not output.smoothed and output.detection_index is not None


def _rows(result: MeshOutput, keep: np.ndarray) -> MeshOutput:
    """Keep the rows ``keep`` of an HMR2 result."""
    meshes = BodyMeshes(
        result.meshes.vertices[keep], result.meshes.joints[keep], result.meshes.keypoints_3d[keep]
    )
    return MeshOutput(
        global_orient=result.global_orient[keep],
        body_pose=result.body_pose[keep],
        betas=result.betas[keep],
        pred_cam=result.pred_cam[keep],
        meshes=meshes,
        embedding=result.embedding[keep],
    )

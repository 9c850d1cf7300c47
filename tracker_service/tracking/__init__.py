"""PHALP's tracker, re-implemented on the CPU with numpy and SciPy.

Build one tracker per video, then call ``update`` once per frame::

    from tracker_service.tracking import Detection, PhalpTracker, TrackerConfig

    tracker = PhalpTracker(TrackerConfig())
    for frame_index, people in enumerate(video):
        detections = [
            Detection(box=p.box, score=p.score, appearance=p.embedding, pose=p.body,
                      camera=p.camera, root_2d=p.root_2d)   # or just box and score
            for p in people
        ]
        for track in tracker.update(detections, frame_index, image_size=(height, width)):
            draw(track.track_id, track.box, track.pose, predicted=not track.detected)

Users build :class:`Detection` objects and read :class:`TrackOutput` objects;
tracks themselves stay inside the tracker. The cost, the predictor and the
matching are pure functions in :mod:`.cost`, :mod:`.predict` and :mod:`.matching`.
"""

from tracker_service.tracking.tracker import PhalpTracker, TrackerConfig
from tracker_service.tracking.types import BodyPose, Detection, TrackOutput, TrackState

__all__ = [
    "BodyPose",
    "Detection",
    "PhalpTracker",
    "TrackOutput",
    "TrackState",
    "TrackerConfig",
]

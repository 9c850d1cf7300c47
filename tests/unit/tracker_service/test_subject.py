import numpy as np
import pytest

from tracker_service.subject import select_main
from tracker_service.tracking import TrackOutput, TrackState


def output(track_id, *, confirmed=True, hits=10, detected=True, confidence=0.9):
    return TrackOutput(
        track_id=track_id,
        state=TrackState.CONFIRMED if confirmed else TrackState.TENTATIVE,
        detected=detected, box=np.array([0.0, 0.0, 10.0, 20.0]), confidence=confidence,
        pose=None, camera=None, root_2d=np.zeros(2), detection_index=0 if detected else None,
        hits=hits, age=hits, frames_since_seen=0 if detected else 1,
    )


@pytest.mark.parametrize(
    ("outputs", "current", "expected"),
    [
        ([], None, None),
        ([], 3, None),
        ([output(1), output(2)], 2, 2),  # kept while reported, even if not the best
        ([output(2, detected=False, hits=3)], 2, 2),  # kept while predicted
        ([output(1, hits=3), output(2, hits=30)], None, 2),  # the most detections
        ([output(1, confirmed=False, hits=40), output(2, hits=6)], None, 2),  # confirmed first
        ([output(1, hits=8, detected=False), output(2, hits=8)], None, 2),  # then detected
        ([output(1, confidence=0.5), output(2, confidence=0.8)], None, 2),  # then confidence
        ([output(4), output(2)], None, 2),  # then the older id
        ([output(1, confirmed=False)], None, 1),  # a tentative track when nobody else
        ([output(5), output(6, hits=20)], 3, 6),  # the main subject is gone: next best
    ],
)
def test_select_main(outputs, current, expected):
    assert select_main(outputs, current) == expected

"""The video's main subject: the one person the legacy fields answer.

The old service answered the first detection of each frame, so its body jumped between
people. Here the main subject is a track: once chosen it is kept for as long as the tracker
reports it (detected or predicted). When it is gone, the best-established track takes over:
confirmed before tentative, then the most detections, then detected in this frame, then the
highest confidence.
"""

from __future__ import annotations

from collections.abc import Sequence

from tracker_service.tracking import TrackOutput, TrackState


def select_main(outputs: Sequence[TrackOutput], current: int | None) -> int | None:
    """Track id of the main subject in this frame.

    Args:
        outputs: The tracker's outputs for the frame.
        current: The main subject so far, or None.

    Returns:
        ``current`` when it is still reported, else the best-established track's id, or
        None when no track is reported.

    """
    if any(output.track_id == current for output in outputs):
        return current
    if not outputs:
        return None
    best = max(
        outputs,
        key=lambda o: (
            o.state is TrackState.CONFIRMED, o.hits, o.detected, o.confidence, -o.track_id,
        ),
    )
    return best.track_id

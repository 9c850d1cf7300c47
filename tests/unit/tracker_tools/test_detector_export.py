"""The offline person detector (``model_repository/person_detector/1/model.onnx``) on real media.

The ONNX file is built by ``make models`` (``scripts/export_detector.py --source offline``);
these tests skip when it is absent. Figures measured when written: frame 200 of vtest.avi,
5 of 7 people at score >= 0.3 and IoU >= 0.5 (the far couple at the top right, about 56 px
tall, scores 0.13 and below); runner.mp4, the runner found in 180 of 180 frames. To see
the figures: ``pytest tests/unit/tracker_tools/test_detector_export.py -o log_cli=true
--log-cli-level=INFO``.
"""

import logging

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import REPO_ROOT, shared_path
from tracker_service.detection import boxes_to_frame, filter_detections, letterbox
from tracker_service.geometry import box_iou
from tracker_service.model_spec import DETECTOR_INPUT_HW, PERSON_DETECTOR
from tracker_tools.media import read_frames

log = logging.getLogger(__name__)

MODEL = REPO_ROOT / "model_repository" / PERSON_DETECTOR.name / "1" / "model.onnx"
#: The recommended service defaults for the offline detector (docs/detector.md).
MIN_SCORE = 0.3
MIN_SIZE = 12.0
#: Every person in frame 200 of vtest.avi, annotated by hand (x1, y1, x2, y2, frame pixels).
FRAME_200_PEOPLE = np.array(
    [
        [84, 154, 111, 215],  # left, light jacket, walking on the car park edge
        [220, 191, 249, 267],  # dark top, back to the camera
        [488, 145, 518, 222],  # centre, by the lamp post
        [677, 98, 698, 154],  # far right couple: red top
        [700, 104, 721, 155],  # far right couple: black coat
        [617, 265, 651, 368],  # foreground, jeans
        [705, 254, 744, 354],  # foreground right, all black
    ],
    np.float32,
)


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    if not MODEL.exists():
        pytest.skip(f"{MODEL.relative_to(REPO_ROOT)} is absent: build it with `make models`")
    return ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])


def detect(session, frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Letterbox a batch of BGR frames, run the model, return kept detections per frame."""
    letterboxed = [letterbox(frame, DETECTOR_INPUT_HW) for frame in frames]
    boxes, scores = session.run(None, {"images": np.stack([lb[0] for lb in letterboxed])})
    results = []
    for frame, (_, scale, pad), b, s in zip(frames, letterboxed, boxes, scores, strict=True):
        in_frame = boxes_to_frame(b, scale, pad, (frame.shape[1], frame.shape[0]))
        results.append(filter_detections(in_frame, s, MIN_SCORE, MIN_SIZE))
    return results


def greedy_matches(truth: np.ndarray, boxes: np.ndarray, min_iou: float) -> int:
    """Detections (in score order) matched one-to-one to the best free truth box."""
    overlaps = box_iou(truth, boxes)
    free = np.ones(len(truth), bool)
    for column in overlaps.T:
        candidates = np.where(free & (column >= min_iou))[0]
        if candidates.size:
            free[candidates[np.argmax(column[candidates])]] = False
    return int((~free).sum())


def test_contract(session):
    (graph_input,) = session.get_inputs()
    assert (graph_input.name, graph_input.type) == ("images", "tensor(uint8)")
    assert graph_input.shape[1:] == list(PERSON_DETECTOR.inputs[0].dims)
    assert isinstance(graph_input.shape[0], str), "the batch axis must be dynamic"
    outputs = {o.name: o for o in session.get_outputs()}
    assert list(outputs) == list(PERSON_DETECTOR.output_names)
    for spec in PERSON_DETECTOR.outputs:
        assert outputs[spec.name].type == "tensor(float)"
        assert outputs[spec.name].shape[1:] == list(spec.dims)

    vtest = read_frames(shared_path("media", "vtest.avi"), 1, start=200)[0]
    runner = read_frames(shared_path("media", "runner.mp4"), 1, start=90)[0]
    blank = np.full((480, 640, 3), 114, np.uint8)
    images = np.stack([letterbox(f, DETECTOR_INPUT_HW)[0] for f in (vtest, runner, blank)])
    boxes, scores = session.run(None, {"images": images})
    assert boxes.shape == (3, *PERSON_DETECTOR.outputs[0].dims) and boxes.dtype == np.float32
    assert scores.shape == (3, *PERSON_DETECTOR.outputs[1].dims) and scores.dtype == np.float32
    assert np.all(np.diff(scores, axis=1) <= 0), "scores must be sorted, best first"
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.all(scores[2] == 0), "a blank image has no person: all padding"
    assert np.all(boxes[scores == 0] == 0), "padding boxes must be zero"
    kept = scores > 0
    assert np.all(boxes[kept][:, 2:] >= boxes[kept][:, :2])
    assert np.all((boxes[kept] >= 0) & (boxes[kept] <= max(DETECTOR_INPUT_HW)))

    for i in range(3):  # the batch axis really batches: each image alone gives the same
        single_boxes, single_scores = session.run(None, {"images": images[i : i + 1]})
        np.testing.assert_allclose(single_scores[0], scores[i], atol=1e-5)
        np.testing.assert_allclose(single_boxes[0], boxes[i], atol=1e-3)


def test_frame_200_people(session):
    frame = read_frames(shared_path("media", "vtest.avi"), 1, start=200)[0]
    ((boxes, scores),) = detect(session, [frame])
    matched = greedy_matches(FRAME_200_PEOPLE, boxes, min_iou=0.5)
    log.info(
        "frame 200: %d of 7 people found, %d other detections, scores %s",
        matched,
        len(boxes) - matched,
        [round(float(s), 2) for s in scores],
    )
    assert matched >= 5, f"found {matched} of 7 people; scores {np.round(scores, 2)}"
    assert len(boxes) - matched <= 1, f"{len(boxes) - matched} false positives"


def test_runner_found_in_nearly_every_frame(session):
    found = total = 0
    frames = iter(read_frames(shared_path("media", "runner.mp4"), 10_000))
    while batch := [f for _, f in zip(range(4), frames, strict=False)]:
        for frame, (boxes, _) in zip(batch, detect(session, batch), strict=True):
            # One person in this video, and a large one (about half the frame height).
            heights = boxes[:, 3] - boxes[:, 1]
            found += bool(np.any(heights >= 0.3 * frame.shape[0]))
        total += len(batch)
    log.info("runner found in %d of %d frames (%.1f %%)", found, total, 100 * found / total)
    assert total == 180
    assert found >= 0.95 * total, f"runner found in {found} of {total} frames"

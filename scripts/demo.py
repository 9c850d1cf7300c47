"""The offline demo: real video through the person detector and HMR2 on a real Triton server.

Starts the local Triton server on the offline model set (``make models``), reads frames of
``../shared/media/vtest.avi`` (or a clip it makes itself when that is absent), and prints,
per frame, the people found and the time of each stage.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from scripts.model_repository import build_local_repository
from scripts.triton_server import LocalTritonServer
from tracker_service.detection import boxes_to_frame, filter_detections, letterbox
from tracker_service.inference import TritonModels
from tracker_service.model_spec import DETECTOR_INPUT_HW, MODELS
from tracker_service.preprocess import crop_boxes, hmr2_crops

log = logging.getLogger(__name__)
SHARED_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "vtest.avi"


def synthetic_clip(path: Path, frames: int = 30) -> Path:
    """Write a small clip of a walking silhouette, for machines without the shared media."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for i in range(frames):
        frame = np.full((480, 640, 3), 190, np.uint8)
        x = 120 + 12 * i
        cv2.circle(frame, (x, 120), 22, (60, 70, 90), -1)  # head
        cv2.rectangle(frame, (x - 28, 145), (x + 28, 280), (40, 60, 140), -1)  # torso
        for dx in (-14, 14):  # legs
            cv2.line(frame, (x + dx, 280), (x + dx + (i % 6 - 3) * 4, 400), (40, 40, 40), 18)
        writer.write(frame)
    writer.release()
    return path


def read_frames(video: Path, count: int, step: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, BGR frame) for ``count`` frames taken every ``step`` frames."""
    capture = cv2.VideoCapture(str(video))
    try:
        index = 0
        while count > 0:
            ok, frame = capture.read()
            if not ok:
                return
            if index % step == 0:
                count -= 1
                yield index, frame
            index += 1
    finally:
        capture.release()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, help="default: ../shared/media/vtest.avi")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--step", type=int, default=50, help="take every STEP-th frame")
    parser.add_argument("--min-score", type=float, default=0.4)
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    video = args.video or SHARED_VIDEO
    if not video.exists():
        Path("build").mkdir(exist_ok=True)
        video = synthetic_clip(Path("build/demo_clip.avi"))
        print(f"{SHARED_VIDEO} is absent: using a synthetic clip, {video}")
    local = Path("build/triton_repository")
    missing = set(MODELS) - set(build_local_repository(args.repository, local))
    if missing:
        raise SystemExit(f"models not built: {', '.join(sorted(missing))}; run `make models`")
    start = time.perf_counter()
    server = LocalTritonServer(
        repository=local, models=tuple(MODELS), log_file=Path("build/tritonserver.log"),
        startup_timeout_s=900,
    )
    with server:
        print(f"Triton ready in {time.perf_counter() - start:.1f} s at {server.grpc_url}")
        models = TritonModels(server.grpc_url, timeout_s=600)
        totals = []
        for index, frame in read_frames(video, args.frames, args.step):
            t0 = time.perf_counter()
            image, scale, pad = letterbox(frame, DETECTOR_INPUT_HW)
            boxes, scores = models.detect(image[None])
            boxes = boxes_to_frame(boxes[0], scale, pad, frame.shape[1::-1])
            boxes, scores = filter_detections(boxes, scores[0], args.min_score, 16)
            t1 = time.perf_counter()
            centers, sizes = crop_boxes(boxes)
            crops = hmr2_crops(frame, centers, sizes)
            t2 = time.perf_counter()
            people = models.hmr2(crops) if len(crops) else None
            t3 = time.perf_counter()
            totals.append(t3 - t0)
            depth = "" if people is None else (
                " camera scale " + ", ".join(f"{s:.2f}" for s in people.pred_cam[:, 0])
            )
            print(
                f"frame {index:4d}: {len(boxes)} people | detect {1000 * (t1 - t0):.0f} ms, "
                f"crop {1000 * (t2 - t1):.0f} ms, hmr2 {1000 * (t3 - t2):.0f} ms"
                f" ({1000 * (t3 - t2) / max(len(boxes), 1):.0f} ms/person){depth}"
            )
        models.close()
    mean_ms = 1000 * np.mean(totals)
    print(f"{len(totals)} frames from {video}: {mean_ms:.0f} ms per frame on average")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The tiny model set: the real graphs with a shallow HMR2, for tests, soak runs and benchmarks.

Same code as the full-size export (``scripts/export_hmr2.py``), two backbone blocks instead of
32, generated weights and the stand-in body model; the offline person detector that
``make models`` built is linked in. Full-size HMR2 costs about a second per person on a CPU;
this one costs milliseconds, so the service's own behaviour and overhead can be exercised.

Example:
    python -m scripts.tiny_models build/tiny_repository
"""

from __future__ import annotations

from pathlib import Path

import torch

from tracker_service.model_spec import HMR2, PERSON_DETECTOR, SMPL
from tracker_tools.hmr2.body_model import BodyModel
from tracker_tools.hmr2.export import (
    ServedHMR2,
    ServedSMPL,
    build_network,
    export_model,
    random_crops,
    write_faces,
)
from tracker_tools.hmr2.network import HMR2Config
from tracker_tools.hmr2.standin_smpl import make_standin
from tracker_tools.model_repository import ONNX_FILENAME, VERSION, write_production_repository

#: Where ``make models`` puts the offline detector.
DETECTOR_DIR = Path(__file__).resolve().parents[1] / "model_repository" / PERSON_DETECTOR.name


def build_tiny_repository(root: Path, detector_dir: Path = DETECTOR_DIR) -> Path:
    """Write the production layout with the tiny HMR2, the body model and the detector.

    Args:
        root: The repository to write; models already exported there are kept.
        detector_dir: The detector's model folder holding ``1/model.onnx``.

    Returns:
        ``root``.

    Raises:
        FileNotFoundError: The detector has not been built (``make models``).
    """
    detector = detector_dir / VERSION / ONNX_FILENAME
    if not detector.is_file():
        raise FileNotFoundError(f"{detector} is missing: run `make models` to build the detector")
    write_production_repository(root)
    if not (root / HMR2.name / VERSION / ONNX_FILENAME).is_file():
        standin = make_standin()
        write_faces(standin.faces, root)
        body_model = BodyModel(standin).eval()
        served = ServedHMR2(build_network(HMR2Config.tiny(), weights="generated"), body_model)
        crops = (random_crops(2),)
        export_model(served, HMR2, crops, root / HMR2.name / VERSION / ONNX_FILENAME)
        with torch.no_grad():
            params = tuple(served(*crops)[:3])
        export_model(
            ServedSMPL(body_model), SMPL, params, root / SMPL.name / VERSION / ONNX_FILENAME
        )
    linked = root / PERSON_DETECTOR.name / VERSION
    linked.mkdir(parents=True, exist_ok=True)
    for item in detector.parent.iterdir():
        if not (linked / item.name).exists():
            (linked / item.name).symlink_to(item.resolve())
    return root

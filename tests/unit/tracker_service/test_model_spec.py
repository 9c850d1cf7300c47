import numpy as np
import pytest

from tracker_service.model_spec import SMPL_FACES, SMPL_VERTICES, load_faces

FACES = np.random.default_rng(0).integers(0, SMPL_VERTICES, (SMPL_FACES, 3))


def test_load_faces(tmp_path):
    path = tmp_path / "faces.npy"
    np.save(path, FACES.astype(np.int64))
    faces = load_faces(path)
    assert faces.dtype == np.int32 and faces.shape == (13776, 3)
    with pytest.raises(FileNotFoundError, match="TRACKER_SMPL_FACES"):
        load_faces(tmp_path / "missing.npy")
    np.save(path, FACES[:10])
    with pytest.raises(ValueError, match=r"expected \(13776, 3\)"):
        load_faces(path)
    bad = FACES.copy()
    bad[0, 0] = 6890
    np.save(path, bad)
    with pytest.raises(ValueError, match="vertex indices"):
        load_faces(path)

"""The numpy shim py-motmetrics needs: explicit, idempotent, numpy 1's behaviour."""

import numpy as np
import pytest

from tracker_tools.compat import _asfarray, numpy_for_motmetrics


def test_asfarray_behaves_as_numpy_1s():
    assert _asfarray([1, 2]).dtype == np.float64
    assert _asfarray(np.array([1, 2], np.int32), np.int64).dtype == np.float64  # floats only
    assert _asfarray([1.5], np.float32).dtype == np.float32
    np.testing.assert_array_equal(_asfarray([[1, 2]]), [[1.0, 2.0]])


def test_applied_only_when_called_and_idempotent(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delattr(np, "asfarray", raising=False)
    assert not hasattr(np, "asfarray")  # nothing patches numpy at import
    numpy_for_motmetrics()
    patched = np.asfarray
    numpy_for_motmetrics()
    assert np.asfarray is patched
    assert np.asfarray([3]).dtype == np.float64


def test_motmetrics_computes_with_it():
    from tracker_tools.mot_score import motmetrics

    mm = motmetrics()
    distances = mm.distances.iou_matrix([[0, 0, 10, 10]], [[0, 0, 10, 10]], max_iou=0.5)
    assert distances.shape == (1, 1) and distances[0, 0] == pytest.approx(0.0)

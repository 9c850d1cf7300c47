"""Answers of Triton are checked against the model spec (the real server: tests/integration)."""

import re

import numpy as np
import pytest

from tracker_service.exceptions import InferenceFailed
from tracker_service.inference import _checked
from tracker_service.model_spec import HMR2

VERTICES = next(t for t in HMR2.outputs if t.name == "vertices")


def test_an_answer_as_the_spec_says_is_passed_through():
    array = np.zeros((2, 6890, 3), np.float32)
    assert _checked("hmr2", VERTICES, 2, array) is array


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (None, "without its output 'vertices'"),
        (np.zeros((2, 6890, 3), np.float64), "'vertices' is float64 [2, 6890, 3], expected"),
        (np.zeros((2, 6890), np.float32), "'vertices' is float32 [2, 6890], expected"),
        (np.zeros((1, 6890, 3), np.float32), "expected float32 [2, 6890, 3]"),
        (np.zeros((2, 778, 3), np.float32), "'vertices' is float32 [2, 778, 3]"),
    ],
    ids=["missing", "dtype", "rank", "batch", "another body model"],
)
def test_a_wrongly_exported_answer_is_a_502_naming_the_tensor(array, words):
    with pytest.raises(InferenceFailed, match=re.escape(words)) as info:
        _checked("hmr2", VERTICES, 2, array)
    assert info.value.status_code == 502

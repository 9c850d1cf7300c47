import numpy as np
import pytest

from tracker_service.tracking.rotation import (
    matrix_to_rotvec,
    orthonormalise,
    rotvec_to_matrix,
    so3_exp,
    so3_log,
)

transform = pytest.importorskip("scipy.spatial.transform", reason="SciPy is the reference")


def _rotvecs(count: int = 4000) -> np.ndarray:
    """Angles from 1e-6 to pi (exactly pi for the first ten), random axes."""
    rng = np.random.default_rng(1)
    axes = rng.normal(size=(count, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.pi * rng.choice([1e-6, 1e-4, 0.1, 0.5, 0.999], count) * rng.random(count)
    angles[:10] = np.pi
    return axes * angles[:, None]


def test_rotvec_to_matrix_is_scipys():
    rotvecs = _rotvecs()
    expected = transform.Rotation.from_rotvec(rotvecs).as_matrix()
    np.testing.assert_allclose(rotvec_to_matrix(rotvecs), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("noise", [0.0, 1e-7, 1e-4])
def test_matrix_to_rotvec_and_orthonormalise_are_scipys(noise):
    matrices = transform.Rotation.from_rotvec(_rotvecs()[10:]).as_matrix()
    matrices = matrices + np.random.default_rng(2).normal(scale=noise, size=matrices.shape)
    scipy_rotation = transform.Rotation.from_matrix(matrices)
    np.testing.assert_allclose(
        matrix_to_rotvec(matrices), scipy_rotation.as_rotvec(), rtol=0, atol=1e-14
    )
    np.testing.assert_allclose(
        orthonormalise(matrices), scipy_rotation.as_matrix(), rtol=0, atol=1e-14
    )


def test_log_and_exp_are_inverse_at_a_base_and_keep_leading_shapes():
    rng = np.random.default_rng(3)
    base = rotvec_to_matrix(rng.normal(scale=1.0, size=(2, 5, 3)))
    tangent = rng.normal(scale=0.5, size=(2, 5, 3))
    moved = so3_exp(base, tangent)
    assert moved.shape == (2, 5, 3, 3)
    np.testing.assert_allclose(so3_log(base, moved), tangent, atol=1e-12)
    identity = np.broadcast_to(np.eye(3), moved.shape)
    np.testing.assert_allclose(moved @ np.swapaxes(moved, -1, -2), identity, atol=1e-12)


def test_empty_inputs_give_empty_outputs():
    assert matrix_to_rotvec(np.zeros((0, 3, 3))).shape == (0, 3)
    assert rotvec_to_matrix(np.zeros((2, 0, 3))).shape == (2, 0, 3, 3)

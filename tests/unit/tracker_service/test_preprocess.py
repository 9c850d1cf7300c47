import cv2
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from tracker_service.preprocess import crop_boxes, hmr2_crops

MEAN = 255 * np.array([0.485, 0.456, 0.406])
STD = 255 * np.array([0.229, 0.224, 0.225])


def official_crop(image_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The official steps, written out plainly: whole-image blur, 256x256 warp, side cut."""
    center = (box[:2] + box[2:]) / 2
    w, h = box[2] - box[0], box[3] - box[1]
    side = max(h, w * 4 / 3) if h / w >= 4 / 3 else w * 4 / 3
    d = side / 256 / 2
    img = image_bgr
    if d > 1.1:
        img = gaussian_filter(image_bgr.astype(np.float64), sigma=((d - 1) / 2, (d - 1) / 2, 0),
                              mode="nearest", truncate=4.0)
    src = np.float32([center, center + [0, side / 2], center + [side / 2, 0]])
    dst = np.float32([[128, 128], [128, 256], [256, 128]])
    patch = cv2.warpAffine(img, cv2.getAffineTransform(src, dst), (256, 256),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    rgb = patch[:, :, ::-1].astype(np.float64)
    return ((rgb - MEAN) / STD).transpose(2, 0, 1)[:, :, 32:-32]


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    return cv2.resize(base, (1600, 1200), interpolation=cv2.INTER_CUBIC)  # smooth-ish texture


@pytest.mark.parametrize(
    "box",
    [
        [400, 300, 520, 620],  # small, tall: no blur
        [100, 100, 900, 500],  # wide: grows to 3:4, blurred
        [1300, 700, 1650, 1300],  # past the right and bottom edges, blurred
        [-200, -100, 100, 800],  # past the left and top edges
    ],
)
def test_crops_match_the_official_pipeline(image, box):
    box = np.array(box, dtype=np.float32)
    centers, sizes = crop_boxes(box[None])
    ours = hmr2_crops(image, centers, sizes)[0]
    expected = official_crop(image, box)
    np.testing.assert_allclose(ours, expected, atol=1e-5)  # float32 output of the same pixels


@pytest.mark.parametrize(
    ("box", "center", "size"),
    [
        ([0, 0, 30, 40], (15, 20), 40),  # already 3:4
        ([0, 0, 30, 100], (15, 50), 100),  # tall: the height decides
        ([0, 0, 90, 60], (45, 30), 120),  # wide: 4w/3
    ],
)
def test_crop_boxes(box, center, size):
    centers, sizes = crop_boxes(np.array([box]))
    np.testing.assert_allclose(centers[0], center)
    np.testing.assert_allclose(sizes[0], size, rtol=1e-6)


def test_no_boxes_give_no_crops(image):
    centers, sizes = crop_boxes(np.zeros((0, 4)))
    assert hmr2_crops(image, centers, sizes).shape == (0, 3, 256, 192)


def float64_normalized_crop(image_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Our warp of an unblurred crop, normalized in float64 then rounded to float32."""
    center = (box[:2] + box[2:]) / 2
    side = max(box[3] - box[1], (box[2] - box[0]) * 4 / 3)
    src = np.float32([center, center + [0, side / 2], center + [side / 2, 0]])
    dst = np.float32([[128, 128], [128, 256], [256, 128]])
    patch = cv2.warpAffine(image_bgr, cv2.getAffineTransform(src, dst), (256, 256),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    rgb = patch[:, :, ::-1].astype(np.float64)
    return ((rgb - MEAN) / STD).transpose(2, 0, 1)[:, :, 32:-32].astype(np.float32)


@pytest.mark.parametrize("box", [[400, 300, 520, 620], [-50, 900, 200, 1400]])
def test_unblurred_crops_are_the_float64_normalization_bit_for_bit(image, box):
    box = np.array(box, dtype=np.float32)
    centers, sizes = crop_boxes(box[None])
    assert sizes[0] / 512 <= 1.1  # the lookup-table path
    np.testing.assert_array_equal(hmr2_crops(image, centers, sizes)[0],
                                  float64_normalized_crop(image, box))

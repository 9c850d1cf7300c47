import base64

import cv2
import numpy as np

from tracker_service.geometry import focal_length
from tracker_service.render import DATA_URI_PREFIX, _facing, render
from tracker_service.topology import smpl_topology
from tracker_service.values import Body


def sphere_body(track_id, detected, x_offset):
    rng = np.random.default_rng(track_id)
    vertices = rng.normal(size=(6890, 3))
    vertices = 0.5 * vertices / np.linalg.norm(vertices, axis=1, keepdims=True)
    return Body(
        track_id=track_id, detected=detected, box=np.array([100.0 + x_offset, 60, 220, 300]),
        confidence=0.9, camera=np.array([x_offset / 100.0, 0.0, 12.0]),
        crop_camera=np.array([1.0, 0.0, 0.0]), joints=rng.normal(0, 0.3, (24, 3)),
        vertices=vertices,
    )


def decode_uri(text):
    assert text.startswith("data:image/jpeg;base64,") and DATA_URI_PREFIX == text[:23]
    return cv2.imdecode(
        np.frombuffer(base64.b64decode(text.removeprefix(DATA_URI_PREFIX)), np.uint8),
        cv2.IMREAD_COLOR,
    )


def test_render_draws_every_body_on_a_jpeg_data_uri_of_the_frame():
    frame = np.full((360, 480, 3), 40, np.uint8)
    faces = np.random.default_rng(0).integers(0, 6890, (13776, 3))
    bodies = [sphere_body(1, True, 0.0), sphere_body(2, False, 150.0)]
    text = render(frame, bodies, 0, focal_length(480, 360), smpl_topology(faces))
    drawn = decode_uri(text)
    assert drawn.shape == frame.shape
    changed = np.abs(drawn.astype(int) - 40).max(axis=2) > 60
    assert changed[:, :300].any() and changed[:, 300:].any()
    assert (frame == 40).all()  # the input is not drawn on


def test_render_without_bodies_is_the_frame():
    frame = np.full((40, 60, 3), 90, np.uint8)
    text = render(frame, [], None, 100.0, smpl_topology(np.zeros((1, 3), int)))
    drawn = decode_uri(text)
    assert np.abs(drawn.astype(int) - 90).max() <= 2


def test_the_facing_triangles_of_a_closed_mesh_fill_its_whole_silhouette():
    # An octahedron, outward winding; seen from several directions (random rotations).
    vertices = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1.0]])
    faces = np.array(
        [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]]
    )
    rng = np.random.default_rng(0)
    for _ in range(10):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        points = vertices @ q.T * 60.0 + [100.0, 100.0, 0.0]
        triangles = np.round(points[faces][:, :, :2]).astype(np.int32)
        masks = [np.zeros((200, 200), np.uint8) for _ in range(2)]
        for mask, chosen in zip(masks, (triangles, _facing(triangles)), strict=True):
            for triangle in chosen:
                cv2.fillConvexPoly(mask, triangle, 255)
        assert len(_facing(triangles)) < len(triangles)
        np.testing.assert_array_equal(masks[1], masks[0])

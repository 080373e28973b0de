"""Preview rasterizer (numpy only): placement, occlusion, texture lookup, shading, and speed."""

from __future__ import annotations


import numpy as np
import pytest
import trimesh

from server.errors import InputError
from server.export.preview import camera_axes, render_preview
from server.meshdata import MeshArrays
from tests.test_export_package import make_barrel


def quad(centre, size, facing_camera=True, uv=((0, 0), (1, 0), (1, 1), (0, 1))):
    """A square facing the preview camera (its u along image right, v along image up)."""
    right, up, back = camera_axes()
    c = np.asarray(centre, float)
    corners = np.array([c - size * right - size * up, c + size * right - size * up,
                        c + size * right + size * up, c - size * right + size * up])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    normals = np.tile(back if facing_camera else -back, (4, 1))
    return MeshArrays(corners, faces, uv=np.array(uv, float), normals=normals)


def test_textured_quad_shows_its_texture_where_expected():
    texture = np.zeros((64, 64, 4), np.uint8)
    texture[:, :32] = (255, 0, 0, 255)  # u < 0.5: red
    texture[:, 32:] = (0, 0, 255, 255)  # u > 0.5: blue
    texture[:8, :, :3] = (0, 255, 0)  # v near 1 (top rows): green
    image = render_preview(quad((0, 0, 0), 1.0), texture, size=128)
    assert image.shape == (128, 128, 4) and image.dtype == np.uint8
    assert image[64, 30, 3] == 255 and image[64, 30, 0] > 150 and image[64, 30, 2] == 0
    assert image[64, 98, 2] > 150 and image[64, 98, 0] == 0
    assert image[12, 64, 1] > 150 and image[12, 64, 0] == 0  # top of the picture is v = 1
    assert image[0, 0, 3] == 0 and image[127, 127, 3] == 0  # the margin stays transparent


def test_nearer_surface_wins():
    _, _, back = camera_axes()
    far = quad((0, 0, 0), 1.0)
    near = quad(0.5 * back, 0.5)
    both = MeshArrays(np.concatenate([near.vertices, far.vertices]), np.concatenate([near.faces, far.faces + 4]),
                      uv=np.concatenate([np.full((4, 2), 0.25), np.full((4, 2), 0.75)]),
                      normals=np.concatenate([near.normals, far.normals]))
    texture = np.zeros((2, 2, 4), np.uint8)
    texture[:, 0] = (255, 0, 0, 255)  # u = 0.25: red (the near quad)
    texture[:, 1] = (0, 0, 255, 255)  # u = 0.75: blue (the far quad)
    image = render_preview(both, texture, size=128)
    assert image[64, 64, 0] > 150 and image[64, 64, 2] == 0  # centre: the near quad
    assert image[64, 10, 2] > 150  # outside the near quad: the far one


def test_lambert_shading_lights_the_key_side():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    mesh = MeshArrays(sphere.vertices, sphere.faces, normals=sphere.vertex_normals)
    image = render_preview(mesh, None, size=128).astype(int)
    covered = image[..., 3] == 255
    assert 0.45 < covered.mean() < 0.7  # a disc filling most of the frame
    lum = image[..., :3].sum(-1)
    # The key light comes from the left and above: the upper-left of the disc is brighter.
    assert lum[40, 40] > lum[88, 88] + 60


def test_barrel_stands_upright_in_the_picture():
    image = render_preview(make_barrel(24, 12), None, size=256)
    rows = np.nonzero(image[..., 3].any(axis=1))[0]
    cols = np.nonzero(image[..., 3].any(axis=0))[0]
    assert np.ptp(rows) > np.ptp(cols)  # taller than wide: Z is up on screen


def test_twenty_thousand_triangles_at_512_render():
    sphere = trimesh.creation.icosphere(subdivisions=5)  # 20 480 triangles
    v = sphere.vertices
    uv = np.stack([np.arctan2(v[:, 1], v[:, 0]) / (2 * np.pi) % 1, v[:, 2] * 0.5 + 0.5], axis=1)
    mesh = MeshArrays(v, sphere.faces, uv=uv, normals=sphere.vertex_normals)
    texture = np.full((256, 256, 4), 180, np.uint8)
    image = render_preview(mesh, texture, size=512)
    assert image.shape == (512, 512, 4)
    covered = image[..., 3] > 0  # the sphere fills a disc: about pi/4 of its bounding square
    rows, cols = np.nonzero(covered)
    assert 0.7 < covered.sum() / ((np.ptp(rows) + 1) * (np.ptp(cols) + 1)) < 0.86


def test_bad_size_is_refused():
    with pytest.raises(InputError):
        render_preview(make_barrel(8, 4), None, size=4)

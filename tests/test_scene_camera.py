"""server/scene/camera.py: the assumed pinhole camera, back-projection onto the ground and its refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from server.errors import InputError, RefusedInput
from server.scene.camera import SceneCamera


def test_ground_points_project_back_to_their_pixels():
    camera = SceneCamera(448, 336, vfov_deg=50, camera_height_m=1.6, pitch_deg=15)
    rng = np.random.default_rng(3)
    rows = rng.uniform(camera.horizon_row + 5, 336, 200)
    cols = rng.uniform(0, 448, 200)
    points = camera.ground_points(rows, cols)
    assert np.allclose(points[:, 2], 0.0, atol=1e-12)
    back_rows, back_cols, depth = camera.project(points)
    assert np.allclose(back_rows, rows, atol=1e-9) and np.allclose(back_cols, cols, atol=1e-9)
    assert np.all(depth > 0)


def test_geometry_of_known_rays():
    """The centre pixel looks pitch_deg down: it meets the ground at height / tan(pitch); the bottom edge of the
    image looks pitch + vfov/2 down; the horizon row is where the ray is level."""
    camera = SceneCamera(400, 300, vfov_deg=40, camera_height_m=2.0, pitch_deg=20)
    centre = camera.ground_points([150.0], [200.0])[0]
    assert centre == pytest.approx([0.0, 2.0 / math.tan(math.radians(20)), 0.0], abs=1e-9)
    bottom = camera.ground_points([300.0], [200.0])[0]
    assert bottom[1] == pytest.approx(2.0 / math.tan(math.radians(40)), abs=1e-9)
    level = camera.rays([camera.horizon_row], [123.0])[0]
    assert level[2] == pytest.approx(0.0, abs=1e-9)
    # a point 1 m to the right at the centre's distance shows right of centre by focal * 1 / depth
    rows, cols, depth = camera.project(centre[None] + [1.0, 0.0, 0.0])
    assert cols[0] - 200.0 == pytest.approx(camera.focal_px / depth[0], rel=1e-9)
    assert camera.focal_px == pytest.approx(150.0 / math.tan(math.radians(20)), rel=1e-12)


def test_pixel_above_the_horizon_is_refused():
    camera = SceneCamera(448, 336)
    with pytest.raises(RefusedInput, match="horizon"):
        camera.ground_points([camera.horizon_row - 1.0], [100.0])


@pytest.mark.parametrize("argument,kwargs", [
    ("vfov_deg", {"vfov_deg": 0}), ("vfov_deg", {"vfov_deg": float("nan")}), ("vfov_deg", {"vfov_deg": "50"}),
    ("camera_height_m", {"camera_height_m": -1.0}), ("pitch_deg", {"pitch_deg": 95}),
    ("pitch_deg", {"pitch_deg": True}),
])
def test_bad_camera_settings_name_the_argument(argument, kwargs):
    with pytest.raises(InputError) as caught:
        SceneCamera.for_image((336, 448, 3), **kwargs)
    assert caught.value.argument == argument
    assert str(kwargs[argument]) in str(caught.value) or repr(kwargs[argument]) in str(caught.value)

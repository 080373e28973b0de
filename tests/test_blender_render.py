"""Checks of tests/blender_render.py on the bundled house: views follow CONVENTIONS.md 'Input views'."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from tests.measures import iou

# sRGB colours from tests/data/make_house.py (COLOURS_SRGB), as 0..255
WALL = np.array([0.94, 0.88, 0.72]) * 255
DOOR = np.array([0.45, 0.28, 0.14]) * 255
ROOF = np.array([0.60, 0.13, 0.10]) * 255

VIEWS = ("front", "left", "back", "right")


def _rgba(path):
    im = Image.open(path)
    assert im.mode == "RGBA", f"{path} is {im.mode}"
    return np.asarray(im)


def _mask(a):
    return a[..., 3] > 127


def _near(a, colour, tol=25.0):
    return (a[..., 3] > 250) & (np.abs(a[..., :3].astype(float) - colour).max(axis=-1) < tol)


def test_views_exist_rgba_and_share_scale(house_views):
    assert set(house_views) == set(VIEWS)
    info = json.loads((house_views["front"].parent / "views.json").read_text())
    assert info["image_size"] == [384, 384]
    assert set(info["views"]) == set(VIEWS)
    for v in VIEWS:
        a = _rgba(house_views[v])
        assert a.shape == (384, 384, 4)
        assert a[0, 0, 3] == 0 and a[-1, -1, 3] == 0, "corners should be transparent"
        m = _mask(a)
        ys, xs = np.nonzero(m)
        # margin: nothing touches the border
        assert ys.min() > 5 and xs.min() > 5 and ys.max() < 378 and xs.max() < 378


def test_front_back_mirror(house_views):
    f = _mask(_rgba(house_views["front"]))
    b = _mask(_rgba(house_views["back"]))
    assert iou(f, b[:, ::-1]) > 0.98
    l_ = _mask(_rgba(house_views["left"]))
    r = _mask(_rgba(house_views["right"]))
    assert iou(l_, r[:, ::-1]) > 0.98


def test_same_height_in_all_views(house_views):
    heights = {}
    for v in VIEWS:
        ys = np.nonzero(_mask(_rgba(house_views[v])).any(axis=1))[0]
        heights[v] = ys.max() - ys.min() + 1
    assert max(heights.values()) - min(heights.values()) <= 2, heights
    # the house is 1.2 units tall; check against the recorded scale
    info = json.loads((house_views["front"].parent / "views.json").read_text())
    assert abs(heights["front"] - 1.2 * info["pixels_per_unit"]) <= 3


def test_front_door_and_colours(house_views):
    a = _rgba(house_views["front"])
    door = _near(a, DOOR)
    assert door.sum() > 1500, "door (brown) pixels missing in the front view"
    ys, xs = np.nonzero(door)
    assert abs(xs.mean() - 191.5) < 10, "door should be centred"
    silhouette_bottom = np.nonzero(_mask(a).any(axis=1))[0].max()
    assert silhouette_bottom - ys.max() <= 3, "door should stand on the ground"
    # a flat, camera-facing wall shows its vertex colour within 10 %
    wall = _near(a, WALL, tol=40)
    assert wall.sum() > 10000
    mean = a[wall][:, :3].mean(axis=0)
    assert np.all(np.abs(mean - WALL) < 0.1 * 255), mean
    assert _near(a, ROOF, tol=40).sum() > 500, "roof (dark red) missing"


def test_door_side_in_left_right(house_views):
    """Left view: camera at -X, image right = -Y, so the front wall's door is on the RIGHT."""
    for view, side in (("left", "right"), ("right", "left")):
        a = _rgba(house_views[view])
        door = _near(a, DOOR)
        door[: a.shape[0] // 2] = False  # the door is in the lower half (and the roof is not)
        ys, xs = np.nonzero(door)
        assert len(xs) > 50, f"door edge not visible in {view}"
        cols = np.nonzero(_mask(a).any(axis=0))[0]
        centre = (cols.min() + cols.max()) / 2
        if side == "right":
            assert xs.mean() > centre + 80, (view, xs.mean(), centre)
        else:
            assert xs.mean() < centre - 80, (view, xs.mean(), centre)


def test_grey_background_and_mask(house_views_on_grey):
    im = Image.open(house_views_on_grey["front"])
    assert im.mode == "RGB"
    a = np.asarray(im).astype(float)
    assert np.abs(a[2, 2] - 0.85 * 255).max() <= 1
    m = np.asarray(Image.open(house_views_on_grey["front_mask"]))
    assert m.ndim == 2 and m.dtype == np.uint8
    assert 0.3 < (m > 127).mean() < 0.6
    assert (m[:3, :] == 0).all() and (m[-3:, :] == 0).all()

"""server/scene/segment.py on pictures drawn in the test: touching objects split at their neck, one object kept
whole, a scene of one, none (refused), 200 specks (capped at max_objects, said so), and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from server.errors import InputError, RefusedInput
from server.scene.segment import object_crop, segment_scene, split_touching
from tests.measures import iou

BACKDROP = 205


def disc(shape, centre, radius):
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    return (rows + 0.5 - centre[0]) ** 2 + (cols + 0.5 - centre[1]) ** 2 <= radius ** 2


def paint(masks_and_colours, shape=(300, 400)):
    image = np.full(shape + (3,), BACKDROP, np.uint8)
    for mask, colour in masks_and_colours:
        image[mask] = colour
    return image


def test_two_touching_discs_split_at_the_neck():
    """Two discs that overlap a little form one connected blob; the watershed parts them along the neck."""
    shape = (300, 400)
    left = disc(shape, (170, 150), 50)
    right = disc(shape, (150, 245), 48) & ~left  # drawn behind the left one
    image = paint([(right, (40, 90, 200)), (left, (200, 60, 40))], shape)
    assert (left | right).sum() < left.sum() + disc(shape, (150, 245), 48).sum()  # they do overlap
    seg = segment_scene(image)
    assert seg.method == "classical"
    assert len(seg.objects) == 2 and seg.found == 2 and not seg.capped
    first, second = seg.objects  # left to right
    assert iou(first.mask, left) >= 0.9 and iou(second.mask, right) >= 0.9
    assert "left" in second.hidden and "right" in first.hidden  # the sides where they meet
    assert first.base_row == pytest.approx(np.flatnonzero(left.any(axis=1))[-1] + 1)


def test_shapes_without_a_neck_stay_whole():
    """A long bar, a house outline (roof wider than the walls) and a peanut (two discs overlapping deeply: two
    maxima of the distance transform, but a wide waist) are one object each, not split."""
    shape = (300, 400)
    peanut = disc(shape, (250, 300), 36) | disc(shape, (250, 330), 36)
    bar = np.zeros(shape, bool)
    bar[200:240, 40:200] = True
    house = np.zeros(shape, bool)
    house[120:200, 260:340] = True
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    house |= (rows >= 60) & (rows < 120) & (np.abs(cols - 300) <= (rows - 60) * 0.9)
    assert not (house & peanut).any()
    labels = split_touching(bar | house | peanut)
    assert labels.max() == 3 and (labels[bar | house | peanut] > 0).all()
    for shape_mask in (bar, house, peanut):
        assert len(np.unique(labels[shape_mask])) == 1


def test_a_scene_of_one():
    shape = (240, 320)
    box = np.zeros(shape, bool)
    box[90:200, 120:210] = True
    image = paint([(box, (30, 140, 60))], shape)
    seg = segment_scene(image)
    assert len(seg.objects) == 1 and seg.found == 1 and seg.notes == []
    only = seg.objects[0]
    assert iou(only.mask, box) >= 0.95
    assert only.bbox == (90, 120, 200, 210)
    assert only.hidden == () and only.clipped == ()
    crop = object_crop(image, only)
    assert crop.shape[0] == crop.shape[1] and crop.shape[2] == 4
    assert (crop[..., 3] == 255).sum() == pytest.approx(box.sum(), rel=0.05)


def test_a_picture_with_no_object_is_refused():
    with pytest.raises(RefusedInput, match="found no objects"):
        segment_scene(np.full((200, 300, 3), BACKDROP, np.uint8))


def test_two_hundred_specks_are_capped_and_said_so():
    rng = np.random.default_rng(7)
    image = np.full((384, 512, 3), BACKDROP, np.uint8)
    sides = []
    for row in range(10):
        for col in range(20):
            side = int(rng.integers(4, 9))
            top, left = 20 + row * 35 + int(rng.integers(0, 8)), 12 + col * 25 + int(rng.integers(0, 6))
            image[top:top + side, left:left + side] = rng.integers(0, 90, 3)
            sides.append(side)
    seg = segment_scene(image, max_objects=16)
    assert seg.found == 200
    assert len(seg.objects) == 16 and seg.capped
    assert any("found 200 objects" in note and "16 largest" in note for note in seg.notes)
    kept = sorted(o.area for o in seg.objects)
    assert kept == sorted(side * side for side in sides)[-16:]  # the largest ones
    assert seg.summary()["capped"] is True and seg.summary()["kept"] == 16


def test_transparent_background_uses_the_alpha():
    shape = (200, 260)
    a = disc(shape, (100, 80), 40)
    b = disc(shape, (110, 190), 35)
    rgba = np.zeros(shape + (4,), np.uint8)
    rgba[..., :3] = 90
    rgba[..., 3] = np.where(a | b, 255, 0)
    seg = segment_scene(rgba)
    assert seg.method == "alpha" and len(seg.objects) == 2
    assert iou(seg.objects[0].mask, a) == 1.0 and iou(seg.objects[1].mask, b) == 1.0


@pytest.mark.parametrize("argument,kwargs,image", [
    ("max_objects", {"max_objects": 0}, None),
    ("max_objects", {"max_objects": 2.5}, None),
    ("background", {"background": "magic"}, None),
    ("image", {}, np.zeros((50, 50), np.uint8)),
    ("image", {}, np.zeros((50, 50, 3), np.float32)),
])
def test_bad_arguments_name_themselves(argument, kwargs, image):
    picture = np.full((100, 120, 3), BACKDROP, np.uint8) if image is None else image
    with pytest.raises(InputError) as caught:
        segment_scene(picture, **kwargs)
    assert caught.value.argument == argument


def test_an_object_inside_anothers_box_keeps_its_own_pixels():
    """A ring's bounding box holds a disc in its hole: each keeps exactly its own pixels."""
    shape = (240, 320)
    ring = disc(shape, (120, 160), 90) & ~disc(shape, (120, 160), 60)
    inner = disc(shape, (120, 160), 30)
    labels = split_touching(ring | inner)
    assert labels.max() == 2 and (labels[ring | inner] > 0).all()
    assert len(np.unique(labels[ring])) == 1 and len(np.unique(labels[inner])) == 1
    assert np.unique(labels[ring])[0] != np.unique(labels[inner])[0]


def test_a_small_object_beside_a_large_one_is_kept():
    image = np.full((300, 400, 3), BACKDROP, np.uint8)
    image[80:260, 40:200] = (200, 50, 40)  # 28800 pixels
    image[150:185, 280:320] = (40, 60, 200)  # 1400 pixels: a twentieth of the other
    assert segment_scene(image).found == 2

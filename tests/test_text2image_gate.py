"""The clean-background gate: clean renders made here pass, cluttered pictures made here are refused with the
reason that fits what was drawn."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from server.errors import InputError
from server.text2image.gate import GateSettings, check_background

SIZE = 128


def white(size: int = SIZE) -> np.ndarray:
    return np.full((size, size, 3), 255, np.uint8)


def shaded_sphere(image: np.ndarray, centre, radius, colour) -> np.ndarray:
    """A Lambert-shaded sphere lit from the upper left, anti-aliased at its rim."""
    size = image.shape[0]
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    nx, ny = (x - centre[0]) / radius, (y - centre[1]) / radius
    r2 = nx**2 + ny**2
    nz = np.sqrt(np.clip(1 - r2, 0, 1))
    shade = np.clip(0.25 + 0.75 * (-0.45 * nx - 0.45 * ny + 0.77 * nz), 0, 1)
    cover = np.clip((1.0 - np.sqrt(r2)) * radius + 0.5, 0, 1)[..., None]  # one-pixel soft rim
    lit = np.asarray(colour, np.float64) * shade[..., None]
    return np.rint(image * (1 - cover) + lit * cover).astype(np.uint8)


def three_quarter_crate(size: int = SIZE) -> np.ndarray:
    """A box seen from the front-right and above: three faces in three shades, anti-aliased outlines."""
    image = white(size)
    s = size / 128
    front = np.array([[30, 55], [80, 65], [80, 112], [30, 100]]) * s
    side = np.array([[80, 65], [104, 48], [104, 94], [80, 112]]) * s
    top = np.array([[30, 55], [56, 38], [104, 48], [80, 65]]) * s
    for polygon, colour in ((front, (150, 100, 50)), (side, (110, 70, 35)), (top, (190, 140, 80))):
        cv2.fillPoly(image, [np.rint(polygon).astype(np.int32)], colour, lineType=cv2.LINE_AA)
    cv2.line(image, (int(40 * s), int(80 * s)), (int(70 * s), int(88 * s)), (90, 60, 30), 2, cv2.LINE_AA)
    return image


def barrel(size: int = SIZE) -> np.ndarray:
    """A cylinder shaded across its width with an elliptical lid and two dark bands."""
    image = white(size)
    x = np.arange(size, dtype=np.float64)
    left, right, top, bottom = 0.3 * size, 0.7 * size, 0.25 * size, 0.85 * size
    across = np.clip((x - left) / (right - left), 0, 1)
    shade = 0.4 + 0.6 * np.sin(np.pi * across)
    body = np.zeros((size, size), bool)
    body[int(top):int(bottom), int(left):int(right)] = True
    image[body] = (np.array([160.0, 95.0, 45.0])[None, None, :] * shade[None, :, None]).repeat(size, 0)[body]
    cv2.ellipse(image, (size // 2, int(top)), (int((right - left) / 2), int(0.06 * size)), 0, 0, 360,
                (185, 125, 70), -1, cv2.LINE_AA)
    for row in (0.4, 0.7):
        cv2.line(image, (int(left), int(row * size)), (int(right) - 1, int(row * size)), (60, 60, 60), 3)
    return image


def jpeg(image: np.ndarray, quality: int = 70) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def cut_out_rgba(image: np.ndarray) -> np.ndarray:
    """The same picture with a transparent background (alpha 0 where it was white) over black colour."""
    alpha = np.where((image >= 250).all(axis=2), 0, 255).astype(np.uint8)
    rgb = np.where(alpha[..., None] > 0, image, 0).astype(np.uint8)
    return np.dstack([rgb, alpha])


CLEAN = {
    "sphere": lambda: shaded_sphere(white(), (64, 64), 38, (40, 110, 200)),
    "crate in three-quarter view": three_quarter_crate,
    "barrel": barrel,
    "barrel as a JPEG": lambda: jpeg(barrel()),
    "crate as a JPEG at 512 px": lambda: jpeg(three_quarter_crate(512), 60),
    "crate cut out with alpha": lambda: cut_out_rgba(three_quarter_crate()),
    "crate as a PIL image": lambda: Image.fromarray(three_quarter_crate()),
}


@pytest.mark.parametrize("name", list(CLEAN))
def test_clean_renders_pass(name):
    verdict = check_background(CLEAN[name]())
    assert verdict.passed, verdict.reason
    assert verdict.components == 1 and not verdict.touches_border
    assert verdict.border_white == 1.0 and 0.02 <= verdict.object_share <= 0.85
    assert verdict.reason.startswith("one object on a white background")


def room_photo() -> np.ndarray:
    """A crate in a room: a grey wall with a gradient, a brown floor, the crate on the floor."""
    rows = np.linspace(150, 210, SIZE)[:, None, None]
    image = np.broadcast_to(rows, (SIZE, SIZE, 3)).astype(np.float64).copy()
    image[int(0.7 * SIZE):] = (110, 80, 55)
    crate = three_quarter_crate()
    inside = ~(crate >= 250).all(axis=2)
    image[inside] = crate[inside]
    return image.astype(np.uint8)


def two_objects() -> np.ndarray:
    image = shaded_sphere(white(), (36, 64), 22, (200, 60, 60))
    return shaded_sphere(image, (94, 64), 22, (60, 160, 60))


def object_with_clutter() -> np.ndarray:
    image = shaded_sphere(white(), (64, 64), 30, (40, 110, 200))
    for x, y in ((18, 18), (110, 18), (18, 110), (110, 110), (64, 114)):
        cv2.circle(image, (x, y), 6, (30, 30, 30), -1)
    return image


def cropped() -> np.ndarray:
    return shaded_sphere(white(), (120, 64), 40, (40, 110, 200))


def framed() -> np.ndarray:
    image = shaded_sphere(white(), (64, 64), 30, (40, 110, 200))
    cv2.rectangle(image, (0, 0), (SIZE - 1, SIZE - 1), (20, 20, 20), 3)
    return image


def close_up() -> np.ndarray:
    return shaded_sphere(np.full((SIZE, SIZE, 3), 250, np.uint8), (64, 64), 95, (200, 120, 40))


CLUTTERED = {
    "a photo of a room": (room_photo, "the background is not plain white"),
    "noise": (lambda: np.random.default_rng(5).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
              "the background is not plain white"),
    "a framed picture": (framed, "the background is not plain white"),
    "two objects side by side": (two_objects, "2 separate objects"),
    "an object among scattered things": (object_with_clutter, "6 separate objects"),
    "an object cut off at the edge": (cropped, "touches the edge"),
    "an empty white picture": (white, "no object"),
    "a faint grey smudge": (lambda: shaded_sphere(white(), (64, 64), 4, (120, 120, 120)), "no object"),
}


@pytest.mark.parametrize("name", list(CLUTTERED))
def test_cluttered_pictures_are_refused_with_the_reason(name):
    make, reason = CLUTTERED[name]
    verdict = check_background(make())
    assert not verdict.passed
    assert reason in verdict.reason, verdict.reason


def test_a_close_up_that_leaves_no_background_is_refused():
    # The sphere spills over every edge: the border ring is not white, so that is the reason given first.
    verdict = check_background(close_up())
    assert not verdict.passed and "not plain white" in verdict.reason
    # With the border check relaxed, the size check speaks.
    relaxed = check_background(close_up(), GateSettings(border_white=0.0))
    assert not relaxed.passed and "fills" in relaxed.reason and relaxed.object_share > 0.85


def test_the_verdict_measures_what_was_drawn():
    image = shaded_sphere(white(), (64, 64), 30, (40, 110, 200))
    verdict = check_background(image)
    # The disc covers pi r^2 of the picture (the lightest rim pixels may count as white).
    expected = np.pi * 30**2 / SIZE**2
    assert abs(verdict.object_share - expected) < 0.01
    assert verdict.main_share == 1.0
    record = verdict.record()
    assert record["passed"] is True and set(record) >= {"reason", "border_white", "object_share", "components"}


@pytest.mark.parametrize("image, expected", [
    (np.zeros((8, 8, 3), np.uint8), "at least 16 pixels"),
    (np.zeros((64, 64, 3), np.float32), "RGB or RGBA uint8"),
    (np.zeros((64, 64, 2), np.uint8), "RGB or RGBA uint8"),
])
def test_bad_pictures_are_refused_by_name(image, expected):
    with pytest.raises(InputError) as refused:
        check_background(image)
    assert refused.value.argument == "image" and expected in str(refused.value)

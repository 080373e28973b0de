"""The clean-background gate before 3D: one main object, clear of the picture's edges, on near-white."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from PIL import Image

from ..errors import InputError


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the gate; fractions are of the picture's area unless named otherwise."""

    white_level: int = 225        # every channel at least this counts as near white (JPEG and soft light)
    border_white: float = 0.95    # share of the outermost pixel ring that must be near white
    margin: float = 0.01          # the object must stay this share of the side away from every edge
    min_object: float = 0.02      # smaller than this is no object (or a speck)
    max_object: float = 0.85      # larger than this leaves no background to cut away
    main_share: float = 0.9       # the largest component holds at least this share of the non-white pixels
    speck: float = 0.0005         # components smaller than this are noise, not objects


@dataclass(frozen=True)
class GateVerdict:
    """passed, the reason in words (the first check that failed, or what passed), and the measures."""

    passed: bool
    reason: str
    border_white: float
    object_share: float
    main_share: float
    components: int
    touches_border: bool

    def record(self) -> dict:
        return asdict(self)


def on_white(image) -> np.ndarray:
    """An RGB uint8 array from a PIL image or an RGB/RGBA/grey array; transparency is composited on white."""
    array = np.asarray(image.convert("RGBA") if isinstance(image, Image.Image) else image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError("image", f"array {array.shape} {array.dtype}", "an RGB or RGBA uint8 image")
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    if array.shape[2] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        return np.rint(array[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return array


def _ring(array: np.ndarray) -> np.ndarray:
    return np.concatenate([array[0], array[-1], array[1:-1, 0], array[1:-1, -1]])


def _cut_off(labels: np.ndarray, stats: np.ndarray, white: np.ndarray, border_white: float) -> bool:
    """Whether a border that is not white enough is mostly white with the main object running off it (a cut-off
    object, reported as such) rather than a background that is not plain (a photo, a frame, noise)."""
    if border_white < 0.5 or len(stats) < 2:
        return False
    main = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    on_ring = _ring(labels)[~_ring(white)]
    return bool(on_ring.size) and float((on_ring == main).mean()) >= 0.9


def check_background(image, settings: GateSettings = GateSettings()) -> GateVerdict:
    """Whether a generated concept image is fit for background removal and image-to-3D."""
    rgb = on_white(image)
    height, width = rgb.shape[:2]
    if min(height, width) < 16:
        raise InputError("image", f"{width} x {height}", "a picture at least 16 pixels on each side")
    area = float(height * width)
    white = (rgb >= settings.white_level).all(axis=2)
    border_white = float(_ring(white).mean())

    # Single stray pixels (noise, JPEG ringing) are not objects: open the mask once before counting parts.
    foreground = cv2.morphologyEx((~white).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    sizes = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    parts = sizes[sizes >= settings.speck * area]
    total = float(parts.sum())
    main = float(parts.max()) if len(parts) else 0.0
    main_share = main / total if total else 0.0
    object_share = total / area
    margin = max(1, int(round(settings.margin * min(height, width))))
    if len(parts):
        keep = np.flatnonzero(sizes >= settings.speck * area) + 1
        x, y = stats[keep, cv2.CC_STAT_LEFT], stats[keep, cv2.CC_STAT_TOP]
        right = x + stats[keep, cv2.CC_STAT_WIDTH]
        bottom = y + stats[keep, cv2.CC_STAT_HEIGHT]
        touches = bool((x < margin).any() or (y < margin).any() or (right > width - margin).any()
                       or (bottom > height - margin).any())
    else:
        touches = False

    def verdict(passed: bool, reason: str) -> GateVerdict:
        return GateVerdict(passed, reason, round(border_white, 4), round(object_share, 4), round(main_share, 4),
                           int(len(parts)), touches)

    if border_white < settings.border_white and not _cut_off(labels, stats, white, border_white):
        return verdict(False, f"the background is not plain white: {border_white:.0%} of the border is near "
                              f"white (expected at least {settings.border_white:.0%})")
    if object_share < settings.min_object:
        return verdict(False, f"no object: only {object_share:.1%} of the picture differs from white (expected "
                              f"at least {settings.min_object:.0%})")
    if object_share > settings.max_object:
        return verdict(False, f"the object fills {object_share:.0%} of the picture (expected at most "
                              f"{settings.max_object:.0%}, with white around it)")
    if touches:
        return verdict(False, f"the object touches the edge of the picture (expected a margin of {margin} "
                              "pixels all round: it may be cut off)")
    if main_share < settings.main_share:
        return verdict(False, f"{len(parts)} separate objects: the largest holds {main_share:.0%} of what is not "
                              f"background (expected one main object with at least {settings.main_share:.0%})")
    return verdict(True, f"one object on a white background ({object_share:.0%} of the picture, "
                         f"{border_white:.0%} of the border white)")

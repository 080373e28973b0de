"""Separate the objects of one scene picture: foreground mask, connected components, watershed where they touch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage import measure, morphology, segmentation

from ..errors import InputError, RefusedInput
from ..stages.background import METHODS, crop_square, object_mask

DEFAULT_MAX_OBJECTS = 16
MAX_OBJECTS_LIMIT = 64
# A blob smaller than this share of the picture (and than MIN_OBJECT_PIXELS) is noise, not an object.
MIN_OBJECT_SHARE = 5e-5
MIN_OBJECT_PIXELS = 12
# Two watershed regions stay one object unless the widest passage between them is narrower than this share
# of the smaller one's inscribed radius: a neck, where two objects touch in the picture.
NECK_RATIO = 0.72
# Maxima of the distance transform lower than this (pixels) above their surroundings are outline noise.
MIN_PEAK_HEIGHT_PX = 2.0
MAX_FOREGROUND_SHARE = 0.9
PROBE_PX = 2  # another object this close beyond an object's outermost pixels hides that side


@dataclass
class ObjectMask:
    """One separated object: its visible pixels and where it meets the ground in the picture."""

    index: int  # 1-based, left to right
    mask: np.ndarray  # (rows, columns) bool, the whole picture
    bbox: tuple[int, int, int, int]  # top, left, bottom, right; bottom and right exclusive
    area: int
    base_row: float  # continuous row of the lower edge of its lowest pixels
    base_col: float  # continuous column of their middle
    hidden: tuple[str, ...] = ()  # sides ('top', 'bottom', 'left', 'right') whose outermost pixels border
    # another object: there the outline may run on behind it, or the split between them may be off
    clipped: tuple[str, ...] = ()  # picture edges the object touches

    @property
    def base_hidden(self) -> bool:
        """Its lowest pixels border another object: where it meets the ground may be out of sight."""
        return "bottom" in self.hidden


@dataclass
class SceneSegmentation:
    """The objects found in one picture and how they were found."""

    objects: list[ObjectMask]
    foreground: np.ndarray  # (rows, columns) bool: every object pixel before the cap
    method: str  # background method that produced the foreground
    found: int  # objects found before the max_objects cap
    capped: bool
    notes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        """(rows, columns) int: 0 background, i for objects[i - 1]."""
        out = np.zeros(self.foreground.shape, np.int32)
        for obj in self.objects:
            out[obj.mask] = obj.index
        return out

    def summary(self) -> dict:
        """JSON-ready description (no pixel arrays) for the asset record and scene.json."""
        return {"method": self.method, "found": self.found, "kept": len(self.objects), "capped": self.capped,
                "notes": list(self.notes),
                "objects": [{"index": o.index, "bbox_px": list(o.bbox), "area_px": o.area,
                             "base_px": [o.base_col, o.base_row], "hidden": list(o.hidden),
                             "clipped": list(o.clipped)} for o in self.objects]}


def as_rgba(image, argument: str = "image") -> np.ndarray:
    """An (H, W, 3|4) uint8 picture as RGBA (opaque when it had no alpha); InputError otherwise."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
        raise InputError(argument, f"array of shape {array.shape} and type {array.dtype}",
                         "an (H, W, 3) or (H, W, 4) uint8 picture")
    if min(array.shape[:2]) < 16:
        raise InputError(argument, f"{array.shape[1]}x{array.shape[0]} pixels", "a picture at least 16 pixels a side")
    if array.shape[2] == 3:
        array = np.concatenate([array, np.full(array.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(array)


def check_max_objects(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_OBJECTS_LIMIT:
        raise InputError("max_objects", value, f"a whole number from 1 to {MAX_OBJECTS_LIMIT}")
    return int(value)


def segment_scene(image, *, max_objects: int = DEFAULT_MAX_OBJECTS, background: str = "auto") -> SceneSegmentation:
    """Find the separate objects of a scene picture, at most max_objects of them (the largest ones).

    The foreground comes from server/stages/background.py's object_mask (alpha, rembg or the classical
    method); each connected part of it is split by a watershed on its distance transform wherever two
    objects meet at a neck. A picture with no object is refused; more objects than max_objects keeps the
    largest and says so in notes.
    """
    rgba = as_rgba(image)
    max_objects = check_max_objects(max_objects)
    if background not in METHODS:
        raise InputError("background", background, f"one of {', '.join(METHODS)}")
    foreground, method = object_mask(rgba, background, min_part_share=0.0)  # every object counts; specks go below
    rows, cols = foreground.shape
    min_pixels = max(MIN_OBJECT_PIXELS, int(round(MIN_OBJECT_SHARE * rows * cols)))
    foreground = morphology.remove_small_objects(foreground, max_size=min_pixels - 1)
    share = float(foreground.mean())
    if not foreground.any():
        raise RefusedInput(f"image: found no objects (background method {method}); the picture looks like "
                           "plain background. Use a picture of objects on a plain backdrop or with a "
                           "transparent background.")
    if share > MAX_FOREGROUND_SHARE:
        raise RefusedInput(f"image: the objects cover {share:.0%} of the picture (background method {method}), "
                           "so they cannot be told from the background. Leave a margin of backdrop around them.")

    regions = split_touching(foreground)
    sizes = np.bincount(regions.ravel())
    labels = [label for label in range(1, len(sizes)) if sizes[label] >= min_pixels]
    found = len(labels)
    notes = []
    capped = found > max_objects
    if capped:
        labels = sorted(labels, key=lambda label: -sizes[label])[:max_objects]
        notes.append(f"found {found} objects; kept the {max_objects} largest (max_objects={max_objects}), "
                     f"the smallest kept covers {min(sizes[label] for label in labels)} pixels")
    objects = [_describe(regions == label, regions, label) for label in labels]
    objects.sort(key=lambda o: (o.bbox[1] + o.bbox[3], o.bbox[0]))
    for number, obj in enumerate(objects, start=1):
        obj.index = number
        if obj.base_hidden:
            notes.append(f"object {number}: its base is hidden behind another object; its ground contact is "
                         "estimated from its top and sides")
        if "bottom" in obj.clipped:
            notes.append(f"object {number}: cut off by the bottom edge of the picture; its ground contact is "
                         "estimated from its top and sides")
    return SceneSegmentation(objects, foreground, method, found, capped, notes)


def split_touching(foreground: np.ndarray) -> np.ndarray:
    """Label image of foreground: connected components, each split where its outline pinches into a neck."""
    components = measure.label(foreground, connectivity=2)
    out = np.zeros(foreground.shape, np.int32)
    next_label = 1
    for component_id, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        piece = np.pad(components[box] == component_id, 1)  # its box may hold parts of others
        parts = _watershed_parts(piece)[1:-1, 1:-1]
        for part in range(1, parts.max() + 1):
            where = parts == part
            if where.any():
                out[box][where] = next_label
                next_label += 1
    return out


def _watershed_parts(piece: np.ndarray) -> np.ndarray:
    """Regions of one connected blob: one per maximum of its distance transform, merged unless a neck parts them."""
    distance = ndimage.distance_transform_edt(piece)
    peaks = morphology.h_maxima(distance, MIN_PEAK_HEIGHT_PX)
    markers = measure.label(peaks & piece, connectivity=2)
    if markers.max() <= 1:
        return piece.astype(np.int32)
    regions = segmentation.watershed(-distance, markers, mask=piece)
    count = int(regions.max())
    peak = ndimage.maximum(distance, regions, index=np.arange(1, count + 1))
    passes = _pass_heights(regions, distance)
    parent = list(range(count + 1))

    def root(label):
        while parent[label] != label:
            parent[label] = parent[parent[label]]
            label = parent[label]
        return label

    # Widest passages first, so a region joins the neighbour it is most broadly attached to.
    for (a, b), height in sorted(passes.items(), key=lambda item: -item[1]):
        if height >= NECK_RATIO * min(peak[a - 1], peak[b - 1]):
            parent[root(a)] = root(b)
    merged = np.array([root(label) for label in range(count + 1)])
    return measure.label(merged[regions] * piece, connectivity=2, background=0)


def _pass_heights(regions: np.ndarray, distance: np.ndarray) -> dict[tuple[int, int], float]:
    """For each pair of touching regions, the largest distance value on their shared border (the pass)."""
    passes: dict[tuple[int, int], float] = {}
    for axis in (0, 1):
        a = np.moveaxis(regions, axis, 0)
        d = np.moveaxis(distance, axis, 0)
        first, second = a[:-1], a[1:]
        border = (first != second) & (first > 0) & (second > 0)
        if not border.any():
            continue
        low = np.minimum(first[border], second[border])
        high = np.maximum(first[border], second[border])
        heights = np.minimum(d[:-1][border], d[1:][border])
        for key, height in zip(zip(low.tolist(), high.tolist()), heights.tolist()):
            if height > passes.get(key, -1.0):
                passes[key] = height
    return passes


def _describe(mask: np.ndarray, regions: np.ndarray, label: int) -> ObjectMask:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    base_cols = np.flatnonzero(mask[bottom - 1])
    height, width = mask.shape
    clipped = tuple(side for side, touches in (("top", top == 0), ("bottom", bottom == height),
                                               ("left", left == 0), ("right", right == width)) if touches)
    return ObjectMask(label, mask, (top, left, bottom, right), int(mask.sum()), float(bottom),
                      float(base_cols.mean() + 0.5), _hidden_sides(mask, regions, label), clipped)


def _hidden_sides(mask: np.ndarray, regions: np.ndarray, label: int) -> tuple[str, ...]:
    """Sides whose outermost pixels have another object's pixels within PROBE_PX beyond them."""
    others = (regions > 0) & (regions != label)
    hidden = []
    for side, axis, step in (("top", 0, -1), ("bottom", 0, 1), ("left", 1, -1), ("right", 1, 1)):
        along = np.moveaxis(mask, axis, 0)
        beside = np.moveaxis(others, axis, 0)
        filled = np.flatnonzero(along.any(axis=1))
        edge = filled[0] if step < 0 else filled[-1]
        outermost = along[edge]
        for offset in range(1, PROBE_PX + 1):
            line = edge + step * offset
            if 0 <= line < len(along) and (beside[line] & outermost).any():
                hidden.append(side)
                break
    return tuple(hidden)


def object_crop(image, obj: ObjectMask, *, padding: float = 0.08, max_side: int = 1024) -> np.ndarray:
    """Square RGBA crop of one object for the image-to-3D chain: its own pixels opaque, all else transparent."""
    return crop_square(as_rgba(image), obj.mask, padding=padding, max_side=max_side)

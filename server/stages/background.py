"""Background removal: keep a real alpha, else rembg when its model is present, else GrabCut from the border."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from ..errors import ForgeError, RefusedInput

METHODS = ("auto", "alpha", "rembg", "classical")
# An object must cover at least this share of the picture to count as one.
MIN_OBJECT_FRACTION = 0.002
MAX_OBJECT_FRACTION = 0.97
WORK_SIDE = 512  # GrabCut runs on a copy this size; the mask is scaled back up


@dataclass
class Cutout:
    """An object cut out of one image: square RGBA with the object centred and padded."""

    rgba: np.ndarray
    method: str
    object_fraction: float


def rembg_status() -> tuple[bool, str]:
    """Whether rembg can run here without downloading anything, and why not.

    Found, not imported: rembg's first import compiles pymatting's numba kernels (over 30 s on two cores), which
    would make `health` time out on a fresh server.
    """
    for module in ("rembg", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            return False, f"{module} is not installed (pip install 'rembg[cpu]')"
    home = Path(os.environ.get("U2NET_HOME") or Path.home() / ".u2net")
    model = home / "u2net.onnx"
    if not model.is_file():
        return False, "rembg's model u2net.onnx is not in $U2NET_HOME or ~/.u2net"
    return True, f"rembg with {model}"


def has_real_alpha(rgba: np.ndarray) -> bool:
    """True when the alpha channel separates an object from a transparent background."""
    alpha = rgba[..., 3]
    transparent = np.mean(alpha < 128)
    return 0.01 <= transparent <= 1.0 - MIN_OBJECT_FRACTION


def object_mask(rgba: np.ndarray, method: str = "auto", *, min_part_share: float = 0.1) -> tuple[np.ndarray, str]:
    """Boolean object mask of an RGBA image and the method that produced it.

    min_part_share: the classical method keeps separate parts at least this share of the largest one (a prop's
    loose bits); a scene of many objects passes 0 and drops specks itself.
    """
    if method not in METHODS:
        raise ForgeError(f"background method {method!r}: expected one of {', '.join(METHODS)}")
    if method in ("auto", "alpha") and has_real_alpha(rgba):
        return rgba[..., 3] >= 128, "alpha"
    if method == "alpha":
        raise ForgeError("background method 'alpha': the image has no transparent background")
    if method in ("auto", "rembg"):
        ready, reason = rembg_status()
        if ready:
            return _rembg_mask(rgba), "rembg"
        if method == "rembg":
            raise ForgeError(f"background method 'rembg' is unavailable: {reason}")
    return _grabcut_mask(rgba[..., :3], min_part_share), "classical"


def _rembg_mask(rgba: np.ndarray) -> np.ndarray:
    from rembg import new_session, remove

    session = new_session("u2net")
    cut = remove(rgba[..., :3].copy(), session=session)
    return np.asarray(cut)[..., 3] >= 128


def _border(image: np.ndarray, width: int) -> np.ndarray:
    mask = np.zeros(image.shape[:2], bool)
    mask[:width] = mask[-width:] = True
    mask[:, :width] = mask[:, -width:] = True
    return mask


def _grabcut_mask(rgb: np.ndarray, min_part_share: float = 0.1) -> np.ndarray:
    """Segment an object on a plain background: border pixels seed the background model."""
    height, width = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    small = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else rgb.copy()
    lab = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2LAB).astype(np.float32)
    border = _border(lab, max(2, round(min(lab.shape[:2]) * 0.015)))
    background = np.median(lab[border], axis=0)
    distance = np.linalg.norm(lab - background, axis=-1)
    # How far most border pixels stray from the background colour sets what "different" means here;
    # a low percentile ignores an object that touches the border.
    spread = np.percentile(distance[border], 75)
    threshold = max(12.0, 3.0 * spread)
    likely_object = distance > threshold
    if likely_object[~border].mean() < MIN_OBJECT_FRACTION:
        return np.zeros((height, width), bool)

    seeds = np.full(lab.shape[:2], cv2.GC_PR_BGD, np.uint8)
    seeds[likely_object] = cv2.GC_PR_FGD
    seeds[ndimage.binary_erosion(likely_object, iterations=2)] = cv2.GC_FGD
    seeds[border & ~likely_object] = cv2.GC_BGD
    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(np.ascontiguousarray(small), seeds, None, bgd_model, fgd_model, 5, cv2.GC_INIT_WITH_MASK)
    mask = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    mask = _tidy(mask, min_part_share)
    if scale < 1:
        mask = cv2.resize(mask.astype(np.uint8) * 255, (width, height), interpolation=cv2.INTER_LINEAR) >= 128
    return mask


def _tidy(mask: np.ndarray, min_part_share: float = 0.1) -> np.ndarray:
    """Keep the main object (and parts at least min_part_share its size); fill pinholes, keep real holes."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
    keep = np.flatnonzero(sizes >= min_part_share * sizes.max()) + 1
    mask = np.isin(labels, keep)
    holes = ndimage.binary_fill_holes(mask) & ~mask
    hole_labels, hole_count = ndimage.label(holes)
    if hole_count:
        hole_sizes = ndimage.sum(holes, hole_labels, index=np.arange(1, hole_count + 1))
        small = np.flatnonzero(hole_sizes < 0.005 * mask.sum()) + 1
        mask |= np.isin(hole_labels, small)
    return mask


def crop_square(rgba: np.ndarray, mask: np.ndarray, *, padding: float = 0.08, max_side: int = 1024) -> np.ndarray:
    """Square RGBA crop centred on the object's bounding box, padded by a share of its larger side."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = int(np.ceil(max(bottom - top, right - left) * (1 + 2 * padding)))
    centre_row, centre_col = (top + bottom) / 2, (left + right) / 2
    row0, col0 = int(round(centre_row - side / 2)), int(round(centre_col - side / 2))
    out = np.zeros((side, side, 4), np.uint8)
    src_rows = slice(max(row0, 0), min(row0 + side, rgba.shape[0]))
    src_cols = slice(max(col0, 0), min(col0 + side, rgba.shape[1]))
    dst_rows = slice(src_rows.start - row0, src_rows.stop - row0)
    dst_cols = slice(src_cols.start - col0, src_cols.stop - col0)
    out[dst_rows, dst_cols, :3] = rgba[src_rows, src_cols, :3]
    out[dst_rows, dst_cols, 3] = np.where(mask[src_rows, src_cols], 255, 0)
    if side > max_side:
        out = cv2.resize(out, (max_side, max_side), interpolation=cv2.INTER_AREA)
    return out


def cut_out(rgba: np.ndarray, *, method: str = "auto", label: str = "image") -> Cutout:
    """Remove the background of one image and return the object as a padded square."""
    mask, used = object_mask(rgba, method)
    fraction = float(mask.mean())
    if fraction < MIN_OBJECT_FRACTION:
        raise RefusedInput(f"{label}: found no object; the picture looks like plain background "
                         f"(method {used}). Use a picture with the object on a plain background or "
                         "with a transparent background.")
    if fraction > MAX_OBJECT_FRACTION:
        raise RefusedInput(f"{label}: the object fills the whole picture (method {used}), so its outline "
                         "cannot be found. Leave a margin of background around it.")
    return Cutout(crop_square(rgba, mask), used, fraction)

"""Decoding and validating uploaded images before any work is done on them."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError

MIN_SIDE = 32


def load_rgba(path: str | Path, *, argument: str, max_pixels: int, max_bytes: int) -> np.ndarray:
    """Read an image file fully into an RGBA uint8 array, or raise InputError that says why not."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(argument, path.name, "a readable image file") from exc
    if size == 0:
        raise InputError(argument, path.name, "an image file, but it is empty")
    if size > max_bytes:
        raise InputError(argument, path.name, f"an image file of at most {max_bytes // (1024 * 1024)} MB")
    data = path.read_bytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
                if width * height > max_pixels:
                    raise InputError(argument, f"{path.name} ({width}x{height})",
                                     f"an image of at most {max_pixels} pixels")
                probe.verify()  # catches truncated and corrupt files before decoding
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                rgba = to_rgba8(image)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(argument, path.name, f"an image of at most {max_pixels} pixels (it declares "
                         "more than the decoder allows)") from exc
    except UnidentifiedImageError as exc:
        raise InputError(argument, path.name, "a PNG, JPEG or WebP image (the file is none of them)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(argument, path.name, f"a complete, readable image (decoding failed: {exc})") from exc
    if min(rgba.shape[:2]) < MIN_SIDE:
        raise InputError(argument, f"{path.name} ({rgba.shape[1]}x{rgba.shape[0]})",
                         f"an image at least {MIN_SIDE} pixels on each side")
    return rgba


def to_rgba8(image: Image.Image) -> np.ndarray:
    """RGBA uint8 of any mode; 16-bit and float greys are scaled to 0..255 (PIL's convert would clip them white)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            scale = 65535.0
        elif image.mode == "F":
            scale = 1.0 if values.size and float(np.nanmax(values)) <= 1.0 else 65535.0
        else:  # 32-bit integer greys: what PNG's 16-bit greys often decode to
            scale = 65535.0 if values.size and values.max() > 255 else 255.0
        grey = np.clip(np.nan_to_num(values / scale) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    return np.asarray(image.convert("RGBA"))


def save_png(rgba: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes; level 1 is several times faster than the default 6 and only slightly larger."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba)).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()

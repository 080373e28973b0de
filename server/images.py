"""Images in and out: uploads decoded and validated before any work is done on them, and the one PNG encoder."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ForgeError, InputError

MIN_SIDE = 32
ENCODE_WORKERS = min(4, os.cpu_count() or 1)  # PNGs encoded at once (save_png runs beside Python)


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


def save_png(image: np.ndarray) -> bytes:
    """PNG bytes of 8-bit grey, RGB or RGBA pixels, through OpenCV, which lets go of Python's lock while it
    encodes (Pillow's encoder holds it), so several maps encode at once in threads.

    zlib's run-length strategy at level 1: on baked maps 1.7x faster than Pillow at level 3 and 6 % smaller.
    """
    import cv2

    image = np.ascontiguousarray(image)
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype != np.uint8 or channels not in (1, 3, 4):
        raise ForgeError(f"a PNG needs 8-bit grey, RGB or RGBA pixels, not {image.dtype} {image.shape}")
    if channels > 1:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if channels == 3 else cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1,
                                                cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])
    if not ok:
        raise ForgeError("OpenCV could not encode the PNG")
    return encoded.tobytes()

"""Pixels of the PNGs this process encoded, kept so that reading such a file back needs no decoding.

The bake writes its maps and the export reads them again (0.2 s of PNG decoding at 2048²). An entry is found
by a digest of the PNG's bytes, so a file that changed in any way is decoded as usual. The most recent entries
are kept up to MAX_BYTES of pixels.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

MAX_BYTES = 256 * 2**20

_entries: OrderedDict[str, np.ndarray] = OrderedDict()
_lock = threading.Lock()


def _key(png: bytes) -> str:
    return hashlib.blake2b(png, digest_size=20).hexdigest()


def remember(png: bytes, pixels: np.ndarray) -> None:
    """`png` was encoded losslessly from `pixels`: keep a read-only copy of them for read()."""
    kept = np.array(pixels, copy=True)
    kept.setflags(write=False)
    key = _key(png)
    with _lock:
        _entries.pop(key, None)
        _entries[key] = kept
        while sum(entry.nbytes for entry in _entries.values()) > MAX_BYTES and len(_entries) > 1:
            _entries.popitem(last=False)


def read(path: str | Path) -> np.ndarray:
    """The file's pixels as Pillow decodes them (read-only)."""
    png = Path(path).read_bytes()
    with _lock:
        kept = _entries.get(_key(png))
    if kept is not None:
        return kept
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image)


def forget() -> None:
    with _lock:
        _entries.clear()

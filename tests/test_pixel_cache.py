"""Pixels kept from the PNGs this process encoded: the same as decoding the file, never for a changed file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from server import pixel_cache
from server.images import save_png


@pytest.fixture(autouse=True)
def empty_cache():
    pixel_cache.forget()
    yield
    pixel_cache.forget()


def _pictures() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    return {"grey": rng.integers(0, 256, (64, 48), dtype=np.uint8),
            "rgb": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
            "rgba": rng.integers(0, 256, (16, 40, 4), dtype=np.uint8)}


def test_kept_pixels_equal_what_pillow_decodes(tmp_path):
    for name, pixels in _pictures().items():
        path = tmp_path / f"{name}.png"
        png = save_png(pixels)
        path.write_bytes(png)
        pixel_cache.remember(png, pixels)
        kept = pixel_cache.read(path)
        with Image.open(path) as image:
            decoded = np.asarray(image)
        assert kept.dtype == decoded.dtype and kept.shape == decoded.shape and np.array_equal(kept, decoded)
        assert not kept.flags.writeable and pixel_cache.read(path) is kept  # from memory, not decoded


def test_a_file_written_again_is_decoded_not_taken_from_memory(tmp_path):
    pixels = _pictures()["rgb"]
    path = tmp_path / "map.png"
    png = save_png(pixels)
    path.write_bytes(png)
    pixel_cache.remember(png, pixels)
    changed = pixels.copy()
    changed[0, 0] = 255 - changed[0, 0]
    path.write_bytes(save_png(changed))
    assert np.array_equal(pixel_cache.read(path), changed)


def test_the_pixels_kept_are_a_copy_and_bounded(tmp_path, monkeypatch):
    pixels = _pictures()["grey"]
    path = tmp_path / "a.png"
    png = save_png(pixels)
    path.write_bytes(png)
    pixel_cache.remember(png, pixels)
    pixels[:] = 0  # the caller's array changes afterwards
    assert pixel_cache.read(path).max() > 0
    monkeypatch.setattr(pixel_cache, "MAX_BYTES", pixels.nbytes)
    other = save_png(pixels)
    pixel_cache.remember(other, pixels)
    assert list(pixel_cache._entries) == [pixel_cache._key(other)]

"""The benchmark's packing figures: texels covered and the free texels between UV islands, on layouts made here."""

from __future__ import annotations

import numpy as np
import pytest

from bench.quality import chart_gaps


def _squares(*spans: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """One UV rectangle (two triangles) per (low, high) span in u, all from v = 0.1 to 0.9."""
    uv, faces = [], []
    for low, high in spans:
        base = len(uv)
        uv += [(low, 0.1), (high, 0.1), (high, 0.9), (low, 0.9)]
        faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    return np.array(uv, float), np.array(faces)


def test_the_gap_is_the_free_texels_between_two_islands():
    # At 256 texels the first square covers texel columns 26-76, the second 128-178: 51 free between them.
    uv, faces = _squares((0.1, 0.3), (0.5, 0.7))
    gaps = chart_gaps(uv, faces, 256)
    assert gaps["islands"] == 2
    assert gaps["smallest"] == pytest.approx(51, abs=0.01)


def test_islands_that_touch_have_no_gap_and_one_island_has_none_to_measure():
    uv, faces = _squares((0.1, 0.3), (0.3001, 0.5))  # texel columns 26-76 and 77-127
    assert chart_gaps(uv, faces, 256)["smallest"] == 0
    uv, faces = _squares((0.1, 0.3))
    assert chart_gaps(uv, faces, 256) == {"islands": 1, "smallest": None, "p5": None}

"""Rasterize a mesh in UV space: which triangle covers each texel centre, and where inside it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_CANDIDATES = 4_000_000  # bounds memory: candidate texels tested at once


@dataclass
class UVCoverage:
    """Covered texels of a size x size texture (row 0 at the top, v = 1).

    rows, cols: texel indices; face: the triangle covering each; bary: (k, 3) barycentric weights.
    """

    size: int
    rows: np.ndarray
    cols: np.ndarray
    face: np.ndarray
    bary: np.ndarray

    def mask(self) -> np.ndarray:
        covered = np.zeros((self.size, self.size), bool)
        covered[self.rows, self.cols] = True
        return covered

    def interpolate(self, per_vertex: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Barycentric interpolation of a per-vertex attribute at every covered texel."""
        corners = np.asarray(per_vertex, np.float32)[faces[self.face]]  # (k, 3, c)
        corners = corners.reshape(len(self.face), 3, -1)
        bary = self.bary.astype(np.float32)
        return corners[:, 0] * bary[:, 0:1] + corners[:, 1] * bary[:, 1:2] + corners[:, 2] * bary[:, 2:3]

    def scatter(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Place per-texel values (k,) or (k, c) into a full (size, size[, c]) image."""
        shape = (self.size, self.size) + values.shape[1:]
        image = np.full(shape, fill, dtype=np.float32)
        image[self.rows, self.cols] = values
        return image


def rasterize_uv(uv: np.ndarray, faces: np.ndarray, size: int) -> UVCoverage:
    """Texel centres inside each UV triangle (texel (r, c) has centre u = (c + .5)/size, v = 1 - (r + .5)/size).

    A texel claimed by two triangles (they can only share an edge in a valid atlas) goes to the later one.
    """
    px = np.empty((len(uv), 2))
    px[:, 0] = uv[:, 0] * size - 0.5          # x in texel-centre units
    px[:, 1] = (1.0 - uv[:, 1]) * size - 0.5  # y grows downwards
    tri = px[faces]  # (f, 3, 2)
    lo = np.clip(np.floor(tri.min(axis=1)), 0, size - 1).astype(np.int64)
    hi = np.clip(np.ceil(tri.max(axis=1)), 0, size - 1).astype(np.int64)
    widths = hi[:, 0] - lo[:, 0] + 1
    heights = hi[:, 1] - lo[:, 1] + 1
    counts = widths * heights
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    valid = np.abs(area) > 1e-12

    rows_out, cols_out, face_out, bary_out = [], [], [], []
    order = np.flatnonzero(valid)
    start = 0
    cumulative = np.cumsum(counts[order])
    while start < len(order):
        # Take as many triangles as fit in one chunk of candidate texels.
        base = cumulative[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cumulative, base + CHUNK_CANDIDATES, side="right")))
        ids = order[start:stop]
        n = counts[ids]
        face = np.repeat(ids, n)
        local = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        x = lo[face, 0] + local % widths[face]
        y = lo[face, 1] + local // widths[face]
        pa, pb, pc = a[face], b[face], c[face]
        # Edge functions give barycentric weights; a texel centre is inside when all are >= 0.
        w0 = (pb[:, 0] - x) * (pc[:, 1] - y) - (pb[:, 1] - y) * (pc[:, 0] - x)
        w1 = (pc[:, 0] - x) * (pa[:, 1] - y) - (pc[:, 1] - y) * (pa[:, 0] - x)
        w2 = (pa[:, 0] - x) * (pb[:, 1] - y) - (pa[:, 1] - y) * (pb[:, 0] - x)
        weights = np.stack([w0, w1, w2], axis=1) / area[face, None]
        inside = (weights >= -1e-9).all(axis=1)
        rows_out.append(y[inside])
        cols_out.append(x[inside])
        face_out.append(face[inside])
        bary_out.append(weights[inside])
        start = stop

    rows = np.concatenate(rows_out) if rows_out else np.zeros(0, np.int64)
    cols = np.concatenate(cols_out) if cols_out else np.zeros(0, np.int64)
    faces_hit = np.concatenate(face_out) if face_out else np.zeros(0, np.int64)
    bary = np.concatenate(bary_out) if bary_out else np.zeros((0, 3))
    # Keep one triangle per texel: the last writer wins, as a rasterizer would.
    flat = rows * size + cols
    _, last = np.unique(flat[::-1], return_index=True)
    keep = len(flat) - 1 - last
    bary = np.clip(bary[keep], 0.0, None)
    bary /= bary.sum(axis=1, keepdims=True)
    return UVCoverage(size, rows[keep], cols[keep], faces_hit[keep], bary)

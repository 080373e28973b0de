"""Rasterize a mesh in UV space: which triangle covers each texel centre, and where inside it."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

CHUNK_CANDIDATES = 4_000_000  # bounds memory: candidate texels tested at once
MIN_CHUNK = 250_000  # candidate texels worth a thread of their own
RASTER_THREADS = min(4, os.cpu_count() or 1)
SPAN_SLACK = 1e-4  # texels: row spans are widened by this before the exact inside test


@dataclass
class UVCoverage:
    """Covered texels of a size x size texture (row 0 at the top, v = 1), in row-major order.

    rows, cols: texel indices; face: the triangle covering each; bary: (k, 3) barycentric weights.
    """

    size: int
    rows: np.ndarray
    cols: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    _corners: tuple = field(default=(None, None), repr=False, compare=False)

    def mask(self) -> np.ndarray:
        covered = np.zeros((self.size, self.size), bool)
        covered[self.rows, self.cols] = True
        return covered

    def interpolate(self, per_vertex: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Barycentric interpolation (float32) of a per-vertex attribute at every covered texel."""
        corners = self._corner_vertices(faces)
        values = np.asarray(per_vertex, np.float32).reshape(len(per_vertex), -1)
        out = values[corners[:, 0]] * self._bary32[:, 0:1]
        out += values[corners[:, 1]] * self._bary32[:, 1:2]
        out += values[corners[:, 2]] * self._bary32[:, 2:3]
        return out

    def _corner_vertices(self, faces: np.ndarray) -> np.ndarray:
        """faces[face] for every texel, kept for the next call with the same faces array."""
        cached_faces, corners = self._corners
        if cached_faces is not faces:
            corners = np.asarray(faces)[self.face]
            self._corners = (faces, corners)
            self._bary32 = self.bary.astype(np.float32)
        return corners

    def scatter(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Place per-texel values (k,) or (k, c) into a full (size, size[, c]) image."""
        shape = (self.size, self.size) + values.shape[1:]
        image = np.full(shape, fill, dtype=np.float32)
        image[self.rows, self.cols] = values
        return image


def _row_spans(tri: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every (triangle, texel row) the triangle crosses: triangle, row, first and last candidate column."""
    low = np.clip(np.ceil(tri[:, :, 1].min(axis=1) - SPAN_SLACK), 0, size)
    high = np.clip(np.floor(tri[:, :, 1].max(axis=1) + SPAN_SLACK), -1, size - 1)
    counts = np.maximum(high - low + 1, 0).astype(np.int64)
    face = np.repeat(np.arange(len(tri)), counts)
    row = low[face] + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    left = np.full(len(face), np.inf)
    right = np.full(len(face), -np.inf)
    for start, end in ((0, 1), (1, 2), (2, 0)):
        p, q = tri[face, start], tri[face, end]
        dy = q[:, 1] - p[:, 1]
        crosses = (np.minimum(p[:, 1], q[:, 1]) <= row + SPAN_SLACK) & (np.maximum(p[:, 1], q[:, 1]) >= row - SPAN_SLACK)
        flat = np.abs(dy) < 1e-12
        t = np.clip((row - p[:, 1]) / np.where(flat, 1.0, dy), 0.0, 1.0)
        x = p[:, 0] + t * (q[:, 0] - p[:, 0])
        # A flat edge on the row covers its whole length.
        lo_x = np.where(flat, np.minimum(p[:, 0], q[:, 0]), x)
        hi_x = np.where(flat, np.maximum(p[:, 0], q[:, 0]), x)
        left = np.where(crosses, np.minimum(left, lo_x), left)
        right = np.where(crosses, np.maximum(right, hi_x), right)
    first = np.clip(np.ceil(left - SPAN_SLACK), 0, size)
    last = np.clip(np.floor(right + SPAN_SLACK), -1, size - 1)
    keep = last >= first
    return face[keep], row[keep].astype(np.int64), first[keep].astype(np.int64), last[keep].astype(np.int64)


def rasterize_uv(uv: np.ndarray, faces: np.ndarray, size: int) -> UVCoverage:
    """Texel centres inside each UV triangle (texel (r, c) has centre u = (c + .5)/size, v = 1 - (r + .5)/size).

    A texel claimed by two triangles (they can only share an edge in a valid atlas) goes to the later one.
    Candidates come from each triangle's span on each texel row (about as many as the texels it covers),
    and each is kept by the same exact test on its barycentric weights.
    """
    px = np.empty((len(uv), 2))
    px[:, 0] = uv[:, 0] * size - 0.5          # x in texel-centre units
    px[:, 1] = (1.0 - uv[:, 1]) * size - 0.5  # y grows downwards
    tri = px[faces]  # (f, 3, 2)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    valid = np.flatnonzero(np.abs(area) > 1e-12)
    span_face, span_row, first, last = _row_spans(tri[valid], size)
    span_face = valid[span_face]
    widths = last - first + 1

    cumulative = np.cumsum(widths)
    total = int(cumulative[-1]) if len(cumulative) else 0
    # Chunks of candidate texels, enough for every thread (numpy lets go of Python's lock in the tests below).
    chunk = min(CHUNK_CANDIDATES, max(MIN_CHUNK, -(-total // RASTER_THREADS)))
    bounds, start = [], 0
    while start < len(widths):
        base = cumulative[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cumulative, base + chunk, side="right")))
        bounds.append((start, stop))
        start = stop

    def inside_texels(bound: tuple[int, int]):
        start, stop = bound
        n = widths[start:stop]
        span = np.repeat(np.arange(start, stop), n)
        x = first[span] + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
        y = span_row[span]
        face = span_face[span]
        pa, pb, pc = a[face], b[face], c[face]
        # Edge functions give barycentric weights; a texel centre is inside when all are >= 0.
        w0 = (pb[:, 0] - x) * (pc[:, 1] - y) - (pb[:, 1] - y) * (pc[:, 0] - x)
        w1 = (pc[:, 0] - x) * (pa[:, 1] - y) - (pc[:, 1] - y) * (pa[:, 0] - x)
        w2 = (pa[:, 0] - x) * (pb[:, 1] - y) - (pa[:, 1] - y) * (pb[:, 0] - x)
        weights = np.stack([w0, w1, w2], axis=1) / area[face, None]
        inside = (weights >= -1e-9).all(axis=1)
        return y[inside], x[inside], face[inside], weights[inside]

    if len(bounds) > 1:
        with ThreadPoolExecutor(max_workers=min(RASTER_THREADS, len(bounds))) as pool:
            found = list(pool.map(inside_texels, bounds))  # in the chunks' order: the same result every run
    else:
        found = [inside_texels(bound) for bound in bounds]
    rows_out, cols_out, face_out, bary_out = (list(column) for column in zip(*found)) if found else ([], [], [], [])

    rows = np.concatenate(rows_out) if rows_out else np.zeros(0, np.int64)
    cols = np.concatenate(cols_out) if cols_out else np.zeros(0, np.int64)
    faces_hit = np.concatenate(face_out) if face_out else np.zeros(0, np.int64)
    bary = np.concatenate(bary_out) if bary_out else np.zeros((0, 3))
    # One triangle per texel, the last writer winning as a rasterizer's would; texels in row-major order.
    flat = rows * size + cols
    order = np.argsort(flat, kind="stable")
    last_of_texel = np.r_[flat[order][1:] != flat[order][:-1], True]
    keep = order[last_of_texel]
    bary = np.clip(bary[keep], 0.0, None)
    bary /= bary.sum(axis=1, keepdims=True)
    return UVCoverage(size, rows[keep], cols[keep], faces_hit[keep], bary)

"""Two checks on a triangle list alone: is every edge shared by exactly two triangles, and which triangles are
back-to-back pairs (a pocket a quick decimation squeezed flat)."""

from __future__ import annotations

import numpy as np


def closed_manifold(faces: np.ndarray) -> bool:
    """Every edge is shared by exactly two triangles (edges as one integer key each: a fast sort)."""
    faces = np.asarray(faces, np.int64)
    if not len(faces):
        return False
    a, b = faces.ravel(), faces[:, [1, 2, 0]].ravel()
    keys = np.sort(np.minimum(a, b) * (int(faces.max()) + 1) + np.maximum(a, b))
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return bool((np.diff(np.r_[starts, len(keys)]) == 2).all())


def without_folded_pairs(faces: np.ndarray) -> np.ndarray:
    """Faces less any pair on the same three vertices: a pocket fast-simplification squeezed flat, back to back.

    Each pair makes its three edges four-sided; without it the surface around is closed again.
    """
    ordered = np.sort(faces, axis=1).astype(np.int64)
    top = int(ordered.max()) + 1 if len(ordered) else 1
    keys = (ordered[:, 0] * top + ordered[:, 1]) * top + ordered[:, 2]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return faces[counts[inverse.reshape(-1)] == 1]

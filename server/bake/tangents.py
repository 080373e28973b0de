"""Per-vertex tangents in the MikkTSpace manner: angle-weighted, projected, split by handedness."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _unit(vectors: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(length > 1e-20, length, 1.0)


def corner_angles(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """The interior angle at each corner of each triangle, shape (faces, 3)."""
    return triangle_angles(vertices[faces])


def triangle_angles(tri: np.ndarray) -> np.ndarray:
    """corner_angles of triangles given by their corners (f, 3, 3)."""
    angles = np.empty(tri.shape[:2])
    for corner in range(3):
        a = _unit(tri[:, (corner + 1) % 3] - tri[:, corner])
        b = _unit(tri[:, (corner + 2) % 3] - tri[:, corner])
        angles[:, corner] = np.arccos(np.clip(np.einsum("ij,ij->i", a, b), -1.0, 1.0))
    return angles


NORMAL_CHUNK = 262_144  # faces summed at once by vertex_normals
NORMAL_WORKERS = 8  # at most this many chunks at once (1.5M triangles are six chunks)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, workers: int | None = None) -> np.ndarray:
    """Unit vertex normals weighted by each corner's angle (what trimesh and Blender give), in threads.

    numpy lets go of Python's lock in the per-face work, so chunks of faces run on several cores. Each chunk's
    sums cover only the vertices it touches (a short range where the faces are stored in order, as meshes
    from extraction and our files are), and are added in the chunks' order, so the result is the same on every
    run and at most `workers` chunks are held at once. A vertex no face with area touches gets a zero normal.
    """
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    workers = workers or min(NORMAL_WORKERS, os.cpu_count() or 1)
    total = np.zeros((len(vertices), 3))

    def chunk_sums(start: int) -> tuple[int, np.ndarray]:
        part = faces[start:start + NORMAL_CHUNK]
        tri = vertices[part]
        unit = _unit(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]))
        angles = triangle_angles(tri)
        index = part.T.ravel()
        low = int(index.min())
        span = int(index.max()) - low + 1
        sums = np.empty((span, 3))
        for axis in range(3):
            sums[:, axis] = np.bincount(index - low, weights=(angles * unit[:, axis:axis + 1]).T.ravel(),
                                        minlength=span)
        return low, sums

    starts = list(range(0, len(faces), NORMAL_CHUNK))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(starts)))) as pool:
        for window in range(0, len(starts), workers):
            for low, sums in pool.map(chunk_sums, starts[window:window + workers]):
                total[low:low + len(sums)] += sums
    return _unit(total)


def vertex_tangents(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Tangents (n, 4): xyz unit tangent orthogonal to the vertex normal, w the bitangent sign (+1 or -1).

    Follows MikkTSpace's construction on a mesh whose vertices are already split wherever position,
    normal or UV differ (as after UV unwrapping): each triangle's UV-derived tangent is projected into
    the tangent plane of each corner's normal, normalised, and summed with the corner angle as weight;
    corners whose triangles mirror the UVs (the other handedness) accumulate separately, and a vertex
    takes the handedness that carries most weight. Shaders rebuild the bitangent as
    sign * cross(normal, tangent), which is what the baker uses too.
    """
    vertices = np.asarray(vertices, np.float64)
    normals = _unit(np.asarray(normals, np.float64))
    uv = np.asarray(uv, np.float64)
    tri = vertices[faces]
    tuv = uv[faces]
    edge1, edge2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    duv1, duv2 = tuv[:, 1] - tuv[:, 0], tuv[:, 2] - tuv[:, 0]
    det = duv1[:, 0] * duv2[:, 1] - duv2[:, 0] * duv1[:, 1]
    # Direction only matters (each is normalised), so divide by |det| and keep its sign apart.
    orientation = np.where(det >= 0, 1.0, -1.0)
    face_tangent = (edge1 * duv2[:, 1:2] - edge2 * duv1[:, 1:2]) * orientation[:, None]
    face_bitangent = (edge2 * duv1[:, 0:1] - edge1 * duv2[:, 0:1]) * orientation[:, None]
    degenerate = np.abs(det) < 1e-20
    angles = corner_angles(vertices, faces)

    sums = {sign: np.zeros_like(vertices) for sign in (1.0, -1.0)}
    weight = {sign: np.zeros(len(vertices)) for sign in (1.0, -1.0)}
    for corner in range(3):
        index = faces[:, corner]
        n = normals[index]
        t = _unit(face_tangent - n * np.einsum("ij,ij->i", face_tangent, n)[:, None])
        b = face_bitangent
        handed = np.where(np.einsum("ij,ij->i", np.cross(n, t), b) >= 0, 1.0, -1.0)
        w = np.where(degenerate, 0.0, angles[:, corner])
        for sign in (1.0, -1.0):
            pick = handed == sign
            np.add.at(sums[sign], index[pick], t[pick] * w[pick, None])
            np.add.at(weight[sign], index[pick], w[pick])

    sign = np.where(weight[1.0] >= weight[-1.0], 1.0, -1.0)
    tangent = np.where(sign[:, None] > 0, sums[1.0], sums[-1.0])
    tangent = tangent - normals * np.einsum("ij,ij->i", tangent, normals)[:, None]
    missing = np.linalg.norm(tangent, axis=1) < 1e-12
    if missing.any():  # vertices of degenerate UV triangles only: any vector in the tangent plane
        helper = np.where(np.abs(normals[missing, 0:1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        tangent[missing] = np.cross(normals[missing], helper)
    return np.column_stack([_unit(tangent), sign])

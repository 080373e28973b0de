"""A huge closed mesh reduced on several cores: regions decimated side by side with their borders kept, then stitched.

fast-simplification runs on one core and holds Python's lock. Cut into compact regions, each is reduced in a child
process of its own with every vertex it shares with another region kept where it is (`preserve_border`); the
shared vertices then join the regions again, and the careful decimation after it may move them like any other.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from .. import child_call
from ..meshdata import MeshArrays
from .faces import without_folded_pairs

# Fewer triangles per region and starting its process costs more than the region's share of the pass saves.
REGION_MIN_FACES = 100_000
MAX_REGIONS = 16


def usable_cores() -> int:
    """Cores this process may run on (its affinity where the system says, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def region_count(face_count: int, cores: int | None = None) -> int:
    """How many regions a mesh of face_count triangles is cut into: one per core, each of REGION_MIN_FACES or more."""
    cores = usable_cores() if cores is None else cores
    return max(1, min(cores, MAX_REGIONS, face_count // REGION_MIN_FACES))


def split_faces(centroids: np.ndarray, count: int) -> list[np.ndarray]:
    """Face indices in `count` parts of (nearly) equal size and compact shape, so the borders between them stay
    short: each part due to become k regions is cut across its longest side where k // 2 regions' worth of its
    faces lie on one side."""
    columns = np.ascontiguousarray(np.asarray(centroids).T)
    pending, parts = [(np.arange(len(columns[0])), count)], []
    while pending:
        faces, regions_due = pending.pop()
        if regions_due == 1:
            parts.append(faces)
            continue
        # The longest side from a few thousand of the part's points: only the axis is taken from it.
        probe = columns[:, faces[:: max(1, len(faces) // 4096)]]
        axis = int(np.argmax(np.ptp(probe, axis=1)))
        first = regions_due // 2
        at = len(faces) * first // regions_due
        order = np.argpartition(columns[axis][faces], at)
        pending += [(faces[order[:at]], first), (faces[order[at:]], regions_due - first)]
    return parts


def _row_keys(points: np.ndarray) -> np.ndarray:
    """Each row of float64 coordinates as one opaque 24-byte value: equal exactly when the coordinates are."""
    return np.ascontiguousarray(points, np.float64).view(np.dtype((np.void, 24))).ravel()


def reduce_region(region: MeshArrays, border: np.ndarray, faces: int,
                  aggressiveness: list[float]) -> dict[str, np.ndarray]:
    """One region reduced to about `faces` triangles with its `border` vertices (indices) kept where they are.

    fast-simplification passes at each `aggressiveness` in turn until one reaches the target (a careful pass stops
    where its error threshold runs out). Returns the reduced vertices and faces and, for each border vertex in
    order, its index among the reduced vertices (found by its coordinates, which the passes leave as they were).
    """
    import fast_simplification

    vertices, reduced = region.vertices, region.faces.astype(np.int32)
    for level in aggressiveness:
        if len(reduced) <= faces * 1.05:
            break
        vertices, reduced = fast_simplification.simplify(vertices, reduced, target_count=int(faces), agg=float(level),
                                                         preserve_border=True)
        reduced = without_folded_pairs(reduced)
    border = np.asarray(border, np.int64)
    keys = np.concatenate([_row_keys(region.vertices[border]), _row_keys(vertices)])
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    owner = np.full(len(counts), -1, np.int64)
    owner[inverse[len(border):]] = np.arange(len(vertices))
    found = owner[inverse[:len(border)]]
    # Each border vertex must be exactly one reduced vertex, and no other vertex may sit on it.
    if (found < 0).any() or (counts[inverse[:len(border)]] != 2).any():
        raise ValueError("a border vertex of the region was moved, lost or doubled by the reduction")
    return {"vertices": vertices, "faces": np.asarray(reduced, np.int64), "border_at": found}


def _cut(mesh: MeshArrays, count: int) -> list[tuple[np.ndarray, MeshArrays, np.ndarray]]:
    """The regions: for each, its vertices' indices in the mesh, its own mesh, and which of its vertices it shares."""
    vertices, faces = mesh.vertices, mesh.faces
    # Three times each centroid: the split needs no more than their order along an axis.
    parts = split_faces(vertices[faces[:, 0]] + vertices[faces[:, 1]] + vertices[faces[:, 2]], count)
    label = np.empty(len(faces), np.int16)
    for number, part in enumerate(parts):
        label[part] = number
    # A vertex is shared when one of its triangles lies in another region than the one that labelled it last.
    owner = np.empty(len(vertices), np.int16)
    owner[faces] = label[:, None]
    shared = np.zeros(len(vertices), bool)
    shared[faces[owner[faces] != label[:, None]]] = True
    regions = []
    local = np.empty(len(vertices), np.int64)
    for part in parts:
        indices = np.flatnonzero(np.bincount(faces[part].ravel(), minlength=len(vertices)))
        local[indices] = np.arange(len(indices))
        regions.append((indices, MeshArrays(vertices[indices], local[faces[part]]), np.flatnonzero(shared[indices])))
    return regions


def _stitch(vertex_count: int, pieces: list[tuple[np.ndarray, dict]]) -> MeshArrays:
    """The reduced regions as one mesh, each shared vertex once. pieces: (the mesh's indices of a region's border
    vertices, that region's reduce_region answer)."""
    joined = np.full(vertex_count, -1, np.int64)  # a shared vertex's index in the stitched mesh, once it has one
    all_vertices, all_faces, total = [], [], 0
    for border_ids, answer in pieces:
        at = answer["border_at"]
        ids = np.full(len(answer["vertices"]), -1, np.int64)
        ids[at] = joined[border_ids]
        fresh = np.flatnonzero(ids < 0)
        ids[fresh] = total + np.arange(len(fresh))
        total += len(fresh)
        joined[border_ids] = ids[at]
        all_vertices.append(answer["vertices"][fresh])
        all_faces.append(ids[answer["faces"]])
    return MeshArrays(np.concatenate(all_vertices), np.concatenate(all_faces))


def reduce_in_regions(mesh: MeshArrays, faces: int, aggressiveness: list[float], count: int,
                      check: Callable[[], None] | None = None) -> tuple[MeshArrays, dict]:
    """`mesh` (closed) reduced to about `faces` triangles in `count` regions at once, one child process each.

    Returns the stitched mesh and a record of the cut (regions, shared vertices, seconds per step). Raises
    ForgeError when a region's process fails; `check` is called while waiting (a cancel raises from it).
    """
    started = time.perf_counter()
    regions = _cut(mesh, count)
    cut_s = time.perf_counter() - started
    share = faces / mesh.face_count
    calls = [child_call.start("server.stages.regions:reduce_region", {"region": region}, "reducing a region",
                              arrays={"border": border}, faces=max(4, round(region.face_count * share)),
                              aggressiveness=list(aggressiveness))
             for _, region, border in regions]
    try:
        answers = [call.result(check) for call in calls]
    finally:
        for call in calls:
            call.abandon()
    reduced_s = time.perf_counter() - started - cut_s
    stitched = _stitch(len(mesh.vertices), [(indices[border], answer)
                                            for (indices, _, border), answer in zip(regions, answers)])
    shared = np.unique(np.concatenate([indices[border] for indices, _, border in regions]))
    record = {"regions": count, "shared_vertices": int(len(shared)),
              "cut_s": round(cut_s, 3), "regions_s": round(reduced_s, 3),
              "stitch_s": round(time.perf_counter() - started - cut_s - reduced_s, 3)}
    return stitched, record

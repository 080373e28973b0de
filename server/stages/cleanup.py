"""Mesh cleanup with pymeshlab: duplicates, degenerate and non-manifold faces, floating specks, orientation."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from ..errors import ForgeError, InputError
from ..meshdata import MeshArrays


def _check_input(mesh: MeshArrays, min_component_fraction: float) -> None:
    mesh.validate()
    if not 0.0 <= min_component_fraction < 1.0:
        raise InputError("min_component_fraction", min_component_fraction, "a fraction in [0, 1)")


def _pymeshlab_pass(mesh: MeshArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict]:
    """Merge duplicates, drop zero-area faces, repair non-manifold parts, orient faces coherently."""
    import pymeshlab

    colors = None if mesh.colors is None else np.asarray(mesh.colors, np.float64) / 255.0
    mesh_set = pymeshlab.MeshSet()
    if colors is None:
        mesh_set.add_mesh(pymeshlab.Mesh(mesh.vertices, mesh.faces))
    else:
        mesh_set.add_mesh(pymeshlab.Mesh(mesh.vertices, mesh.faces, v_color_matrix=colors))

    def removed(filter_name: str, **params) -> tuple[int, int]:
        current = mesh_set.current_mesh()
        vertices, faces = current.vertex_number(), current.face_number()
        getattr(mesh_set, filter_name)(**params)
        current = mesh_set.current_mesh()
        return vertices - current.vertex_number(), faces - current.face_number()

    # Merging duplicate vertices also drops the faces it collapses (two corners on one vertex).
    merged, collapsed = removed("meshing_remove_duplicate_vertices")
    counts = {
        "duplicate_vertices_merged": merged,
        "duplicate_faces_removed": removed("meshing_remove_duplicate_faces")[1],
        "zero_area_faces_removed": collapsed + removed("meshing_remove_null_faces")[1],
    }
    topology = mesh_set.get_topological_measures()
    counts["non_manifold_edges"] = int(topology["non_two_manifold_edges"])
    counts["non_manifold_vertices"] = int(topology["non_two_manifold_vertices"])
    counts["unreferenced_vertices_removed"] = int(topology["unreferenced_vertices"])
    # Splitting keeps every face: shells touching along an edge or at a vertex become separate closed
    # shells, where removing faces would punch holes. (The filters re-add every vertex, so their
    # vertex counts say nothing; the topology counts above do.)
    mesh_set.meshing_repair_non_manifold_edges(method="Split Vertices")
    mesh_set.meshing_repair_non_manifold_vertices()
    mesh_set.meshing_remove_unreferenced_vertices()
    if mesh_set.current_mesh().face_number():  # the filter refuses a mesh without faces
        mesh_set.meshing_re_orient_faces_coherently()
    current = mesh_set.current_mesh()
    out_colors = None
    if colors is not None:
        out_colors = np.clip(np.rint(current.vertex_color_matrix() * 255.0), 0, 255).astype(np.uint8)
    return current.vertex_matrix().astype(np.float64), current.face_matrix().astype(np.int64), out_colors, counts


def _components(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """Per-face component label (faces joined by shared edges), component count, closed flag per component."""
    import trimesh

    surface = trimesh.Trimesh(vertices, faces, process=False)
    labels = trimesh.graph.connected_component_labels(surface.face_adjacency, node_count=len(faces))
    count = int(labels.max()) + 1 if len(labels) else 0
    boundary = trimesh.grouping.group_rows(surface.edges_sorted, require_count=1)
    closed = np.ones(count, bool)
    closed[labels[surface.edges_face[boundary]]] = False
    return labels, count, closed


def _vertex_components(faces: np.ndarray, vertex_count: int) -> tuple[np.ndarray, int]:
    """Per-face component label of faces joined by shared vertices, and the count.

    On a closed manifold mesh (surface_check) this is the same as joining faces by shared edges.
    """
    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = sparse.coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(vertex_count, vertex_count))
    _, vertex_labels = csgraph.connected_components(graph, directed=False)
    _, labels = np.unique(vertex_labels[faces[:, 0]], return_inverse=True)
    labels = labels.reshape(-1)
    return labels, int(labels.max()) + 1 if len(labels) else 0


ZERO_AREA_CHUNK = 1 << 17  # triangles tested at once, on several threads (numpy lets go of Python's lock)


def _zero_area_faces(vertices: np.ndarray, faces: np.ndarray) -> int:
    """Triangles whose edge vectors' cross product is exactly zero (written out: np.cross copies its inputs)."""

    def count(start: int) -> int:
        part = faces[start:start + ZERO_AREA_CHUNK]
        a, b, c = (vertices[part[:, k]] for k in range(3))
        u, v = b - a, c - a
        return int(((u[:, 1] * v[:, 2] == u[:, 2] * v[:, 1]) & (u[:, 2] * v[:, 0] == u[:, 0] * v[:, 2])
                    & (u[:, 0] * v[:, 1] == u[:, 1] * v[:, 0])).sum())

    starts = range(0, len(faces), ZERO_AREA_CHUNK)
    if len(starts) < 2:
        return sum(map(count, starts))
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="o3f_check") as pool:
        return sum(pool.map(count, starts))


_ROW_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], np.uint64)


def _shared_positions(vertices: np.ndarray) -> int:
    """How many vertices sit exactly where an earlier one does (vertices less distinct positions).

    Sorted by one 64-bit mix of each row's bits (one sort instead of a three-key lexsort); where two different
    rows happen to mix alike, the exact three-key sort decides.
    """
    if len(vertices) < 2:
        return 0
    rows = np.ascontiguousarray(vertices, np.float64) + 0.0  # -0.0 becomes 0.0, as == sees them
    bits = rows.view(np.uint64)
    mixed = (bits[:, 0] * _ROW_MIX[0]) ^ (bits[:, 1] * _ROW_MIX[1]) ^ (bits[:, 2] * _ROW_MIX[2])
    order = np.argsort(mixed)
    ordered = mixed[order]
    alike = np.flatnonzero(ordered[1:] == ordered[:-1])  # only these neighbours can be the same row
    same = (rows[order[alike]] == rows[order[alike + 1]]).all(axis=1)
    if not same.all():
        order = np.lexsort(rows.T[::-1])
        return int((rows[order][1:] == rows[order][:-1]).all(axis=1).sum())
    return int(same.sum())


def surface_check(vertices: np.ndarray, faces: np.ndarray) -> dict:
    """What cleanup's pymeshlab pass (and a repair) would find, measured without changing the mesh.

    watertight: every edge has exactly two triangles (trimesh's is_watertight). closed_manifold: also
    wound against each other, and the triangles around every vertex form a single fan. Also counts
    zero-area triangles, vertices that share a position with another and vertices no triangle uses.
    clean: closed_manifold with all counts zero, so the pymeshlab pass would change nothing.
    """
    faces = np.asarray(faces, np.int64)
    count = len(vertices)
    tail, head = faces.ravel(), faces[:, [1, 2, 0]].ravel()  # half-edge of corner 3 i + k
    # Half-edges sorted by their undirected edge: on a watertight mesh each edge's two are neighbours.
    keys = np.minimum(tail, head) * count + np.maximum(tail, head)
    order = np.argsort(keys)
    ordered = keys[order]
    del keys
    first, second = order[0::2], order[1::2]
    watertight = bool(len(faces)) and len(order) % 2 == 0 and bool((ordered[0::2] == ordered[1::2]).all()) \
        and bool((ordered[2::2] != ordered[1:-1:2]).all())
    del ordered
    closed_manifold = watertight and bool((tail[first] == head[second]).all()) and not (tail == head).any()
    used = np.zeros(count, bool)
    used[tail] = True
    if closed_manifold:
        # Around a vertex, the corner after corner c is the one at the same vertex in the triangle across
        # c's outgoing edge; the fans are the cycles of that map, and a manifold vertex has exactly one.
        across = np.empty(len(order), np.int64)
        across[first], across[second] = second, first
        del order, first, second
        following = (across + np.array([1, 1, -2], np.int64)[across % 3]).astype(np.int32)
        del across
        corners = len(tail)
        ring = sparse.csr_matrix((np.ones(corners, np.int8), following, np.arange(corners + 1, dtype=np.int32)),
                                 shape=(corners, corners))
        del following
        fans = csgraph.connected_components(ring, directed=False)[0]
        closed_manifold = fans == int(used.sum())
    else:
        del order, first, second
    zero_area = _zero_area_faces(vertices, faces)
    result = {"watertight": bool(watertight), "closed_manifold": bool(closed_manifold), "zero_area_faces": zero_area,
              "shared_positions": _shared_positions(vertices), "unreferenced_vertices": int(count - used.sum())}
    result["clean"] = result["closed_manifold"] and zero_area == 0 and result["shared_positions"] == 0
    return result


def _bounds(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray,
            count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-component bounding boxes: (count, 3) lower and upper corners."""
    if count == 1:
        referenced = np.zeros(len(vertices), bool)
        referenced[faces.ravel()] = True
        used = vertices[referenced]
        return used.min(axis=0, keepdims=True), used.max(axis=0, keepdims=True)
    # Faces sorted by component, then one reduction per component's run.
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(count))
    corners = vertices[faces[order]]
    return (np.minimum.reduceat(corners.min(axis=1), starts, axis=0),
            np.maximum.reduceat(corners.max(axis=1), starts, axis=0))


def speck_components(low: np.ndarray, high: np.ndarray, face_counts: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean per component: True for floating specks to remove.

    A speck has fewer than `fraction` of the biggest component's triangles and a bounding-box diagonal
    under sqrt(fraction) of the biggest one's (area, and so triangle count on an even mesh, grows with
    the square of size), or is under `fraction` of that diagonal outright. A large part with few
    triangles, such as a low-poly blade, is kept.
    """
    if fraction <= 0 or len(face_counts) < 2:
        return np.zeros(len(face_counts), bool)
    diagonal = np.linalg.norm(high - low, axis=1)
    few_faces = face_counts < fraction * face_counts.max()
    return (diagonal < fraction * diagonal.max()) | (few_faces & (diagonal < np.sqrt(fraction) * diagonal.max()))


def nested_components(low: np.ndarray, high: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Boolean per component: True where its box lies inside the box of another candidate component."""
    nested = np.zeros(len(low), bool)
    for outer in np.flatnonzero(candidates):
        inside = (low >= low[outer]).all(axis=1) & (high <= high[outer]).all(axis=1)
        inside[outer] = False
        nested |= inside
    return nested


def signed_volumes(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Signed enclosed volume per component (meaningful for closed components only)."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    per_face = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0
    return np.bincount(labels, weights=per_face, minlength=count)


def cleanup(mesh: MeshArrays, *, min_component_fraction: float = 0.01, checked: dict | None = None) -> MeshArrays:
    """Remove duplicate, zero-area and non-manifold faces and floating specks; orient faces outward.

    pymeshlab merges duplicate vertices, removes duplicate and zero-area faces, repairs non-manifold
    edges and vertices (by splitting them) and orients faces coherently. That pass is skipped when
    surface_check finds the mesh closed, manifold and oriented (`checked` may hand in a check already made
    of this mesh); `info["cleanup"]["pymeshlab_pass"]` says which. Such a mesh keeps the few zero-area
    triangles and pinched vertices it may have (float32 files leave some): they break no edge, decimation
    collapses them, and the pass would cost seconds per million triangles for them. Then components that are specks (see
    speck_components; `min_component_fraction=0` keeps them all) are removed, and closed components
    with negative volume are flipped so their normals point outward, except those nested inside
    another closed component's bounding box (a cavity's faces rightly point inward).

    Attributes: `colors` ride along with the surviving vertices. `uv` and `normals` are set to None:
    merging vertices by position would weld UV seams, and the normals are stale after flips.
    """
    import pymeshlab

    _check_input(mesh, min_component_fraction)
    started = time.perf_counter()
    checked = checked if checked is not None else surface_check(mesh.vertices, mesh.faces)
    if checked["closed_manifold"]:
        vertices, faces, colors = mesh.vertices, mesh.faces, mesh.colors
        counts = {"duplicate_vertices_merged": 0, "duplicate_faces_removed": 0, "zero_area_faces_removed": 0,
                  "non_manifold_edges": 0, "non_manifold_vertices": 0,
                  "unreferenced_vertices_removed": checked["unreferenced_vertices"],
                  "zero_area_faces_kept": checked["zero_area_faces"],
                  "shared_positions_kept": checked["shared_positions"],
                  "pymeshlab_pass": "skipped: closed, manifold and oriented"}
        labels, count = _vertex_components(faces, len(vertices))
        closed = np.ones(count, bool)
    else:
        try:
            vertices, faces, colors, counts = _pymeshlab_pass(mesh)
        except pymeshlab.PyMeshLabException as exc:
            raise ForgeError(f"cleanup failed in pymeshlab: {exc}") from exc
        counts["pymeshlab_pass"] = "ran"
        if len(faces) == 0:
            raise ForgeError(f"cleanup removed every triangle of a {mesh.face_count}-triangle mesh: "
                             "all of them were duplicates, zero-area or non-manifold")
        labels, count, closed = _components(vertices, faces)

    low, high = _bounds(vertices, faces, labels, count)
    speck = speck_components(low, high, np.bincount(labels, minlength=count), min_component_fraction)
    keep_face = ~speck[labels]
    counts["components"] = count
    counts["components_removed"] = int(speck.sum())
    counts["faces_removed_with_components"] = int((~keep_face).sum())

    solid = closed & ~speck
    nested = nested_components(low, high, solid)
    inverted = solid & ~nested & (signed_volumes(vertices, faces, labels, count) < 0)
    if inverted.any():
        flip = inverted[labels]
        faces = faces.copy()
        faces[flip] = faces[flip][:, ::-1]
    counts["components_flipped"] = int(inverted.sum())
    counts["nested_components"] = int((solid & nested).sum())
    counts["open_components"] = int((~closed & ~speck).sum())

    counts["vertices_before"], counts["faces_before"] = len(mesh.vertices), mesh.face_count
    counts["uv_dropped"] = mesh.uv is not None
    if keep_face.all() and checked["closed_manifold"] and not checked["unreferenced_vertices"]:
        # Nothing was removed: the arrays stay as they are (a huge mesh is not copied again).
        counts["vertices_after"], counts["faces_after"] = len(vertices), len(faces)
        counts["seconds"] = round(time.perf_counter() - started, 3)
        return MeshArrays(vertices, faces, colors=colors, uv=None, normals=None, info={**mesh.info, "cleanup": counts})
    faces = faces[keep_face]
    referenced = np.zeros(len(vertices), bool)
    referenced[faces.ravel()] = True
    used = np.flatnonzero(referenced)
    remap = np.full(len(vertices), -1, np.int64)
    remap[used] = np.arange(len(used))
    counts["vertices_after"], counts["faces_after"] = len(used), len(faces)
    counts["seconds"] = round(time.perf_counter() - started, 3)
    return MeshArrays(vertices[used], remap[faces], colors=None if colors is None else colors[used],
                      uv=None, normals=None, info={**mesh.info, "cleanup": counts})

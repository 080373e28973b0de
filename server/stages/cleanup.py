"""Mesh cleanup with pymeshlab: duplicates, degenerate and non-manifold faces, floating specks, orientation."""

from __future__ import annotations

import time

import numpy as np

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


def _bounds(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray,
            count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-component bounding boxes: (count, 3) lower and upper corners."""
    triangles = vertices[faces]
    low = np.full((count, 3), np.inf)
    high = np.full((count, 3), -np.inf)
    np.minimum.at(low, labels, triangles.min(axis=1))
    np.maximum.at(high, labels, triangles.max(axis=1))
    return low, high


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


def cleanup(mesh: MeshArrays, *, min_component_fraction: float = 0.01) -> MeshArrays:
    """Remove duplicate, zero-area and non-manifold faces and floating specks; orient faces outward.

    pymeshlab merges duplicate vertices, removes duplicate and zero-area faces, repairs non-manifold
    edges and vertices (by splitting them) and orients faces coherently. Then components that are
    specks (see speck_components; `min_component_fraction=0` keeps them all) are removed, and closed
    components with negative volume are flipped so their normals point outward, except those nested
    inside another closed component's bounding box (a cavity's faces rightly point inward).

    Attributes: `colors` ride along with the surviving vertices. `uv` and `normals` are set to None:
    merging vertices by position would weld UV seams, and the normals are stale after flips.
    """
    import pymeshlab

    _check_input(mesh, min_component_fraction)
    started = time.perf_counter()
    try:
        vertices, faces, colors, counts = _pymeshlab_pass(mesh)
    except pymeshlab.PyMeshLabException as exc:
        raise ForgeError(f"cleanup failed in pymeshlab: {exc}") from exc
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
    flip = inverted[labels]
    faces = faces.copy()
    faces[flip] = faces[flip][:, ::-1]
    counts["components_flipped"] = int(inverted.sum())
    counts["nested_components"] = int((solid & nested).sum())
    counts["open_components"] = int((~closed & ~speck).sum())

    faces = faces[keep_face]
    used = np.unique(faces)
    remap = np.full(len(vertices), -1, np.int64)
    remap[used] = np.arange(len(used))
    counts["vertices_before"], counts["faces_before"] = len(mesh.vertices), mesh.face_count
    counts["vertices_after"], counts["faces_after"] = len(used), len(faces)
    counts["uv_dropped"] = mesh.uv is not None
    counts["seconds"] = round(time.perf_counter() - started, 3)
    return MeshArrays(vertices[used], remap[faces], colors=None if colors is None else colors[used],
                      uv=None, normals=None, info={**mesh.info, "cleanup": counts})

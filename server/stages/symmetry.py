"""Mirror symmetry: keep one half of the mesh, mirror it across the x = 0 or y = 0 plane and weld the seam."""

from __future__ import annotations

import time

import numpy as np

from ..errors import ForgeError, InputError
from ..meshdata import MeshArrays

AXES = {"x": 0, "y": 1}  # Blender axes: x is left/right, y is front/back
KEEP = ("positive", "negative")
# Vertices this close to the plane (metres) count as on it; the same tolerance trimesh's slicer uses.
PLANE_TOLERANCE = 1e-8


def _check_input(mesh: MeshArrays, axis: str, keep: str) -> None:
    if axis not in ("off", *AXES):
        raise InputError("axis", axis, "'off', 'x' (left/right) or 'y' (front/back)")
    if keep not in KEEP:
        raise InputError("keep", keep, "'positive' or 'negative' (the half that is kept and mirrored)")
    mesh.validate()


def _weld(vertices: np.ndarray, faces: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """`faces` with candidate vertices closer than PLANE_TOLERANCE merged, and collapsed faces dropped."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    index = np.flatnonzero(candidates)
    pairs = cKDTree(vertices[index]).query_pairs(PLANE_TOLERANCE, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (index[pairs[:, 0]], index[pairs[:, 1]])),
                       shape=(len(vertices), len(vertices)))
    _, group = connected_components(graph, directed=False)
    # Each vertex maps to the first vertex of its group.
    first = np.full(group.max() + 1, len(vertices))
    np.minimum.at(first, group, np.arange(len(vertices)))
    faces = first[group][faces]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])
    return faces[keep]


def symmetrize(mesh: MeshArrays, axis: str = "off", keep: str = "positive") -> MeshArrays:
    """Make the mesh mirror-symmetric across the plane through the origin normal to `axis`.

    `axis`: "off" (the input comes back as it is), "x" (left/right) or "y" (front/back); the plane
    passes through the object origin, as with Blender's Symmetrize. `keep`: "positive" keeps the +x
    (or +y) half and mirrors it onto the other side, "negative" the opposite. Faces lying in the
    plane are removed (they would be inner walls). A watertight input gives a watertight result
    (ForgeError otherwise).

    Attributes: `colors` are carried along (interpolated where the plane cuts an edge). `uv` and
    `normals` are set to None: mirrored halves would overlap in UV space, and normals must be redone.
    """
    _check_input(mesh, axis, keep)
    if axis == "off":
        return mesh
    import trimesh

    started = time.perf_counter()
    k = AXES[axis]
    normal = np.zeros(3)
    normal[k] = 1.0 if keep == "positive" else -1.0
    was_watertight = bool(trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).is_watertight)

    colors = None if mesh.colors is None else np.asarray(mesh.colors, np.float64)
    # slice_faces_plane interpolates its `uv` argument at the cut; it takes any number of channels.
    vertices, faces, colors = trimesh.intersections.slice_faces_plane(
        mesh.vertices, mesh.faces, plane_normal=normal, plane_origin=np.zeros(3), uv=colors)
    if len(faces) == 0:
        raise ForgeError(f"symmetrize: nothing of the mesh lies on the {keep} side of the {axis} = 0 plane; "
                         f"keep the other side or centre the object on {axis} = 0")
    vertices = np.array(vertices, np.float64)
    on_plane = np.abs(vertices[:, k]) <= PLANE_TOLERANCE
    vertices[on_plane, k] = 0.0
    # Neighbouring cut faces each made their own copy of the point where the plane cuts an edge.
    faces = _weld(vertices, faces, on_plane)
    in_plane_faces = on_plane[faces].all(axis=1)
    faces = faces[~in_plane_faces]

    used = np.unique(faces)
    remap = np.full(len(vertices), -1, np.int64)
    remap[used] = np.arange(len(used))
    vertices, faces, on_plane = vertices[used], remap[faces], on_plane[used]
    colors = None if colors is None else colors[used]

    # The mirrored copy shares the seam vertices, so the weld across the plane is exact.
    off_plane = np.flatnonzero(~on_plane)
    mirror_index = np.arange(len(vertices))
    mirror_index[off_plane] = len(vertices) + np.arange(len(off_plane))
    mirrored = vertices[off_plane].copy()
    mirrored[:, k] *= -1.0
    out_vertices = np.vstack([vertices, mirrored])
    out_faces = np.vstack([faces, mirror_index[faces][:, ::-1]])  # a reflection flips the winding
    out_colors = None
    if colors is not None:
        out_colors = np.clip(np.rint(np.vstack([colors, colors[off_plane]])), 0, 255).astype(np.uint8)

    watertight = bool(trimesh.Trimesh(out_vertices, out_faces, process=False).is_watertight)
    if was_watertight and not watertight:
        raise ForgeError(f"symmetrize across {axis} = 0 left the watertight mesh open (the surface touches "
                         "the plane without crossing it); repair the result or move the object slightly")
    record = {"axis": axis, "keep": keep, "faces_before": mesh.face_count, "faces_after": int(len(out_faces)),
              "seam_vertices": int(on_plane.sum()), "in_plane_faces_removed": int(in_plane_faces.sum()),
              "watertight": watertight, "uv_dropped": mesh.uv is not None,
              "seconds": round(time.perf_counter() - started, 3)}
    return MeshArrays(out_vertices, out_faces, colors=out_colors, uv=None, normals=None,
                      info={**mesh.info, "symmetry": record})

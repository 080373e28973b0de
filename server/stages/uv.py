"""UV unwrap with xatlas: charts from normals and seams, packed at the texture size with padding in its texels."""

from __future__ import annotations

import math

import numpy as np
import xatlas

from ..errors import InputError
from ..meshdata import MeshArrays

HARD_ANGLE_DEG = 66.0


def padding_for(texture_size: int) -> int:
    """At least 16 texels at 2048, scaled with the texture size (CONVENTIONS.md, baking)."""
    return max(4, int(math.ceil(16 * texture_size / 2048)))


def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cross = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    area2 = np.linalg.norm(cross, axis=1)
    return cross / np.maximum(area2, 1e-30)[:, None], area2 / 2


def _atlas(mesh: MeshArrays, texture_size: int, padding: int, texels_per_metre: float):
    atlas = xatlas.Atlas()
    atlas.add_mesh(mesh.vertices.astype(np.float32), mesh.faces.astype(np.uint32))
    charts = xatlas.ChartOptions()
    # Capping the chart area keeps xatlas's per-chart parametrisation small: a third less time, and
    # smaller charts pack a little tighter.
    _, areas = _face_normals(mesh.vertices, mesh.faces)
    charts.max_chart_area = float(areas.sum()) / 16
    pack = xatlas.PackOptions()
    pack.padding = int(padding)
    pack.bilinear = True
    pack.rotate_charts = True
    pack.bruteForce = False
    if texels_per_metre > 0:
        pack.texels_per_unit = float(texels_per_metre)
    else:
        pack.resolution = int(texture_size)
    atlas.generate(charts, pack)
    vmapping, indices, uvs = atlas[0]
    return vmapping.astype(np.int64), indices.astype(np.int64), uvs.astype(np.float64), atlas.width, atlas.height


def unwrap(mesh: MeshArrays, *, texture_size: int = 2048, texel_density: float | None = None,
           padding: int | None = None) -> MeshArrays:
    """Split the mesh at chart seams and give every vertex a UV in [0, 1] (v up) on one square texture.

    texel_density is in texels per centimetre; without it charts are scaled to fill the texture. When
    xatlas returns a larger atlas than asked (it does, for density targets and tight packing), the UVs
    are scaled down to the texture and the packing is redone with proportionally more padding, so the
    gap between charts is still `padding` texels of the texture that is baked. Normals of the result
    are smooth except across seams whose sides meet at more than HARD_ANGLE_DEG (hard edges sit on seams).
    """
    if texture_size not in {2**k for k in range(6, 14)}:
        raise InputError("texture_size", texture_size, "a power of two from 64 to 8192")
    if texel_density is not None and not (0 < texel_density <= 1024):
        raise InputError("texel_density", texel_density, "texels per centimetre, above 0 and at most 1024")
    padding = padding_for(texture_size) if padding is None else int(padding)
    texels_per_metre = 0.0 if texel_density is None else texel_density * 100.0

    # xatlas usually returns 20-35 % more texels than asked; ask for that much more padding up front
    # so that one pass is enough after the UVs are scaled onto the texture.
    asked_padding = int(math.ceil(padding * 1.45))
    for _ in range(3):
        vmapping, faces, uv, width, height = _atlas(mesh, texture_size, asked_padding, texels_per_metre)
        side = max(width, height)
        shrink = min(1.0, texture_size / side)  # xatlas may give more texels than the texture has
        if asked_padding * shrink >= padding - 1e-9:
            break
        asked_padding = int(math.ceil(padding / shrink))
    # xatlas's UVs are normalised by its own width and height; bring them onto the square texture.
    uv_texels = uv * np.array([width, height]) * shrink
    uv01 = uv_texels / texture_size
    uv01[:, 1] = 1.0 - uv01[:, 1]  # xatlas counts rows from the top; ours have v up

    vertices = mesh.vertices[vmapping]
    normals = _seam_aware_normals(mesh, vmapping, faces)
    colors = mesh.colors[vmapping] if mesh.colors is not None else None
    info = {**mesh.info, "atlas_size": [int(width), int(height)], "uv_scale": float(shrink),
            "padding_texels": float(asked_padding * shrink), "texture_size": int(texture_size)}
    return MeshArrays(vertices, faces, colors=colors, uv=uv01, normals=normals, info=info)


def weld(mesh: MeshArrays) -> tuple[np.ndarray, np.ndarray]:
    """Merge the copies of each position that UV seams split apart: (welded vertices, faces into them)."""
    welded, _, faces = _welding(mesh)
    return welded, faces


def _welding(mesh: MeshArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(welded vertices, split vertex -> welded index, faces into the welded vertices)."""
    unique, inverse = np.unique(np.round(mesh.vertices, 9), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    first = np.zeros(len(unique), np.int64)
    first[inverse[::-1]] = np.arange(len(inverse))[::-1]
    return mesh.vertices[first], inverse, inverse[mesh.faces]


def smooth_normals_on_split_mesh(mesh: MeshArrays) -> np.ndarray:
    """Normals for a mesh already split at seams: smooth across soft seams, hard where the angle is sharp."""
    welded, vmapping, faces = _welding(mesh)
    return _seam_aware_normals(MeshArrays(welded, faces), vmapping, mesh.faces)





def _seam_aware_normals(source: MeshArrays, vmapping: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Angle-weighted smooth normals per original vertex, split only where a seam is also a hard edge."""
    from ..bake.tangents import corner_angles

    face_normal, _ = _face_normals(source.vertices, source.faces)
    # Faces come back from xatlas in the same order as they went in.
    angles = corner_angles(source.vertices, source.faces)
    split_count = len(vmapping)
    # The average normal of each split vertex's own faces decides which neighbours are smooth with it.
    own = np.zeros((split_count, 3))
    for corner in range(3):
        np.add.at(own, faces[:, corner], face_normal * angles[:, corner:corner + 1])
    own /= np.maximum(np.linalg.norm(own, axis=1), 1e-30)[:, None]
    # Every face around the original vertex, seen from each of its split copies.
    original = np.concatenate([source.faces[:, c] for c in range(3)])
    contributions = np.concatenate([face_normal * angles[:, c:c + 1] for c in range(3)])
    order = np.argsort(original, kind="stable")
    original, contributions = original[order], contributions[order]
    starts = np.searchsorted(original, np.arange(len(source.vertices)))
    ends = np.searchsorted(original, np.arange(len(source.vertices)), side="right")
    cos_hard = math.cos(math.radians(HARD_ANGLE_DEG))
    normals = np.zeros((split_count, 3))
    counts = ends[vmapping] - starts[vmapping]
    # Vectorised over (split vertex, incident face) pairs.
    pair_vertex = np.repeat(np.arange(split_count), counts)
    offsets = np.arange(len(pair_vertex)) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_face = starts[vmapping][pair_vertex] + offsets
    contribution = contributions[pair_face]
    direction = contribution / np.maximum(np.linalg.norm(contribution, axis=1), 1e-30)[:, None]
    smooth = np.einsum("ij,ij->i", direction, own[pair_vertex]) >= cos_hard
    np.add.at(normals, pair_vertex[smooth], contribution[smooth])
    length = np.linalg.norm(normals, axis=1)
    normals = np.where(length[:, None] > 1e-20, normals / np.maximum(length, 1e-30)[:, None], own)
    return normals

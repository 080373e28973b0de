"""UV unwrap with xatlas: charts from normals and seams, packed at the texture size with padding in its texels."""

from __future__ import annotations

import math

import numpy as np
import xatlas
from scipy.cluster.vq import kmeans2

from ..meshdata import MeshArrays
from ..schema import POSTPROCESS, plain_value

HARD_ANGLE_DEG = 66.0


def padding_for(texture_size: int) -> int:
    """At least 16 texels at 2048, scaled with the texture size (CONVENTIONS.md, baking)."""
    return max(4, int(math.ceil(16 * texture_size / 2048)))


def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cross = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    area2 = np.linalg.norm(cross, axis=1)
    return cross / np.maximum(area2, 1e-30)[:, None], area2 / 2


# Charts are packed at this many texels a side whatever the texture size, then scaled onto the texture:
# packing time no longer grows with the texture, and padding is held as a share of the texture's side.
PACK_TEXELS = 512
MAX_REPACKS = 4
CHART_PIECES = 2  # a mesh of PIECES_FROM_FACES faces or more is charted in this many regions at once (_charts)
PIECES_FROM_FACES = 4000


def _charts(mesh: MeshArrays, pack_scale: float, padding: int, texels_per_metre: float):
    """xatlas charts, parametrised and packed once: (vmapping, faces, uv in pack texels, width, height).

    The mesh goes to xatlas as CHART_PIECES regions: xatlas charts each on a thread of its own, and charting
    costs more than linearly in the faces, so the unwrap takes a third to a half of the time (bench/RESULTS.md).
    The regions' borders become seams; faces come back in the mesh's own order.
    """
    atlas = xatlas.Atlas()
    pieces = _pieces(mesh)
    used_vertices = []
    for piece in pieces:
        used, local = np.unique(mesh.faces[piece], return_inverse=True)
        used_vertices.append(used)
        atlas.add_mesh(mesh.vertices[used].astype(np.float32), local.reshape(-1, 3).astype(np.uint32))
    pack = _pack_options(padding)
    if texels_per_metre > 0:
        pack.texels_per_unit = float(texels_per_metre * pack_scale)
    else:
        pack.resolution = PACK_TEXELS
    atlas.generate(xatlas.ChartOptions(), pack)
    vmapping, faces, uvs, offset = [], np.empty((mesh.face_count, 3), np.int64), [], 0
    for index, (piece, used) in enumerate(zip(pieces, used_vertices)):
        piece_mapping, piece_faces, piece_uv = atlas[index]
        vmapping.append(used[piece_mapping.astype(np.int64)])
        faces[piece] = piece_faces.astype(np.int64) + offset
        uvs.append(piece_uv)
        offset += len(piece_mapping)
    size = np.array([atlas.width, atlas.height], np.float64)
    return (np.concatenate(vmapping), faces, np.concatenate(uvs).astype(np.float64) * size, atlas.width,
            atlas.height)


def _pieces(mesh: MeshArrays) -> list[np.ndarray]:
    """Face indices of CHART_PIECES compact regions (k-means of the face centres; one piece for a small mesh).

    Compact regions cut a thin part across, not along: a tube cut along its length would pack as long strips.
    """
    if mesh.face_count < PIECES_FROM_FACES:
        return [np.arange(mesh.face_count)]
    centres = mesh.vertices[mesh.faces].mean(axis=1)
    _, label = kmeans2(centres, CHART_PIECES, minit="++", seed=0)
    return [part for part in (np.flatnonzero(label == k) for k in range(CHART_PIECES)) if len(part)]


def _repack(uv_texels: np.ndarray, faces: np.ndarray, padding: int, to_axis: bool = True):
    """The same charts packed again with another padding; charts keep their size (one texel per UV unit)."""
    atlas = xatlas.Atlas()
    atlas.add_uv_mesh(uv_texels.astype(np.float32), faces.astype(np.uint32))
    pack = _pack_options(padding)
    pack.texels_per_unit = 1.0
    pack.rotate_charts_to_axis = to_axis
    atlas.generate(pack_options=pack)
    _, _, uvs = atlas[0]  # a UV mesh keeps its vertex order and faces
    return uvs.astype(np.float64) * np.array([atlas.width, atlas.height]), atlas.width, atlas.height


def _pack_options(padding: int) -> xatlas.PackOptions:
    pack = xatlas.PackOptions()
    pack.padding = int(padding)
    pack.bilinear = True  # charts are packed by the texels they touch, so the padding is a true gap
    pack.rotate_charts = True
    pack.bruteForce = False  # brute force took 5 to 100 times longer for a few per cent more coverage
    return pack


def unwrap(mesh: MeshArrays, *, texture_size: int = 2048, texel_density: float | None = None,
           padding: int | None = None) -> MeshArrays:
    """Split the mesh at chart seams and give every vertex a UV in [0, 1] (v up) on one square texture.

    texel_density is in texels per centimetre; without it charts are scaled to fill the texture. xatlas
    packs at PACK_TEXELS a side whatever the texture size (with the padding scaled to match), and the
    layout is scaled onto the texture; when the packed atlas comes out larger than asked, the charts are
    packed again with proportionally more padding, so every chart keeps at least `padding` texels of the
    texture free around it (two neighbours are at least twice that apart). Without a density the layout
    is the same at every texture size. Normals of the result are smooth except across seams whose sides
    meet at more than HARD_ANGLE_DEG (hard edges sit on seams).
    """
    texture_size = POSTPROCESS.field("texture_size").check(plain_value(texture_size), "texture_size")
    texel_density = POSTPROCESS.field("texel_density").check(plain_value(texel_density), "texel_density")
    padding = padding_for(texture_size) if padding is None else int(padding)
    texels_per_metre = 0.0 if texel_density is None else texel_density * 100.0
    pack_scale = PACK_TEXELS / texture_size  # pack texels per texture texel

    def texture_per_pack_texel(side: int) -> float:
        """Texture texels per pack texel once the atlas (side pack texels) is put on the texture."""
        fill = texture_size / max(side, 1)
        return fill if texels_per_metre <= 0 else min(1.0 / pack_scale, fill)

    # xatlas's atlas usually comes out 20-50 % wider than asked: pad for that from the start.
    asked = max(1, math.ceil(padding * pack_scale * 1.45))
    vmapping, faces, uv, width, height = _charts(mesh, pack_scale, asked, texels_per_metre)
    # Packing is a heuristic and costs a tenth of the charting: the charts packed once more without turning
    # them to their axis, the smaller atlas kept (it was on 4 of the 6 meshes of bench/RESULTS.md's trial).
    other = _repack(uv, faces, asked, to_axis=False)
    if max(other[1], other[2]) < max(width, height):
        uv, width, height = other
    for _ in range(MAX_REPACKS):
        scale = texture_per_pack_texel(max(width, height))
        if asked * scale >= padding - 1e-9:
            break
        asked = math.ceil(padding / scale)
        uv, width, height = _repack(uv, faces, asked)
    scale = texture_per_pack_texel(max(width, height))
    uv01 = uv * scale / texture_size
    uv01[:, 1] = 1.0 - uv01[:, 1]  # xatlas counts rows from the top; ours have v up

    vertices = mesh.vertices[vmapping]
    normals = _seam_aware_normals(mesh, vmapping, faces)
    colors = mesh.colors[vmapping] if mesh.colors is not None else None
    info = {**mesh.info, "atlas_size": [int(width), int(height)], "uv_scale": float(scale * pack_scale),
            "padding_texels": float(asked * scale), "texture_size": int(texture_size),
            "pack_texels": PACK_TEXELS}
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

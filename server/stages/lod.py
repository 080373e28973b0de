"""LOD1 and LOD2 from LOD0 by texture-aware quadric decimation, so every LOD shares LOD0's UVs and maps."""

from __future__ import annotations

import numpy as np
import pymeshlab

from ..errors import InputError
from ..meshdata import MeshArrays
from ..schema import POSTPROCESS, plain_value
from .uv import smooth_normals_on_split_mesh

DEFAULT_RATIOS = (1.0, 0.5, 0.25)


def validate_ratios(ratios) -> tuple[float, ...]:
    """LOD shares by the schema's rule: three falling shares of LOD0's triangles starting with 1."""
    return POSTPROCESS.field("lod_ratios").check([plain_value(r) for r in ratios] if isinstance(ratios, (list, tuple))
                                                 else ratios, "lod_ratios")


def decimate_keeping_uvs(lod0: MeshArrays, target_faces: int) -> MeshArrays:
    """Collapse edges of the welded mesh with wedge UVs kept; seams stay seams, charts keep their place."""
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(lod0.vertices, lod0.faces.astype(np.int32), v_tex_coords_matrix=lod0.uv))
    # Move the UVs onto the triangle corners, then weld the seam copies: seams become UV discontinuities.
    meshes.compute_texcoord_transfer_vertex_to_wedge()
    meshes.meshing_merge_close_vertices(threshold=pymeshlab.PercentageValue(0.0001))
    meshes.meshing_decimation_quadric_edge_collapse_with_texture(
        targetfacenum=int(target_faces), qualitythr=0.3, extratcoordw=1.0, preserveboundary=True,
        optimalplacement=True, preservenormal=True, planarquadric=True)
    result = meshes.current_mesh()
    new_vertices = result.vertex_matrix()
    new_faces = result.face_matrix().astype(np.int64)
    new_wedges = result.wedge_tex_coord_matrix().reshape(-1, 3, 2)
    # Split again wherever one position carries different UVs (the seams).
    keys = np.concatenate([new_faces.reshape(-1, 1), np.round(new_wedges.reshape(-1, 2), 7)], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    split_vertices = new_vertices[unique[:, 0].astype(np.int64)]
    split_uv = unique[:, 1:3]
    split_faces = inverse.reshape(-1, 3)
    lod = MeshArrays(split_vertices, split_faces, uv=split_uv, info={"target_faces": int(target_faces)})
    lod.normals = smooth_normals_on_split_mesh(lod)
    return lod


def make_lods(lod0: MeshArrays, ratios=DEFAULT_RATIOS) -> list[MeshArrays]:
    """[LOD0, LOD1, LOD2]: each later LOD has the given share of LOD0's triangles and LOD0's UV layout."""
    ratios = validate_ratios(ratios)
    if lod0.uv is None:
        raise InputError("lod0", "without UVs", "an unwrapped LOD0")
    lods = [lod0]
    for ratio in ratios[1:]:
        lods.append(decimate_keeping_uvs(lod0, max(4, int(round(lod0.face_count * ratio)))))
    return lods

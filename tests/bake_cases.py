"""Procedural high/low pairs and how far two bakes of them differ (tests/test_bake.py, tests/test_bake_cuda.py
and bench/bake_gpu.py)."""

from __future__ import annotations

import numpy as np
import trimesh

from server.bake.engine import HighPoly
from server.bake.sources import SurfaceSource
from server.meshdata import MeshArrays
from server.stages.uv import unwrap
from tests.measures import angles_deg


def bumpy_sphere(subdivisions: int = 6, amplitude: float = 0.2) -> trimesh.Trimesh:
    """A unit icosphere with bumps deep enough to shade each other (20 * 4**subdivisions triangles: 8 gives 1.31M)."""
    sphere = trimesh.creation.icosphere(subdivisions)
    v = sphere.vertices
    bump = 1 + amplitude * np.sin(7 * v[:, 0]) * np.sin(7 * v[:, 1]) * np.sin(7 * v[:, 2] + 1)
    return trimesh.Trimesh(v * bump[:, None], sphere.faces, process=False)


def painted_source(mesh: trimesh.Trimesh) -> SurfaceSource:
    """Vertex colours, metallic and roughness that vary over the surface, so every map has content."""
    v = np.asarray(mesh.vertices)
    colors = np.column_stack([0.5 + 0.5 * np.sin(3 * v[:, 0]), 0.5 + 0.5 * np.cos(4 * v[:, 1]),
                              0.5 + 0.4 * v[:, 2], np.ones(len(v))])
    return SurfaceSource(np.asarray(mesh.faces), colors=np.clip(colors, 0, 1),
                         metallic_vertex=(v[:, 0] > 0.2).astype(float),
                         roughness_vertex=np.clip(0.5 + 0.4 * np.sin(5 * v[:, 2]), 0, 1))


def high_poly(mesh: trimesh.Trimesh, source=None) -> HighPoly:
    return HighPoly(np.asarray(mesh.vertices), np.asarray(mesh.faces), np.asarray(mesh.vertex_normals),
                    source if source is not None else SurfaceSource(np.asarray(mesh.faces)))


def low_poly(mesh: trimesh.Trimesh, faces: int, texture_size: int) -> MeshArrays:
    """fast-simplification to about `faces` triangles, then the UV stage's xatlas unwrap."""
    import fast_simplification

    ratio = 1.0 - faces / len(mesh.faces)
    vertices, triangles = fast_simplification.simplify(np.asarray(mesh.vertices, np.float32),
                                                       np.asarray(mesh.faces, np.int32), target_reduction=ratio)
    return unwrap(MeshArrays(vertices, triangles), texture_size=texture_size)


def parity(reference, candidate) -> dict:
    """How far two bakes of the same pair are apart, on the texels both engines cover."""
    both = reference.covered & candidate.covered
    disagree = reference.covered ^ candidate.covered
    colour = np.abs(reference.base_color[both][:, :3] - candidate.base_color[both][:, :3]).max(axis=1) * 255
    return {
        "texels": int(both.sum()),
        "coverage_mismatch": float(disagree.sum() / max(1, reference.covered.sum())),
        "normal_mean_deg": float(angles_deg(reference.normal[both], candidate.normal[both]).mean()),
        "base_color_median_levels": float(np.median(colour)),
        "base_color_p99_levels": float(np.percentile(colour, 99)),
        "metallic_mean_abs": float(np.abs(reference.metallic[both] - candidate.metallic[both]).mean()),
        "roughness_mean_abs": float(np.abs(reference.roughness[both] - candidate.roughness[both]).mean()),
        "ao_mean_abs": float(np.abs(reference.ao[both] - candidate.ao[both]).mean()),
    }

"""Mesh records passed between post-processing stages: plain arrays in Blender axes (metres, Z up, front -Y)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class MeshArrays:
    """A triangle mesh as arrays; optional per-vertex attributes ride along with the vertices.

    colors: (n, 4) uint8 RGBA; uv: (n, 2) float with v up (texture row = (1 - v) * height);
    normals: (n, 3) unit vertex normals. A stage that moves, merges or splits vertices either carries
    these along or leaves them None, and says which in its docstring.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None
    uv: np.ndarray | None = None
    normals: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float64)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int64)

    def validate(self, argument: str = "mesh") -> "MeshArrays":
        """Raise InputError unless this is a non-empty triangle mesh with finite coordinates."""
        from .errors import InputError

        if self.face_count == 0 or len(self.vertices) == 0:
            raise InputError(argument, f"{len(self.vertices)} vertices, {self.face_count} triangles",
                             "a mesh with at least one triangle")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or self.faces.min() < 0 \
                or self.faces.max() >= len(self.vertices):
            raise InputError(f"{argument}.faces", f"shape {self.faces.shape}",
                             f"(m, 3) triangle indices into {len(self.vertices)} vertices")
        if not np.isfinite(self.vertices).all():
            raise InputError(f"{argument}.vertices", "NaN or infinite coordinates", "finite coordinates")
        return self

    @property
    def face_count(self) -> int:
        return int(len(self.faces))

    def to_trimesh(self):
        import trimesh

        mesh = trimesh.Trimesh(self.vertices, self.faces, process=False)
        if self.colors is not None:
            mesh.visual.vertex_colors = self.colors
        return mesh

    @classmethod
    def from_trimesh(cls, mesh) -> "MeshArrays":
        colors = None
        visual = getattr(mesh, "visual", None)
        if visual is not None and visual.kind == "vertex":
            colors = np.asarray(visual.vertex_colors, dtype=np.uint8)
        return cls(np.asarray(mesh.vertices), np.asarray(mesh.faces), colors=colors)

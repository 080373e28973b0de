"""Where baked values come from: vertex colours, textures on the high poly, or a function of position."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
from scipy import ndimage

DEFAULT_METALLIC = 0.0
DEFAULT_ROUGHNESS = 0.8


class AttributeSource(Protocol):
    has_opacity: bool

    def sample(self, faces: np.ndarray, bary: np.ndarray, points: np.ndarray) -> dict[str, np.ndarray]:
        """base_color (k, 4) in [0, 1] (sRGB-encoded), metallic (k,), roughness (k,) at surface points.

        Values come as float32: the bake blends them in float32 and stores 8 bits, and float32's rounding
        (about 6e-8 of a value) moves a value by one level only where it lay that near a half level.
        """


def sample_texture(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup with wrapping; image rows run from v = 1 (top) to v = 0; returns (k, channels) in the
    image's float type (the texel positions are worked out in float64 whatever it is)."""
    height, width = image.shape[:2]
    x = np.mod(uv[:, 0], 1.0) * width - 0.5
    y = (1.0 - np.mod(uv[:, 1], 1.0)) * height - 0.5
    channels = image.reshape(height, width, -1)
    return np.stack([ndimage.map_coordinates(channels[..., c], [y, x], order=1, mode="grid-wrap")
                     for c in range(channels.shape[-1])], axis=1)


def _interpolate(per_vertex: np.ndarray, faces: np.ndarray, bary: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Barycentric blend of a per-vertex attribute (v,) or (v, c) at (k, 3) corner vertices, in dtype."""
    values = np.asarray(per_vertex, dtype)
    columns = values.reshape(len(values), -1)
    weights = np.asarray(bary, dtype)
    out = np.take(columns, faces[:, 0], axis=0) * weights[:, 0:1]  # take: several times faster than [] here
    out += np.take(columns, faces[:, 1], axis=0) * weights[:, 1:2]
    out += np.take(columns, faces[:, 2], axis=0) * weights[:, 2:3]
    return out if values.ndim > 1 else out[:, 0]


@dataclass
class SurfaceSource:
    """Attributes stored on the high poly: per-vertex colours and values, or textures over its UVs."""

    faces: np.ndarray
    colors: np.ndarray | None = None            # (v, 4) float in [0, 1]
    uv: np.ndarray | None = None                # (v, 2), v up
    base_texture: np.ndarray | None = None      # (h, w, 4) float in [0, 1]
    mr_texture: np.ndarray | None = None        # glTF metallicRoughness: G roughness, B metallic
    base_factor: tuple = (1.0, 1.0, 1.0, 1.0)
    metallic_factor: float = DEFAULT_METALLIC
    roughness_factor: float = DEFAULT_ROUGHNESS
    metallic_vertex: np.ndarray | None = None   # (v,)
    roughness_vertex: np.ndarray | None = None  # (v,)
    has_opacity: bool = False

    def sample(self, faces: np.ndarray, bary: np.ndarray, points: np.ndarray) -> dict[str, np.ndarray]:
        corner_faces = np.take(self.faces, faces, axis=0)
        count = len(faces)
        base = np.broadcast_to(np.asarray(self.base_factor, np.float32), (count, 4))
        # Texture coordinates stay float64: at 4096 texels float32 would move a lookup by 2e-4 of a texel.
        uv = _interpolate(self.uv, corner_faces, bary, np.float64) if self.uv is not None else None
        if self.base_texture is not None and uv is not None:
            base = base * sample_texture(np.asarray(self.base_texture, np.float32), uv)
        elif self.colors is not None:
            base = base * _interpolate(self.colors, corner_faces, bary)
        metallic = np.full(count, self.metallic_factor, np.float32)
        roughness = np.full(count, self.roughness_factor, np.float32)
        if self.metallic_vertex is not None:
            metallic = _interpolate(self.metallic_vertex, corner_faces, bary)
        if self.roughness_vertex is not None:
            roughness = _interpolate(self.roughness_vertex, corner_faces, bary)
        if self.mr_texture is not None and uv is not None:
            packed = sample_texture(np.asarray(self.mr_texture, np.float32), uv)
            roughness = roughness * packed[:, 1]
            metallic = metallic * packed[:, 2]
        return {"base_color": np.clip(base, 0, 1), "metallic": np.clip(metallic, 0, 1),
                "roughness": np.clip(roughness, 0, 1)}


@dataclass
class FieldSource:
    """Attributes as a function of position, e.g. a generator's voxel volume of PBR values."""

    field: Callable[[np.ndarray], dict[str, np.ndarray]]
    has_opacity: bool = False

    def sample(self, faces: np.ndarray, bary: np.ndarray, points: np.ndarray) -> dict[str, np.ndarray]:
        values = self.field(points)
        count = len(points)

        def channel(name: str, default: float) -> np.ndarray:
            return np.clip(np.asarray(values.get(name, np.full(count, default)), np.float32), 0, 1)

        return {"base_color": np.clip(np.asarray(values["base_color"], np.float32).reshape(count, 4), 0, 1),
                "metallic": channel("metallic", DEFAULT_METALLIC), "roughness": channel("roughness", DEFAULT_ROUGHNESS)}


def _image_array(image) -> np.ndarray | None:
    if image is None:
        return None
    return np.asarray(image.convert("RGBA"), dtype=np.float32) / np.float32(255)


def source_from_trimesh(mesh) -> SurfaceSource:
    """The attribute source a loaded high poly carries (generated GLBs and imported meshes alike)."""
    visual = mesh.visual
    faces = np.asarray(mesh.faces)
    source = SurfaceSource(faces=faces)
    attributes = getattr(mesh, "vertex_attributes", {}) or {}
    if "_METALLIC" in attributes:
        source.metallic_vertex = np.asarray(attributes["_METALLIC"], np.float32).reshape(-1)
    if "_ROUGHNESS" in attributes:
        source.roughness_vertex = np.asarray(attributes["_ROUGHNESS"], np.float32).reshape(-1)
    if visual.kind == "vertex":
        source.colors = np.asarray(visual.vertex_colors, np.float32) / np.float32(255)
    elif visual.kind == "texture" or hasattr(visual, "material"):
        material = visual.material
        if "color" in getattr(visual, "vertex_attributes", {}):
            source.colors = np.asarray(visual.vertex_attributes["color"], np.float32) / np.float32(255)
        if getattr(visual, "uv", None) is not None and len(visual.uv) == len(mesh.vertices):
            source.uv = np.asarray(visual.uv, np.float64)
        base_image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
        source.base_texture = _image_array(base_image)
        source.mr_texture = _image_array(getattr(material, "metallicRoughnessTexture", None))
        factor = getattr(material, "baseColorFactor", None)
        if factor is None:
            diffuse = getattr(material, "diffuse", None)
            factor = diffuse if diffuse is not None and source.base_texture is None and source.colors is None else None
        if factor is not None:
            factor = np.asarray(factor, np.float64)
            source.base_factor = tuple(factor / 255.0 if factor.max() > 1.0 else factor)
        if getattr(material, "metallicFactor", None) is not None:
            source.metallic_factor = float(material.metallicFactor)
        if getattr(material, "roughnessFactor", None) is not None:
            source.roughness_factor = float(material.roughnessFactor)
        elif source.mr_texture is not None:
            source.roughness_factor = 1.0  # glTF: the texture is multiplied by a factor of 1 by default
        if source.mr_texture is not None and getattr(material, "metallicFactor", None) is None:
            source.metallic_factor = 1.0
        alpha_mode = getattr(material, "alphaMode", None)
        source.has_opacity = alpha_mode in ("BLEND", "MASK")
    return source

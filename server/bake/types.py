"""What goes into a bake and what comes out, shared by the engine interface and both engines."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..schema import BAKE, plain_value
from .sources import AttributeSource

MAPS = ("normal", "base_color", "metallic", "roughness", "ao", "opacity")


@dataclass
class BakeSettings:
    """size: texels per side; max_distance: cage offset and half the ray range (m); ao_distance (m)."""

    size: int = 2048
    max_distance: float = 0.01
    ao_samples: int = 32
    ao_distance: float = 0.1
    ao_stride: int | None = None  # AO is computed every ao_stride texels and interpolated on the surface
    maps: tuple[str, ...] = MAPS
    seed: int = 0

    def validate(self) -> "BakeSettings":
        BAKE.field("texture_size").check(plain_value(self.size), "texture_size")  # the schema's rules
        BAKE.field("ao_samples").check(plain_value(self.ao_samples), "ao_samples")
        if not (self.max_distance > 0 and np.isfinite(self.max_distance)):
            raise InputError("max_distance", self.max_distance, "a positive distance in metres")
        unknown = [name for name in self.maps if name not in MAPS]
        if unknown:
            raise InputError("maps", unknown[0], f"one of {', '.join(MAPS)}")
        return self


@dataclass
class HighPoly:
    """The detailed surface: welded-or-not triangles with smooth vertex normals, and its attributes."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    source: AttributeSource


@dataclass
class BakedMaps:
    """Float maps, row 0 at the top (v = 1), already padded; `covered` marks texels inside UV charts.

    normal: tangent-space OpenGL (+Y green) unit vectors in [-1, 1]; base_color RGBA in [0, 1]
    (sRGB-encoded, as authored); metallic, roughness, ao, opacity in [0, 1].
    """

    size: int
    normal: np.ndarray
    base_color: np.ndarray
    metallic: np.ndarray
    roughness: np.ndarray
    ao: np.ndarray
    opacity: np.ndarray | None
    covered: np.ndarray
    stats: dict = field(default_factory=dict)

    def normal_rgb(self) -> np.ndarray:
        """The OpenGL normal map as uint8 RGB."""
        return np.clip(np.rint((self.normal * 0.5 + 0.5) * 255), 0, 255).astype(np.uint8)

    def base_color_rgba(self) -> np.ndarray:
        return np.clip(np.rint(self.base_color * 255), 0, 255).astype(np.uint8)


def hemisphere_directions(count: int, seed: int = 0) -> np.ndarray:
    """Cosine-weighted directions about +Z from a stratified grid (count, 3)."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(count)))
    cells = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2)[:count]
    u = (cells + rng.random(cells.shape)) / side
    radius, angle = np.sqrt(u[:, 0]), 2 * np.pi * u[:, 1]
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle), np.sqrt(1 - u[:, 0])])

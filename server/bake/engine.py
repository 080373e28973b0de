"""The bake interface every engine implements: what goes in, what maps come out, and which engine runs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ForgeError, InputError
from ..gpu import gpu_task
from ..meshdata import MeshArrays
from ..schema import BAKE, plain_value
from .sources import AttributeSource

log = logging.getLogger(__name__)
ENGINES = ("auto", "cpu", "cuda")
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


def resolve_engine(engine: str | None, argument: str = "engine") -> str:
    """'cpu' or 'cuda': 'auto' takes CUDA when this server can run it; a named engine must be available."""
    name = (engine or "auto").strip().lower()
    if name not in ENGINES:
        raise InputError(argument, engine, f"one of {', '.join(ENGINES)}")
    if name == "cpu":
        return name
    from .gpu_runtime import cuda_engine_status

    available, reason = cuda_engine_status()
    if name == "cuda" and not available:
        raise InputError(argument, engine, f"an available engine: the CUDA engine cannot run here ({reason})")
    return "cuda" if available else "cpu"


def bake_engine_report() -> list[dict]:
    """One row per engine for health: whether it can run here, and what it uses or why it cannot."""
    from .gpu_runtime import cuda_engine_status

    cuda_ok, cuda_reason = cuda_engine_status()
    return [{"name": "cpu", "available": True, "reason": "numpy UV raster and Embree rays (embreex), the reference"},
            {"name": "cuda", "available": cuda_ok,
             "reason": f"nvdiffrast and CuPy BVH kernels on {cuda_reason}" if cuda_ok else cuda_reason},
            {"name": "auto", "available": True, "reason": f"uses {'cuda' if cuda_ok else 'cpu'} here"}]


def _bake_duration(high: HighPoly, low: MeshArrays, settings: BakeSettings) -> float:
    from ..gpu import bake_seconds

    return bake_seconds(settings.size, len(high.faces), len(settings.maps))


@gpu_task(duration=_bake_duration)
def _bake_on_gpu(high: HighPoly, low: MeshArrays, settings: BakeSettings) -> BakedMaps:
    from .cuda import bake_cuda

    return bake_cuda(high, low, settings)


def bake(high: HighPoly, low: MeshArrays, settings: BakeSettings, engine: str = "auto",
         check: Callable[[], None] | None = None) -> BakedMaps:
    """Bake with the named engine; 'auto' takes CUDA when present, else the CPU reference.

    `check` (the job's cancel check) is called between the CPU engine's steps and ray batches; the CUDA engine
    takes well under a second and is checked around.
    """
    settings.validate()
    if low.uv is None or low.normals is None:
        raise InputError("low poly", "without UVs or normals", "a low poly unwrapped by the UV stage")
    from .cpu import bake_cpu

    fallback = None
    if resolve_engine(engine) == "cuda":
        try:
            return _bake_on_gpu(high, low, settings)
        except ForgeError:
            raise
        except Exception as exc:
            # The packages import but the GPU path cannot run (no prebuilt nvdiffrast plugin, no NVRTC, out of
            # memory): 'auto' bakes on the CPU and says why; a named 'cuda' reports the failure.
            if (engine or "auto").strip().lower() != "auto":
                raise
            fallback = f"{type(exc).__name__}: {str(exc)[:300]}"
            log.warning("CUDA bake failed, baking on the CPU instead: %s", fallback)
    maps = bake_cpu(high, low, settings, check)
    if fallback:
        maps.stats["cuda_fallback"] = fallback
    return maps

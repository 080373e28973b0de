"""The bake call and which engine runs it (CPU reference or CUDA); what goes in and comes out is in types.py."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import ForgeError, InputError
from ..gpu import gpu_task
from ..meshdata import MeshArrays
from .types import MAPS, BakedMaps, BakeSettings, HighPoly, hemisphere_directions  # noqa: F401 (the interface)

log = logging.getLogger(__name__)
ENGINES = ("auto", "cpu", "cuda")


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

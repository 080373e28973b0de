"""GPU discipline: ZeroGPU's @spaces.GPU with computed durations, and a quota guard that refuses early."""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from collections.abc import Callable

from .errors import ForgeError

QUOTA_TITLE = "ZeroGPU quota exceeded"
# Seconds of GPU time per unit of work, measured or taken from the models' published figures; the
# quota is charged on the requested duration, so these stay tight and carry a fixed start-up margin.
START_UP_S = 5.0
GENERATION_S = {"fast": 20.0, "balanced": 45.0, "hero": 90.0}
# Hunyuan3D-2's texture painting renders and diffuses six 2048-pixel views: not measured here.
PAINT_S = 60.0
# The CUDA bake (normal, base colour, metallic, roughness, AO) measured 0.2-0.3 s at 2048² and 0.5 s at
# 4096² warm, 1.1 s and 1.65 s in a new process, on a 1.3M-triangle high poly (bench/RESULTS.md); the
# start-up margin covers CUDA's own initialisation.
BAKE_S_PER_MEGATEXEL = 0.04
BAKE_S_PER_MILLION_TRIANGLES = 0.1
MAX_DURATION_S = 300


class QuotaExceeded(ForgeError):
    """Refused before any GPU work: the estimate does not fit in what is left of today's quota."""

    title = QUOTA_TITLE


def on_zero_gpu() -> bool:
    """True on a Hugging Face ZeroGPU Space (the spaces package is there and the Space says so)."""
    return importlib.util.find_spec("spaces") is not None and os.environ.get("SPACES_ZERO_GPU", "") != ""


def generation_seconds(quality: str, views: int = 1) -> float:
    base = GENERATION_S.get(quality, GENERATION_S["balanced"])
    return START_UP_S + base * (1.0 + 0.25 * max(0, views - 1))


def bake_seconds(size: int, high_triangles: int, maps: int = 5) -> float:
    megatexels = size * size / 1e6
    return START_UP_S + maps * megatexels * BAKE_S_PER_MEGATEXEL + high_triangles / 1e6 * BAKE_S_PER_MILLION_TRIANGLES


def requested_duration(estimate_s: float) -> int:
    """Whole seconds to ask ZeroGPU for: the estimate rounded up, never above the hard cap."""
    return int(min(MAX_DURATION_S, math.ceil(estimate_s)))


def check_quota(estimate_s: float, left_s: float, what: str) -> None:
    """Refuse a call whose requested duration does not fit today's remaining GPU seconds."""
    asked = requested_duration(estimate_s)
    if asked > left_s:
        raise QuotaExceeded(f"{QUOTA_TITLE}: {what} asks for {asked} s of GPU time and {left_s:.0f} s are left "
                            "today. Use a lighter preset, a smaller texture size, or wait for the quota to reset.")


def charged_seconds(measured: float, estimate: float | None) -> float:
    """What a call costs today's quota: ZeroGPU charges the requested duration, elsewhere the measured time."""
    if estimate is not None and on_zero_gpu():
        return float(requested_duration(estimate))
    return float(measured)


def gpu_task(duration: Callable[..., float]):
    """Mark a function that touches CUDA. On ZeroGPU it runs under @spaces.GPU with the duration that
    `duration(*args, **kwargs)` computes from the same arguments; elsewhere it runs as it is.

    Arguments and results must be picklable CPU data: ZeroGPU runs the function in another process.
    """

    def decorate(function):
        if not on_zero_gpu():
            return function
        import spaces

        def seconds(*args, **kwargs) -> int:
            return requested_duration(duration(*args, **kwargs))

        return functools.wraps(function)(spaces.GPU(duration=seconds)(function))

    return decorate

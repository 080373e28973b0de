"""Which rig model methods exist, whether each can run here and why not, and rigging a mesh with one by name."""

from __future__ import annotations

from collections.abc import Callable

from ... import gpu
from ...errors import InputError
from ..rig import RigResult
from .common import RunHooks, _never_cancelled, _no_progress
from .make_it_animatable import MakeItAnimatable
from .unirig import UniRig

METHODS = {method.name: method for method in (MakeItAnimatable(), UniRig())}
ARGUMENT = "options.method"


def report() -> list[dict]:
    """One health row per model method: name, title, available, the reason (what it uses, or what is missing),
    and the skeletons it gives."""
    rows = []
    for method in METHODS.values():
        available, reason = method.availability()
        rows.append({"name": method.name, "title": method.title, "available": available, "reason": reason,
                     "skeletons": list(method.skeletons)})
    return rows


def method_named(name):
    """The adapter for a model method's name; InputError for any other name."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in METHODS:
        raise InputError(ARGUMENT, name, f"one of {', '.join(METHODS)}")
    return METHODS[key]


def check_method(name, options=None):
    """The adapter, checked before any work: a known name, available here, its options valid."""
    method = method_named(name)
    available, reason = method.availability()
    if not available:
        raise InputError(ARGUMENT, name, f"an available rig method; {method.name} is not: {reason}")
    method.check_options(options)
    return method


def quota_estimate(name, mesh, options, left_s: float) -> float:
    """GPU seconds the method's calls will ask for; refused now (QuotaExceeded) when today's quota cannot cover them."""
    method = check_method(name, options)
    estimate = method.gpu_estimate(mesh, options)
    gpu.check_quota(estimate, left_s, f"rig with {method.name}")
    return estimate


def rig_with(method: str, mesh, options=None, *, quota_left_s: float | None = None,
             progress: Callable[[float, str], None] = _no_progress,
             check_cancelled: Callable[[], None] = _never_cancelled) -> RigResult:
    """Rig LOD0 (MeshArrays in Blender axes, metres, facing -Y) with a model method, refusing it by name when it
    cannot run here. With quota_left_s the GPU estimate is checked against it first. The result's report carries
    gpu_seconds (measured) and gpu_estimate_s (what ZeroGPU is asked for) for the quota ledger."""
    adapter = check_method(method, options)
    if quota_left_s is not None:
        quota_estimate(adapter.name, mesh, options, quota_left_s)
    return adapter.rig(mesh, options, RunHooks(progress, check_cancelled))

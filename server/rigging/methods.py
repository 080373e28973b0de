"""The rig methods a server offers, whether each can run here and why not, and which one a request means."""

from __future__ import annotations

import importlib.util

from ..errors import InputError
from . import models
from .rig import rig_options

TEMPLATE = "template"


def template_status() -> tuple[bool, str]:
    for module, package in (("robust_laplacian", "robust-laplacian"), ("embreex", "embreex")):
        if importlib.util.find_spec(module) is None:
            return False, f"{package} is not installed (pip install {package})"
    return True, "UE5 Mannequin skeleton fitted from the mesh's slices, bone-heat weights, on the CPU, no weights"


def _auto_choice(skeleton: str | None) -> str:
    """What 'auto' runs: UniRig for a generic skeleton; for the Mannequin, Make-It-Animatable where it can run
    (any pose), else the template (T- and A-poses)."""
    if skeleton == "generic":
        return "unirig"
    available, _ = models.METHODS["make_it_animatable"].availability()
    return "make_it_animatable" if available else TEMPLATE


def resolve(method: str, options: dict) -> str:
    """The method that will run for a request, checked before any work: a model method must be available here
    and take the options; the template takes no seed and only the Mannequin skeleton. InputError otherwise."""
    chosen = _auto_choice(options.get("skeleton")) if method == "auto" else method
    if chosen in models.METHODS:
        models.check_method(chosen, options)
        return chosen
    if options.get("seed") is not None:
        raise InputError("options.seed", options["seed"], "no seed with the template method (it samples nothing); "
                                                          "a seed is for make_it_animatable and unirig")
    rig_options({key: value for key, value in options.items() if key != "seed"})
    return TEMPLATE


def report() -> list[dict]:
    """One health row per method: name, available, reason (and, for the models, title and skeletons)."""
    ready, reason = template_status()
    model_rows = models.report()
    auto = _auto_choice(None)
    rows = [{"name": TEMPLATE, "available": ready, "reason": reason, "skeletons": ["ue5_mannequin"]},
            {"name": "auto", "available": ready,
             "reason": (f"uses {auto} here for the Mannequin skeleton" if ready else reason)
             + "; unirig for skeleton 'generic'"}]
    return rows + model_rows

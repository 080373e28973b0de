"""The rig methods a server offers, each with whether it can run here and why not (for health and the API)."""

from __future__ import annotations

import importlib.util

# The model methods of issue 16 (Make-It-Animatable for humanoids in any pose, UniRig for any creature) have no
# adapter in this version: they are listed so a client can see they exist and why they cannot run.
MODEL_METHODS = {
    "make_it_animatable": "no adapter in this version (Make-It-Animatable: humanoids in any pose, 52 Mixamo joints "
                          "renamed to UE5's); the template method rigs T- and A-pose humanoids without weights",
    "unirig": "no adapter in this version (UniRig: any creature, generic bone names; see vendor/unirig.toml)",
}


def template_status() -> tuple[bool, str]:
    for module, package in (("robust_laplacian", "robust-laplacian"), ("embreex", "embreex")):
        if importlib.util.find_spec(module) is None:
            return False, f"{package} is not installed (pip install {package})"
    return True, "UE5 Mannequin skeleton fitted from the mesh's slices, bone-heat weights, on the CPU, no weights"


def report() -> list[dict]:
    ready, reason = template_status()
    rows = [{"name": "template", "available": ready, "reason": reason},
            {"name": "auto", "available": ready, "reason": "uses template here" if ready else reason}]
    rows += [{"name": name, "available": False, "reason": why} for name, why in MODEL_METHODS.items()]
    return rows

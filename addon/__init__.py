"""Open3DForge Blender extension: registration only. Importing this package needs no bpy (client.py runs anywhere).

Each module named in _SUBMODULES has register() and unregister(); they are imported by register(), never at
import time, and unregistered in reverse order. Nothing here touches the network.
"""

from __future__ import annotations

import importlib

_SUBMODULES = ("preferences", "ui")


def _modules():
    return [importlib.import_module(f".{name}", __package__) for name in _SUBMODULES]


def register() -> None:
    registered = []
    try:
        for module in _modules():
            module.register()
            registered.append(module)
    except Exception:
        for module in reversed(registered):  # leave nothing half-registered behind
            module.unregister()
        raise


def unregister() -> None:
    for module in reversed(_modules()):
        module.unregister()

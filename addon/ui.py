"""Registers the add-on's scene settings, operators and panels (and removes every one of them again)."""

from . import operators, panels, properties

_MODULES = (properties, operators, panels)


def register() -> None:
    done = []
    try:
        for module in _MODULES:
            module.register()
            done.append(module)
    except Exception:
        for module in reversed(done):
            module.unregister()
        raise


def unregister() -> None:
    for module in reversed(_MODULES):
        module.unregister()

"""Which generators exist, which can run here, and why the others cannot."""

from __future__ import annotations

import importlib.util

from ..errors import InputError
from .base import Generator
from .silhouette import SilhouetteGenerator


class ModelGenerator:
    """A weight-based generator whose adapter lives in vendor/ integration; reports why it cannot run."""

    def __init__(self, name: str, title: str, module: str, package_hint: str, max_views: int):
        self.name, self.title, self.module, self.package_hint = name, title, module, package_hint
        self.max_views = max_views

    def availability(self) -> tuple[bool, str]:
        if importlib.util.find_spec(self.module) is None:
            return False, f"library '{self.module}' is not installed ({self.package_hint})"
        try:
            import torch
        except ImportError:
            return False, "PyTorch is not installed"
        if not torch.cuda.is_available():
            return False, "no CUDA GPU on this server"
        return False, "model adapter not installed on this server yet"

    def generate(self, request):
        available, reason = self.availability()
        raise InputError("generator", self.name, f"an available generator ({self.name}: {reason})")


GENERATORS: dict[str, Generator] = {
    generator.name: generator
    for generator in (
        SilhouetteGenerator(),
        ModelGenerator("trellis2", "TRELLIS.2 (Microsoft)", "trellis2", "see vendor/trellis2", 1),
        ModelGenerator("trellis", "TRELLIS image-large (+DSO)", "trellis", "see vendor/trellis", 4),
        ModelGenerator("hunyuan3d-2", "Hunyuan3D-2 / 2mv (Tencent)", "hy3dgen", "pip install hy3dgen", 4),
    )
}
DEFAULT_GENERATOR = "silhouette"


def report() -> list[dict]:
    """One row per generator: name, title, available, and the reason when it is not."""
    rows = []
    for generator in GENERATORS.values():
        available, reason = generator.availability()
        rows.append({"name": generator.name, "title": generator.title, "available": available,
                     "reason": reason, "max_views": generator.max_views})
    return rows


def choose(name: str, view_count: int, kind: str) -> Generator:
    """The generator to run: a named one that is available, or for 'auto' the best available one."""
    key = (name or "auto").strip().lower()
    if key == "auto":
        preferred = ["hunyuan3d-2", "trellis2"] if kind == "character" or view_count > 1 else ["trellis2", "hunyuan3d-2"]
        for candidate in preferred:
            generator = GENERATORS[candidate]
            if generator.availability()[0] and view_count <= generator.max_views:
                return generator
        return GENERATORS[DEFAULT_GENERATOR]
    if key not in GENERATORS:
        raise InputError("generator", name, f"one of auto, {', '.join(GENERATORS)}")
    generator = GENERATORS[key]
    available, reason = generator.availability()
    if not available:
        raise InputError("generator", name, f"an available generator; {key} is not: {reason}")
    if view_count > generator.max_views:
        raise InputError("images", f"{view_count} images", f"at most {generator.max_views} for {key}")
    return generator

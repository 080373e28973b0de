"""Which generators exist, which can run here, and why the others cannot."""

from __future__ import annotations

from ..errors import InputError
from .base import Generator
from .silhouette import SilhouetteGenerator
from .trellis import TrellisGenerator
from .trellis2 import Trellis2Generator


class MissingAdapter:
    """Stands in for an adapter module that failed to import; says why, and never runs."""

    def __init__(self, name: str, title: str, module: str, max_views: int, reason: str):
        self.name, self.title, self.module, self.max_views, self.reason = name, title, module, max_views, reason
        self.uses_gpu = True

    def availability(self) -> tuple[bool, str]:
        return False, self.reason

    def generate(self, request):
        raise InputError("generator", self.name, f"an available generator ({self.name}: {self.reason})")


def _hunyuan() -> Generator:
    # The Hunyuan3D-2 adapter is written separately; a missing or broken module must not take the registry down.
    try:
        from .hunyuan import Hunyuan3DGenerator

        return Hunyuan3DGenerator()
    except Exception as exc:  # noqa: BLE001 - any failure becomes the reason health reports
        return MissingAdapter("hunyuan3d-2", "Hunyuan3D-2 / 2mv (Tencent)", "hy3dgen", 4,
                              f"the Hunyuan3D-2 adapter could not be loaded ({type(exc).__name__}: {exc})")


GENERATORS: dict[str, Generator] = {
    generator.name: generator
    for generator in (SilhouetteGenerator(), Trellis2Generator(), TrellisGenerator(), _hunyuan())
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


def preference(view_count: int, kind: str, must_stand: bool = False) -> list[str]:
    """The order 'auto' tries: Hunyuan3D-2(mv) for characters and several views, TRELLIS for several views
    without it, TRELLIS.2 for single-view hard-surface work; TRELLIS first when the object must stand (DSO)."""
    if must_stand:
        order = ["trellis", "trellis2", "hunyuan3d-2"]
    elif view_count > 1:
        order = ["hunyuan3d-2", "trellis"]
    elif kind == "character":
        order = ["hunyuan3d-2", "trellis2", "trellis"]
    else:
        order = ["trellis2", "hunyuan3d-2", "trellis"]
    return [*order, DEFAULT_GENERATOR]


def _accepts(generator: Generator, settings: dict, view_count: int) -> bool:
    try:
        _check(generator, settings, view_count)
    except InputError:
        return False
    return True


def _check(generator: Generator, settings: dict, view_count: int) -> None:
    check = getattr(generator, "check_settings", None)
    if check is not None:
        check(settings, view_count)


def choose(name: str, view_count: int, kind: str, settings: dict | None = None) -> Generator:
    """The generator to run: a named one that is available and accepts the settings, or for 'auto' the best
    such one. Everything is checked here, before the pipeline creates an asset."""
    settings = settings or {}
    key = (name or "auto").strip().lower()
    if key == "auto":
        for candidate in preference(view_count, kind, bool(settings.get("must_stand"))):
            generator = GENERATORS[candidate]
            if view_count <= generator.max_views and generator.availability()[0] \
                    and _accepts(generator, settings, view_count):
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
    _check(generator, settings, view_count)
    return generator


SERVE_ENV = "O3F_SERVE_MODELS"
ZERO_GPU_DEFAULT = ("trellis2", "hunyuan3d-2")  # both fit ZeroGPU's offload disk; TRELLIS (v1) loads on demand


def serve_models(names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Load the named model generators now and keep them (a Space at start-up); {name: what happened}.

    An unknown name is refused; an unavailable generator is skipped with its reason, so the Space still starts.
    """
    unknown = [name for name in names if name not in GENERATORS]
    if unknown:
        raise InputError(SERVE_ENV, ",".join(unknown), f"names from {', '.join(GENERATORS)}")
    report = {}
    for name in names:
        generator = GENERATORS[name]
        available, reason = generator.availability()
        preload = getattr(generator, "preload", None)
        if preload is None:
            report[name] = "nothing to load (no weights)"
        elif not available:
            report[name] = f"not loaded: {reason}"
        else:
            try:
                report[name] = preload()
            except Exception as exc:  # noqa: BLE001 - a model that fails to load must not stop the Space
                report[name] = f"failed to load: {type(exc).__name__}: {exc}"
    return report


def served_names(environ: dict, on_zero_gpu: bool) -> list[str]:
    """O3F_SERVE_MODELS (comma-separated; empty loads none), else ZeroGPU's default, else none (lazy loading)."""
    if SERVE_ENV in environ:
        return [name.strip() for name in environ[SERVE_ENV].split(",") if name.strip()]
    return list(ZERO_GPU_DEFAULT) if on_zero_gpu else []

"""Which scene models exist, which can run here and why the others cannot, and which one a scene request gets."""

from __future__ import annotations

from ... import gpu
from ...errors import InputError
from .midi3d import Midi3DModel
from .scenegen import SceneGenModel

SCENE_MODELS = {model.name: model for model in (Midi3DModel(), SceneGenModel())}
PER_OBJECT = "per_object"  # no scene model: each object made alone by options.generator, placed by place_objects
DEFAULT_SCENE_MODEL = "auto"
CHOICES = ("auto", *SCENE_MODELS, PER_OBJECT)
# 'auto' tries MIDI-3D first: its frame follows the camera, so only scale and shift are really unknown; SceneGen
# textures its assets but its layout must be turned to the camera from the masks alone.
AUTO_ORDER = ("midi3d", "scenegen")
ARGUMENT = "options.scene_model"


def report() -> list[dict]:
    """One row per scene model for health: name, title, available, the reason when not, its object limit."""
    rows = []
    for model in SCENE_MODELS.values():
        available, reason = model.availability()
        rows.append({"name": model.name, "title": model.title, "available": available, "reason": reason,
                     "max_objects": model.max_objects})
    return rows


def _key(name) -> str:
    if name is None:
        return DEFAULT_SCENE_MODEL
    if not isinstance(name, str) or name.strip().lower() not in CHOICES:
        raise InputError(ARGUMENT, name, f"one of {', '.join(CHOICES)}")
    return name.strip().lower()


def check_scene_model(name, settings=None) -> str:
    """The scene model a request names, checked before any work: a known name, available when named, its
    options valid. Returns the normalised name ('auto' stays 'auto': the object count decides later)."""
    key = _key(name)
    if key in SCENE_MODELS:
        model = SCENE_MODELS[key]
        available, reason = model.availability()
        if not available:
            raise InputError(ARGUMENT, name, f"an available scene model; {key} is not: {reason}")
        model.check_settings(settings)
    elif settings and key == PER_OBJECT:
        raise InputError("options.scene_model_options", settings,
                         f"no options with scene_model={PER_OBJECT} (the generator's go in options.generate)")
    elif settings:
        problems = []
        for candidate in AUTO_ORDER:
            try:
                SCENE_MODELS[candidate].check_settings(settings)
                break
            except InputError as exc:
                problems.append(exc)
        else:
            raise problems[0]  # options no scene model accepts: say what the first one expected
    return key


def choose_scene_model(name, object_count: int, settings=None):
    """The scene model to run for this many objects, or None for the per-object chain. A named model that cannot
    take them is refused; 'auto' takes the first of AUTO_ORDER that is available, accepts the options and the
    count, and otherwise falls back to the per-object chain."""
    key = _key(name)
    if key == PER_OBJECT:
        return None
    if key == "auto":
        for candidate in AUTO_ORDER:
            model = SCENE_MODELS[candidate]
            if object_count > model.max_objects or not model.availability()[0]:
                continue
            try:
                model.check_settings(settings)
            except InputError:
                continue
            return model
        return None
    check_scene_model(key, settings)
    model = SCENE_MODELS[key]
    if object_count > model.max_objects:
        raise InputError("max_objects", object_count, f"at most {model.max_objects} objects for {key} "
                                                      "(the picture has more: lower max_objects)")
    return model


def quota_estimate(model, object_count: int, settings, left_s: float) -> float:
    """GPU seconds the model's call will ask for; refused now (QuotaExceeded) when today's quota cannot cover them."""
    estimate = model.gpu_estimate(object_count, settings)
    gpu.check_quota(estimate, left_s, f"scene with {model.name} ({object_count} objects)")
    return estimate

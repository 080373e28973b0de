"""Scene models: MIDI-3D and SceneGen turn the picture and its object masks into placed meshes in one pass."""

from .common import SceneModelResult, SceneRequest
from .frame import FrameFit, fit_frame, place_fitted, with_mesh
from .registry import (
    CHOICES,
    DEFAULT_SCENE_MODEL,
    PER_OBJECT,
    SCENE_MODELS,
    check_scene_model,
    choose_scene_model,
    quota_estimate,
    report,
)

__all__ = ["CHOICES", "DEFAULT_SCENE_MODEL", "PER_OBJECT", "SCENE_MODELS", "FrameFit", "SceneModelResult",
           "SceneRequest", "check_scene_model", "choose_scene_model", "fit_frame", "place_fitted", "quota_estimate",
           "report", "with_mesh"]

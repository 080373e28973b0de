"""The scene endpoint's own options (camera, object cap, background, fit), validated before any work."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..stages.background import METHODS
from .camera import DEFAULT_CAMERA_HEIGHT_M, DEFAULT_PITCH_DEG, DEFAULT_VFOV_DEG, SceneCamera
from .place import FITS
from .segment import DEFAULT_MAX_OBJECTS, check_max_objects

SCENE_KEYS = frozenset({"vfov_deg", "camera_height_m", "pitch_deg", "max_objects", "background", "fit"})


@dataclass(frozen=True)
class SceneSettings:
    """How to read one scene picture: the assumed camera, how many objects at most, and how to fit meshes.

    fit: "outline" fits each mesh's own outline to its mask (right for meshes of the object's true shape, the
    model generators'); "bounds" fits the mesh's bounding box (for the silhouette generator's inflated bodies,
    whose top and depth are not the object's).
    """

    vfov_deg: float = DEFAULT_VFOV_DEG
    camera_height_m: float = DEFAULT_CAMERA_HEIGHT_M
    pitch_deg: float = DEFAULT_PITCH_DEG
    max_objects: int = DEFAULT_MAX_OBJECTS
    background: str = "auto"
    fit: str = "outline"

    def camera(self, image_shape) -> SceneCamera:
        return SceneCamera.for_image(image_shape, vfov_deg=self.vfov_deg, camera_height_m=self.camera_height_m,
                                     pitch_deg=self.pitch_deg)


def scene_settings(options: dict, *, fit_default: str = "outline") -> SceneSettings:
    """SceneSettings from an endpoint's parsed options; keys other than SCENE_KEYS are left to the caller."""
    if not isinstance(options, dict):
        raise InputError("options", options, "a JSON object")
    values = {key: options[key] for key in SCENE_KEYS if key in options and options[key] is not None}
    values.setdefault("fit", fit_default)
    if values["fit"] not in FITS:
        raise InputError("fit", values["fit"], f"one of {', '.join(FITS)}")
    if values.get("background", "auto") not in METHODS:
        raise InputError("background", values["background"], f"one of {', '.join(METHODS)}")
    if "max_objects" in values:
        values["max_objects"] = check_max_objects(values["max_objects"])
    settings = SceneSettings(**values)
    settings.camera((64, 64))  # checks vfov_deg, camera_height_m and pitch_deg, naming the bad one
    return settings

"""What the scene models share: the request and the result, their settings checks, and the picture as they read it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import trimesh
from PIL import Image

from ...errors import InputError
from ...meshdata import MeshArrays
from ...schema import SEED, plain_value
from ..camera import SceneCamera
from ..place import PlacedObject
from ..segment import SceneSegmentation, as_rgba
from .frame import FrameFit

NEUTRAL_GREY = (180, 180, 180, 255)
SETTINGS_ARGUMENT = "options.scene_model_options"
WHITE = 255


def _no_progress(fraction: float, message: str) -> None:
    return None


def _never_cancelled() -> None:
    return None


@dataclass
class SceneRequest:
    """One picture, its segmentation and camera: what every scene model is asked to turn into placed meshes."""

    image: np.ndarray  # (H, W, 3|4) uint8: the picture segmentation was made from
    segmentation: SceneSegmentation
    camera: SceneCamera
    names: list[str] | None = None  # one per object, default Object_01 ...
    seed: int = 0
    settings: dict = field(default_factory=dict)
    snap_to_ground: bool = True
    resolve_overlaps: bool = True
    progress: Callable[[float, str], None] = _no_progress
    check_cancelled: Callable[[], None] = _never_cancelled


@dataclass
class SceneModelResult:
    """One PlacedObject per segmentation object, in its order: the mesh in metres in its own upright frame
    (origin at the bottom centre of its box, per-vertex RGBA colours) and its transform into the camera world
    (Blender axes, metres; place.PlacedObject). fit says how the model's frame was put there."""

    model: str
    placed: list[PlacedObject]
    fit: FrameFit
    info: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def gpu_seconds(self) -> float:
        return float(self.info.get("gpu_seconds", 0.0))


def checked_request(request: SceneRequest, model: str, max_objects: int) -> tuple[np.ndarray, list[str]]:
    """The picture as RGBA and the object names, after every check a model needs before any work."""
    if not isinstance(request.segmentation, SceneSegmentation):
        raise InputError("segmentation", type(request.segmentation).__name__, "a SceneSegmentation")
    if not isinstance(request.camera, SceneCamera):
        raise InputError("camera", type(request.camera).__name__, "a SceneCamera")
    rgba = as_rgba(request.image)
    count = len(request.segmentation.objects)
    if request.segmentation.foreground.shape != rgba.shape[:2]:
        raise InputError("segmentation", f"masks of {request.segmentation.foreground.shape[::-1]} pixels",
                         f"masks the size of the image ({rgba.shape[1]}x{rgba.shape[0]})")
    if (request.camera.width, request.camera.height) != (rgba.shape[1], rgba.shape[0]):
        raise InputError("camera", f"{request.camera.width}x{request.camera.height} pixels",
                         f"the image's size ({rgba.shape[1]}x{rgba.shape[0]})")
    if not 1 <= count <= max_objects:
        raise InputError("segmentation", f"{count} objects", f"1 to {max_objects} objects for {model} "
                                                               "(lower max_objects)")
    for index, obj in enumerate(request.segmentation.objects):
        if obj.mask.shape != rgba.shape[:2] or not obj.mask.any():
            raise InputError(f"segmentation.objects[{index}].mask", f"{obj.mask.shape}, {int(obj.mask.sum())} pixels",
                             "a non-empty mask the size of the image")
    SEED.check(plain_value(request.seed), "seed")
    names = list(request.names) if request.names is not None else [f"Object_{i:02d}" for i in range(1, count + 1)]
    if len(names) != count or len(set(names)) != count or not all(isinstance(n, str) and n for n in names):
        raise InputError("names", names, f"{count} different non-empty names")
    return rgba, names


def whole(settings: dict, key: str, default: int, low: int, high: int) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or int(value) != value or not low <= value <= high:
        raise InputError(f"{SETTINGS_ARGUMENT}.{key}", value, f"a whole number from {low} to {high}")
    return int(value)


def number(settings: dict, key: str, default: float, low: float, high: float) -> float:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise InputError(f"{SETTINGS_ARGUMENT}.{key}", value, f"a number from {low:g} to {high:g}")
    return float(value)


def known_keys(settings, keys: tuple[str, ...]) -> dict:
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise InputError(SETTINGS_ARGUMENT, settings, "a JSON object")
    unknown = sorted(set(settings) - set(keys))
    if unknown:
        raise InputError(f"{SETTINGS_ARGUMENT}.{unknown[0]}", settings[unknown[0]],
                         f"one of the keys {', '.join(keys)}")
    return settings


def on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the picture over a white backdrop (its transparent parts turn white)."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.round(rgba[..., :3] * alpha + WHITE * (1.0 - alpha)).astype(np.uint8)


def neutral_colours(count: int) -> np.ndarray:
    return np.tile(np.array(NEUTRAL_GREY, np.uint8), (count, 1))


def blender_mesh(vertices: np.ndarray, faces: np.ndarray, to_blender: np.ndarray,
                 colors: np.ndarray | None = None) -> MeshArrays:
    """A model's mesh turned into Blender axes by a signed axis permutation, faces outward, colours kept (grey
    when the model gives none). Units stay the model's."""
    matrix = np.asarray(to_blender, np.float64)
    vertices = np.asarray(vertices, np.float64) @ matrix.T
    faces = np.asarray(faces, np.int64)
    if np.linalg.det(matrix) < 0:  # a mirror turns the windings inside out
        faces = faces[:, ::-1]
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    if mesh.is_watertight and mesh.volume < 0:  # marching cubes winds by the sign of the field, not by outside
        faces = faces[:, ::-1]
    colours = neutral_colours(len(vertices)) if colors is None else np.asarray(colors, np.uint8)
    return MeshArrays(vertices, np.ascontiguousarray(faces), colors=colours)


def pil_rgb(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(array), "RGB")


def pil_mask(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L")

"""One picture of a scene to separate, placed objects: segment, camera, place, layout (scene.json, scene.glb)."""

from .camera import SceneCamera
from .layout import scene_glb, scene_layout, write_scene_glb, write_scene_json
from .place import PlacedObject, place_objects
from .segment import ObjectMask, SceneSegmentation, object_crop, segment_scene

__all__ = ["ObjectMask", "PlacedObject", "SceneCamera", "SceneSegmentation", "object_crop", "place_objects",
           "scene_glb", "scene_layout", "segment_scene", "write_scene_glb", "write_scene_json"]

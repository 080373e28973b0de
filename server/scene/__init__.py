"""One picture of a scene to separate, placed objects: segment, camera, place, layout (scene.json, scene.glb)."""

from .camera import SceneCamera
from .layout import scene_glb, scene_layout, write_scene_glb, write_scene_json
from .options import SCENE_KEYS, SceneSettings, scene_settings
from .package import scene_zip_name, write_scene_zip
from .place import PlacedObject, place_objects
from .segment import ObjectMask, SceneSegmentation, object_crop, segment_scene

__all__ = ["SCENE_KEYS", "ObjectMask", "PlacedObject", "SceneCamera", "SceneSegmentation", "SceneSettings",
           "object_crop", "place_objects", "scene_glb", "scene_layout", "scene_settings", "scene_zip_name",
           "segment_scene", "write_scene_glb", "write_scene_json", "write_scene_zip"]

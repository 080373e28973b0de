"""The panel's settings as a PropertyGroup on the Scene (scene.open3dforge); no job state and never a token here."""

# No `from __future__ import annotations`: Blender reads the property annotations as objects.
import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty)

from .options_schema import SCHEMA

VIEWS = (
    ("front", "Front", "Camera on -Y looking +Y"),
    ("left", "Left", "Camera on -X"),
    ("back", "Back", "Camera on +Y"),
    ("right", "Right", "Camera on +X"),
    ("top", "Top", "Camera on +Z"),
)
ENGINES = (
    ("ue5", "Unreal Engine 5", "FBX per LOD with UCX collision, DirectX normal map, ORM texture, import script"),
    ("unity", "Unity", "Exported by the server"),
    ("godot", "Godot 4", "Exported by the server"),
)
# What each choice means, where the schema's one line for the whole field says too little.
CHOICE_HELP = {
    "prop": "A static object", "character": "A figure: rigged after post-processing (see Rig Method)",
    "environment": "Scenery",
    "auto": "The best method this server can run (see Connection: health)",
    "template": "UE5 Mannequin fitted on the CPU, no model: T- and A-pose humanoids",
    "make_it_animatable": "A model: humanoids in any pose, UE5 Mannequin bones",
    "unirig": "A model: any creature, a generic skeleton of its own",
    "bottom_centre": "Pivot at the bottom centre (props)", "centre": "Pivot at the bounding-box centre",
    "fast": "TRELLIS.2 512 / Hunyuan3D-2 turbo: quickest, least GPU quota",
    "balanced": "TRELLIS.2 1024 cascade / Hunyuan3D-2 30 steps",
    "hero": "TRELLIS.2 1536 cascade / Hunyuan3D-2 50 steps at octree 384: the most detail and quota",
}


def _title(identifier) -> str:
    words = str(identifier).replace("_", " ").split()
    return " ".join(word if word.isupper() else word.capitalize() for word in words)


def _items(stage: str, name: str, exclude=()) -> tuple:
    """EnumProperty items from a schema field's choices."""
    field = SCHEMA[stage][name]
    return tuple((str(choice), _title(choice), CHOICE_HELP.get(choice, field["help"]))
                 for choice in field["choices"] if choice not in exclude)


def _int(stage: str, name: str, label: str):
    field = SCHEMA[stage][name]
    return IntProperty(name=label, default=field["default"], min=int(field["low"]), max=int(field["high"]),
                       description=field["help"])


def _bool(stage: str, name: str, label: str):
    field = SCHEMA[stage][name]
    return BoolProperty(name=label, default=field["default"], description=field["help"])


KINDS = _items("generate", "kind")
RIG_METHODS = _items("rig", "method")
# A custom pivot needs a point: the options JSON takes it.
PIVOTS = _items("postprocess", "pivot", exclude=("custom",))
TEXTURE_SIZES = tuple((str(s), str(s), f"{s} x {s} texels") for s in SCHEMA["postprocess"]["texture_size"]["choices"]
                      if 256 <= s <= 4096)
LOD_RATIOS = SCHEMA["postprocess"]["lod_ratios"]["default"]
QUALITIES = (("preset", "From Preset", "The preset's quality (balanced when it names none)"),
             *_items("generate", "quality"))


class Open3DForgeImageSlot(bpy.types.PropertyGroup):
    """One input image and the view it shows."""

    filepath: StringProperty(name="Image", subtype='FILE_PATH', default="")
    view: EnumProperty(name="View", items=VIEWS, default="front")


class Open3DForgeSettings(bpy.types.PropertyGroup):
    """What the N-panel edits; operators copy it into a plain dict before any work."""

    image_1: PointerProperty(type=Open3DForgeImageSlot)
    image_2: PointerProperty(type=Open3DForgeImageSlot)
    image_3: PointerProperty(type=Open3DForgeImageSlot)
    image_4: PointerProperty(type=Open3DForgeImageSlot)
    use_selection: BoolProperty(name="Use Selected Object", default=False,
                                description="Send the selected mesh (with its materials) instead of images")
    prompt: StringProperty(name="Prompt", default="",
                           description=("With no images: describe one object (e.g. a wooden barrel with iron "
                                        "bands); the server draws a concept picture of it, then makes the asset"))

    generator: StringProperty(name="Generator", default="auto",
                              description="auto picks the best available generator (see Connection)")
    preset: StringProperty(name="Preset", default="prop_UE5_standard")
    seed: IntProperty(name="Seed", default=0, min=0)
    asset_name: StringProperty(name="Asset Name", default="",
                               description="Engine-safe name ([A-Za-z0-9_]); empty: from the first image")
    kind: EnumProperty(name="Kind", items=KINDS, default=SCHEMA["generate"]["kind"]["default"])
    rig_method: EnumProperty(name="Rig Method", items=RIG_METHODS, default=SCHEMA["rig"]["method"]["default"],
                             description="Characters only: how the skeleton and skin weights are made")
    quality: EnumProperty(name="Quality", items=QUALITIES, default="preset",
                          description="Model generators only: detail against GPU time")
    must_stand: _bool("generate", "must_stand", "Must Stand")

    override_postprocess: BoolProperty(name="Override Preset", default=False,
                                       description="Send the values below instead of the preset's")
    target_triangles: _int("postprocess", "target_triangles", "Target Triangles")
    texture_size: EnumProperty(name="Texture Size", items=TEXTURE_SIZES,
                               default=str(SCHEMA["postprocess"]["texture_size"]["default"]),
                               description=SCHEMA["postprocess"]["texture_size"]["help"])
    lod1_ratio: FloatProperty(name="LOD1 Ratio", default=LOD_RATIOS[1], min=0.01, max=1.0,
                              description="LOD1's triangles as a share of LOD0's")
    lod2_ratio: FloatProperty(name="LOD2 Ratio", default=LOD_RATIOS[2], min=0.01, max=1.0,
                              description="LOD2's triangles as a share of LOD0's")
    collision: _bool("postprocess", "collision", "Collision Hulls")
    max_hulls: _int("postprocess", "max_hulls", "Max Hulls")
    pivot: EnumProperty(name="Pivot", items=PIVOTS, default=SCHEMA["postprocess"]["pivot"]["default"],
                        description=SCHEMA["postprocess"]["pivot"]["help"])
    real_height: FloatProperty(name="Real Height", default=0.0, min=0.0, unit='LENGTH',
                               description="Height of the finished asset; 0 keeps the preset's")

    options: StringProperty(name="Options (JSON)", default="",
                            description='Advanced: forge options per stage, e.g. {"bake": {"ao_samples": 8}}')
    engine: EnumProperty(name="Engine", items=ENGINES, default="ue5")
    output_folder: StringProperty(name="Output Folder", subtype='DIR_PATH', default="",
                                  description="Empty: the add-on preferences' output folder")
    history_index: IntProperty(default=0)


CLASSES = (Open3DForgeImageSlot, Open3DForgeSettings)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.open3dforge = PointerProperty(type=Open3DForgeSettings)


def unregister() -> None:
    if hasattr(bpy.types.Scene, "open3dforge"):
        del bpy.types.Scene.open3dforge
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

"""The panel's settings as a PropertyGroup on the Scene (scene.open3dforge); no job state and never a token here."""

# No `from __future__ import annotations`: Blender reads the property annotations as objects.
import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty)

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
KINDS = (
    ("prop", "Prop", "A static object"),
    ("character", "Character", "A figure: rigged after post-processing (see Rig Method)"),
    ("environment", "Environment", "Scenery"),
)
QUALITIES = (
    ("preset", "From Preset", "The preset's quality (balanced when it names none)"),
    ("fast", "Fast", "TRELLIS.2 512 / Hunyuan3D-2 turbo: quickest, least GPU quota"),
    ("balanced", "Balanced", "TRELLIS.2 1024 cascade / Hunyuan3D-2 30 steps"),
    ("hero", "Hero", "TRELLIS.2 1536 cascade / Hunyuan3D-2 50 steps at octree 384: the most detail and quota"),
)
PIVOTS = (
    ("bottom_centre", "Bottom Centre", "Pivot at the bottom centre (props)"),
    ("centre", "Centre", "Pivot at the bounding-box centre"),
)
RIG_METHODS = (
    ("auto", "Auto", "The best method this server can run (see Connection: health)"),
    ("template", "Template", "UE5 Mannequin fitted on the CPU, no model: T- and A-pose humanoids"),
    ("make_it_animatable", "Make-It-Animatable", "A model: humanoids in any pose, UE5 Mannequin bones"),
    ("unirig", "UniRig", "A model: any creature, a generic skeleton of its own"),
)
TEXTURE_SIZES = tuple((str(s), str(s), f"{s} x {s} texels") for s in (256, 512, 1024, 2048, 4096))


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
    kind: EnumProperty(name="Kind", items=KINDS, default="prop")
    rig_method: EnumProperty(name="Rig Method", items=RIG_METHODS, default="auto",
                             description="Characters only: how the skeleton and skin weights are made")
    quality: EnumProperty(name="Quality", items=QUALITIES, default="preset",
                          description="Model generators only: detail against GPU time")
    must_stand: BoolProperty(name="Must Stand", default=False,
                             description="TRELLIS with the DSO LoRA: shapes that stand up under gravity")

    override_postprocess: BoolProperty(name="Override Preset", default=False,
                                       description="Send the values below instead of the preset's")
    target_triangles: IntProperty(name="Target Triangles", default=10000, min=100, max=500000)
    texture_size: EnumProperty(name="Texture Size", items=TEXTURE_SIZES, default="2048")
    lod1_ratio: FloatProperty(name="LOD1 Ratio", default=0.5, min=0.01, max=1.0)
    lod2_ratio: FloatProperty(name="LOD2 Ratio", default=0.25, min=0.01, max=1.0)
    collision: BoolProperty(name="Collision Hulls", default=True)
    max_hulls: IntProperty(name="Max Hulls", default=16, min=1, max=64)
    pivot: EnumProperty(name="Pivot", items=PIVOTS, default="bottom_centre")
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

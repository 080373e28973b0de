"""Blender's FBX exporter settings for game engines: the one source (CONVENTIONS.md "Blender FBX export for UE").

Pure data, no imports, so that build_addon.py copies this file into the add-on as addon/fbx_settings.py, byte
for byte (tests/test_fbx_settings.py checks the copy): the server's FBX writer and the add-on's write the same
files. Callers add object_types and nothing else.

Axes: axis_forward='-Z', axis_up='Y' are Blender's own defaults. They do not rotate the geometry that a game
engine ends up with: they only choose the axis system the FBX file declares (Y up, right-handed, the FBX SDK's
and Maya's default), and the exporter writes each root object's transform converted into it. Unreal's importer
(legacy FBX and Interchange alike, "Convert Scene" on, "Force Front X Axis" off) converts whatever a file declares
into its own Z-up left-handed space, so Blender +X stays UE +X, +Z stays +Z, and Blender's front (-Y) becomes UE's
+Y, the way Epic's Mannequin faces. With apply_unit_scale and FBX_SCALE_ALL the metre-to-centimetre factor (100)
goes into the file's UnitScaleFactor instead of object scales: UE imports 1 Blender metre as 100 cm at scale 1.0,
and Unity (reading the same factor) as 1 m at scale 1.0. bake_space_transform stays off: transforms are applied
in the scene instead.
"""

FBX_SETTINGS = dict(
    apply_unit_scale=True,
    apply_scale_options="FBX_SCALE_ALL",
    global_scale=1.0,
    axis_forward="-Z",
    axis_up="Y",
    bake_space_transform=False,
    mesh_smooth_type="FACE",
    use_triangles=True,
    use_tspace=True,
    use_mesh_modifiers=True,
    use_mesh_edges=False,
    use_custom_props=True,
    add_leaf_bones=False,
    bake_anim=False,
    path_mode="STRIP",
    embed_textures=False,
    use_selection=True,
    use_active_collection=False,
    use_visible=False,
)

# A skeletal mesh on top of FBX_SETTINGS (CONVENTIONS.md "Skeletal meshes"), as Epic's Send to Unreal writes it:
# bones along Y, the armature written as a plain node, every bone kept (UE5's Mannequin has non-deforming ones).
SKELETAL_SETTINGS = dict(
    primary_bone_axis="Y",
    secondary_bone_axis="X",
    armature_nodetype="NULL",
    use_armature_deform_only=False,
)

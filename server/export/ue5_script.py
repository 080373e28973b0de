"""import_<Name>.py: Unreal editor Python that imports a UE5 zip's mesh, LODs and textures and builds M_<Name>.

The generated script runs inside the editor (`import unreal`): Output Log "Python" mode, or
File > Execute Python Script. It works with the legacy FBX importer (FbxImportUI) and where Interchange
handles FBX (UE 5.5+) or glTF: Interchange options go in an InterchangePipelineStackOverride, LODs are
imported as temporary meshes and copied in with set_lod_from_static_mesh (import_lod returns before the
LOD exists there). It checks every `unreal` attribute before using it, prints what it did, what it
skipped and why, and ends with a self-check that reads back LODs, triangles, collision hulls, material
and texture bindings and Nanite, logging an error for each mismatch with the manifest.

A rigged character (SKELETAL with BONES) is imported as a skeletal mesh onto the project's UE5 Mannequin
skeleton when that skeleton holds every bone under the same parent (names and reference pose read through
AnimPoseExtensions), else onto a new skeleton; a physics asset comes from the import or is made after it; the
self-check names the skeleton used or made, the bones found in it and the physics asset.

On a new skeleton the script also makes an IK Rig IK_<Name> beside the mesh (retarget root and chains: the
editor's auto-generated definition where it recognises the skeleton, UE 5.4+, else the Mannequin's chain names)
and, where the project has the Mannequin's IK Rig, an IK Retargeter RTG_<Name> from it with the chains
auto-mapped; a generic skeleton gets its retarget root only. Editors without the IK Rig Python API skip this
with a line saying so; the self-check reads back what was made, or says why nothing was.
"""

from __future__ import annotations

from ..errors import InputError
from .unreal_preamble import PREAMBLE

# The UE5 Mannequin's skeleton where the Third Person template puts it (Content/Characters/Mannequins/Meshes).
MANNEQUIN_SKELETONS = ["/Game/Characters/Mannequins/Meshes/SK_Mannequin"]
# The Mannequin's IK Rig in the same template (Content/Characters/Mannequins/Rigs): the retargeter's source.
MANNEQUIN_IK_RIGS = ["/Game/Characters/Mannequins/Rigs/IK_Mannequin"]
# Retarget chains (name, start bone, end bone) named as in Epic's IK_Mannequin, so that auto-mapping pairs each
# with the Mannequin's chain of the same name; the retarget root is the pelvis there too.
MANNEQUIN_CHAINS = [
    ("Root", "root", "root"),
    ("Spine", "spine_01", "spine_05"),
    ("Neck", "neck_01", "neck_02"),
    ("Head", "head", "head"),
    ("LeftClavicle", "clavicle_l", "clavicle_l"),
    ("LeftArm", "upperarm_l", "hand_l"),
    ("RightClavicle", "clavicle_r", "clavicle_r"),
    ("RightArm", "upperarm_r", "hand_r"),
    ("LeftLeg", "thigh_l", "ball_l"),
    ("RightLeg", "thigh_r", "ball_r"),
]
MANNEQUIN_RETARGET_ROOT = "pelvis"

BODY = r'''
import os

import unreal

REPORT = {"done": [], "skipped": [], "failed": [], "checked": [], "mismatch": []}
LOG_PREFIX = "[Open3DForge]"
BUILT = {"material_name": None, "texture_nodes": {}, "skeleton": None,  # what this run made, for the self-check
         "ik_rig": None, "ik_rig_note": None, "ik_root": None, "ik_chains": [],
         "retargeter": None, "retargeter_note": None, "retarget_source": None}


''' + PREAMBLE + r'''
def set_prop(obj, name, value, what):
    """obj.set_editor_property(name, value); a property this version lacks is reported, not fatal."""
    if value is None:
        skipped("%s.%s: this editor has no such value" % (what, name))
        return False
    try:
        obj.set_editor_property(name, value)
        return True
    except Exception as exc:  # an older or newer editor without this property
        skipped("%s.%s: %s" % (what, name, exc))
        return False


def has_prop(obj, name):
    """Whether obj has the editor property name in this editor version (renamed ones differ by version)."""
    try:
        obj.get_editor_property(name)
        return True
    except Exception:
        return False


def get_prop(obj, name, what):
    try:
        return obj.get_editor_property(name)
    except Exception as exc:
        skipped("%s.%s: %s" % (what, name, exc))
        return None


def engine_version():
    getter = lookup("SystemLibrary.get_engine_version")
    if getter is None:
        return None
    try:
        text = str(getter())
        major, minor = text.split(".")[:2]
        return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)
    except Exception:
        return None


def interchange_handles_fbx():
    """True where FBX files go through Interchange (default from UE 5.5)."""
    getter = lookup("SystemLibrary.get_console_variable_bool_value")
    if getter is not None:
        try:
            return bool(getter("Interchange.FeatureFlags.Import.FBX"))
        except Exception:
            pass
    version = engine_version()
    return bool(version and version >= (5, 5) and lookup("InterchangeGenericAssetsPipeline") is not None)


def fbx_import_ui(for_interchange, for_lod=False, skeleton=None):
    """Legacy FBX options. Where Interchange converts them, auto_generate_collision becomes Interchange's
    import_collision, which also gates UCX hulls: so it is on there (only when the file has hulls).
    Skeletal: onto `skeleton` (None: a new one), with a physics asset, the skeleton's reference pose kept."""
    ui = unreal.FbxImportUI()
    what = "FbxImportUI"
    set_prop(ui, "import_mesh", True, what)
    if SKELETAL:
        if skeleton is not None:
            set_prop(ui, "skeleton", skeleton, what)
        set_prop(ui, "create_physics_asset", bool(CREATE_PHYSICS_ASSET), what)
    set_prop(ui, "import_as_skeletal", SKELETAL, what)
    set_prop(ui, "mesh_type_to_import", lookup("FBXImportType.FBXIT_SKELETAL_MESH" if SKELETAL else "FBXImportType.FBXIT_STATIC_MESH"), what)
    set_prop(ui, "automated_import_should_detect_type", False, what)
    set_prop(ui, "import_materials", False, what)
    set_prop(ui, "import_textures", False, what)
    set_prop(ui, "import_animations", False, what)
    data_name = "skeletal_mesh_import_data" if SKELETAL else "static_mesh_import_data"
    data = get_prop(ui, data_name, what)
    if data is None:
        return ui
    what = "FbxImportUI." + data_name
    set_prop(data, "normal_import_method", lookup("FBXNormalImportMethod.FBXNIM_IMPORT_NORMALS_AND_TANGENTS"), what)
    set_prop(data, "normal_generation_method", lookup("FBXNormalGenerationMethod.MIKK_T_SPACE"), what)
    set_prop(data, "convert_scene", True, what)
    set_prop(data, "convert_scene_unit", True, what)
    set_prop(data, "force_front_x_axis", False, what)
    set_prop(data, "import_uniform_scale", 1.0, what)
    if SKELETAL:
        set_prop(data, "update_skeleton_reference_pose", False, what)
        set_prop(data, "use_t0_as_ref_pose", False, what)
        set_prop(data, "import_morph_targets", False, what)
    if not SKELETAL:
        set_prop(data, "combine_meshes", True, what)
        set_prop(data, "one_convex_hull_per_ucx", True, what)
        set_prop(data, "auto_generate_collision", bool(for_interchange and HULL_COUNT > 0 and not for_lod), what)
        set_prop(data, "generate_lightmap_u_vs", True, what)
        set_prop(data, "import_mesh_lods", False, what)
    return ui


def goes_through_interchange(filename):
    """True where this file is imported by Interchange: FBX from UE 5.5 (or where the project turned it on),
    glTF/GLB wherever the Interchange pipeline classes exist (UE 5.3+)."""
    if filename.lower().endswith(".fbx"):
        return interchange_handles_fbx()
    return lookup("InterchangeGenericAssetsPipeline") is not None


def interchange_pipeline(for_lod=False, skeleton=None):
    """Interchange options (UE 5.5+ FBX, and glTF): the same choices as fbx_import_ui. for_lod: a LOD file
    imported as its own temporary mesh (no collision, no Nanite: its geometry is copied into the main mesh)."""
    pipeline = unreal.InterchangeGenericAssetsPipeline()
    if SKELETAL:
        shared = get_prop(pipeline, "common_skeletal_meshes_and_animations_properties", "InterchangeGenericAssetsPipeline")
        if shared is not None:
            what = "common_skeletal_meshes_and_animations_properties"
            if skeleton is not None:
                set_prop(shared, "skeleton", skeleton, what)
            set_prop(shared, "import_only_animations", False, what)
            set_prop(shared, "use_t0_as_ref_pose", False, what)
            if has_prop(shared, "try_auto_select_skeleton"):
                set_prop(shared, "try_auto_select_skeleton", False, what)  # only the skeleton chosen here
    common = get_prop(pipeline, "common_meshes_properties", "InterchangeGenericAssetsPipeline")
    if common is not None:
        what = "common_meshes_properties"
        set_prop(common, "recompute_normals", False, what)
        set_prop(common, "recompute_tangents", False, what)
        set_prop(common, "use_mikk_t_space", True, what)
        set_prop(common, "import_lods", False, what)
    meshes = get_prop(pipeline, "mesh_pipeline", "InterchangeGenericAssetsPipeline")
    if meshes is not None:
        what = "mesh_pipeline"
        hulls = HULL_COUNT > 0 and not for_lod
        set_prop(meshes, "import_static_meshes", not SKELETAL, what)
        set_prop(meshes, "import_skeletal_meshes", SKELETAL, what)
        set_prop(meshes, "combine_static_meshes", True, what)
        # UE 5.5 renamed import_collision (bImportCollision) to collision (bCollision).
        set_prop(meshes, "collision" if has_prop(meshes, "collision") else "import_collision", hulls, what)
        if hulls:
            set_prop(meshes, "import_collision_according_to_mesh_name", True, what)
            set_prop(meshes, "one_convex_hull_per_ucx", True, what)
        set_prop(meshes, "build_nanite", bool(NANITE and not for_lod), what)
        set_prop(meshes, "generate_lightmap_u_vs", True, what)
        if SKELETAL:
            set_prop(meshes, "create_physics_asset", bool(CREATE_PHYSICS_ASSET), what)
    materials = get_prop(pipeline, "material_pipeline", "InterchangeGenericAssetsPipeline")
    if materials is not None:
        # InterchangeMaterialImportOption only has IMPORT_AS_MATERIALS / IMPORT_AS_MATERIAL_INSTANCES:
        # "no materials" is the import_materials boolean.
        if has_prop(materials, "import_materials"):
            set_prop(materials, "import_materials", False, "material_pipeline")
        else:
            skipped("material_pipeline.import_materials: not in this editor; Interchange may create materials")
        textures = get_prop(materials, "texture_pipeline", "material_pipeline")
        if textures is not None:
            set_prop(textures, "import_textures", False, "texture_pipeline")
    animations = get_prop(pipeline, "animation_pipeline", "InterchangeGenericAssetsPipeline")
    if animations is not None:
        set_prop(animations, "import_animations", False, "animation_pipeline")
    return pipeline_stack(pipeline)


def pipeline_stack(pipeline):
    """AssetImportTask.options only takes Interchange pipelines inside an InterchangePipelineStackOverride;
    anything else there and the project's default stack runs instead."""
    cls = lookup("InterchangePipelineStackOverride")
    if cls is None:
        failed("InterchangePipelineStackOverride: not in this editor; the project's default Interchange stack "
               "runs instead of these options (materials and collision may differ)")
        return None
    stack = cls()
    if hasattr(stack, "add_pipeline"):
        stack.add_pipeline(pipeline)
    elif not set_prop(stack, "override_pipelines", [pipeline], "InterchangePipelineStackOverride"):
        failed("InterchangePipelineStackOverride: could not add the pipeline; the default stack runs")
        return None
    return stack


def mesh_options(filename, for_lod=False, skeleton=None):
    through_interchange = goes_through_interchange(filename)
    if filename.lower().endswith(".fbx"):
        if through_interchange and lookup("InterchangeGenericAssetsPipeline") is not None:
            if not for_lod:
                done("FBX goes through Interchange here: Interchange pipeline stack override (UCX collision by "
                     "name, no materials)")
            return interchange_pipeline(for_lod, skeleton)
        if lookup("FbxImportUI") is None:
            skipped("FbxImportUI: not in this editor; importing %s with the editor's default options" % filename)
            return None
        if not for_lod:
            if through_interchange:
                done("FBX goes through Interchange, which converts the legacy FbxImportUI options")
            else:
                done("legacy FBX importer with FbxImportUI options")
        return fbx_import_ui(through_interchange, for_lod, skeleton)
    if through_interchange:
        return interchange_pipeline(for_lod, skeleton)
    skipped("no Interchange pipeline class: importing %s with the editor's default options" % filename)
    return None


def import_file(filename, options=None, destination=None):
    """Run one AssetImportTask; returns the imported objects (possibly empty)."""
    destination = destination or DESTINATION
    path = os.path.join(source_dir(), filename)
    if not os.path.isfile(path):
        failed("%s: file not found at %s" % (filename, path))
        return []
    task = unreal.AssetImportTask()
    set_prop(task, "filename", path, "AssetImportTask")
    set_prop(task, "destination_path", destination, "AssetImportTask")
    set_prop(task, "automated", True, "AssetImportTask")
    set_prop(task, "replace_existing", True, "AssetImportTask")
    set_prop(task, "save", True, "AssetImportTask")
    if options is not None:
        set_prop(task, "options", options, "AssetImportTask")
    unreal.AssetToolsHelpers.get_asset_tools().import_asset_tasks([task])
    objects = []
    if hasattr(task, "get_objects"):
        try:
            objects = list(task.get_objects() or [])
        except Exception:
            objects = []
    if not objects:
        for object_path in list(get_prop(task, "imported_object_paths", "AssetImportTask") or []):
            loaded = unreal.EditorAssetLibrary.load_asset(object_path)
            if loaded is not None:
                objects.append(loaded)
    return objects


def find(objects, class_name, asset_name, destination=None):
    cls = lookup(class_name)
    for obj in objects:
        if cls is not None and isinstance(obj, cls):
            return obj
    path = "%s/%s" % (destination or DESTINATION, asset_name)
    if lookup("EditorAssetLibrary.does_asset_exist") is not None and unreal.EditorAssetLibrary.does_asset_exist(path):
        obj = unreal.EditorAssetLibrary.load_asset(path)
        if obj is not None and (cls is None or isinstance(obj, cls)):
            return obj
    return None


def save(asset):
    if asset is not None and lookup("EditorAssetLibrary.save_loaded_asset") is not None:
        unreal.EditorAssetLibrary.save_loaded_asset(asset)


def import_mesh():
    filename = MESH_FILES[0]
    if SKELETAL:
        return import_skeletal_mesh(filename)
    objects = import_file(filename, mesh_options(filename))
    mesh = find(objects, "StaticMesh", MESH_ASSET)
    if mesh is None:
        failed("%s: no static mesh came out of the import" % filename)
        return None
    done("imported %s as %s/%s (%d convex hull(s) in the file)" % (filename, DESTINATION, MESH_ASSET, HULL_COUNT))
    return mesh


def import_skeletal_mesh(filename):
    """Onto the project's Mannequin skeleton when its bones match ours, else with a skeleton of its own."""
    skeleton = matching_skeleton()
    objects = import_file(filename, mesh_options(filename, skeleton=skeleton))
    mesh = find(objects, "SkeletalMesh", MESH_ASSET)
    if mesh is None and skeleton is not None:
        skipped("%s: no skeletal mesh came out of the import onto %s (the editor would not merge the bones): "
                "importing again with a skeleton of its own" % (filename, BUILT["skeleton"]))
        BUILT["skeleton"] = None
        objects = import_file(filename, mesh_options(filename))
        mesh = find(objects, "SkeletalMesh", MESH_ASSET)
    if mesh is None:
        failed("%s: no skeletal mesh came out of the import" % filename)
        return None
    done("imported %s as %s/%s, a skeletal mesh %s" % (
        filename, DESTINATION, MESH_ASSET, "on " + BUILT["skeleton"] if BUILT["skeleton"] else "with a new skeleton"))
    ensure_physics_asset(mesh)
    return mesh


def skeleton_bones(skeleton):
    """(bone names, reference pose) of a Skeleton asset, read through AnimPoseExtensions; (None, None) where
    this editor cannot read them."""
    poses = lookup("AnimPoseExtensions")
    if poses is None or not hasattr(poses, "get_reference_pose") or not hasattr(poses, "get_bone_names"):
        return None, None
    try:
        pose = poses.get_reference_pose(skeleton)
        return [str(name) for name in poses.get_bone_names(pose)], pose
    except Exception as exc:
        skipped("skeleton %s: bone names not readable (%s)" % (skeleton.get_name(), exc))
        return None, None


def parents_that_differ(pose):
    """Our bones whose parent in the skeleton is not ours (None where the reference pose is not readable).

    A bone's world reference transform relative to its parent's is its local one: the check holds for the
    right parent and fails for another bone unless both sit at the same place and turn."""
    poses = unreal.AnimPoseExtensions
    local, world = lookup("AnimPoseSpaces.LOCAL"), lookup("AnimPoseSpaces.WORLD")
    if local is None or world is None or not hasattr(poses, "get_ref_bone_pose") \
            or not hasattr(poses, "get_ref_pose_relative_transform"):
        return None
    wrong = []
    try:
        for bone, parent in zip(BONES, BONE_PARENTS):
            own = poses.get_ref_bone_pose(pose, bone, local)
            seen = poses.get_ref_bone_pose(pose, bone, world) if parent is None else \
                poses.get_ref_pose_relative_transform(pose, bone, parent, world)
            if not same_transform(own, seen):
                wrong.append("%s (ours under %s)" % (bone, parent))
    except Exception as exc:
        skipped("skeleton hierarchy not readable (%s)" % exc)
        return None
    return wrong


def same_transform(a, b, location_tolerance=0.01, rotation_tolerance=0.0001):
    """Transforms equal within tolerances (cm; quaternion components, either sign of the quaternion)."""
    ta, tb, qa, qb = a.translation, b.translation, a.rotation, b.rotation
    if max(abs(ta.x - tb.x), abs(ta.y - tb.y), abs(ta.z - tb.z)) > location_tolerance:
        return False
    same = max(abs(qa.x - qb.x), abs(qa.y - qb.y), abs(qa.z - qb.z), abs(qa.w - qb.w))
    flipped = max(abs(qa.x + qb.x), abs(qa.y + qb.y), abs(qa.z + qb.z), abs(qa.w + qb.w))
    return min(same, flipped) <= rotation_tolerance


def matching_skeleton():
    """The first Skeleton of MANNEQUIN_SKELETONS that holds every bone of ours under the same parent, else None.

    Checked before the import: a mesh the editor cannot merge into the skeleton makes the legacy FBX importer
    ask (in a dialog) to rebuild that skeleton's bone tree from the mesh."""
    if not BONES:
        skipped("skeleton: this script lists no bones, so the import makes a new skeleton")
        return None
    assets = unreal.EditorAssetLibrary
    cls = lookup("Skeleton")
    for path in MANNEQUIN_SKELETONS:
        if not assets.does_asset_exist(path):
            continue
        skeleton = assets.load_asset(path)
        if skeleton is None or (cls is not None and not isinstance(skeleton, cls)):
            skipped("skeleton %s: not a Skeleton asset" % path)
            continue
        names, pose = skeleton_bones(skeleton)
        if names is None:
            skipped("skeleton %s: this editor cannot list its bones (no AnimPoseExtensions.get_reference_pose / "
                    "get_bone_names): a new skeleton is made" % path)
            return None
        missing = [bone for bone in BONES if bone not in names]
        if missing:
            done("skeleton %s lacks %d of our bones (%s): a new skeleton is made"
                 % (path, len(missing), ", ".join(missing[:5])))
            continue
        wrong = parents_that_differ(pose)
        if wrong is None:
            skipped("skeleton %s: bone names match, but its hierarchy is not readable here: a new skeleton is "
                    "made rather than risk a failed bone merge" % path)
            continue
        if wrong:
            done("skeleton %s has our bone names but other parents for %s: a new skeleton is made"
                 % (path, ", ".join(wrong[:5])))
            continue
        done("skeleton %s holds all %d bones with the same parents: importing onto it" % (path, len(BONES)))
        BUILT["skeleton"] = path
        return skeleton
    if not BUILT["skeleton"]:
        done("no UE5 Mannequin skeleton matches (looked at %s): the import makes %s_Skeleton"
             % (", ".join(MANNEQUIN_SKELETONS) or "nothing", MESH_ASSET))
    return None


def ensure_physics_asset(mesh):
    """The physics asset the import made, else one made now with SkeletalMeshEditorSubsystem.create_physics_asset
    (else the deprecated EditorSkeletalMeshLibrary's); says so when neither exists."""
    if physics_asset_of(mesh) is not None:
        done("%s: physics asset %s made by the import" % (MESH_ASSET, physics_asset_of(mesh).get_name()))
        return
    if not CREATE_PHYSICS_ASSET:
        skipped("%s: no physics asset (CREATE_PHYSICS_ASSET is off)" % MESH_ASSET)
        return
    makers = [("SkeletalMeshEditorSubsystem.create_physics_asset", method(lookup("SkeletalMeshEditorSubsystem"),
                                                                          "create_physics_asset")),
              ("EditorSkeletalMeshLibrary.create_physics_asset (deprecated)",
               method(lookup("EditorSkeletalMeshLibrary"), "create_physics_asset"))]
    name, made = call_first(makers, mesh)
    if made is None:
        failed("%s: the import made no physics asset and this editor could not make one (%s)"
               % (MESH_ASSET, "no create_physics_asset" if name is None else name + " returned nothing"))
        return
    if physics_asset_of(mesh) is None:
        assign = method(lookup("SkeletalMeshEditorSubsystem"), "assign_physics_asset")
        if not (assign is not None and assign(mesh, made)) and not set_prop(mesh, "physics_asset", made, MESH_ASSET):
            failed("%s: physics asset %s made but not assigned" % (MESH_ASSET, made.get_name()))
            return
    save(mesh)
    done("%s: physics asset %s made with %s" % (MESH_ASSET, made.get_name(), name))


def physics_asset_of(mesh):
    return get_prop(mesh, "physics_asset", MESH_ASSET) if has_prop(mesh, "physics_asset") else None


# ---- IK Rig and IK Retargeter: a rigged mesh on a skeleton of its own needs them to play the Mannequin's animations

IK_RIG_CLASSES = ["IKRigDefinition", "IKRigDefinitionFactory", "IKRigController"]
RETARGETER_CLASSES = ["IKRetargeter", "IKRetargetFactory", "IKRetargeterController", "RetargetSourceOrTarget",
                      "AutoMapChainType"]


def is_none_name(value):
    return value is None or str(value) in ("", "None")


def asset_path(asset):
    return asset.get_path_name().split(".")[0] if hasattr(asset, "get_path_name") else asset.get_name()


def asset_to_edit(name, class_name, factory_name):
    """DESTINATION/name: the existing asset of that class (updated in place), else a new one; None when the name
    is taken by another kind of asset or the editor would not create it."""
    path = "%s/%s" % (DESTINATION, name)
    cls = lookup(class_name)
    if unreal.EditorAssetLibrary.does_asset_exist(path):
        existing = unreal.EditorAssetLibrary.load_asset(path)
        if isinstance(existing, cls):
            done("%s exists: updating it" % path)
            return existing
        failed("%s exists and is not an %s: left as it is" % (path, class_name))
        return None
    made = unreal.AssetToolsHelpers.get_asset_tools().create_asset(name, DESTINATION, cls, lookup(factory_name)())
    if made is None:
        failed("%s: the editor did not create the %s" % (path, class_name))
    return made


def set_up_retargeting(mesh):
    """IK_<Name> beside the mesh and, where the project has the Mannequin's IK Rig, RTG_<Name> retargeting from it;
    nothing where the mesh shares the Mannequin's skeleton (it plays those animations as they are)."""
    if not SKELETAL or mesh is None:
        return
    if BUILT["skeleton"]:
        done("IK Rig / IK Retargeter: none needed, %s is on %s" % (MESH_ASSET, BUILT["skeleton"]))
        return
    missing = [name for name in IK_RIG_CLASSES if lookup(name) is None]
    if missing:
        BUILT["ik_rig_note"] = "this editor lacks unreal.%s (the IK Rig plugin is off, or the editor predates it)" \
            % ", unreal.".join(missing)
        BUILT["retargeter_note"] = "no IK Rig to retarget to"
        skipped("IK_%s and RTG_%s not made: %s; make them by hand to play the Mannequin's animations"
                % (ASSET_NAME, ASSET_NAME, BUILT["ik_rig_note"]))
        return
    rig = build_ik_rig(mesh)
    if rig is not None:
        build_retargeter(rig)


def build_ik_rig(mesh):
    rig = asset_to_edit("IK_" + ASSET_NAME, "IKRigDefinition", "IKRigDefinitionFactory")
    if rig is None:
        BUILT["ik_rig_note"] = "could not be created (see above)"
        return None
    controller = unreal.IKRigController.get_controller(rig)
    if not controller.set_skeletal_mesh(mesh):
        BUILT["ik_rig_note"] = "the editor refused %s as its mesh" % MESH_ASSET
        failed("%s: %s" % (asset_path(rig), BUILT["ik_rig_note"]))
        return None
    define_retargeting(controller, asset_path(rig))
    save(rig)
    BUILT["ik_rig"] = asset_path(rig)
    return rig


def define_retargeting(controller, path):
    """Retarget root and chains: the editor's own definition where it recognises the skeleton (UE 5.4+), else
    IK_RETARGET_ROOT and IK_CHAINS; a generic skeleton gets its root only."""
    if GENERIC_SKELETON:
        set_retarget_root(controller, path)
        skipped("%s: a generic skeleton, retarget root %s and no retarget chains: set the chains by hand in the IK "
                "Rig editor before retargeting animations to it" % (path, IK_RETARGET_ROOT))
        return
    generate = method(controller, "apply_auto_generated_retarget_definition")
    if generate is not None and generate() and chain_names(controller):
        BUILT["ik_root"], BUILT["ik_chains"] = str(controller.get_retarget_root()), chain_names(controller)
        done("%s: the editor recognised the skeleton and generated its retarget definition (root %s, chains %s)"
             % (path, BUILT["ik_root"], ", ".join(BUILT["ik_chains"])))
        return
    why = "the editor did not recognise the skeleton" if generate else \
        "no apply_auto_generated_retarget_definition (before UE 5.4)"
    done("%s: %s: retarget chains from IK_CHAINS" % (path, why))
    set_retarget_root(controller, path)
    add_chains(controller, path)


def set_retarget_root(controller, path):
    BUILT["ik_root"] = IK_RETARGET_ROOT
    if IK_RETARGET_ROOT is None:
        skipped("%s: no retarget root (no bones listed)" % path)
        return
    controller.set_retarget_root(IK_RETARGET_ROOT)
    # set_retarget_root reports success even for a bone the rig lacks (it stores None then): read it back.
    if str(controller.get_retarget_root()) != IK_RETARGET_ROOT:
        failed("%s: retarget root %s not taken (the mesh has no such bone?)" % (path, IK_RETARGET_ROOT))


def add_chains(controller, path):
    present = chain_names(controller)
    for name, start, end in IK_CHAINS:
        if name in present:
            controller.remove_retarget_chain(name)  # a re-run replaces it; adding again would make Name_1
        if is_none_name(controller.add_retarget_chain(name, start, end, "")):
            failed("%s: retarget chain %s (%s to %s) refused" % (path, name, start, end))
        else:
            BUILT["ik_chains"].append(name)
    done("%s: retarget root %s, chains %s" % (path, IK_RETARGET_ROOT, ", ".join(BUILT["ik_chains"]) or "none"))


def chain_names(controller):
    return [str(chain.get_editor_property("chain_name")) for chain in controller.get_retarget_chains() or []]


def mannequin_ik_rig():
    """(path, IK Rig) of the first of MANNEQUIN_IK_RIGS in this project, else (None, None)."""
    for path in MANNEQUIN_IK_RIGS:
        if unreal.EditorAssetLibrary.does_asset_exist(path):
            rig = unreal.EditorAssetLibrary.load_asset(path)
            if isinstance(rig, unreal.IKRigDefinition):
                return path, rig
            skipped("%s: not an IK Rig" % path)
    return None, None


def retargeter_blocker():
    if GENERIC_SKELETON:
        return "a generic skeleton: IK_%s needs its chains set by hand first" % ASSET_NAME
    missing = [name for name in RETARGETER_CLASSES if lookup(name) is None]
    return "this editor lacks unreal.%s" % ", unreal.".join(missing) if missing else None


def build_retargeter(rig):
    """RTG_<Name>: source the Mannequin's IK Rig, target IK_<Name>, chains auto-mapped by name."""
    name = "RTG_" + ASSET_NAME
    BUILT["retargeter_note"] = retargeter_blocker()
    if BUILT["retargeter_note"]:
        skipped("%s not made: %s" % (name, BUILT["retargeter_note"]))
        return
    source_path, source = mannequin_ik_rig()
    if source is None:
        BUILT["retargeter_note"] = "no Mannequin IK Rig in this project (looked at %s; the Third Person template " \
                                   "has one)" % ", ".join(MANNEQUIN_IK_RIGS)
        skipped("%s not made: %s; IK_%s is ready for a retargeter" % (name, BUILT["retargeter_note"], ASSET_NAME))
        return
    retargeter = asset_to_edit(name, "IKRetargeter", "IKRetargetFactory")
    if retargeter is None:
        BUILT["retargeter_note"] = "could not be created (see above)"
        return
    connect_rigs(unreal.IKRetargeterController.get_controller(retargeter), source, rig)
    save(retargeter)
    BUILT["retargeter"], BUILT["retarget_source"] = asset_path(retargeter), source_path
    done("%s: from %s to %s, chains auto-mapped" % (asset_path(retargeter), source_path, asset_path(rig)))


def connect_rigs(controller, source, target):
    sides = unreal.RetargetSourceOrTarget
    controller.set_ik_rig(sides.SOURCE, source)
    controller.set_ik_rig(sides.TARGET, target)
    # UE 5.6+ retargets through a stack of ops; add_default_ops adds the basic ones (keeping any present), and
    # set_ik_rig does not hand the target rig to existing ops, so it is assigned to them.
    add_ops = method(controller, "add_default_ops")
    if add_ops is not None:
        add_ops()
    assign = method(controller, "assign_ik_rig_to_all_ops")
    if assign is not None:
        assign(sides.SOURCE, source)
        assign(sides.TARGET, target)
    # EXACT: our chains carry the Mannequin's chain names. Fuzzy matching would pair a chain the source lacks with
    # the nearest name (Neck with Root scores 0.5, above the editor's 0.2 threshold).
    controller.auto_map_chains(unreal.AutoMapChainType.EXACT, True)


def import_textures():
    """Each map with its compression and colour space (BC sRGB; N normal map, linear; ORM masks, linear)."""
    found = {}
    for role, filename in TEXTURES.items():
        objects = import_file(filename)
        stem = os.path.splitext(filename)[0]
        texture = find(objects, "Texture2D", stem)
        if texture is None:
            failed("%s: no texture came out of the import" % filename)
            continue
        compression, srgb, group = TEXTURE_SETTINGS[role]
        what = stem
        set_prop(texture, "compression_settings", lookup(compression), what)
        set_prop(texture, "srgb", srgb, what)
        if role == "normal":
            # The map is already DirectX (green = -Y): no flip here.
            set_prop(texture, "flip_green_channel", False, what)
        if group is not None and lookup(group) is not None:
            set_prop(texture, "lod_group", lookup(group), what)
        save(texture)
        done("%s: %s, sRGB %s" % (stem, compression.split(".")[-1], "on" if srgb else "off"))
        found[role] = texture
    return found


TEXTURE_SETTINGS = {
    "base_color": ("TextureCompressionSettings.TC_DEFAULT", True, None),
    "normal": ("TextureCompressionSettings.TC_NORMALMAP", False, "TextureGroup.TEXTUREGROUP_WORLD_NORMAL_MAP"),
    "orm": ("TextureCompressionSettings.TC_MASKS", False, None),
}


def material_target():
    """(name, existing plain Material or None). An existing M_<Name> that is not a plain unreal.Material
    (a material instance, say: set_editor_property / expression calls on it raise) is left alone and the
    material goes to the first free or plain-Material M_<Name>_N instead, reported as skipped."""
    assets = unreal.EditorAssetLibrary
    for attempt in range(1, 100):
        name = MATERIAL_NAME if attempt == 1 else "%s_%d" % (MATERIAL_NAME, attempt)
        path = "%s/%s" % (DESTINATION, name)
        exists = hasattr(assets, "does_asset_exist") and assets.does_asset_exist(path)
        existing = assets.load_asset(path) if exists else None
        if exists and not isinstance(existing, unreal.Material):
            continue  # a material instance or another asset type under this name
        if attempt > 1:
            skipped("material %s: %s/%s exists and is not a plain Material (left as it is); %s %s instead"
                    % (MATERIAL_NAME, DESTINATION, MATERIAL_NAME, "reusing" if exists else "building", name))
        return name, existing
    return None, None


def build_material(textures):
    """M_<Name> with TextureSample nodes: BC -> Base Color, N -> Normal, ORM R/G/B -> AO/Roughness/Metallic."""
    needed = ["MaterialEditingLibrary", "Material", "MaterialFactoryNew", "MaterialExpressionTextureSample",
              "MaterialProperty"]
    missing = [name for name in needed if lookup(name) is None]
    if missing:
        skipped("material %s: this editor lacks unreal.%s" % (MATERIAL_NAME, ", unreal.".join(missing)))
        return None
    mel = unreal.MaterialEditingLibrary
    name, material = material_target()
    if name is None:
        failed("material %s: %s/%s and M_<Name>_2..99 all exist and are not plain Materials"
               % (MATERIAL_NAME, DESTINATION, MATERIAL_NAME))
        return None
    path = "%s/%s" % (DESTINATION, name)
    if material is not None:
        if hasattr(mel, "delete_all_material_expressions"):
            mel.delete_all_material_expressions(material)
    else:
        material = unreal.AssetToolsHelpers.get_asset_tools().create_asset(
            name, DESTINATION, unreal.Material, unreal.MaterialFactoryNew())
    if material is None:
        failed("material %s: could not be created" % name)
        return None
    BUILT["material_name"] = name

    def sample(role, x, y, samplers):
        texture = textures.get(role)
        if texture is None:
            skipped("material %s: no %s texture to sample" % (name, role))
            return None
        node = mel.create_material_expression(material, unreal.MaterialExpressionTextureSample, x, y)
        set_prop(node, "texture", texture, "TextureSample " + role)
        for sampler in samplers:
            if lookup(sampler) is not None:
                set_prop(node, "sampler_type", lookup(sampler), "TextureSample " + role)
                break
        BUILT["texture_nodes"][role] = (node, texture)
        return node

    def connect(node, output, prop):
        value = lookup("MaterialProperty." + prop)
        if node is None:
            return
        if value is None:
            skipped("material %s: no MaterialProperty.%s" % (name, prop))
            return
        if mel.connect_material_property(node, output, value) is False:
            failed("material %s: %s -> %s did not connect" % (name, output, prop))
        else:
            done("material %s: %s -> %s" % (name, output, prop))

    base = sample("base_color", -600, -300, ["MaterialSamplerType.SAMPLERTYPE_COLOR"])
    connect(base, "RGB", "MP_BASE_COLOR")
    if USE_OPACITY_MASK:
        set_prop(material, "blend_mode", lookup("BlendMode.BLEND_MASKED"), name)
        connect(base, "A", "MP_OPACITY_MASK")
    normal = sample("normal", -600, 0, ["MaterialSamplerType.SAMPLERTYPE_NORMAL"])
    connect(normal, "RGB", "MP_NORMAL")
    orm = sample("orm", -600, 300, ["MaterialSamplerType.SAMPLERTYPE_MASKS", "MaterialSamplerType.SAMPLERTYPE_LINEAR_COLOR"])
    connect(orm, "R", "MP_AMBIENT_OCCLUSION")
    connect(orm, "G", "MP_ROUGHNESS")
    connect(orm, "B", "MP_METALLIC")
    if hasattr(mel, "layout_material_expressions"):
        mel.layout_material_expressions(material)
    if hasattr(mel, "recompile_material"):
        mel.recompile_material(material)
    save(material)
    done("material %s built" % path)
    return material


def assign_material(mesh, material):
    if mesh is None or material is None:
        return
    name = BUILT["material_name"] or MATERIAL_NAME
    if hasattr(mesh, "set_material"):
        mesh.set_material(0, material)
        done("%s slot 0 uses %s" % (MESH_ASSET, name))
        return
    slots = get_prop(mesh, "static_materials" if not SKELETAL else "materials", MESH_ASSET)
    if slots:
        set_prop(slots[0], "material_interface", material, MESH_ASSET + " slot 0")
        set_prop(mesh, "static_materials" if not SKELETAL else "materials", slots, MESH_ASSET)
        done("%s slot 0 uses %s" % (MESH_ASSET, name))
    else:
        skipped("%s: no material slots to assign %s to" % (MESH_ASSET, name))


def lod_importer():
    """import_lod(mesh, index, path) for the legacy FBX importer: StaticMeshEditorSubsystem (UE 5), else the
    deprecated EditorStaticMeshLibrary; skeletal: SkeletalMeshEditorSubsystem, else EditorSkeletalMeshLibrary."""
    if SKELETAL:
        found = subsystem("SkeletalMeshEditorSubsystem")
        if found is not None and hasattr(found, "import_lod"):
            return "SkeletalMeshEditorSubsystem.import_lod", found.import_lod
        library = lookup("EditorSkeletalMeshLibrary")
        if library is not None and hasattr(library, "import_lod"):
            return "EditorSkeletalMeshLibrary.import_lod (deprecated)", library.import_lod
        return None, None
    found = subsystem("StaticMeshEditorSubsystem")
    if found is not None and hasattr(found, "import_lod"):
        return "StaticMeshEditorSubsystem.import_lod", found.import_lod
    library = lookup("EditorStaticMeshLibrary")
    if library is not None and hasattr(library, "import_lod"):
        return "EditorStaticMeshLibrary.import_lod", library.import_lod
    return None, None


def lod_setter():
    """set_lod_from_static_mesh(destination, lod_index, source, source_lod_index, reuse_existing_material_slots):
    synchronous, unlike import_lod under Interchange (which returns before the LOD exists)."""
    found = subsystem("StaticMeshEditorSubsystem")
    if found is not None and hasattr(found, "set_lod_from_static_mesh"):
        return "StaticMeshEditorSubsystem.set_lod_from_static_mesh", found.set_lod_from_static_mesh
    library = lookup("EditorStaticMeshLibrary")
    if library is not None and hasattr(library, "set_lod_from_static_mesh"):
        return "EditorStaticMeshLibrary.set_lod_from_static_mesh", library.set_lod_from_static_mesh
    return None, None


LOD_FOLDER = "LODs"  # temporary LOD meshes under Interchange go to DESTINATION/LODs and are deleted afterwards


def import_lods(mesh, material=None):
    if mesh is None or len(MESH_FILES) < 2:
        return
    if not SKELETAL and goes_through_interchange(MESH_FILES[0]):
        return import_lods_as_meshes(mesh, material)
    name, importer = lod_importer()
    if importer is None:
        skipped("LOD1..LOD%d: this editor has no import_lod (%s)" % (
            len(MESH_FILES) - 1, "SkeletalMeshEditorSubsystem / EditorSkeletalMeshLibrary" if SKELETAL
            else "StaticMeshEditorSubsystem / EditorStaticMeshLibrary"))
        return
    for index, filename in enumerate(MESH_FILES[1:], start=1):
        path = os.path.join(source_dir(), filename)
        if not os.path.isfile(path):
            failed("LOD%d: file not found at %s" % (index, path))
            continue
        result = importer(mesh, index, path)
        if result is not None and result < 0:
            failed("LOD%d: %s(%s) returned %s" % (index, name, filename, result))
        else:
            done("LOD%d from %s via %s" % (index, filename, name))
    save(mesh)


def import_lods_as_meshes(mesh, material=None):
    """Interchange: each LOD file becomes a temporary static mesh in DESTINATION/LODs, its LOD0 is copied into
    the main mesh with set_lod_from_static_mesh, then the temporary asset is deleted. The temporary mesh gets
    the main material first, so reuse_existing_material_slots maps its section onto slot 0 (no extra slot)."""
    name, setter = lod_setter()
    if setter is None:
        skipped("LOD1..LOD%d: this editor has no set_lod_from_static_mesh (StaticMeshEditorSubsystem)"
                % (len(MESH_FILES) - 1))
        return
    folder = "%s/%s" % (DESTINATION, LOD_FOLDER)
    assets = unreal.EditorAssetLibrary
    for index, filename in enumerate(MESH_FILES[1:], start=1):
        path = os.path.join(source_dir(), filename)
        if not os.path.isfile(path):
            failed("LOD%d: file not found at %s" % (index, path))
            continue
        stem = os.path.splitext(filename)[0]
        source = find(import_file(filename, mesh_options(filename, for_lod=True), folder), "StaticMesh", stem, folder)
        if source is None:
            failed("LOD%d: no static mesh came out of importing %s into %s" % (index, filename, folder))
            continue
        if material is not None and hasattr(source, "set_material"):
            source.set_material(0, material)
        result = setter(mesh, index, source, 0, True)
        if result is None or result < 0:
            failed("LOD%d: %s(%s) returned %s" % (index, name, filename, result))
        elif result != index:
            failed("LOD%d: %s set LOD%d instead (is an earlier LOD missing?)" % (index, name, result))
        else:
            done("LOD%d from %s via a temporary mesh and %s" % (index, filename, name))
        if hasattr(assets, "delete_asset"):
            source_path = "%s/%s" % (folder, stem)
            try:
                assets.delete_asset(source.get_path_name() if hasattr(source, "get_path_name") else source_path)
            except Exception as exc:
                skipped("LOD%d: temporary mesh %s not deleted (%s); it can be deleted by hand" % (index, source_path, exc))
    if hasattr(assets, "does_directory_exist") and hasattr(assets, "delete_directory"):
        try:
            if assets.does_directory_exist(folder):
                assets.delete_directory(folder)
        except Exception:
            pass
    save(mesh)


def set_nanite(mesh):
    """Nanite on or off from the manifest flag (a re-import over a Nanite mesh must be able to turn it off)."""
    if SKELETAL or mesh is None:
        if NANITE:
            skipped("Nanite: only for static meshes")
        return
    settings = get_prop(mesh, "nanite_settings", MESH_ASSET)
    if settings is None:
        if NANITE:
            skipped("Nanite: this editor has no nanite_settings")
        return
    if set_prop(settings, "enabled", bool(NANITE), "nanite_settings") and set_prop(mesh, "nanite_settings", settings, MESH_ASSET):
        save(mesh)
        done("Nanite %s on %s%s" % ("enabled" if NANITE else "disabled", MESH_ASSET,
                                     " (the LOD chain stays as the fallback mesh)" if NANITE else ""))


def manifest_value(key):
    path = os.path.join(source_dir(), "manifest.json")
    if not os.path.isfile(path):
        return None
    try:
        import json
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get(key)
    except Exception:
        return None


def call_first(options, *args):
    """The first (name, result) of [(name, callable-or-None)] that exists and answers."""
    for name, function in options:
        if function is None:
            continue
        try:
            return name, function(*args)
        except Exception:
            continue
    return None, None


def method(obj, name):
    return getattr(obj, name) if obj is not None and hasattr(obj, name) else None


def expect(what, got, wanted):
    if got == wanted:
        checked("%s: %s" % (what, got))
    else:
        mismatch("%s: %s, the manifest says %s" % (what, got, wanted))


def skeletal_slot_material(mesh):
    slots = get_prop(mesh, "materials", MESH_ASSET)
    if not slots:
        return None
    return get_prop(slots[0], "material_interface", MESH_ASSET + " slot 0")


def check_skeleton(mesh):
    """Skeleton used or made, our bones in it, the physics asset."""
    skeleton = get_prop(mesh, "skeleton", MESH_ASSET) if has_prop(mesh, "skeleton") else None
    if skeleton is None:
        mismatch("%s: no skeleton readable" % MESH_ASSET)
    else:
        path = skeleton.get_path_name().split(".")[0] if hasattr(skeleton, "get_path_name") else skeleton.get_name()
        if BUILT["skeleton"]:
            expect("%s skeleton (UE5 Mannequin, used)" % MESH_ASSET, path, BUILT["skeleton"])
        elif path in MANNEQUIN_SKELETONS:
            mismatch("%s skeleton: %s, though its bones did not match ours" % (MESH_ASSET, path))
        else:
            checked("%s skeleton: %s (made by the import)" % (MESH_ASSET, path))
        names, _ = skeleton_bones(skeleton)
        if names is None:
            skipped("check: the skeleton's bones are not readable in this editor")
        elif BONES:
            missing = [bone for bone in BONES if bone not in names]
            if missing:
                mismatch("%s: %d of the manifest's %d bones missing from %s (%s)"
                         % (MESH_ASSET, len(missing), len(BONES), path, ", ".join(missing[:5])))
            else:
                checked("%s bones: all %d of the manifest in %s (%d bones)" % (MESH_ASSET, len(BONES), path, len(names)))
    physics = physics_asset_of(mesh)
    if physics is None:
        mismatch("%s: no physics asset" % MESH_ASSET)
    else:
        checked("%s physics asset: %s" % (MESH_ASSET, physics.get_name()))


def check_retargeting():
    """IK_<Name> read back (root, chains) and RTG_<Name> (its rigs, chains mapped), or why none was made."""
    if BUILT["skeleton"]:
        checked("IK Rig / IK Retargeter: none needed (%s is on %s)" % (MESH_ASSET, BUILT["skeleton"]))
        return
    if BUILT["ik_rig"] is None:
        skipped("check: IK Rig IK_%s: not made (%s)" % (ASSET_NAME, BUILT["ik_rig_note"] or "no mesh"))
    else:
        check_ik_rig(BUILT["ik_rig"])
    if BUILT["retargeter"] is None:
        checked("IK Retargeter RTG_%s: not made (%s)" % (ASSET_NAME, BUILT["retargeter_note"] or "no IK Rig"))
    else:
        check_retargeter(BUILT["retargeter"])


def check_ik_rig(path):
    controller = unreal.IKRigController.get_controller(unreal.EditorAssetLibrary.load_asset(path))
    root, chains = str(controller.get_retarget_root()), chain_names(controller)
    if BUILT["ik_root"] is not None:
        expect("%s retarget root" % path, root, BUILT["ik_root"])
    missing = [name for name in BUILT["ik_chains"] if name not in chains]
    if missing:
        mismatch("%s: retarget chains %s missing" % (path, ", ".join(missing)))
    checked("IK Rig: %s (retarget root %s, %d chain(s)%s)" % (
        path, root, len(chains), ": " + ", ".join(chains) if chains else "; set them by hand"))


def check_retargeter(path):
    controller = unreal.IKRetargeterController.get_controller(unreal.EditorAssetLibrary.load_asset(path))
    sides = unreal.RetargetSourceOrTarget
    source, target = controller.get_ik_rig(sides.SOURCE), controller.get_ik_rig(sides.TARGET)
    expect("%s source IK Rig" % path, asset_path(source) if source is not None else None, BUILT["retarget_source"])
    expect("%s target IK Rig" % path, asset_path(target) if target is not None else None, BUILT["ik_rig"])
    targets = chain_names(unreal.IKRigController.get_controller(target)) if target is not None else []
    mapped = {name: str(controller.get_source_chain(name)) for name in targets}
    unmapped = [name for name, source_chain in mapped.items() if is_none_name(source_chain)]
    if targets and len(unmapped) == len(targets):
        mismatch("%s: none of the %d chains of %s is mapped to a source chain" % (path, len(targets), BUILT["ik_rig"]))
    checked("IK Retargeter: %s (%s to %s, %d of %d chains mapped%s)" % (
        path, BUILT["retarget_source"], BUILT["ik_rig"], len(targets) - len(unmapped), len(targets),
        "; unmapped: " + ", ".join(unmapped) if unmapped else ""))


def self_check(mesh, material, textures):
    """Reads back what the import made and compares it with the manifest; log_error for each mismatch."""
    if mesh is None:
        mismatch("%s: no mesh to check" % MESH_ASSET)
        return
    sm_subsystem = subsystem("SkeletalMeshEditorSubsystem" if SKELETAL else "StaticMeshEditorSubsystem")
    _, lod_count = call_first([("subsystem", method(sm_subsystem, "get_lod_count"))], mesh)
    if lod_count is None and method(mesh, "get_num_lods") is not None:
        _, lod_count = call_first([("mesh", mesh.get_num_lods)])
    if lod_count is None:
        skipped("check: LOD count not readable in this editor")
    else:
        expect("%s LOD count" % MESH_ASSET, lod_count, len(MESH_FILES))
    triangles = list(LOD_TRIANGLES or manifest_value("lod_triangles") or [])
    counter = method(mesh, "get_num_triangles")
    if not SKELETAL and triangles and counter is not None and lod_count is not None:
        for index, wanted in enumerate(triangles[:lod_count]):
            try:
                got = counter(index)
            except Exception as exc:
                skipped("check: LOD%d triangles not readable (%s)" % (index, exc))
                continue
            if abs(got - wanted) <= TRIANGLE_TOLERANCE * max(wanted, 1):
                checked("%s LOD%d: %d triangles (manifest %d)" % (MESH_ASSET, index, got, wanted))
            else:
                mismatch("%s LOD%d: %d triangles, the manifest says %d" % (MESH_ASSET, index, got, wanted))
    elif not SKELETAL:
        skipped("check: triangles per LOD not compared (%s)" % (
            "no lod_triangles in manifest.json" if not triangles else "get_num_triangles not in this editor"))
    if not SKELETAL:
        name, hulls = call_first([("convex", method(sm_subsystem, "get_convex_collision_count")),
                                  ("simple", method(sm_subsystem, "get_simple_collision_count"))], mesh)
        if hulls is None:
            body = get_prop(mesh, "body_setup", MESH_ASSET) if has_prop(mesh, "body_setup") else None
            geometry = get_prop(body, "agg_geom", "body_setup") if body is not None else None
            elems = get_prop(geometry, "convex_elems", "agg_geom") if geometry is not None else None
            hulls, name = (len(elems), "body setup convex") if elems is not None else (None, None)
        if hulls is None:
            skipped("check: collision hull count not readable in this editor")
        else:
            expect("%s %s collision hulls" % (MESH_ASSET, name), hulls, HULL_COUNT)
        settings = get_prop(mesh, "nanite_settings", MESH_ASSET) if has_prop(mesh, "nanite_settings") else None
        if settings is not None and has_prop(settings, "enabled"):
            expect("%s Nanite" % MESH_ASSET, bool(settings.get_editor_property("enabled")), bool(NANITE))
    if SKELETAL:
        check_skeleton(mesh)
        try:
            check_retargeting()
        except Exception as exc:  # an editor whose IK API differs must not cost the rest of the report
            skipped("check: IK Rig / IK Retargeter not readable here (%s: %s)" % (type(exc).__name__, exc))
    material_name = BUILT["material_name"]
    if material is None:
        mismatch("material %s: not built" % MATERIAL_NAME)
    else:
        getter = method(mesh, "get_material")
        if getter is not None or SKELETAL:
            bound = skeletal_slot_material(mesh) if SKELETAL else None
            try:
                bound = getter(0) if getter is not None else bound
            except Exception:
                bound = None
            slots = method(sm_subsystem, "get_number_materials")
            if slots is not None and not SKELETAL:
                _, count = call_first([("subsystem", slots)], mesh)
                if count is not None:
                    expect("%s material slots" % MESH_ASSET, count, 1)
            expect("%s slot 0 material" % MESH_ASSET, getattr(bound, "get_name", lambda: None)() if bound is not None
                   else None, material.get_name() if hasattr(material, "get_name") else material_name)
        used = method(lookup("MaterialEditingLibrary"), "get_used_textures")
        used_names = None
        if used is not None:
            try:
                used_names = sorted(t.get_name() for t in used(material))
            except Exception:
                used_names = None
        for role, filename in TEXTURES.items():
            stem = os.path.splitext(filename)[0]
            node, texture = BUILT["texture_nodes"].get(role, (None, None))
            bound = get_prop(node, "texture", "TextureSample " + role) if node is not None else None
            expect("material %s %s sample" % (material_name, role),
                   bound.get_name() if bound is not None and hasattr(bound, "get_name") else None, stem)
            if used_names is not None and stem not in used_names:
                mismatch("material %s does not use %s (get_used_textures: %s)" % (material_name, stem, used_names))
            texture = textures.get(role)
            if texture is not None:
                compression, srgb, _ = TEXTURE_SETTINGS[role]
                expect("%s compression" % stem, get_prop(texture, "compression_settings", stem), lookup(compression))
                expect("%s sRGB" % stem, bool(get_prop(texture, "srgb", stem)), srgb)


def main():
    missing = [name for name in ("AssetImportTask", "AssetToolsHelpers", "EditorAssetLibrary") if lookup(name) is None]
    if missing:
        failed("this editor lacks unreal.%s: is the Python Editor Script Plugin enabled?" % ", unreal.".join(missing))
        return REPORT
    version = engine_version()
    print("[Open3DForge] importing %s into %s (Unreal %s)" % (ASSET_NAME, DESTINATION,
                                                             "%d.%d" % version if version else "version unknown"))
    mesh = import_mesh()
    textures = import_textures()
    material = build_material(textures)
    assign_material(mesh, material)
    import_lods(mesh, material)
    set_nanite(mesh)
    try:
        set_up_retargeting(mesh)
    except Exception as exc:  # an optional step: whatever an editor version does here, the self-check still runs
        failed("IK Rig / IK Retargeter: stopped by %s: %s" % (type(exc).__name__, exc))
    self_check(mesh, material, textures)
    print("[Open3DForge] finished %s: %d done, %d skipped, %d failed; self-check %d ok, %d mismatch(es)"
          % (ASSET_NAME, len(REPORT["done"]), len(REPORT["skipped"]), len(REPORT["failed"]),
             len(REPORT["checked"]), len(REPORT["mismatch"])))
    for kind in ("checked", "skipped", "failed", "mismatch"):
        for message in REPORT[kind]:
            print("[Open3DForge]   %s: %s" % (kind, message))
    return REPORT


if __name__ == "__main__":
    main()
'''



def import_script(
    name: str,
    mesh_files: list[str],
    mesh_asset: str,
    textures: dict[str, str],
    material: str,
    *,
    hull_count: int = 0,
    nanite: bool = False,
    skeletal: bool = False,
    opacity_mask: bool = False,
    destination: str | None = None,
    lod_triangles: list[int] | None = None,
    bones: list[str] | None = None,
    parents: list[str | None] | None = None,
    mannequin_skeletons: list[str] | None = None,
    physics_asset: bool = True,
    generic_skeleton: bool = False,
    mannequin_ik_rigs: list[str] | None = None,
) -> str:
    """The text of import_<Name>.py. mesh_files[0] holds LOD0 (+ UCX hulls); the others are LOD1, LOD2...

    textures: role ('base_color', 'normal', 'orm') -> file name beside the script.
    lod_triangles: triangles per LOD for the script's closing self-check; left out, the script reads
    `lod_triangles` from the manifest.json beside it.
    bones, parents (skeletal): the mesh's bones, parents first, and each one's parent name (None for the
    root): the script imports onto the first of mannequin_skeletons (default MANNEQUIN_SKELETONS) that holds
    them all under the same parents, else makes a new skeleton; physics_asset: make one if the import did not.
    On a new skeleton the script makes IK_<Name> and, from the first of mannequin_ik_rigs (default
    MANNEQUIN_IK_RIGS) in the project, RTG_<Name>; generic_skeleton (a skeleton of the model's own, not the
    Mannequin's names): the IK Rig gets a retarget root only and no retargeter is made.
    """
    bones, parents = list(bones or []), list(parents or [])
    if len(parents) != len(bones) or any(p is not None and p not in bones[:i] for i, p in enumerate(parents)):
        raise InputError("parents", parents[:6], f"one parent per bone ({len(bones)}), each listed before its child")
    if bones and not skeletal:
        raise InputError("bones", bones[:4], "bones only with skeletal=True")
    if generic_skeleton and not skeletal:
        raise InputError("generic_skeleton", generic_skeleton, "a generic skeleton only with skeletal=True")
    ik_root, ik_chains = retarget_definition(bones, parents, generic_skeleton)
    ik_rigs = MANNEQUIN_IK_RIGS if mannequin_ik_rigs is None else list(mannequin_ik_rigs)
    skeletons = MANNEQUIN_SKELETONS if mannequin_skeletons is None else list(mannequin_skeletons)
    destination = destination or f"/Game/Open3DForge/{name}"
    header = [
        f'"""Import {name} into Unreal Engine 5: run in the editor (Output Log, Python; or File > Execute',
        'Python Script). Written by Open3DForge; edit the settings below if needed."""',
        "",
        "# ---- settings ----",
        f"ASSET_NAME = {name!r}",
        f"DESTINATION = {destination!r}  # content folder the assets go to",
        'SOURCE_DIR = ""  # folder of the unzipped files; empty: the folder this script is in',
        f"MESH_FILES = {list(mesh_files)!r}  # LOD0 (with UCX hulls), LOD1, LOD2...",
        f"MESH_ASSET = {mesh_asset!r}",
        f"HULL_COUNT = {int(hull_count)!r}",
        f"LOD_TRIANGLES = {[int(t) for t in (lod_triangles or [])]!r}  # for the self-check; empty: from manifest.json",
        "TRIANGLE_TOLERANCE = 0.01  # self-check: a LOD's triangle count may differ this much (degenerates removed)",
        f"TEXTURES = {dict(textures)!r}",
        f"MATERIAL_NAME = {material!r}",
        f"USE_OPACITY_MASK = {bool(opacity_mask)!r}  # base colour alpha -> Opacity Mask (masked blend mode)",
        f"NANITE = {bool(nanite)!r}",
        f"SKELETAL = {bool(skeletal)!r}",
        f"BONES = {bones!r}  # the skeletal mesh's bones, parents first",
        f"BONE_PARENTS = {parents!r}",
        f"MANNEQUIN_SKELETONS = {skeletons!r}  # Skeleton assets to import onto when they hold our bones",
        f"CREATE_PHYSICS_ASSET = {bool(physics_asset)!r}",
        f"GENERIC_SKELETON = {bool(generic_skeleton)!r}  # bones of the model's own: no retarget chains, no retargeter",
        f"IK_RETARGET_ROOT = {ik_root!r}  # IK_<Name>'s retarget root (on a skeleton of its own)",
        "IK_CHAINS = [  # (chain, start bone, end bone) where the editor does not generate them",
        *[f"    {chain!r}," for chain in ik_chains],
        "]",
        f"MANNEQUIN_IK_RIGS = {ik_rigs!r}  # the Mannequin's IK Rig: RTG_<Name> retargets from the first found",
        "# ------------------",
    ]
    text = "\n".join(header) + "\n" + BODY
    compile(text, f"import_{name}.py", "exec")  # a broken template fails here, not in the editor
    return text


def retarget_definition(bones: list[str], parents: list[str | None], generic: bool) -> tuple[str | None, list]:
    """(retarget root, chains) for IK_<Name>: the pelvis and MANNEQUIN_CHAINS whose bones the mesh has, or for a
    generic skeleton the root's first child (the root when it has none) and no chains."""
    if not bones:
        return None, []
    root = next(bone for bone, parent in zip(bones, parents) if parent is None)
    first_child = next((bone for bone, parent in zip(bones, parents) if parent == root), root)
    if generic:
        return first_child, []
    chains = [chain for chain in MANNEQUIN_CHAINS if chain[1] in bones and chain[2] in bones]
    return (MANNEQUIN_RETARGET_ROOT if MANNEQUIN_RETARGET_ROOT in bones else first_child), chains

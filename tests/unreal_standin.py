"""A strict, recording stand-in for the Unreal editor's `unreal` Python module, per engine version 5.3..5.8.

It models what import_<Name>.py meets in a real editor, so the failures of issue 12 fail tests here:

* Attributes: only what is listed below exists. `unreal.X`, `Enum.MEMBER`, `obj.method` of anything else
  raise AttributeError (so `hasattr` is False); set_editor_property / get_editor_property of a property the
  class lacks in that version raise too (the real editor raises for an unknown property name).
* FBX importer: 5.3 and 5.4 use the legacy FBX importer by default; from 5.5 Interchange imports FBX by default
  (console variable Interchange.FeatureFlags.Import.FBX). glTF/GLB go through Interchange in every modelled
  version. PNG textures import without options.
* AssetImportTask.options under Interchange: honoured only when it is an InterchangePipelineStackOverride
  holding pipelines; any other object (a bare InterchangeGenericAssetsPipeline included) is ignored and the
  project's default stack runs: materials imported, collision on, no Nanite. An FbxImportUI there is
  converted (auto_generate_collision -> collision) like the real FBX-options conversion.
  Docs: InterchangePipelineStackOverride "is used to pass override pipelines in the ImportAssetTask Options
  member" (dev.epicgames.com API/Runtime/InterchangeEngine/UInterchangePipelineStackOverrid-, 5.0-5.7);
  Python: add_pipeline(pipeline_base) (python-api/class/InterchangePipelineStackOverride, 5.7). The 5.2
  Python page lists only override_pipelines (Array[InterchangePipelineBase]) and no add_pipeline, and the 5.4
  C++ page marks the Add*Pipeline functions UFUNCTION(BlueprintCallable); the stand-in therefore gives 5.3
  only override_pipelines (taking pipeline objects) and 5.4+ add_pipeline (an assumption for 5.3).
* InterchangeGenericMeshPipeline: `import_collision` (bImportCollision) in 5.3/5.4, renamed `collision`
  (bCollision) from 5.5 (python-api/class/InterchangeGenericMeshPipeline 5.3/5.4 vs 5.5/5.7);
  import_collision_according_to_mesh_name, one_convex_hull_per_ucx, build_nanite in all.
* InterchangeMaterialImportOption has only IMPORT_AS_MATERIALS and IMPORT_AS_MATERIAL_INSTANCES
  (python-api/class/InterchangeMaterialImportOption 5.1 and 5.7; EInterchangeMaterialImportOption in
  InterchangeGenericMaterialPipeline.h); "no materials" is InterchangeGenericMaterialPipeline.import_materials
  (bool, python-api 5.1).
* StaticMeshEditorSubsystem.import_lod(mesh, lod_index, path): synchronous with the legacy importer; under
  Interchange it returns the index before the LOD exists (issue 12; the LOD is queued and never lands while
  the script runs). set_lod_from_static_mesh(destination, destination_lod_index, source, source_lod_index,
  reuse_existing_material_slots) is synchronous and returns the LOD index set, or a negative value; with
  reuse_existing_material_slots, sections are remapped onto destination slots "when they have the same
  material assigned", otherwise appended (API/Editor/StaticMeshEditor/UStaticMeshEditorSubsystem/
  SetLodFromStaticMesh, 5.3). get_lod_count, get_number_materials, get_convex_collision_count,
  get_simple_collision_count (same class, 5.3/5.4 pages).
* SkeletalMeshEditorSubsystem.import_lod / get_lod_count (API/Editor/SkeletalMeshEditor/
  USkeletalMeshEditorSubsystem/ImportLOD); EditorStaticMeshLibrary / EditorSkeletalMeshLibrary are the
  deprecated Editor Scripting Utilities ("Use the function in Static Mesh Editor Subsystem") and record as such.
* StaticMesh.get_num_lods / get_num_triangles(lod) / get_material / set_material, nanite_settings.enabled.
* A material instance (MaterialInstanceConstant) is not an unreal.Material; MaterialEditingLibrary expression
  calls on it raise.

Skeletal meshes (issue 16):

* FbxImportUI.skeleton / create_physics_asset / physics_asset (python-api/class/FbxImportUI; UFbxImportUI::
  PhysicsAsset, 5.5); FbxSkeletalMeshImportData.update_skeleton_reference_pose / use_t0_as_ref_pose /
  import_morph_targets / import_meshes_in_bone_hierarchy (python-api/class/FbxSkeletalMeshImportData).
* InterchangeGenericAssetsPipeline.common_skeletal_meshes_and_animations_properties
  (InterchangeGenericCommonSkeletalMeshesAndAnimationsProperties: skeleton, import_only_animations,
  use_t0_as_ref_pose, import_meshes_in_bone_hierarchy; convert_statics_with_morph_targets_to_skeletals from 5.3;
  add_curve_metadata_to_skeleton from 5.6; try_auto_select_skeleton (bTryAutoSelectSkeleton) on the 5.8 page
  only, so 5.8 only here). InterchangeGenericMeshPipeline.create_physics_asset / physics_asset
  (UInterchangeGenericMeshPipeline::PhysicsAsset, 5.0 and 5.4).
* A skeletal import onto a given Skeleton merges the file's bones into it when USkeleton::IsCompatibleMesh holds
  (every file bone the skeleton has must have the same parent chain up to the root: DoesParentChainMatch in
  Skeleton.cpp). When it does not, the legacy importer opens the "SkeletonFailed_BoneMerge" dialog (asking to
  rebuild the skeleton's bone tree; FbxSkeletalMeshImport.cpp) and Interchange, run from a script, fails with
  "cannot merge bone tree with the existing skeleton" (InterchangeSkeletalMeshFactory.cpp): here both make no
  mesh and record ("bone_merge_failed", importer). Without a skeleton the import makes <Mesh>_Skeleton, and with
  create_physics_asset (default on) <Mesh>_PhysicsAsset.
* AnimPoseExtensions.get_reference_pose(skeleton) / get_bone_names(pose) / get_ref_bone_pose(pose, bone, space)
  / get_ref_pose_relative_transform(pose, from, to, space) and AnimPoseSpaces LOCAL/WORLD (AnimPose.h and
  AnimPose.cpp: the relative transform is From.GetRelativeTransform(To), From * To^-1); Transform's translation
  (Vector) and rotation (Quat) properties.
* SkeletalMeshEditorSubsystem.create_physics_asset(skeletal_mesh) (python-api 5.0, 5.4; from 5.7 with
  set_to_mesh=True, lod_index=0) and assign_physics_asset(target_mesh, physics_asset) (python-api 5.4; not on
  the 5.0 page, so 5.4+ here); EditorSkeletalMeshLibrary.create_physics_asset is the deprecated one.
* SkeletalMesh editor properties materials (SkeletalMaterial: material_interface, material_slot_name),
  skeleton and physics_asset.

IK Rig plugin (issue 16: IK_<Name> and RTG_<Name>; ik_rig_plugin=False leaves all of it out, as an editor with the
plugin off or without its Python API):

* Assets made with AssetTools.create_asset(name, path, IKRigDefinition, IKRigDefinitionFactory()) and
  (..., IKRetargeter, IKRetargetFactory()) as in Epic's "Using Python to create and edit IK Rigs / IK Retargeter
  assets" examples; a factory that makes another class gives None.
* IKRigController (python-api/class/IKRigController 5.4; IKRigController.h/.cpp): classmethod
  get_controller(ik_rig_definition); set_skeletal_mesh(skeletal_mesh) -> bool (False when the rig's chains name
  bones the mesh lacks); set_retarget_root(root_bone_name) returns True even for an unknown bone and stores None;
  get_retarget_root(); add_retarget_chain(chain_name, start_bone_name, end_bone_name, goal_name) returns the
  uniquified name, or None when a bone is not in the rig's skeleton; remove_retarget_chain(chain_name);
  get_retarget_chains() -> BoneChain structs (chain_name, start_bone, end_bone, ik_goal_name). NAME_None reads as
  "None". apply_auto_generated_retarget_definition() (bool; replaces the whole definition when a known template
  matches) from 5.4: the auto-characterizer's pages exist from 5.4 (an assumption for 5.3, where none were found).
  Which skeletons Epic's templates recognise is not modelled: auto_retarget_definition says what the editor
  generates, else it recognises nothing.
* IKRetargeterController (python-api/class/IKRetargeterController 5.3, 5.4, 5.7; IKRetargeterController.h):
  get_controller(retargeter_asset), set_ik_rig(source_or_target, ik_rig), get_ik_rig(source_or_target),
  set_preview_mesh / get_preview_mesh, auto_map_chains(auto_map_type, force_remap), get_source_chain(
  target_chain_name). Up to 5.5 set_ik_rig re-maps unset chains itself (fuzzy in the older source, exact in the
  newer, IKRetargeterController.cpp: 5.3 fuzzy, 5.4/5.5 exact here). From 5.6 chains are mapped per op of an op
  stack: add_default_ops() (Pelvis Motion, FK Chains, Run IK Rig, Root Motion, Curve Remap; present ones not
  re-added), assign_ik_rig_to_all_ops(source_or_target, ik_rig), get_num_retarget_ops(), get_op_name(op_index);
  auto_map_chains and get_source_chain take an optional op_name; set_ik_rig hands only the source rig to the ops
  (the source says it does not update the ops' target IK rig). A new retargeter's op stack is empty here and
  its ops get no target rig until one is assigned (the strict reading; what a new op takes in a real editor is
  not modelled). FUZZY scores names as AutoMapChains does (1 - Levenshtein distance / summed lengths, lower
  case, best above 0.2); EXACT maps equal names (FName: case aside) and sets the rest to None.
  RetargetSourceOrTarget SOURCE/TARGET; AutoMapChainType EXACT/FUZZY/CLEAR (EAutoMapChainType).
"""

from __future__ import annotations

import re
import runpy
import sys
import types
from pathlib import Path

import numpy as np

VERSIONS = ["5.3", "5.4", "5.5", "5.6", "5.7", "5.8"]
LEGACY_FBX_VERSIONS = ["5.3", "5.4"]


class Enum:
    """An enum namespace holding only the listed members: unreal.Foo.BAR -> 'Foo.BAR'; others raise."""

    def __init__(self, name, members):
        self._name = name
        for member in members:
            setattr(self, member, f"{name}.{member}")


FACTORY_MAKES = {"MaterialFactoryNew": "Material", "IKRigDefinitionFactory": "IKRigDefinition",
                 "IKRetargetFactory": "IKRetargeter"}


def parse_version(text):
    major, minor = re.match(r"(\d+)\.(\d+)", str(text)).groups()
    return int(major), int(minor)


def default_triangles(stem):
    match = re.search(r"_LOD(\d+)$", stem)
    return 1000 >> int(match.group(1)) if match else 1000


def run_script(path: Path, unreal, monkeypatch) -> dict:
    """Run an import script as the editor's Python does, with `unreal` as its unreal module; returns its REPORT."""
    monkeypatch.setitem(sys.modules, "unreal", unreal)
    return runpy.run_path(str(path), run_name="__main__")["REPORT"]


def properties_set_on(calls, owner) -> dict:
    """{property: value} of what the script set with set_editor_property on objects of class `owner`."""
    return {c[3]: c[4] for c in calls if c[0] == "set" and c[1] == owner}


def build_unreal(version="5.3", *, interchange_fbx=None, drop=(), ucx_hulls=2, triangles=None, existing=None,
                 skeletons=None, mesh_bones=None, physics_on_import=True, ik_rig_plugin=True, ik_rigs=None,
                 auto_retarget_definition=None):
    """The stand-in for one editor version.

    interchange_fbx: FBX through Interchange (default: from 5.5). ucx_hulls: UCX hulls in the LOD0 file.
    triangles: file stem -> triangles of that file's mesh (default 1000, 500, 250 for LOD0..2).
    existing: content path -> class name of assets already in the project. drop: dotted names removed.
    skeletons: content path -> [(bone, parent or None, (x, y, z) local offset in cm), ...] Skeleton assets
    already in the project. mesh_bones: [(bone, parent or None)] of the skeletal mesh files (default one
    "root"). physics_on_import False: a skeletal import that makes no physics asset whatever it is asked.
    ik_rig_plugin False: no IK Rig classes at all. ik_rigs: content path -> (retarget root, [(chain, start, end)])
    of IK Rigs already in the project. auto_retarget_definition: (root, chains) that
    apply_auto_generated_retarget_definition applies (5.4+); None: the editor recognises no template.
    """
    ver = parse_version(version)
    if interchange_fbx is None:
        interchange_fbx = ver >= (5, 5)
    triangles = dict(triangles or {})
    calls = []
    imports = []  # what each mesh import really did (importer, stack, materials, collision, nanite)
    assets = {}
    pending_lods = []  # import_lod under Interchange: queued, never applied while the script runs
    unreal = types.ModuleType("unreal")
    unreal.calls, unreal.imports, unreal.assets, unreal.pending_lods = calls, imports, assets, pending_lods
    unreal.version = ver
    K = types.SimpleNamespace()

    class UObject:
        properties: dict = {}

        def __init__(self, *args, **kwargs):
            self._props = {k: (v() if callable(v) else v) for k, v in self.properties.items()}
            self.name = kwargs.get("name", "")
            self.path = kwargs.get("path", self.name)

        def set_editor_property(self, name, value):
            if name not in self.properties:
                raise AttributeError(f"{type(self).__name__}: failed to find property {name!r}")
            calls.append(("set", type(self).__name__, self.name, name, value))
            self._props[name] = value

        def get_editor_property(self, name):
            if name not in self.properties:
                raise AttributeError(f"{type(self).__name__}: failed to find property {name!r}")
            return self._props[name]

        def get_name(self):
            return self.name

        def get_path_name(self):
            return self.path

    def cls(name, props=(), base=UObject, **attrs):
        merged = dict(getattr(base, "properties", {}))
        merged.update(props if isinstance(props, dict) else {p: None for p in props})
        made = type(name, (base,), dict(attrs, properties=merged))
        setattr(unreal, name, made)
        return made

    # ---- legacy FBX options
    fbx_common = ["normal_import_method", "normal_generation_method", "convert_scene", "convert_scene_unit",
                  "force_front_x_axis", "import_uniform_scale"]
    cls("FbxStaticMeshImportData", fbx_common + ["combine_meshes", "one_convex_hull_per_ucx", "auto_generate_collision",
                                                 "generate_lightmap_u_vs", "import_mesh_lods", "build_nanite"])
    cls("FbxSkeletalMeshImportData", fbx_common + ["import_mesh_lods", "update_skeleton_reference_pose",
                                                   "use_t0_as_ref_pose", "import_morph_targets",
                                                   "import_meshes_in_bone_hierarchy"])
    cls("FbxImportUI", {"import_mesh": True, "import_as_skeletal": False, "mesh_type_to_import": None,
                        "automated_import_should_detect_type": True, "import_materials": True,
                        "import_textures": True, "import_animations": True, "skeleton": None,
                        "create_physics_asset": True, "physics_asset": None,
                        "static_mesh_import_data": unreal.FbxStaticMeshImportData,
                        "skeletal_mesh_import_data": unreal.FbxSkeletalMeshImportData})

    # ---- Interchange pipelines
    cls("InterchangePipelineBase")
    cls("InterchangeGenericCommonMeshesProperties", ["recompute_normals", "recompute_tangents", "use_mikk_t_space",
                                                     "import_lods"], base=unreal.InterchangePipelineBase)
    collision_name = "collision" if ver >= (5, 5) else "import_collision"
    cls("InterchangeGenericMeshPipeline", {"import_static_meshes": True, "import_skeletal_meshes": True,
                                           "combine_static_meshes": False, collision_name: True,
                                           "import_collision_according_to_mesh_name": True,
                                           "one_convex_hull_per_ucx": True, "build_nanite": False,
                                           "generate_lightmap_u_vs": True, "create_physics_asset": True,
                                           "physics_asset": None}, base=unreal.InterchangePipelineBase)
    shared_skeletal = {"skeleton": None, "import_only_animations": False, "use_t0_as_ref_pose": False,
                       "import_meshes_in_bone_hierarchy": True}
    if ver >= (5, 3):
        shared_skeletal["convert_statics_with_morph_targets_to_skeletals"] = False
    if ver >= (5, 6):
        shared_skeletal["add_curve_metadata_to_skeleton"] = True
    if ver >= (5, 8):
        shared_skeletal["try_auto_select_skeleton"] = True
    cls("InterchangeGenericCommonSkeletalMeshesAndAnimationsProperties", shared_skeletal,
        base=unreal.InterchangePipelineBase)
    cls("InterchangeGenericTexturePipeline", {"import_textures": True}, base=unreal.InterchangePipelineBase)
    cls("InterchangeGenericAnimationPipeline", {"import_animations": True}, base=unreal.InterchangePipelineBase)
    unreal.InterchangeMaterialImportOption = Enum("InterchangeMaterialImportOption",
                                                  ["IMPORT_AS_MATERIALS", "IMPORT_AS_MATERIAL_INSTANCES"])
    cls("InterchangeGenericMaterialPipeline", {
        "import_materials": True, "material_import": unreal.InterchangeMaterialImportOption.IMPORT_AS_MATERIALS,
        "parent_material": None, "texture_pipeline": unreal.InterchangeGenericTexturePipeline},
        base=unreal.InterchangePipelineBase)
    cls("InterchangeGenericAssetsPipeline", {
        "common_meshes_properties": unreal.InterchangeGenericCommonMeshesProperties,
        "common_skeletal_meshes_and_animations_properties":
            unreal.InterchangeGenericCommonSkeletalMeshesAndAnimationsProperties,
        "mesh_pipeline": unreal.InterchangeGenericMeshPipeline,
        "material_pipeline": unreal.InterchangeGenericMaterialPipeline,
        "animation_pipeline": unreal.InterchangeGenericAnimationPipeline}, base=unreal.InterchangePipelineBase)

    class InterchangePipelineStackOverride(UObject):
        properties = {"override_pipelines": list}

        def set_editor_property(self, name, value):
            if name == "override_pipelines" and ver >= (5, 4):
                # 5.4+: Array[SoftObjectPath]; a transient pipeline object has no asset path to point at.
                raise TypeError("override_pipelines takes SoftObjectPath; use add_pipeline")
            super().set_editor_property(name, value)

    if ver >= (5, 4):
        def add_pipeline(self, pipeline_base):
            if not isinstance(pipeline_base, K.InterchangePipelineBase):
                raise TypeError("add_pipeline takes an InterchangePipelineBase")
            calls.append(("add_pipeline", type(pipeline_base).__name__))
            self._props["override_pipelines"].append(pipeline_base)

        InterchangePipelineStackOverride.add_pipeline = add_pipeline
    unreal.InterchangePipelineStackOverride = InterchangePipelineStackOverride

    # ---- assets
    cls("MeshNaniteSettings", {"enabled": False})

    class StaticMesh(UObject):
        properties = {"nanite_settings": unreal.MeshNaniteSettings, "static_materials": list}

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.lods = []  # triangles per LOD
            self.hulls = 0
            self.slots = {}

        def get_num_lods(self):
            return len(self.lods)

        def get_num_triangles(self, lod_index):
            return self.lods[lod_index] if 0 <= lod_index < len(self.lods) else 0

        def get_material(self, index):
            return self.slots.get(index)

        def set_material(self, index, material):
            calls.append(("set_material", self.name, index, material.name))
            self.slots[index] = material

    unreal.StaticMesh = StaticMesh

    cls("SkeletalMaterial", {"material_interface": None, "material_slot_name": "None"})
    cls("PhysicsAsset")

    class SkeletalMesh(UObject):
        properties = {"materials": list, "skeleton": None, "physics_asset": None}

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.lods = []
            self.bones = []  # [(bone, parent)] of its reference skeleton

    unreal.SkeletalMesh = SkeletalMesh

    class Skeleton(UObject):
        """bones: [(name, parent or None, local offset (cm), local rotation matrix)], parents first."""

        def __init__(self, *args, bones=(), **kwargs):
            super().__init__(*args, **kwargs)
            self.bones = [(b[0], b[1], np.asarray(b[2], float), np.asarray(b[3], float) if len(b) > 3 else np.eye(3))
                          for b in bones]

        def parent_of(self, name):
            return next((parent for bone, parent, *_ in self.bones if bone == name), "<missing>")

        def is_compatible_mesh(self, mesh_bones):
            """USkeleton::IsCompatibleMesh with its parent-chain check (Skeleton.cpp)."""
            names = {bone for bone, *_ in self.bones}
            mesh_parent = dict(mesh_bones)
            matches = 0
            for bone, _ in mesh_bones:
                start = bone
                while start is not None and start not in names:  # a bone the skeleton lacks: its nearest parent
                    start = mesh_parent.get(start)
                if start is None:
                    return False
                matches += start == bone
                here = start
                while True:  # DoesParentChainMatch: the same parent names up to the root, both ending together
                    ours, theirs = self.parent_of(here), mesh_parent.get(here, "<missing>")
                    if ours is None or theirs is None:
                        if ours is not theirs:
                            return False
                        break
                    if ours != theirs:
                        return False
                    here = ours
            return matches > 0

        def merge(self, mesh_bones):
            """MergeBonesToBoneTree: bones the skeleton lacks are added under their parent."""
            names = {bone for bone, *_ in self.bones}
            for bone, parent in mesh_bones:
                if bone not in names:
                    self.bones.append((bone, parent, np.zeros(3), np.eye(3)))
                    names.add(bone)

    unreal.Skeleton = Skeleton

    class Transform:
        """x -> rotation @ x + translation. UE composes A * B as A first, then B; GetRelativeTransform(Other)
        is this * Other^-1."""

        def __init__(self, rotation=None, translation=(0.0, 0.0, 0.0)):
            self.matrix = np.asarray(rotation if rotation is not None else np.eye(3), float)
            self.offset = np.asarray(translation, float)

        def then(self, other):
            return Transform(other.matrix @ self.matrix, other.matrix @ self.offset + other.offset)

        def inverse(self):
            return Transform(self.matrix.T, -self.matrix.T @ self.offset)

        @property
        def translation(self):
            return types.SimpleNamespace(x=float(self.offset[0]), y=float(self.offset[1]), z=float(self.offset[2]))

        @property
        def rotation(self):
            from scipy.spatial.transform import Rotation

            x, y, z, w = Rotation.from_matrix(self.matrix).as_quat()
            return types.SimpleNamespace(x=float(x), y=float(y), z=float(z), w=float(w))

    unreal.Transform = Transform
    unreal.AnimPoseSpaces = Enum("AnimPoseSpaces", ["LOCAL", "WORLD"])

    class AnimPose:
        def __init__(self, skeleton):
            self.names = [bone for bone, *_ in skeleton.bones]
            self.local = {bone: Transform(rotation, offset) for bone, _, offset, rotation in skeleton.bones}
            self.world = {}
            for bone, parent, *_ in skeleton.bones:
                self.world[bone] = self.local[bone] if parent is None else self.local[bone].then(self.world[parent])

    unreal.AnimPose = AnimPose

    class AnimPoseExtensions:
        @staticmethod
        def get_reference_pose(skeleton):
            calls.append(("reference_pose", skeleton.name))
            return AnimPose(skeleton)

        @staticmethod
        def get_bone_names(pose):
            return list(pose.names)

        @staticmethod
        def get_ref_bone_pose(pose, bone_name, space="AnimPoseSpaces.LOCAL"):
            table = pose.local if space == "AnimPoseSpaces.LOCAL" else pose.world
            return table.get(bone_name, Transform())  # identity for an unknown bone, as AnimPose.cpp does

        @staticmethod
        def get_ref_pose_relative_transform(pose, from_bone_name, to_bone_name, space="AnimPoseSpaces.LOCAL"):
            table = pose.local if space == "AnimPoseSpaces.LOCAL" else pose.world
            if from_bone_name not in table or to_bone_name not in table:
                return Transform()
            return table[from_bone_name].then(table[to_bone_name].inverse())

    unreal.AnimPoseExtensions = AnimPoseExtensions
    cls("Texture2D", {"compression_settings": "TextureCompressionSettings.TC_DEFAULT", "srgb": True,
                      "flip_green_channel": False, "lod_group": None})
    cls("MaterialInterface")
    cls("Material", {"blend_mode": None}, base=unreal.MaterialInterface)
    cls("MaterialInstanceConstant", {"parent": None}, base=unreal.MaterialInterface)
    cls("MaterialFactoryNew")
    cls("MaterialExpressionTextureSample", {"texture": None, "sampler_type": None})

    def world_grid():
        if "WorldGridMaterial" not in K.__dict__:
            K.WorldGridMaterial = K.Material(name="WorldGridMaterial")
        return K.WorldGridMaterial

    def add_asset(path, obj):
        obj.path = f"{path}.{path.rsplit('/', 1)[-1]}"
        assets[path] = obj
        return obj

    for path, class_name in (existing or {}).items():
        add_asset(path, getattr(unreal, class_name)(name=path.rsplit("/", 1)[-1]))
    for path, bones in (skeletons or {}).items():
        add_asset(path, Skeleton(name=path.rsplit("/", 1)[-1], bones=bones))
    file_bones = list(mesh_bones or [("root", None)])

    class AssetImportTask(UObject):
        properties = {"filename": "", "destination_path": "", "destination_name": "", "automated": False,
                      "replace_existing": False, "save": False, "options": None, "imported_object_paths": list}

        def get_objects(self):
            return getattr(self, "_objects", [])

    unreal.AssetImportTask = AssetImportTask

    def through_interchange(filename):
        suffix = Path(filename).suffix.lower()
        return suffix in (".glb", ".gltf") or (suffix == ".fbx" and interchange_fbx)

    def effective_settings(filename, options):
        """What the importer really applies: importer, stack, materials, collision, nanite, skeletal, and for a
        skeletal mesh the skeleton asked for and whether a physics asset is made."""
        if not through_interchange(filename):
            ui = options if isinstance(options, K.FbxImportUI) else K.FbxImportUI()
            data = ui._props["static_mesh_import_data"]
            # The legacy importer always imports UCX_ custom collision.
            return {"importer": "legacy", "stack": "FbxImportUI" if options is ui else "defaults",
                    "materials": ui._props["import_materials"], "collision": True,
                    "nanite": bool(data._props.get("build_nanite")), "skeletal": bool(ui._props["import_as_skeletal"]),
                    "skeleton": ui._props["skeleton"], "physics": bool(ui._props["create_physics_asset"])}
        if isinstance(options, K.InterchangePipelineStackOverride) and options._props["override_pipelines"]:
            pipeline = options._props["override_pipelines"][0]
            meshes = pipeline._props["mesh_pipeline"]
            shared = pipeline._props["common_skeletal_meshes_and_animations_properties"]
            return {"importer": "interchange", "stack": "override",
                    "materials": pipeline._props["material_pipeline"]._props["import_materials"],
                    "collision": bool(meshes._props[collision_name])
                    and bool(meshes._props["import_collision_according_to_mesh_name"]),
                    "nanite": bool(meshes._props["build_nanite"]), "skeletal": not meshes._props["import_static_meshes"],
                    "skeleton": shared._props["skeleton"], "physics": bool(meshes._props["create_physics_asset"])}
        if isinstance(options, K.FbxImportUI) and filename.lower().endswith(".fbx"):
            data = options._props["static_mesh_import_data"]
            return {"importer": "interchange", "stack": "converted FbxImportUI",
                    "materials": options._props["import_materials"],
                    "collision": bool(data._props.get("auto_generate_collision")), "nanite": False,
                    "skeletal": bool(options._props["import_as_skeletal"]), "skeleton": options._props["skeleton"],
                    "physics": bool(options._props["create_physics_asset"])}
        # Anything else in options (a bare pipeline included) is not an override: the default stack runs.
        return {"importer": "interchange", "stack": "project default", "materials": True, "collision": True,
                "nanite": False, "skeletal": False, "skeleton": None, "physics": True}

    def import_skeletal(stem, dest, settings):
        """A skeletal mesh onto the skeleton asked for (None when the bones cannot merge), else a new one."""
        skeleton = settings["skeleton"]
        if skeleton is not None and not skeleton.is_compatible_mesh(file_bones):
            calls.append(("bone_merge_failed", settings["importer"], skeleton.name))
            return None
        obj = K.SkeletalMesh(name=stem)
        obj.bones = list(file_bones)
        if skeleton is None:
            skeleton = add_asset(f"{dest}/{stem}_Skeleton", K.Skeleton(name=f"{stem}_Skeleton", bones=[
                (bone, parent, np.zeros(3)) for bone, parent in file_bones]))
        else:
            skeleton.merge(file_bones)
        obj._props["skeleton"] = skeleton
        slot = K.SkeletalMaterial(name="slot0")
        slot._props["material_interface"] = world_grid()  # no materials imported: the engine's default material
        obj._props["materials"] = [slot]
        if settings["physics"] and physics_on_import:
            obj._props["physics_asset"] = add_asset(f"{dest}/{stem}_PhysicsAsset",
                                                    K.PhysicsAsset(name=f"{stem}_PhysicsAsset"))
        return obj

    class AssetTools:
        def import_asset_tasks(self, tasks):
            for task in tasks:
                filename = Path(task.get_editor_property("filename"))
                dest = task.get_editor_property("destination_path")
                options = task._props.get("options")
                calls.append(("import", filename.name, dest, type(options).__name__ if options else None))
                stem = filename.stem
                if filename.suffix.lower() == ".png":
                    obj = K.Texture2D(name=stem)
                else:
                    settings = effective_settings(filename.name, options)
                    skeletal = settings["skeletal"]
                    obj = import_skeletal(stem, dest, settings) if skeletal else K.StaticMesh(name=stem)
                    record = {"file": filename.name, "dest": dest, **{k: settings[k] for k in (
                        "importer", "stack", "materials", "nanite", "skeletal")}, "hulls": 0}
                    if skeletal:
                        record.update({"skeleton": settings["skeleton"].name if settings["skeleton"] else None,
                                       "physics": bool(obj and obj._props["physics_asset"])})
                    imports.append(record)
                    if obj is None:
                        task._objects = []
                        task._props["imported_object_paths"] = []
                        continue
                    obj.lods = [triangles.get(stem, default_triangles(stem))]
                    obj.slots = {0: world_grid()}  # no materials imported: the engine's default material
                    file_hulls = ucx_hulls if "_LOD" not in stem else 0
                    if not skeletal:
                        obj.hulls = file_hulls if settings["collision"] else 0
                        obj._props["nanite_settings"]._props["enabled"] = settings["nanite"]
                        record["hulls"] = obj.hulls
                add_asset(f"{dest}/{stem}", obj)
                task._objects = [obj]
                task._props["imported_object_paths"] = [obj.path]

        def create_asset(self, name, path, asset_class, factory):
            calls.append(("create_asset", name, path, asset_class.__name__))
            if f"{path}/{name}" in assets:
                return None  # the real editor will not silently overwrite an asset of that name
            if FACTORY_MAKES.get(type(factory).__name__, asset_class.__name__) != asset_class.__name__:
                return None  # a factory only makes its own class
            return add_asset(f"{path}/{name}", asset_class(name=name))

    tools = AssetTools()
    unreal.AssetToolsHelpers = types.SimpleNamespace(get_asset_tools=lambda: tools)

    class EditorAssetLibrary:
        @staticmethod
        def does_asset_exist(path):
            return path.split(".")[0] in assets

        @staticmethod
        def load_asset(path):
            return assets.get(path.split(".")[0])

        @staticmethod
        def save_loaded_asset(asset):
            calls.append(("save", asset.name))
            return True

        @staticmethod
        def delete_asset(path):
            calls.append(("delete", path.split(".")[0]))
            return assets.pop(path.split(".")[0], None) is not None

        @staticmethod
        def does_directory_exist(path):
            return any(p.startswith(path + "/") for p in assets)

        @staticmethod
        def delete_directory(path):
            calls.append(("delete_directory", path))
            for p in [p for p in assets if p.startswith(path + "/")]:
                del assets[p]
            return True

    unreal.EditorAssetLibrary = EditorAssetLibrary

    def require_material(material):
        if not isinstance(material, K.Material):
            raise TypeError(f"{type(material).__name__} is not a Material: expressions only live in a Material")

    class MaterialEditingLibrary:
        @staticmethod
        def create_material_expression(material, expression_class, x=0, y=0):
            require_material(material)
            node = expression_class(name=f"node{len([c for c in calls if c[0] == 'expression'])}")
            material.__dict__.setdefault("expressions", []).append(node)
            calls.append(("expression", material.name, expression_class.__name__, node.name))
            return node

        @staticmethod
        def connect_material_property(node, output, prop):
            texture = node._props.get("texture")
            calls.append(("connect", texture.name if texture else None, output, prop))
            return True

        @staticmethod
        def recompile_material(material):
            require_material(material)
            calls.append(("recompile", material.name))

        @staticmethod
        def layout_material_expressions(material):
            require_material(material)

        @staticmethod
        def delete_all_material_expressions(material):
            require_material(material)
            material.__dict__["expressions"] = []
            calls.append(("delete_expressions", material.name))

        @staticmethod
        def get_used_textures(material):
            require_material(material)
            return [n._props["texture"] for n in material.__dict__.get("expressions", []) if n._props["texture"]]

    unreal.MaterialEditingLibrary = MaterialEditingLibrary

    def import_lod(kind, mesh, index, path):
        calls.append(("import_lod", kind, mesh.name, index, Path(path).name))
        if index < 1 or index > len(mesh.lods):
            return -1
        stem = Path(path).stem
        if through_interchange(path):
            pending_lods.append((mesh.name, index, stem))  # returns before the LOD exists
        else:
            mesh.lods[index:index + 1] = [triangles.get(stem, default_triangles(stem))]
        return index

    def set_lod_from_static_mesh(kind, destination, destination_lod_index, source, source_lod_index,
                                 reuse_existing_material_slots):
        if not (0 <= source_lod_index < len(source.lods)) or destination_lod_index < 0:
            return -1
        index = min(destination_lod_index, len(destination.lods))
        destination.lods[index:index + 1] = [source.lods[source_lod_index]]
        material = source.slots.get(0)
        if not (reuse_existing_material_slots and material in destination.slots.values()):
            destination.slots[len(destination.slots)] = material  # appended as a new slot
        calls.append(("set_lod", kind, destination.name, index, source.name, source_lod_index,
                      reuse_existing_material_slots))
        return index

    class StaticMeshEditorSubsystem:
        def import_lod(self, base_static_mesh, lod_index, source_filename):
            return import_lod("subsystem", base_static_mesh, lod_index, source_filename)

        def set_lod_from_static_mesh(self, destination_static_mesh, destination_lod_index, source_static_mesh,
                                     source_lod_index, reuse_existing_material_slots):
            return set_lod_from_static_mesh("subsystem", destination_static_mesh, destination_lod_index,
                                            source_static_mesh, source_lod_index, reuse_existing_material_slots)

        def get_lod_count(self, static_mesh):
            return len(static_mesh.lods)

        def get_number_materials(self, static_mesh):
            return len(static_mesh.slots)

        def get_convex_collision_count(self, static_mesh):
            return static_mesh.hulls

        def get_simple_collision_count(self, static_mesh):
            return static_mesh.hulls

    unreal.StaticMeshEditorSubsystem = StaticMeshEditorSubsystem

    class EditorStaticMeshLibrary:  # deprecated Editor Scripting Utilities
        @staticmethod
        def import_lod(base_static_mesh, lod_index, source_filename):
            return import_lod("library", base_static_mesh, lod_index, source_filename)

        @staticmethod
        def set_lod_from_static_mesh(destination_static_mesh, destination_lod_index, source_static_mesh,
                                     source_lod_index, reuse_existing_material_slots):
            return set_lod_from_static_mesh("library", destination_static_mesh, destination_lod_index,
                                            source_static_mesh, source_lod_index, reuse_existing_material_slots)

        @staticmethod
        def get_lod_count(static_mesh):
            return len(static_mesh.lods)

    unreal.EditorStaticMeshLibrary = EditorStaticMeshLibrary

    class SkeletalMeshEditorSubsystem:
        def import_lod(self, base_mesh, lod_index, source_filename):
            return import_lod("skeletal subsystem", base_mesh, lod_index, source_filename)

        def get_lod_count(self, skeletal_mesh):
            return len(skeletal_mesh.lods)

    def create_physics_asset(kind, skeletal_mesh, set_to_mesh=True):
        calls.append(("create_physics_asset", kind, skeletal_mesh.name))
        folder = skeletal_mesh.path.rsplit("/", 1)[0]
        made = add_asset(f"{folder}/{skeletal_mesh.name}_PhysicsAsset", K.PhysicsAsset(name=f"{skeletal_mesh.name}_PhysicsAsset"))
        if set_to_mesh:
            skeletal_mesh._props["physics_asset"] = made
        return made

    if ver >= (5, 7):
        def subsystem_create(cls_, skeletal_mesh, set_to_mesh=True, lod_index=0):
            return create_physics_asset("subsystem", skeletal_mesh, set_to_mesh)
    else:
        def subsystem_create(cls_, skeletal_mesh):
            return create_physics_asset("subsystem", skeletal_mesh)
    SkeletalMeshEditorSubsystem.create_physics_asset = classmethod(subsystem_create)
    if ver >= (5, 4):
        def assign_physics_asset(cls_, target_mesh, physics_asset):
            calls.append(("assign_physics_asset", target_mesh.name, physics_asset.name if physics_asset else None))
            target_mesh._props["physics_asset"] = physics_asset
            return True

        SkeletalMeshEditorSubsystem.assign_physics_asset = classmethod(assign_physics_asset)
    unreal.SkeletalMeshEditorSubsystem = SkeletalMeshEditorSubsystem

    class EditorSkeletalMeshLibrary:  # deprecated Editor Scripting Utilities
        @staticmethod
        def import_lod(base_mesh, lod_index, source_filename):
            return import_lod("skeletal library (deprecated)", base_mesh, lod_index, source_filename)

        @staticmethod
        def create_physics_asset(skeletal_mesh):
            return create_physics_asset("library (deprecated)", skeletal_mesh)

        @staticmethod
        def get_lod_count(skeletal_mesh):
            return len(skeletal_mesh.lods)

    unreal.EditorSkeletalMeshLibrary = EditorSkeletalMeshLibrary
    subsystems = {}

    def get_editor_subsystem(subsystem_class):
        return subsystems.setdefault(subsystem_class, subsystem_class())

    unreal.get_editor_subsystem = get_editor_subsystem

    def cvar(name):
        calls.append(("cvar", name))
        return interchange_fbx if name == "Interchange.FeatureFlags.Import.FBX" else False

    engine_version = version if str(version).count(".") >= 2 else f"{version}.1-0+++UE5+Release-{version}"
    unreal.SystemLibrary = types.SimpleNamespace(get_engine_version=lambda: engine_version,
                                                 get_console_variable_bool_value=cvar)
    unreal.TextureCompressionSettings = Enum("TextureCompressionSettings", ["TC_DEFAULT", "TC_NORMALMAP", "TC_MASKS"])
    unreal.TextureGroup = Enum("TextureGroup", ["TEXTUREGROUP_WORLD_NORMAL_MAP"])
    unreal.MaterialProperty = Enum("MaterialProperty", ["MP_BASE_COLOR", "MP_NORMAL", "MP_AMBIENT_OCCLUSION",
                                                        "MP_ROUGHNESS", "MP_METALLIC", "MP_OPACITY_MASK"])
    unreal.MaterialSamplerType = Enum("MaterialSamplerType", ["SAMPLERTYPE_COLOR", "SAMPLERTYPE_NORMAL",
                                                              "SAMPLERTYPE_MASKS", "SAMPLERTYPE_LINEAR_COLOR"])
    unreal.FBXImportType = Enum("FBXImportType", ["FBXIT_STATIC_MESH", "FBXIT_SKELETAL_MESH"])
    unreal.FBXNormalImportMethod = Enum("FBXNormalImportMethod", ["FBXNIM_IMPORT_NORMALS_AND_TANGENTS"])
    unreal.FBXNormalGenerationMethod = Enum("FBXNormalGenerationMethod", ["MIKK_T_SPACE"])
    unreal.BlendMode = Enum("BlendMode", ["BLEND_MASKED"])
    unreal.log = lambda text: calls.append(("log", text))
    unreal.log_warning = lambda text: calls.append(("log_warning", text))
    unreal.log_error = lambda text: calls.append(("log_error", text))

    if ik_rig_plugin:
        add_ik_rig_plugin(unreal, UObject, calls, ver, auto_retarget_definition)
        for path, (root, chains) in (ik_rigs or {}).items():
            add_asset(path, unreal.IKRigDefinition.seeded(path.rsplit("/", 1)[-1], root, chains))

    K.__dict__.update(vars(unreal))  # what existed before `drop`: the stand-in's own logic keeps using it
    for dotted in drop:
        owner_path, _, attr = dotted.rpartition(".")
        owner = unreal
        for part in filter(None, owner_path.split(".")):
            owner = getattr(owner, part)
        delattr(owner, attr)
    return unreal


def add_ik_rig_plugin(unreal, base, calls, ver, auto_definition):
    """IKRigDefinition, IKRetargeter, their factories and controllers, RetargetSourceOrTarget, AutoMapChainType."""
    none = "None"  # how NAME_None reads from Python
    sides = unreal.RetargetSourceOrTarget = Enum("RetargetSourceOrTarget", ["SOURCE", "TARGET"])
    map_types = unreal.AutoMapChainType = Enum("AutoMapChainType", ["EXACT", "FUZZY", "CLEAR"])
    for name in ("IKRigDefinitionFactory", "IKRetargetFactory"):
        setattr(unreal, name, type(name, (base,), {"properties": {"edit_after_new": False}}))

    def side_of(source_or_target):
        if source_or_target not in (sides.SOURCE, sides.TARGET):
            raise TypeError(f"expected a RetargetSourceOrTarget, got {source_or_target!r}")
        return "source" if source_or_target == sides.SOURCE else "target"

    def name_of(value):
        return none if value in (None, "") else str(value)

    class BoneReference(base):
        properties = {"bone_name": none}

    class BoneChain(base):
        properties = {"chain_name": none, "start_bone": None, "end_bone": None, "ik_goal_name": none}

        @classmethod
        def of(cls, chain_name, start, end, goal=none):
            chain = cls()
            for prop, bone in (("start_bone", start), ("end_bone", end)):
                chain._props[prop] = BoneReference()
                chain._props[prop]._props["bone_name"] = name_of(bone)
            chain._props.update(chain_name=chain_name, ik_goal_name=name_of(goal))
            return chain

        def bones(self):
            return [self._props[end]._props["bone_name"] for end in ("start_bone", "end_bone")]

    unreal.BoneReference, unreal.BoneChain = BoneReference, BoneChain

    class IKRigDefinition(base):
        properties = {"preview_skeletal_mesh": None}

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.bones, self.root, self.chains, self.controller = [], none, [], None

        @classmethod
        def seeded(cls, name, root, chains):
            """An IK Rig already in the project (the Mannequin's), its skeleton the bones its chains name."""
            rig = cls(name=name)
            rig.root, rig.chains = root, [BoneChain.of(*chain) for chain in chains]
            rig.bones = sorted({root} | {bone for _, start, end in chains for bone in (start, end)})
            return rig

        def chain_names(self):
            return [chain._props["chain_name"] for chain in self.chains]

    unreal.IKRigDefinition = IKRigDefinition

    class IKRigController(base):
        @classmethod
        def get_controller(cls, ik_rig_definition):
            if not isinstance(ik_rig_definition, IKRigDefinition):
                return None
            if ik_rig_definition.controller is None:
                ik_rig_definition.controller = cls(name=ik_rig_definition.name + "_Controller")
                ik_rig_definition.controller.asset = ik_rig_definition
            return ik_rig_definition.controller

        def set_skeletal_mesh(self, skeletal_mesh):
            rig = self.asset
            calls.append(("ik_rig", rig.name, "set_skeletal_mesh", skeletal_mesh.name))
            if not isinstance(skeletal_mesh, unreal.SkeletalMesh):
                return False
            names = [bone for bone, _ in skeletal_mesh.bones]
            needed = {bone for chain in rig.chains for bone in chain.bones()} - {none}
            if needed - set(names):
                return False  # IsIKRigCompatibleWithSkeleton: the bones the rig uses must all be in the mesh
            rig.bones = names
            rig._props["preview_skeletal_mesh"] = skeletal_mesh
            return True

        def get_skeletal_mesh(self):
            return self.asset._props["preview_skeletal_mesh"]

        def set_retarget_root(self, root_bone_name):
            calls.append(("ik_rig", self.asset.name, "set_retarget_root", root_bone_name))
            self.asset.root = root_bone_name if root_bone_name in self.asset.bones else none
            return True

        def get_retarget_root(self):
            return self.asset.root

        def add_retarget_chain(self, chain_name, start_bone_name, end_bone_name, goal_name):
            rig = self.asset
            calls.append(("ik_rig", rig.name, "add_retarget_chain", chain_name, start_bone_name, end_bone_name))
            if any(name_of(bone) != none and bone not in rig.bones for bone in (start_bone_name, end_bone_name)):
                return none  # "Could not create retarget chain. Start/End Bone does not exist"
            unique, number = chain_name, 0
            while unique in rig.chain_names():
                number += 1
                unique = f"{chain_name}_{number}"
            rig.chains.append(BoneChain.of(unique, start_bone_name, end_bone_name, goal_name))
            return unique

        def remove_retarget_chain(self, chain_name):
            calls.append(("ik_rig", self.asset.name, "remove_retarget_chain", chain_name))
            before = len(self.asset.chains)
            self.asset.chains = [c for c in self.asset.chains if c._props["chain_name"] != chain_name]
            return len(self.asset.chains) < before

        def get_retarget_chains(self):
            return list(self.asset.chains)

    if ver >= (5, 4):
        def apply_auto_generated_retarget_definition(self):
            calls.append(("ik_rig", self.asset.name, "apply_auto_generated_retarget_definition"))
            if self.get_skeletal_mesh() is None or auto_definition is None:
                return False
            root, chains = auto_definition
            self.asset.root = root
            self.asset.chains = [BoneChain.of(*chain) for chain in chains]
            return True

        IKRigController.apply_auto_generated_retarget_definition = apply_auto_generated_retarget_definition
    unreal.IKRigController = IKRigController

    class IKRetargeter(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.rigs, self.previews, self.mapping, self.ops, self.controller = {}, {}, {}, [], None

    unreal.IKRetargeter = IKRetargeter

    def map_chains(mapping, source, target, auto_map_type, force_remap):
        """Each target chain to the source chain of the same name, case aside (EXACT, else None), or the best
        scoring one (FUZZY: 1 - Levenshtein distance / both lengths, above 0.2, as AutoMapChains scores)."""
        targets = target.chain_names() if target is not None else []
        sources = source.chain_names() if source is not None else []
        for stale in set(mapping) - set(targets):
            del mapping[stale]
        for chain in targets:
            if auto_map_type == map_types.CLEAR:
                mapping[chain] = none
            elif force_remap or mapping.get(chain, none) == none:
                if auto_map_type == map_types.EXACT:
                    mapping[chain] = next((s for s in sources if s.lower() == chain.lower()), none)
                else:
                    scores = [(fuzzy_score(chain, source_chain), source_chain) for source_chain in sources]
                    best = max(scores, key=lambda pair: pair[0], default=(0.0, none))
                    mapping[chain] = best[1] if best[0] > 0.2 else none

    class IKRetargeterController(base):
        @classmethod
        def get_controller(cls, retargeter_asset):
            if not isinstance(retargeter_asset, IKRetargeter):
                return None
            if retargeter_asset.controller is None:
                retargeter_asset.controller = cls(name=retargeter_asset.name + "_Controller")
                retargeter_asset.controller.asset = retargeter_asset
            return retargeter_asset.controller

        def set_ik_rig(self, source_or_target, ik_rig):
            side = side_of(source_or_target)
            if ik_rig is not None and not isinstance(ik_rig, IKRigDefinition):
                raise TypeError("set_ik_rig takes an IKRigDefinition")
            asset = self.asset
            calls.append(("retargeter", asset.name, "set_ik_rig", side, ik_rig.name if ik_rig else None))
            asset.rigs[side] = ik_rig
            asset.previews[side] = ik_rig._props["preview_skeletal_mesh"] if ik_rig else None
            if ver < (5, 6):
                on_set = map_types.EXACT if ver >= (5, 4) else map_types.FUZZY
                map_chains(asset.mapping, asset.rigs.get("source"), asset.rigs.get("target"), on_set, False)

        def get_ik_rig(self, source_or_target):
            return self.asset.rigs.get(side_of(source_or_target))

        def set_preview_mesh(self, source_or_target, preview_mesh):
            self.asset.previews[side_of(source_or_target)] = preview_mesh

        def get_preview_mesh(self, source_or_target):
            return self.asset.previews.get(side_of(source_or_target))

    if ver < (5, 6):
        def auto_map_chains(self, auto_map_type, force_remap):
            asset = self.asset
            calls.append(("retargeter", asset.name, "auto_map_chains", auto_map_type, force_remap))
            map_chains(asset.mapping, asset.rigs.get("source"), asset.rigs.get("target"), auto_map_type, force_remap)

        def get_source_chain(self, target_chain_name):
            return self.asset.mapping.get(str(target_chain_name), none)

        IKRetargeterController.auto_map_chains = auto_map_chains
        IKRetargeterController.get_source_chain = get_source_chain
    else:
        add_op_stack(IKRetargeterController, calls, none, side_of, map_chains)
    unreal.IKRetargeterController = IKRetargeterController


def fuzzy_score(a, b):
    a, b = a.lower(), b.lower()
    row = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, char_b in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (char_a != char_b))
    return 1.0 - row[-1] / max(len(a) + len(b), 1)


def add_op_stack(controller_class, calls, none, side_of, map_chains):
    """UE 5.6+: chain mappings live in the ops of a stack; auto_map_chains / get_source_chain take an op name."""
    default_ops = [("Pelvis Motion", False), ("FK Chains", True), ("Run IK Rig", True), ("Root Motion", False),
                   ("Curve Remap", False)]

    def chain_ops(asset, op_name):
        return [op for op in asset.ops if op["chains"] and op_name in (none, None, op["name"])]

    def add_default_ops(self):
        asset = self.asset
        calls.append(("retargeter", asset.name, "add_default_ops"))
        present = {op["name"] for op in asset.ops}
        asset.ops += [{"name": name, "chains": chains, "target": None, "mapping": {}}
                      for name, chains in default_ops if name not in present]

    def assign_ik_rig_to_all_ops(self, source_or_target, ik_rig):
        side = side_of(source_or_target)
        calls.append(("retargeter", self.asset.name, "assign_ik_rig_to_all_ops", side, ik_rig.name))
        if side == "target":
            for op in chain_ops(self.asset, None):
                op["target"], op["mapping"] = ik_rig, {}

    def auto_map_chains(self, auto_map_type, force_remap, op_name=none):
        asset = self.asset
        calls.append(("retargeter", asset.name, "auto_map_chains", auto_map_type, force_remap))
        for op in chain_ops(asset, op_name):
            map_chains(op["mapping"], asset.rigs.get("source"), op["target"], auto_map_type, force_remap)

    def get_source_chain(self, target_chain_name, op_name=none):
        ops = chain_ops(self.asset, op_name)
        return ops[0]["mapping"].get(str(target_chain_name), none) if ops else none

    def get_num_retarget_ops(self):
        return len(self.asset.ops)

    def get_op_name(self, op_index):
        return self.asset.ops[op_index]["name"] if 0 <= op_index < len(self.asset.ops) else none

    for function in (add_default_ops, assign_ik_rig_to_all_ops, auto_map_chains, get_source_chain,
                     get_num_retarget_ops, get_op_name):
        setattr(controller_class, function.__name__, function)

"""import_<Name>.py of a rigged character against tests/unreal_standin.py (UE 5.3-5.8): a skeletal import through
the legacy FBX importer and through Interchange, onto the project's UE5 Mannequin skeleton when its bone names
and parents match ours (read through AnimPoseExtensions) and onto a skeleton of its own otherwise, a physics
asset from the import or made afterwards, and the closing self-check; on a skeleton of its own, the IK Rig IK_Hero
(the editor's generated retarget definition where it has one, else the Mannequin's chain names; a generic skeleton
its root only) and the IK Retargeter RTG_Hero from the project's IK_Mannequin, or a clear skip in an editor without
that API."""

from __future__ import annotations

import ast
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from server.errors import InputError
from server.export.naming import engine_names
from server.export.package import export_package
from server.export.ue5_script import MANNEQUIN_CHAINS, MANNEQUIN_IK_RIGS, MANNEQUIN_SKELETONS, import_script
from tests.test_rig_export import character_bundle, make_character
from tests.unreal_standin import (
    LEGACY_FBX_VERSIONS,
    VERSIONS,
    build_unreal,
    parse_version,
    properties_set_on,
    run_script,
)

NAMES = engine_names("Hero", "ue5", use_fbx=True, rigged=True)
DEST = "/Game/Open3DForge/Hero"
MANNEQUIN = MANNEQUIN_SKELETONS[0]
# Bones the real Mannequin has beyond the rig's (twist and helper bones), so the rig's are a subset of it.
EXTRA_BONES = [("upperarm_twist_01_l", "upperarm_l"), ("lowerarm_twist_01_l", "lowerarm_l"),
               ("upperarm_twist_01_r", "upperarm_r"), ("lowerarm_twist_01_r", "lowerarm_r"),
               ("thigh_twist_01_l", "thigh_l"), ("thigh_twist_01_r", "thigh_r"),
               ("interaction", "root"), ("center_of_mass", "root")]


@pytest.fixture(scope="module")
def character():
    return make_character()


def file_bones(rig, reparent: dict | None = None) -> list:
    """[(bone, parent)] of the rig, with some parents changed."""
    parents = dict(rig.parent_names, **(reparent or {}))
    return [(name, parents[name]) for name in rig.bone_names]


def mannequin(rig, *, rename: dict | None = None, reparent: dict | None = None) -> list:
    """A Mannequin Skeleton for the stand-in: the rig's bones (cm offsets from each parent's joint, each turned
    its own way, so a wrong parent shows in the reference pose), plus EXTRA_BONES; some renamed or reparented."""
    rename, parents = rename or {}, dict(rig.parent_names, **(reparent or {}))
    heads = {name: np.asarray(head) * 100.0 for name, head in rig.joints.items()}
    bones = []
    for i, name in enumerate(rig.bone_names):
        parent = parents[name]
        offset = heads[name] - (heads[parent] if parent else 0.0)
        turn = Rotation.from_rotvec([0.05 * i, 0.3, -0.02 * i]).as_matrix()  # bones turned, as real ones are
        bones.append((rename.get(name, name), rename.get(parent, parent) if parent else None, offset, turn))
    bones += [(name, parent, (1.0, 0.5, 0.25)) for name, parent in EXTRA_BONES]
    return bones


def write_script(folder: Path, rig, mesh_file: str = "SK_Hero.fbx", **options) -> Path:
    """The rigged character's script beside placeholder files with the zip's names (the stand-in never reads them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in [mesh_file] + list(NAMES.textures.values()):
        (folder / name).write_bytes(b"placeholder")
    names = list(rig.bone_names)
    text = import_script("Hero", [mesh_file], "SK_Hero", NAMES.textures, "M_Hero", skeletal=True,
                         lod_triangles=[1000], bones=names,
                         parents=[names[p] if p >= 0 else None for p in rig.parents], **options)
    path = folder / "import_Hero.py"
    path.write_text(text)
    return path


def joined(report, kind):
    return " | ".join(report[kind])


@pytest.mark.parametrize("version", VERSIONS)
def test_imports_onto_the_mannequin_when_it_matches(version, character, tmp_path, monkeypatch, capsys):
    mesh, rig = character
    unreal = build_unreal(version, ucx_hulls=0, skeletons={MANNEQUIN: mannequin(rig)}, mesh_bones=file_bones(rig))
    skeleton = unreal.assets[MANNEQUIN]
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    calls = unreal.calls
    assert ("reference_pose", "SK_Mannequin") in calls  # the bone names were read from the skeleton asset
    first = unreal.imports[0]
    legacy = version in LEGACY_FBX_VERSIONS
    assert first["importer"] == ("legacy" if legacy else "interchange")
    assert first["stack"] == ("FbxImportUI" if legacy else "override")
    assert first["skeletal"] is True and first["skeleton"] == "SK_Mannequin" and first["physics"] is True
    assert first["materials"] is False
    if legacy:
        ui = properties_set_on(calls, "FbxImportUI")
        assert ui["skeleton"] is skeleton and ui["create_physics_asset"] is True and ui["import_as_skeletal"] is True
        assert ui["mesh_type_to_import"] == "FBXImportType.FBXIT_SKELETAL_MESH"
        data = properties_set_on(calls, "FbxSkeletalMeshImportData")
        assert data["update_skeleton_reference_pose"] is False and data["use_t0_as_ref_pose"] is False
    else:
        shared = properties_set_on(calls, "InterchangeGenericCommonSkeletalMeshesAndAnimationsProperties")
        assert shared["skeleton"] is skeleton and shared["import_only_animations"] is False
        assert ("try_auto_select_skeleton" in shared) is (version == "5.8")
        meshes = properties_set_on(calls, "InterchangeGenericMeshPipeline")
        assert meshes["import_skeletal_meshes"] is True and meshes["import_static_meshes"] is False
        assert meshes["create_physics_asset"] is True
    assert not [c for c in calls if c[0] == "bone_merge_failed"]
    made = unreal.assets[f"{DEST}/SK_Hero"]
    assert made.get_editor_property("skeleton") is skeleton
    assert f"{DEST}/SK_Hero_Skeleton" not in unreal.assets
    assert made.get_editor_property("physics_asset").get_name() == "SK_Hero_PhysicsAsset"
    assert made.get_editor_property("materials")[0].get_editor_property("material_interface").get_name() == "M_Hero"
    checked = joined(report, "checked")
    for text in (f"SK_Hero skeleton (UE5 Mannequin, used): {MANNEQUIN}",
                 f"SK_Hero bones: all {len(rig.bone_names)} of the manifest in {MANNEQUIN} "
                 f"({len(rig.bone_names) + len(EXTRA_BONES)} bones)",
                 "SK_Hero physics asset: SK_Hero_PhysicsAsset", "SK_Hero slot 0 material: M_Hero",
                 "M_Hero base_color sample: T_Hero_BC", "T_Hero_N sRGB: False", "SK_Hero LOD count: 1"):
        assert text in checked
    assert any("holds all %d bones with the same parents" % len(rig.bone_names) in d for d in report["done"])
    out = capsys.readouterr().out
    assert "[Open3DForge] finished Hero:" in out and "0 failed" in out and "0 mismatch(es)" in out


@pytest.mark.parametrize("version", ["5.3", "5.6"])
def test_a_skeleton_of_its_own_without_a_mannequin(version, character, tmp_path, monkeypatch):
    mesh, rig = character
    unreal = build_unreal(version, ucx_hulls=0, mesh_bones=file_bones(rig))
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert unreal.imports[0]["skeleton"] is None
    own = unreal.assets[f"{DEST}/SK_Hero_Skeleton"]
    assert unreal.assets[f"{DEST}/SK_Hero"].get_editor_property("skeleton") is own
    assert any("no UE5 Mannequin skeleton matches" in d for d in report["done"])
    assert f"SK_Hero skeleton: {DEST}/SK_Hero_Skeleton (made by the import)" in joined(report, "checked")
    assert not properties_set_on(unreal.calls, "FbxImportUI").get("skeleton")  # no skeleton asked for: a new one


@pytest.mark.parametrize("version", ["5.4", "5.7"])
def test_a_renamed_bone_means_a_skeleton_of_its_own(version, character, tmp_path, monkeypatch):
    mesh, rig = character
    skeletons = {MANNEQUIN: mannequin(rig, rename={"ball_l": "ball_left"})}
    unreal = build_unreal(version, ucx_hulls=0, skeletons=skeletons, mesh_bones=file_bones(rig))
    before = list(unreal.assets[MANNEQUIN].bones)
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert unreal.imports[0]["skeleton"] is None and f"{DEST}/SK_Hero_Skeleton" in unreal.assets
    assert any("lacks 1 of our bones (ball_l)" in d for d in report["done"])
    assert unreal.assets[MANNEQUIN].bones == before  # the project's skeleton is left as it was


@pytest.mark.parametrize("version", ["5.3", "5.5"])
def test_another_parent_means_a_skeleton_of_its_own(version, character, tmp_path, monkeypatch):
    """Same names, but hand_l hangs off upperarm_l there: importing onto it would fail the engine's bone merge
    (a dialog offering to rebuild the Mannequin's bone tree with the legacy importer), so it is not tried."""
    mesh, rig = character
    skeletons = {MANNEQUIN: mannequin(rig, reparent={"hand_l": "upperarm_l"})}
    unreal = build_unreal(version, ucx_hulls=0, skeletons=skeletons, mesh_bones=file_bones(rig))
    assert not unreal.assets[MANNEQUIN].is_compatible_mesh(file_bones(rig))
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert unreal.imports[0]["skeleton"] is None
    assert any("other parents for hand_l (ours under lowerarm_l)" in d for d in report["done"])
    assert not [c for c in unreal.calls if c[0] == "bone_merge_failed"]


def test_an_unreadable_hierarchy_is_not_risked(character, tmp_path, monkeypatch):
    mesh, rig = character
    unreal = build_unreal("5.6", ucx_hulls=0, skeletons={MANNEQUIN: mannequin(rig)}, mesh_bones=file_bones(rig),
                          drop=("AnimPoseExtensions.get_ref_pose_relative_transform",))
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert unreal.imports[0]["skeleton"] is None
    assert any("hierarchy is not readable here" in s for s in report["skipped"])


def test_unreadable_bone_names_mean_a_skeleton_of_its_own(character, tmp_path, monkeypatch):
    mesh, rig = character
    unreal = build_unreal("5.3", ucx_hulls=0, skeletons={MANNEQUIN: mannequin(rig)}, mesh_bones=file_bones(rig),
                          drop=("AnimPoseExtensions",))
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert unreal.imports[0]["skeleton"] is None and report["failed"] == []
    assert any("cannot list its bones" in s for s in report["skipped"])
    # The self-check says what it could not read instead of claiming the bones are there.
    assert any("bones are not readable" in s for s in report["skipped"])
    assert report["mismatch"] == []


@pytest.mark.parametrize("version", ["5.5", "5.8"])
def test_a_file_the_editor_will_not_merge_is_imported_again_with_its_own_skeleton(version, character, tmp_path,
                                                                                  monkeypatch):
    """The file's hierarchy differs from the bone list the script was written with: the import onto the
    Mannequin yields no mesh (Interchange, run from a script, refuses the merge), and the script tries again."""
    mesh, rig = character
    unreal = build_unreal(version, ucx_hulls=0, skeletons={MANNEQUIN: mannequin(rig)},
                          mesh_bones=file_bones(rig, reparent={"hand_r": "upperarm_r"}))
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert ("bone_merge_failed", "interchange", "SK_Mannequin") in unreal.calls
    assert [i["skeleton"] for i in unreal.imports[:2]] == ["SK_Mannequin", None]
    assert any("importing again with a skeleton of its own" in s for s in report["skipped"])
    assert report["failed"] == [] and report["mismatch"] == []
    assert f"SK_Hero skeleton: {DEST}/SK_Hero_Skeleton (made by the import)" in joined(report, "checked")


@pytest.mark.parametrize("version", ["5.3", "5.7"])
def test_a_physics_asset_is_made_when_the_import_made_none(version, character, tmp_path, monkeypatch):
    mesh, rig = character
    unreal = build_unreal(version, ucx_hulls=0, mesh_bones=file_bones(rig), physics_on_import=False)
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert unreal.imports[0]["physics"] is False
    assert ("create_physics_asset", "subsystem", "SK_Hero") in unreal.calls
    assert any("made with SkeletalMeshEditorSubsystem.create_physics_asset" in d for d in report["done"])
    assert "SK_Hero physics asset: SK_Hero_PhysicsAsset" in joined(report, "checked")


def test_no_way_to_make_a_physics_asset_is_said(character, tmp_path, monkeypatch, capsys):
    mesh, rig = character
    unreal = build_unreal("5.5", ucx_hulls=0, mesh_bones=file_bones(rig), physics_on_import=False,
                          drop=("SkeletalMeshEditorSubsystem.create_physics_asset",
                                "EditorSkeletalMeshLibrary.create_physics_asset"))
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert any("could not make one" in f for f in report["failed"])
    assert report["mismatch"] == ["SK_Hero: no physics asset"]
    assert "1 mismatch(es)" in capsys.readouterr().out


@pytest.mark.parametrize("version", VERSIONS)
def test_the_script_from_a_real_glb_zip_runs(version, character, tmp_path, monkeypatch):
    """No bpy on the server: SK_Hero.glb goes through Interchange in every version, onto the Mannequin."""
    mesh, rig = character
    path = export_package(character_bundle(mesh, rig), "ue5", tmp_path / "zip", use_fbx=False)
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "unzipped")
    manifest = json.loads((tmp_path / "unzipped" / "manifest.json").read_text())
    bones = [(name, manifest["skeleton"]["parents"][name]) for name in manifest["skeleton"]["bones"]]
    unreal = build_unreal(version, ucx_hulls=0, skeletons={MANNEQUIN: mannequin(rig)}, mesh_bones=bones)
    report = run_script(tmp_path / "unzipped" / "import_Hero.py", unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert [c[1] for c in unreal.calls if c[0] == "import"][0] == "SK_Hero.glb"
    assert unreal.imports[0]["importer"] == "interchange" and unreal.imports[0]["skeleton"] == "SK_Mannequin"
    assert f"SK_Hero bones: all {manifest['skeleton']['bone_count']} of the manifest" in joined(report, "checked")


def test_bad_bone_lists_are_refused():
    with pytest.raises(InputError) as info:
        import_script("Hero", ["SK_Hero.fbx"], "SK_Hero", {}, "M_Hero", skeletal=True, bones=["root", "pelvis"],
                      parents=[None, "spine_01"])
    assert info.value.argument == "parents"
    with pytest.raises(InputError) as info:
        import_script("Hero", ["SK_Hero.fbx"], "SK_Hero", {}, "M_Hero", bones=["root"], parents=[None])
    assert info.value.argument == "bones"


def test_every_unreal_name_of_the_skeletal_script_exists_in_a_version(character, tmp_path):
    """Each unreal.<Name> the rigged script uses is defined by the stand-in of at least one of UE 5.3 to 5.8."""
    mesh, rig = character
    tree = ast.parse(write_script(tmp_path, rig).read_text())
    used = {(node.attr,) for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "unreal"}
    used |= {(node.args[0].value.split(".")[0],) for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == "lookup" and node.args
             and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)}
    assert {("AnimPoseExtensions",), ("SkeletalMeshEditorSubsystem",), ("Skeleton",)} <= used
    modules = [build_unreal(version) for version in VERSIONS]
    unknown = sorted(n[0] for n in used if not any(hasattr(m, n[0]) for m in modules))
    assert unknown == []


# ---- IK Rig and IK Retargeter on a skeleton of its own

IK_MANNEQUIN = MANNEQUIN_IK_RIGS[0]
# The project's IK_Mannequin as the Third Person template ships it: its chains, fingers and twist bones included
# (names as in Epic's retargeting examples); the retarget root is the pelvis.
PROJECT_IK_MANNEQUIN = ("pelvis", [
    ("Root", "root", "root"), ("Spine", "spine_01", "spine_05"), ("Neck", "neck_01", "neck_02"),
    ("Head", "head", "head"), ("LeftClavicle", "clavicle_l", "clavicle_l"),
    ("RightClavicle", "clavicle_r", "clavicle_r"),
    ("LeftArm", "upperarm_l", "hand_l"), ("RightArm", "upperarm_r", "hand_r"), ("LeftLeg", "thigh_l", "ball_l"),
    ("RightLeg", "thigh_r", "ball_r"), ("LeftThumb", "thumb_01_l", "thumb_03_l"),
    ("RightIndex", "index_01_r", "index_03_r"), ("LeftLowerArmTwist01", "lowerarm_twist_01_l", "lowerarm_twist_01_l"),
])


def ik_rig_chains(rig_asset) -> list[tuple[str, str, str]]:
    def bone(chain, end):
        return chain.get_editor_property(end).get_editor_property("bone_name")

    return [(chain.get_editor_property("chain_name"), bone(chain, "start_bone"), bone(chain, "end_bone"))
            for chain in rig_asset.chains]


def ik_calls(unreal, kind, name=None):
    """(asset, method, arguments...) of the stand-in's IK Rig ("ik_rig") or IK Retargeter ("retargeter") calls."""
    return [c[1:] for c in unreal.calls if c[0] == kind and (name is None or c[1] == name)]


def mapped_source_chains(unreal, retargeter, chains):
    controller = unreal.IKRetargeterController.get_controller(retargeter)
    return {name: controller.get_source_chain(name) for name, *_ in chains}


def is_ancestor_or_self(parents: dict, bone: str, descendant: str) -> bool:
    while descendant is not None:
        if descendant == bone:
            return True
        descendant = parents[descendant]
    return False


@pytest.mark.parametrize("version", VERSIONS)
def test_a_new_skeleton_gets_an_ik_rig_and_a_retargeter_from_the_mannequin(version, character, tmp_path,
                                                                          monkeypatch, capsys):
    mesh, rig = character
    unreal = build_unreal(version, ucx_hulls=0, mesh_bones=file_bones(rig),
                          ik_rigs={IK_MANNEQUIN: PROJECT_IK_MANNEQUIN})
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    ik_rig = unreal.assets[f"{DEST}/IK_Hero"]
    assert isinstance(ik_rig, unreal.IKRigDefinition)
    assert ik_rig.get_editor_property("preview_skeletal_mesh") is unreal.assets[f"{DEST}/SK_Hero"]
    assert ik_rig.root == "pelvis"
    chains = ik_rig_chains(ik_rig)
    assert chains == MANNEQUIN_CHAINS
    for name, start, end in chains:  # each chain runs down the rig's own hierarchy
        assert is_ancestor_or_self(rig.parent_names, start, end), name
    generated = ("IK_Hero", "apply_auto_generated_retarget_definition") in ik_calls(unreal, "ik_rig")
    # Asked first where the editor has it (5.4+); it recognises no template here.
    assert generated is (parse_version(version) >= (5, 4))

    retargeter = unreal.assets[f"{DEST}/RTG_Hero"]
    controller = unreal.IKRetargeterController.get_controller(retargeter)
    sides = unreal.RetargetSourceOrTarget
    assert controller.get_ik_rig(sides.SOURCE) is unreal.assets[IK_MANNEQUIN]
    assert controller.get_ik_rig(sides.TARGET) is ik_rig
    assert mapped_source_chains(unreal, retargeter, chains) == {name: name for name, *_ in chains}
    op_stack = [c for c in ik_calls(unreal, "retargeter", "RTG_Hero") if c[1] in ("add_default_ops",
                                                                                   "assign_ik_rig_to_all_ops")]
    assert bool(op_stack) is (parse_version(version) >= (5, 6))
    if op_stack:
        assert ("RTG_Hero", "assign_ik_rig_to_all_ops", "target", "IK_Hero") in op_stack

    checked = joined(report, "checked")
    assert f"IK Rig: {DEST}/IK_Hero (retarget root pelvis, {len(chains)} chain(s): Root, Spine" in checked
    assert (f"IK Retargeter: {DEST}/RTG_Hero ({IK_MANNEQUIN} to {DEST}/IK_Hero, {len(chains)} of {len(chains)} "
            "chains mapped)") in checked
    out = capsys.readouterr().out
    assert "0 failed" in out and "0 mismatch(es)" in out


@pytest.mark.parametrize("version", ["5.4", "5.7"])
def test_the_editors_own_retarget_definition_is_preferred(version, character, tmp_path, monkeypatch):
    """Where the editor recognises the skeleton it generates the chains (UE 5.4+); ours are not added then."""
    mesh, rig = character
    own = ("pelvis", [("Spine", "spine_01", "spine_05"), ("LeftArm", "clavicle_l", "hand_l"),
                      ("RightArm", "clavicle_r", "hand_r")])
    unreal = build_unreal(version, ucx_hulls=0, mesh_bones=file_bones(rig), auto_retarget_definition=own,
                          ik_rigs={IK_MANNEQUIN: PROJECT_IK_MANNEQUIN})
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    ik_rig = unreal.assets[f"{DEST}/IK_Hero"]
    assert ik_rig_chains(ik_rig) == own[1] and ik_rig.root == "pelvis"
    assert not [c for c in ik_calls(unreal, "ik_rig", "IK_Hero") if c[1] == "add_retarget_chain"]
    assert any("recognised the skeleton" in d for d in report["done"])
    mapped = mapped_source_chains(unreal, unreal.assets[f"{DEST}/RTG_Hero"], own[1])
    assert mapped == {"Spine": "Spine", "LeftArm": "LeftArm", "RightArm": "RightArm"}
    assert f"IK Rig: {DEST}/IK_Hero (retarget root pelvis, 3 chain(s): Spine, LeftArm, RightArm)" in joined(
        report, "checked")


@pytest.mark.parametrize("version", ["5.3", "5.6"])
def test_without_the_mannequins_ik_rig_only_the_ik_rig_is_made(version, character, tmp_path, monkeypatch):
    mesh, rig = character
    unreal = build_unreal(version, ucx_hulls=0, mesh_bones=file_bones(rig))
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert f"{DEST}/IK_Hero" in unreal.assets and f"{DEST}/RTG_Hero" not in unreal.assets
    assert not ik_calls(unreal, "retargeter")
    assert any(s.startswith("RTG_Hero not made: no Mannequin IK Rig in this project (looked at " + IK_MANNEQUIN)
               for s in report["skipped"])
    assert "IK Retargeter RTG_Hero: not made (no Mannequin IK Rig in this project" in joined(report, "checked")


def test_on_the_mannequins_skeleton_no_ik_assets_are_made(character, tmp_path, monkeypatch):
    mesh, rig = character
    unreal = build_unreal("5.5", ucx_hulls=0, skeletons={MANNEQUIN: mannequin(rig)}, mesh_bones=file_bones(rig),
                          ik_rigs={IK_MANNEQUIN: PROJECT_IK_MANNEQUIN})
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert not [p for p in unreal.assets if p.startswith((f"{DEST}/IK_", f"{DEST}/RTG_"))]
    assert not ik_calls(unreal, "ik_rig") and not ik_calls(unreal, "retargeter")
    assert f"IK Rig / IK Retargeter: none needed (SK_Hero is on {MANNEQUIN})" in joined(report, "checked")


@pytest.mark.parametrize("version", ["5.3", "5.8"])
def test_an_editor_without_the_ik_rig_api_skips_cleanly(version, character, tmp_path, monkeypatch, capsys):
    mesh, rig = character
    unreal = build_unreal(version, ucx_hulls=0, mesh_bones=file_bones(rig), ik_rig_plugin=False)
    assert not hasattr(unreal, "IKRigController") and not hasattr(unreal, "IKRetargeterController")
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert not [p for p in unreal.assets if p.startswith((f"{DEST}/IK_", f"{DEST}/RTG_"))]
    assert any("IK_Hero and RTG_Hero not made: this editor lacks unreal.IKRigDefinition" in s
               for s in report["skipped"])
    assert any(s.startswith("check: IK Rig IK_Hero: not made (this editor lacks") for s in report["skipped"])
    assert "IK Retargeter RTG_Hero: not made (no IK Rig to retarget to)" in joined(report, "checked")
    out = capsys.readouterr().out
    assert "0 failed" in out and "0 mismatch(es)" in out


def test_an_editor_with_ik_rigs_but_no_retargeter_api_makes_the_ik_rig_only(character, tmp_path, monkeypatch):
    mesh, rig = character
    unreal = build_unreal("5.5", ucx_hulls=0, mesh_bones=file_bones(rig), ik_rigs={IK_MANNEQUIN: PROJECT_IK_MANNEQUIN},
                          drop=("IKRetargeterController", "IKRetargetFactory"))
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert f"{DEST}/IK_Hero" in unreal.assets and f"{DEST}/RTG_Hero" not in unreal.assets
    assert any("RTG_Hero not made: this editor lacks unreal.IKRetargetFactory, unreal.IKRetargeterController" in s
               for s in report["skipped"])


@pytest.mark.parametrize("version", ["5.4", "5.6"])
def test_a_second_run_updates_the_ik_rig_and_retargeter_in_place(version, character, tmp_path, monkeypatch):
    mesh, rig = character
    unreal = build_unreal(version, ucx_hulls=0, mesh_bones=file_bones(rig),
                          ik_rigs={IK_MANNEQUIN: PROJECT_IK_MANNEQUIN})
    path = write_script(tmp_path, rig)
    run_script(path, unreal, monkeypatch)
    first_rig, first_retargeter = unreal.assets[f"{DEST}/IK_Hero"], unreal.assets[f"{DEST}/RTG_Hero"]
    report = run_script(path, unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert unreal.assets[f"{DEST}/IK_Hero"] is first_rig and unreal.assets[f"{DEST}/RTG_Hero"] is first_retargeter
    assert ik_rig_chains(first_rig) == MANNEQUIN_CHAINS  # replaced, not added again as LeftArm_1
    assert {f"{DEST}/IK_Hero exists: updating it", f"{DEST}/RTG_Hero exists: updating it"} <= set(report["done"])
    assert mapped_source_chains(unreal, first_retargeter, MANNEQUIN_CHAINS) == {n: n for n, *_ in MANNEQUIN_CHAINS}
    if parse_version(version) >= (5, 6):
        assert unreal.IKRetargeterController.get_controller(first_retargeter).get_num_retarget_ops() == 5


def test_an_asset_of_another_kind_under_the_ik_rigs_name_is_left_alone(character, tmp_path, monkeypatch):
    mesh, rig = character
    unreal = build_unreal("5.6", ucx_hulls=0, mesh_bones=file_bones(rig), existing={f"{DEST}/IK_Hero": "Material"},
                          ik_rigs={IK_MANNEQUIN: PROJECT_IK_MANNEQUIN})
    report = run_script(write_script(tmp_path, rig), unreal, monkeypatch)
    assert report["failed"] == [f"{DEST}/IK_Hero exists and is not an IKRigDefinition: left as it is"]
    assert isinstance(unreal.assets[f"{DEST}/IK_Hero"], unreal.Material) and f"{DEST}/RTG_Hero" not in unreal.assets
    assert report["mismatch"] == []


@pytest.mark.parametrize("version", ["5.3", "5.7"])
def test_a_generic_skeleton_gets_an_ik_rig_with_its_root_only(version, character, tmp_path, monkeypatch):
    """A skeleton of the model's own (UniRig names): the package says so, the IK Rig gets the root's first child as
    its retarget root and no chains, and no retargeter is made even beside the Mannequin's IK Rig."""
    mesh, rig = character
    generic = replace(rig, bone_names=[f"bone_{i}" for i in range(len(rig.bone_names))],
                      report={**rig.report, "skeleton": "generic"})
    path = export_package(character_bundle(mesh, generic), "ue5", tmp_path / "zip", use_fbx=False)
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "unzipped")
    script = (tmp_path / "unzipped" / "import_Hero.py").read_text()
    assert "GENERIC_SKELETON = True" in script and "MANNEQUIN_SKELETONS = []" in script
    root_child = next(generic.bone_names[i] for i, p in enumerate(generic.parents) if p == 0)
    unreal = build_unreal(version, ucx_hulls=0, mesh_bones=file_bones(generic),
                          ik_rigs={IK_MANNEQUIN: PROJECT_IK_MANNEQUIN})
    report = run_script(tmp_path / "unzipped" / "import_Hero.py", unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    ik_rig = unreal.assets[f"{DEST}/IK_Hero"]
    assert ik_rig.root == root_child and ik_rig.chains == []
    assert f"{DEST}/RTG_Hero" not in unreal.assets
    assert any("set the chains by hand" in s for s in report["skipped"])
    checked = joined(report, "checked")
    assert f"IK Rig: {DEST}/IK_Hero (retarget root {root_child}, 0 chain(s); set them by hand)" in checked
    assert "IK Retargeter RTG_Hero: not made (a generic skeleton" in checked


def test_the_retarget_definition_follows_the_bones():
    names = ["root", "pelvis", "spine_01", "spine_05", "thigh_l", "calf_l", "foot_l", "ball_l"]
    parents = [None, "root", "pelvis", "spine_01", "pelvis", "thigh_l", "calf_l", "foot_l"]
    text = import_script("Hero", ["SK_Hero.fbx"], "SK_Hero", {}, "M_Hero", skeletal=True, bones=names, parents=parents)
    scope = {}
    exec(text.split("import os")[0], scope)  # the settings block on top of the script
    assert scope["IK_RETARGET_ROOT"] == "pelvis"
    assert scope["IK_CHAINS"] == [c for c in MANNEQUIN_CHAINS if c[0] in ("Root", "Spine", "LeftLeg")]
    assert scope["MANNEQUIN_IK_RIGS"] == MANNEQUIN_IK_RIGS and scope["GENERIC_SKELETON"] is False
    text = import_script("Dog", ["SK_Dog.fbx"], "SK_Dog", {}, "M_Dog", skeletal=True, bones=["a", "b", "c"],
                         parents=[None, "a", "b"], generic_skeleton=True, mannequin_ik_rigs=["/Game/My/IK_Base"])
    scope = {}
    exec(text.split("import os")[0], scope)
    assert scope["IK_RETARGET_ROOT"] == "b" and scope["IK_CHAINS"] == []
    assert scope["MANNEQUIN_IK_RIGS"] == ["/Game/My/IK_Base"]
    with pytest.raises(InputError) as info:
        import_script("Hero", ["SM_Hero.fbx"], "SM_Hero", {}, "M_Hero", generic_skeleton=True)
    assert info.value.argument == "generic_skeleton"


def test_the_stand_ins_ik_api_follows_the_versions():
    """What each modelled version offers (see tests/unreal_standin.py): auto-generated definitions from 5.4, the op
    stack from 5.6, and nothing of it without the plugin."""
    for version in VERSIONS:
        unreal = build_unreal(version)
        ver = parse_version(version)
        assert hasattr(unreal.IKRigController, "apply_auto_generated_retarget_definition") is (ver >= (5, 4))
        assert hasattr(unreal.IKRetargeterController, "add_default_ops") is (ver >= (5, 6))
        assert not hasattr(unreal.IKRigController, "set_solver_enabled")  # only what the script may use is modelled
    older = build_unreal("5.3", ik_rig_plugin=False)
    assert not [n for n in ("IKRigDefinition", "IKRetargeter", "RetargetSourceOrTarget") if hasattr(older, n)]
    unreal = build_unreal("5.3")
    rig = unreal.AssetToolsHelpers.get_asset_tools().create_asset("IK_X", "/Game", unreal.IKRigDefinition,
                                                                   unreal.IKRetargetFactory())
    assert rig is None  # a factory makes only its own class
    controller = unreal.IKRetargeterController()
    with pytest.raises(TypeError):
        controller.auto_map_chains(unreal.AutoMapChainType.EXACT, True, "FK Chains")  # op_name only from 5.6

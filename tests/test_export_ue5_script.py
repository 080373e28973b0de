"""import_<Name>.py against tests/unreal_standin.py, a strict stand-in of the editor's `unreal` module per
engine version (5.3/5.4 legacy FBX importer; 5.5-5.8 Interchange for FBX; glTF through Interchange in all):
legacy FBX, Interchange (pipeline stack override, set_lod_from_static_mesh LODs, the collision rename), the
closing self-check, and an editor that lacks some APIs (the script reports the skip instead of crashing)."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from server.export.naming import engine_names
from server.export.package import export_package
from server.export.ue5_script import import_script
from tests.test_export_package import make_bundle
from tests.unreal_standin import LEGACY_FBX_VERSIONS, VERSIONS, build_unreal, properties_set_on, run_script

NAMES = engine_names("Barrel", "ue5", 3)
DEST = "/Game/Open3DForge/Barrel"
TRIANGLES = [1000, 500, 250]  # the stand-in's default triangles for SM_Barrel, _LOD1, _LOD2


def write_script(folder: Path, **options) -> Path:
    """The script beside placeholder files with the zip's names (the stand-in never reads them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in list(NAMES.mesh_files) + list(NAMES.textures.values()):
        (folder / name).write_bytes(b"placeholder")
    options.setdefault("lod_triangles", TRIANGLES)
    text = import_script("Barrel", list(NAMES.mesh_files), "SM_Barrel", NAMES.textures, "M_Barrel",
                         hull_count=options.pop("hull_count", 2), **options)
    path = folder / "import_Barrel.py"
    path.write_text(text)
    return path


def texture_sets(calls, texture):
    return {c[3]: c[4] for c in calls if c[0] == "set" and c[1] == "Texture2D" and c[2] == texture}


def mesh(unreal, name="SM_Barrel"):
    return unreal.assets[f"{DEST}/{name}"]


def test_script_compiles_and_has_its_settings_on_top(tmp_path):
    text = write_script(tmp_path, nanite=True).read_text()
    compile(text, "import_Barrel.py", "exec")
    assert "DESTINATION = '/Game/Open3DForge/Barrel'" in text
    assert text.index("DESTINATION =") < text.index("import unreal")
    assert "NANITE = True" in text
    assert "DO_NOT_CREATE_MATERIAL" not in text  # not a member of InterchangeMaterialImportOption


@pytest.mark.parametrize("version", VERSIONS)
def test_fbx_import(version, tmp_path, monkeypatch, capsys):
    """The whole FBX flow per version: legacy FbxImportUI + import_lod on 5.3/5.4, Interchange stack override
    + temporary LOD meshes + set_lod_from_static_mesh from 5.5; textures, material and the self-check everywhere."""
    unreal = build_unreal(version)
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    calls = unreal.calls
    assert report["failed"] == [] and report["mismatch"] == []
    legacy = version in LEGACY_FBX_VERSIONS
    imports = [c[1:] for c in calls if c[0] == "import"]
    mesh_options = "FbxImportUI" if legacy else "InterchangePipelineStackOverride"
    assert imports[:4] == [("SM_Barrel.fbx", DEST, mesh_options), ("T_Barrel_BC.png", DEST, None),
                           ("T_Barrel_N.png", DEST, None), ("T_Barrel_ORM.png", DEST, None)]
    first = unreal.imports[0]
    assert first["importer"] == ("legacy" if legacy else "interchange")
    assert first["stack"] == ("FbxImportUI" if legacy else "override")  # our options, not the project default
    assert first["materials"] is False and first["hulls"] == 2 and first["nanite"] is False
    if legacy:
        ui = properties_set_on(calls, "FbxImportUI")
        assert ui["import_materials"] is False and ui["import_textures"] is False and ui["import_mesh"] is True
        assert ui["mesh_type_to_import"] == "FBXImportType.FBXIT_STATIC_MESH"
        data = properties_set_on(calls, "FbxStaticMeshImportData")
        assert data["one_convex_hull_per_ucx"] is True and data["auto_generate_collision"] is False
        assert data["normal_import_method"] == "FBXNormalImportMethod.FBXNIM_IMPORT_NORMALS_AND_TANGENTS"
        assert data["normal_generation_method"] == "FBXNormalGenerationMethod.MIKK_T_SPACE"
        lods = [c for c in calls if c[0] == "import_lod"]
        assert lods == [("import_lod", "subsystem", "SM_Barrel", 1, "SM_Barrel_LOD1.fbx"),
                        ("import_lod", "subsystem", "SM_Barrel", 2, "SM_Barrel_LOD2.fbx")]
        assert not [c for c in calls if c[0] == "set_lod"]
    else:
        meshes = [c for c in calls if c[0] == "set" and c[1] == "InterchangeGenericMeshPipeline"]
        main = {c[3]: c[4] for c in meshes[:8]}
        assert main["collision"] is True and "import_collision" not in {c[3] for c in meshes}  # renamed in 5.5
        assert main["import_collision_according_to_mesh_name"] is True and main["one_convex_hull_per_ucx"] is True
        assert ("add_pipeline", "InterchangeGenericAssetsPipeline") in calls
        assert properties_set_on(calls, "InterchangeGenericMaterialPipeline")["import_materials"] is False
        assert properties_set_on(calls, "InterchangeGenericTexturePipeline")["import_textures"] is False
        common = properties_set_on(calls, "InterchangeGenericCommonMeshesProperties")
        assert common["recompute_tangents"] is False and common["use_mikk_t_space"] is True
        assert not [c for c in calls if c[0] == "import_lod"]  # asynchronous under Interchange
        lods = [c for c in calls if c[0] == "set_lod"]
        assert lods == [("set_lod", "subsystem", "SM_Barrel", 1, "SM_Barrel_LOD1", 0, True),
                        ("set_lod", "subsystem", "SM_Barrel", 2, "SM_Barrel_LOD2", 0, True)]
        assert imports[4:] == [("SM_Barrel_LOD1.fbx", DEST + "/LODs", "InterchangePipelineStackOverride"),
                               ("SM_Barrel_LOD2.fbx", DEST + "/LODs", "InterchangePipelineStackOverride")]
        assert [i["hulls"] for i in unreal.imports[1:]] == [0, 0]  # LOD meshes: no collision
        assert not [p for p in unreal.assets if "/LODs/" in p]  # temporary LOD meshes deleted
    assert mesh(unreal).lods == TRIANGLES and mesh(unreal).hulls == 2
    assert unreal.pending_lods == []

    bc, n, orm = (texture_sets(calls, f"T_Barrel_{s}") for s in ("BC", "N", "ORM"))
    assert bc["compression_settings"] == "TextureCompressionSettings.TC_DEFAULT" and bc["srgb"] is True
    assert n["compression_settings"] == "TextureCompressionSettings.TC_NORMALMAP" and n["srgb"] is False
    assert n["flip_green_channel"] is False  # already DirectX
    assert orm["compression_settings"] == "TextureCompressionSettings.TC_MASKS" and orm["srgb"] is False
    assert ("create_asset", "M_Barrel", DEST, "Material") in calls
    connections = [c[1:] for c in calls if c[0] == "connect"]
    assert connections == [("T_Barrel_BC", "RGB", "MaterialProperty.MP_BASE_COLOR"),
                           ("T_Barrel_N", "RGB", "MaterialProperty.MP_NORMAL"),
                           ("T_Barrel_ORM", "R", "MaterialProperty.MP_AMBIENT_OCCLUSION"),
                           ("T_Barrel_ORM", "G", "MaterialProperty.MP_ROUGHNESS"),
                           ("T_Barrel_ORM", "B", "MaterialProperty.MP_METALLIC")]
    samplers = [c[4] for c in calls if c[0] == "set" and c[1] == "MaterialExpressionTextureSample" and c[3] == "sampler_type"]
    assert samplers == ["MaterialSamplerType.SAMPLERTYPE_COLOR", "MaterialSamplerType.SAMPLERTYPE_NORMAL",
                        "MaterialSamplerType.SAMPLERTYPE_MASKS"]
    assert ("set_material", "SM_Barrel", 0, "M_Barrel") in calls
    # Order: mesh import, textures, material wiring, material on the mesh, then LOD1 and LOD2.
    order = [calls.index(c) for c in (
        next(c for c in calls if c[0] == "import"), next(c for c in calls if c[0] == "connect"),
        ("set_material", "SM_Barrel", 0, "M_Barrel"), lods[0], lods[1])]
    assert order == sorted(order)
    assert properties_set_on(calls, "MeshNaniteSettings") == {"enabled": False}  # Nanite set off too when not asked
    checked = " | ".join(report["checked"])
    for text in ("SM_Barrel LOD count: 3", "LOD1: 500 triangles", "convex collision hulls: 2", "SM_Barrel Nanite: False",
                 "slot 0 material: M_Barrel", "SM_Barrel material slots: 1", "M_Barrel normal sample: T_Barrel_N", "T_Barrel_N sRGB: False"):
        assert text in checked
    assert not [c for c in calls if c[0] == "log_error"]
    out = capsys.readouterr().out
    assert "[Open3DForge] finished Barrel:" in out and "0 failed" in out and "0 mismatch(es)" in out


@pytest.mark.parametrize("version", VERSIONS)
def test_nanite_on(version, tmp_path, monkeypatch):
    unreal = build_unreal(version)
    report = run_script(write_script(tmp_path, nanite=True), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert properties_set_on(unreal.calls, "MeshNaniteSettings")["enabled"] is True
    assert mesh(unreal)._props["nanite_settings"]._props["enabled"] is True
    if version not in LEGACY_FBX_VERSIONS:
        builds = [c[4] for c in unreal.calls if c[0] == "set" and c[3] == "build_nanite"]
        assert builds == [True, False, False]  # the main mesh, not the temporary LOD meshes
    assert any("SM_Barrel Nanite: True" in m for m in report["checked"])


@pytest.mark.parametrize("version", VERSIONS)
def test_nanite_turned_off_on_a_mesh_that_had_it(version, tmp_path, monkeypatch):
    """Re-import over a Nanite mesh: the flag off must switch Nanite off, not leave it on."""
    unreal = build_unreal(version)
    original = unreal.AssetToolsHelpers.get_asset_tools().import_asset_tasks

    def import_with_nanite(tasks):
        original(tasks)
        for task in tasks:
            for obj in task.get_objects():
                if isinstance(obj, unreal.StaticMesh):
                    obj._props["nanite_settings"]._props["enabled"] = True

    unreal.AssetToolsHelpers.get_asset_tools().import_asset_tasks = import_with_nanite
    report = run_script(write_script(tmp_path, nanite=False), unreal, monkeypatch)
    assert report["mismatch"] == []
    assert mesh(unreal)._props["nanite_settings"]._props["enabled"] is False


@pytest.mark.parametrize("version", VERSIONS)
def test_script_from_a_real_zip_runs(version, tmp_path, monkeypatch):
    """GLB meshes (no bpy): Interchange in every version; triangles checked against manifest.json."""
    path = export_package(make_bundle(), "ue5", tmp_path / "zip", use_fbx=False)
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "unzipped")
    manifest = json.loads((tmp_path / "unzipped" / "manifest.json").read_text())
    stems = ["SM_Barrel", "SM_Barrel_LOD1", "SM_Barrel_LOD2"]
    unreal = build_unreal(version, ucx_hulls=manifest["collision_hulls"],
                          triangles=dict(zip(stems, manifest["lod_triangles"])))
    report = run_script(tmp_path / "unzipped" / "import_Barrel.py", unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert [c[1] for c in unreal.calls if c[0] == "import"][0] == "SM_Barrel.glb"
    assert unreal.imports[0]["stack"] == "override" and unreal.imports[0]["materials"] is False
    assert [c[4] for c in unreal.calls if c[0] == "set_lod"] == ["SM_Barrel_LOD1", "SM_Barrel_LOD2"]
    assert mesh(unreal).lods == manifest["lod_triangles"]
    checked = " | ".join(report["checked"])
    assert "LOD2: %d triangles (manifest %d)" % (manifest["lod_triangles"][2], manifest["lod_triangles"][2]) in checked


def test_self_check_logs_each_mismatch(tmp_path, monkeypatch, capsys):
    """Where LODs can't be set (no set_lod_from_static_mesh) and the file had fewer hulls than the manifest,
    the self-check says so with log_error, one per mismatch."""
    unreal = build_unreal("5.6", ucx_hulls=1, drop=("StaticMeshEditorSubsystem.set_lod_from_static_mesh",
                                                    "EditorStaticMeshLibrary.set_lod_from_static_mesh"))
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    assert any("set_lod_from_static_mesh" in s for s in report["skipped"])
    assert not [c for c in unreal.calls if c[0] == "import_lod"]  # no fallback to the asynchronous import_lod
    mismatches = report["mismatch"]
    assert any("LOD count: 1, the manifest says 3" in m for m in mismatches)
    assert any("collision hulls: 1, the manifest says 2" in m for m in mismatches)
    errors = [c[1] for c in unreal.calls if c[0] == "log_error"]
    assert len(errors) == len(mismatches) and all("mismatch" in e for e in errors)
    assert "2 mismatch(es)" in capsys.readouterr().out


def test_triangle_mismatch_is_reported(tmp_path, monkeypatch):
    unreal = build_unreal("5.3", triangles={"SM_Barrel_LOD1": 420})
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    assert report["mismatch"] == ["SM_Barrel LOD1: 420 triangles, the manifest says 500"]


@pytest.mark.parametrize("version", VERSIONS)
def test_standin_is_strict_where_issue_12_bit(version, tmp_path):
    """The stand-in fails what the real editor fails: unknown enum members and properties, a bare pipeline
    in AssetImportTask.options (the default stack runs), import_lod under Interchange (returns early)."""
    unreal = build_unreal(version)
    assert not hasattr(unreal.InterchangeMaterialImportOption, "DO_NOT_CREATE_MATERIAL")
    meshes = unreal.InterchangeGenericMeshPipeline()
    renamed, gone = ("collision", "import_collision") if version >= "5.5" else ("import_collision", "collision")
    meshes.set_editor_property(renamed, True)
    with pytest.raises(AttributeError):
        meshes.set_editor_property(gone, True)
    assert hasattr(unreal.InterchangePipelineStackOverride(), "add_pipeline") is (version >= "5.4")
    (tmp_path / "SM_A.glb").write_bytes(b"x")
    (tmp_path / "SM_A_LOD1.glb").write_bytes(b"x")
    task = unreal.AssetImportTask()
    task.set_editor_property("filename", str(tmp_path / "SM_A.glb"))
    task.set_editor_property("destination_path", DEST)
    task.set_editor_property("options", unreal.InterchangeGenericAssetsPipeline())
    unreal.AssetToolsHelpers.get_asset_tools().import_asset_tasks([task])
    assert unreal.imports[-1]["stack"] == "project default" and unreal.imports[-1]["materials"] is True
    made = task.get_objects()[0]
    assert unreal.get_editor_subsystem(unreal.StaticMeshEditorSubsystem).import_lod(
        made, 1, str(tmp_path / "SM_A_LOD1.glb")) == 1
    assert made.get_num_lods() == 1 and unreal.pending_lods == [("SM_A", 1, "SM_A_LOD1")]


@pytest.mark.parametrize("version", ["5.5", "5.8"])
def test_the_previous_script_fails_under_the_standin(version, tmp_path, monkeypatch):
    """The script before issue 12 (git HEAD) would pass a bare pipeline and an unknown enum value on 5.5+:
    the stand-in now shows the project's default stack running and LODs that never land."""
    try:
        old = subprocess.run(["git", "show", "HEAD:server/export/ue5_script.py"], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git history here")
    if "InterchangePipelineStackOverride" in old:
        pytest.skip("HEAD already has the fix")
    scope = {}
    exec(compile(old, "old_ue5_script.py", "exec"), scope)
    folder = tmp_path / "old"
    folder.mkdir()
    for name in list(NAMES.mesh_files) + list(NAMES.textures.values()):
        (folder / name).write_bytes(b"placeholder")
    (folder / "import_Barrel.py").write_text(scope["import_script"](
        "Barrel", list(NAMES.mesh_files), "SM_Barrel", NAMES.textures, "M_Barrel", hull_count=2))
    unreal = build_unreal(version)
    run_script(folder / "import_Barrel.py", unreal, monkeypatch)
    assert unreal.imports[0]["stack"] == "project default" and unreal.imports[0]["materials"] is True
    assert mesh(unreal).get_num_lods() == 1 and unreal.pending_lods  # import_lod returned before LOD1 existed
    assert not [c for c in unreal.calls if c[0] == "set" and c[3] == "collision"]  # only the 5.4 name was tried


@pytest.mark.parametrize("version", ["5.3", "5.5"])
def test_existing_material_instance_is_left_alone(version, tmp_path, monkeypatch):
    unreal = build_unreal(version, existing={f"{DEST}/M_Barrel": "MaterialInstanceConstant"})
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert isinstance(unreal.assets[f"{DEST}/M_Barrel"], unreal.MaterialInstanceConstant)
    assert ("create_asset", "M_Barrel_2", DEST, "Material") in unreal.calls
    assert ("set_material", "SM_Barrel", 0, "M_Barrel_2") in unreal.calls
    assert any("not a plain Material" in s and "M_Barrel_2" in s for s in report["skipped"])


def test_existing_plain_material_is_reused(tmp_path, monkeypatch):
    unreal = build_unreal("5.5", existing={f"{DEST}/M_Barrel": "Material"})
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert ("delete_expressions", "M_Barrel") in unreal.calls
    assert not [c for c in unreal.calls if c[0] == "create_asset"]


def test_interchange_without_pipeline_class_keeps_hulls_via_legacy_options(tmp_path, monkeypatch):
    """Interchange converts FbxImportUI; its auto_generate_collision becomes the collision flag, which also
    gates UCX hulls, so the script turns it on there (and only when the file has hulls)."""
    unreal = build_unreal("5.5", drop=("InterchangeGenericAssetsPipeline",))
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    generate = [c[4] for c in unreal.calls if c[0] == "set" and c[3] == "auto_generate_collision"]
    assert generate[0] is True and set(generate[1:]) == {False}  # LOD0 on; the temporary LOD meshes off
    assert unreal.imports[0]["stack"] == "converted FbxImportUI" and unreal.imports[0]["hulls"] == 2
    unreal = build_unreal("5.5", ucx_hulls=0, drop=("InterchangeGenericAssetsPipeline",))
    report = run_script(write_script(tmp_path / "nohulls", hull_count=0), unreal, monkeypatch)
    assert {c[4] for c in unreal.calls if c[0] == "set" and c[3] == "auto_generate_collision"} == {False}
    assert report["mismatch"] == []


def test_missing_stack_override_class_is_a_clear_failure(tmp_path, monkeypatch):
    unreal = build_unreal("5.6", drop=("InterchangePipelineStackOverride",))
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    assert any("InterchangePipelineStackOverride" in f and "default Interchange stack" in f for f in report["failed"])


@pytest.mark.parametrize("version", ["5.3", "5.5"])
def test_missing_apis_are_reported_not_fatal(version, tmp_path, monkeypatch, capsys):
    unreal = build_unreal(version, drop=(
        "StaticMeshEditorSubsystem", "EditorStaticMeshLibrary", "MaterialEditingLibrary",
        "MaterialSamplerType.SAMPLERTYPE_MASKS", "FBXNormalGenerationMethod.MIKK_T_SPACE", "TextureGroup"))
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    skipped = " | ".join(report["skipped"])
    assert ("import_lod" if version == "5.3" else "set_lod_from_static_mesh") in skipped
    assert "MaterialEditingLibrary" in skipped
    if version == "5.3":
        assert "normal_generation_method" in skipped
    assert report["failed"] == []
    # The self-check still reads what it can and names what is missing.
    assert any("LOD count: 1, the manifest says 3" in m for m in report["mismatch"])
    assert any("M_Barrel: not built" in m for m in report["mismatch"])
    calls = unreal.calls
    assert not [c for c in calls if c[0] in ("import_lod", "set_lod", "connect", "set_material")]
    assert [c[1] for c in calls if c[0] == "import"] == ["SM_Barrel.fbx", "T_Barrel_BC.png", "T_Barrel_N.png",
                                                         "T_Barrel_ORM.png"]
    warnings = [c[1] for c in calls if c[0] == "log_warning"]
    assert any("LOD1..LOD2" in w for w in warnings) and any("MaterialEditingLibrary" in w for w in warnings)
    out = capsys.readouterr().out  # the closing summary repeats every skip
    assert "skipped: LOD1..LOD2" in out and "failed" in out


def test_older_editor_uses_the_static_mesh_library(tmp_path, monkeypatch):
    unreal = build_unreal("5.0.3", drop=("StaticMeshEditorSubsystem", "MaterialSamplerType.SAMPLERTYPE_MASKS"))
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    assert [c[1:4] for c in unreal.calls if c[0] == "import_lod"] == [("library", "SM_Barrel", 1), ("library", "SM_Barrel", 2)]
    orm_sampler = [c[4] for c in unreal.calls if c[0] == "set" and c[3] == "sampler_type"][-1]
    assert orm_sampler == "MaterialSamplerType.SAMPLERTYPE_LINEAR_COLOR"


@pytest.mark.parametrize("version", ["5.3", "5.7"])
def test_missing_file_is_a_reported_failure(version, tmp_path, monkeypatch):
    path = write_script(tmp_path)
    (tmp_path / "SM_Barrel_LOD2.fbx").unlink()
    unreal = build_unreal(version)
    report = run_script(path, unreal, monkeypatch)
    assert any("LOD2" in message for message in report["failed"])
    assert mesh(unreal).lods == TRIANGLES[:2]
    assert any("LOD count: 2, the manifest says 3" in m for m in report["mismatch"])


def test_editor_without_python_import_api_fails_clearly(tmp_path, monkeypatch):
    unreal = build_unreal(drop=("AssetImportTask",))
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    assert report["failed"] and "AssetImportTask" in report["failed"][0]


def test_skeletal_lods_use_the_subsystem_not_the_deprecated_library(tmp_path, monkeypatch):
    folder = tmp_path
    mesh_files = list(engine_names("Barrel", "ue5", 3, skeletal=True).mesh_files)
    for name in mesh_files + list(NAMES.textures.values()):
        (folder / name).write_bytes(b"placeholder")
    path = folder / "import_Barrel.py"
    path.write_text(import_script("Barrel", mesh_files, "SK_Barrel", NAMES.textures, "M_Barrel", skeletal=True))
    unreal = build_unreal("5.3", ucx_hulls=0)
    report = run_script(path, unreal, monkeypatch)
    assert report["failed"] == []
    kinds = [c[1] for c in unreal.calls if c[0] == "import_lod"]
    assert kinds == ["skeletal subsystem", "skeletal subsystem"]
    assert any("LOD count: 3" in c for c in report["checked"])


def test_skeletal_lods_under_interchange_are_flagged_by_the_self_check(tmp_path, monkeypatch):
    """Known gap: skeletal LODs still go through import_lod, which returns early under Interchange; the
    self-check says so instead of reporting success silently."""
    mesh_files = list(engine_names("Barrel", "ue5", 3, skeletal=True).mesh_files)
    for name in mesh_files + list(NAMES.textures.values()):
        (tmp_path / name).write_bytes(b"placeholder")
    path = tmp_path / "import_Barrel.py"
    path.write_text(import_script("Barrel", mesh_files, "SK_Barrel", NAMES.textures, "M_Barrel", skeletal=True))
    unreal = build_unreal("5.5", ucx_hulls=0)
    report = run_script(path, unreal, monkeypatch)
    assert unreal.imports[0]["stack"] == "override"
    assert any("SK_Barrel LOD count: 1, the manifest says 3" in m for m in report["mismatch"])


@pytest.mark.parametrize("skeletal", [False, True])
def test_every_unreal_name_the_script_uses_exists_in_a_version_it_claims(tmp_path, skeletal):
    """A static check: each `unreal.<Name>` (and `unreal.<Enum>.<MEMBER>`) in the script is defined by the
    stand-in of at least one of UE 5.3 to 5.8; the script guards the ones a version lacks."""
    import ast

    tree = ast.parse(write_script(tmp_path, skeletal=skeletal).read_text())
    used: set[tuple[str, ...]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "unreal":
            used.add((node.attr,))
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "unreal"
                and node.value.attr.endswith(("Option", "Type", "Settings", "Compression", "Group"))):
            used.add((node.value.attr, node.attr))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) and node.args[0].id == "unreal"
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            used.add((node.args[1].value,))
    assert len(used) >= 8, used
    modules = [build_unreal(version) for version in VERSIONS]

    def defined(names):
        for module in modules:
            value = module
            try:
                for name in names:
                    value = getattr(value, name)
                return True
            except AttributeError:
                continue
        return False

    unknown = sorted(".".join(names) for names in used if not defined(names))
    assert unknown == [], f"unreal names no claimed version defines: {unknown}"

"""import_<Name>.py against a fake `unreal` module that records every call: legacy FBX, Interchange, and an
editor that lacks some APIs (the script reports the skip instead of crashing)."""

from __future__ import annotations

import runpy
import sys
import types
import zipfile
from pathlib import Path


from server.export.naming import engine_names
from server.export.package import export_package
from server.export.ue5_script import import_script
from tests.test_export_package import make_bundle


class Enum:
    """An enum namespace: unreal.Foo.BAR -> 'Foo.BAR' (members listed, others missing)."""

    def __init__(self, name, members):
        self._name = name
        for member in members:
            setattr(self, member, f"{name}.{member}")


def build_fake_unreal(*, version="5.3.2-0+UE5", interchange_fbx=False, drop=()):
    """A recording stand-in for the editor's `unreal` module. drop: dotted names removed from it."""
    calls = []
    assets = {}
    unreal = types.ModuleType("unreal")
    unreal.calls = calls
    unreal.assets = assets

    class UObject:
        defaults = {}

        def __init__(self, *args, **kwargs):
            self._props = {k: (v() if callable(v) else v) for k, v in self.defaults.items()}
            self.name = kwargs.get("name", "")

        def set_editor_property(self, name, value):
            allowed = getattr(self, "properties", None)
            if allowed is not None and name not in allowed:
                raise AttributeError(f"{type(self).__name__} has no property {name!r}")
            calls.append(("set", type(self).__name__, self.name, name, value))
            self._props[name] = value

        def get_editor_property(self, name):
            if name not in self._props:
                raise AttributeError(f"{type(self).__name__} has no property {name!r}")
            return self._props[name]

        def get_path_name(self):
            return self._props.get("path", self.name)

    def cls(name, base=UObject, **attrs):
        made = type(name, (base,), attrs)
        setattr(unreal, name, made)
        return made

    cls("FbxStaticMeshImportData")
    cls("FbxSkeletalMeshImportData")
    cls("FbxImportUI", defaults={"static_mesh_import_data": unreal.FbxStaticMeshImportData,
                                 "skeletal_mesh_import_data": unreal.FbxSkeletalMeshImportData})
    for name in ("InterchangeGenericCommonMeshesProperties", "InterchangeGenericMeshPipeline",
                 "InterchangeGenericTexturePipeline", "InterchangeGenericAnimationPipeline"):
        cls(name)
    cls("InterchangeGenericMaterialPipeline", defaults={"texture_pipeline": unreal.InterchangeGenericTexturePipeline})
    cls("InterchangeGenericAssetsPipeline", defaults={
        "common_meshes_properties": unreal.InterchangeGenericCommonMeshesProperties,
        "mesh_pipeline": unreal.InterchangeGenericMeshPipeline,
        "material_pipeline": unreal.InterchangeGenericMaterialPipeline,
        "animation_pipeline": unreal.InterchangeGenericAnimationPipeline})
    cls("MeshNaniteSettings")

    class StaticMesh(UObject):
        defaults = {"nanite_settings": unreal.MeshNaniteSettings}

        def set_material(self, index, material):
            calls.append(("set_material", self.name, index, material.name))

    unreal.StaticMesh = StaticMesh
    cls("SkeletalMesh")
    cls("Texture2D")
    cls("Material")
    cls("MaterialFactoryNew")
    cls("MaterialExpressionTextureSample")

    class AssetImportTask(UObject):
        def get_objects(self):
            return self._objects

    unreal.AssetImportTask = AssetImportTask

    class AssetTools:
        def import_asset_tasks(self, tasks):
            for task in tasks:
                filename = Path(task.get_editor_property("filename"))
                dest = task.get_editor_property("destination_path")
                options = task._props.get("options")
                calls.append(("import", filename.name, dest, type(options).__name__ if options else None))
                kind = unreal.Texture2D if filename.suffix == ".png" else unreal.StaticMesh
                obj = kind(name=filename.stem)
                obj._props["path"] = f"{dest}/{filename.stem}"
                assets[f"{dest}/{filename.stem}"] = obj
                task._objects = [obj]
                task._props["imported_object_paths"] = [f"{dest}/{filename.stem}.{filename.stem}"]

        def create_asset(self, name, path, asset_class, factory):
            calls.append(("create_asset", name, path, asset_class.__name__))
            obj = asset_class(name=name)
            assets[f"{path}/{name}"] = obj
            return obj

    tools = AssetTools()
    unreal.AssetToolsHelpers = types.SimpleNamespace(get_asset_tools=lambda: tools)

    class EditorAssetLibrary:
        @staticmethod
        def does_asset_exist(path):
            return path in assets

        @staticmethod
        def load_asset(path):
            return assets.get(path.split(".")[0])

        @staticmethod
        def save_loaded_asset(asset):
            calls.append(("save", asset.name))
            return True

    unreal.EditorAssetLibrary = EditorAssetLibrary

    class MaterialEditingLibrary:
        @staticmethod
        def create_material_expression(material, expression_class, x=0, y=0):
            node = expression_class(name=f"node{len([c for c in calls if c[0] == 'expression'])}")
            calls.append(("expression", material.name, expression_class.__name__, node.name))
            return node

        @staticmethod
        def connect_material_property(node, output, prop):
            texture = node._props.get("texture")
            calls.append(("connect", texture.name if texture else None, output, prop))
            return True

        @staticmethod
        def recompile_material(material):
            calls.append(("recompile", material.name))

        @staticmethod
        def layout_material_expressions(material):
            pass

        @staticmethod
        def delete_all_material_expressions(material):
            calls.append(("delete_expressions", material.name))

    unreal.MaterialEditingLibrary = MaterialEditingLibrary

    class StaticMeshEditorSubsystem:
        def import_lod(self, mesh, index, path):
            calls.append(("import_lod", "subsystem", mesh.name, index, Path(path).name))
            return index

    unreal.StaticMeshEditorSubsystem = StaticMeshEditorSubsystem
    unreal.get_editor_subsystem = lambda subsystem_class: subsystem_class()

    class EditorStaticMeshLibrary:
        @staticmethod
        def import_lod(mesh, index, path):
            calls.append(("import_lod", "library", mesh.name, index, Path(path).name))
            return index

    unreal.EditorStaticMeshLibrary = EditorStaticMeshLibrary

    def cvar(name):
        calls.append(("cvar", name))
        return interchange_fbx if name == "Interchange.FeatureFlags.Import.FBX" else False

    unreal.SystemLibrary = types.SimpleNamespace(get_engine_version=lambda: version,
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
    unreal.InterchangeMaterialImportOption = Enum("InterchangeMaterialImportOption", ["DO_NOT_CREATE_MATERIAL"])
    unreal.BlendMode = Enum("BlendMode", ["BLEND_MASKED"])
    unreal.log = lambda text: calls.append(("log", text))
    unreal.log_warning = lambda text: calls.append(("log_warning", text))
    unreal.log_error = lambda text: calls.append(("log_error", text))

    for dotted in drop:
        owner_path, _, attr = dotted.rpartition(".")
        owner = unreal
        for part in filter(None, owner_path.split(".")):
            owner = getattr(owner, part)
        delattr(owner, attr)
    return unreal


NAMES = engine_names("Barrel", "ue5", 3)


def write_script(folder: Path, **options) -> Path:
    """The script beside placeholder files with the zip's names (the fake editor never reads them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in list(NAMES.mesh_files) + list(NAMES.textures.values()):
        (folder / name).write_bytes(b"placeholder")
    text = import_script("Barrel", list(NAMES.mesh_files), "SM_Barrel", NAMES.textures, "M_Barrel",
                         hull_count=options.pop("hull_count", 2), **options)
    path = folder / "import_Barrel.py"
    path.write_text(text)
    return path


def run_script(path: Path, unreal, monkeypatch) -> dict:
    monkeypatch.setitem(sys.modules, "unreal", unreal)
    scope = runpy.run_path(str(path), run_name="__main__")
    return scope["REPORT"]


def sets(calls, owner):
    return {c[3]: c[4] for c in calls if c[0] == "set" and c[1] == owner}


def texture_sets(calls, texture):
    return {c[3]: c[4] for c in calls if c[0] == "set" and c[1] == "Texture2D" and c[2] == texture}


def test_script_compiles_and_has_its_settings_on_top(tmp_path):
    text = write_script(tmp_path, nanite=True).read_text()
    compile(text, "import_Barrel.py", "exec")
    assert "DESTINATION = '/Game/Open3DForge/Barrel'" in text
    assert text.index("DESTINATION =") < text.index("import unreal")
    assert "NANITE = True" in text


def test_classic_fbx_import(tmp_path, monkeypatch, capsys):
    unreal = build_fake_unreal()
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    calls = unreal.calls
    assert report["failed"] == []
    imports = [c[1:] for c in calls if c[0] == "import"]
    assert imports == [("SM_Barrel.fbx", "/Game/Open3DForge/Barrel", "FbxImportUI"),
                       ("T_Barrel_BC.png", "/Game/Open3DForge/Barrel", None),
                       ("T_Barrel_N.png", "/Game/Open3DForge/Barrel", None),
                       ("T_Barrel_ORM.png", "/Game/Open3DForge/Barrel", None)]
    ui = sets(calls, "FbxImportUI")
    assert ui["import_materials"] is False and ui["import_textures"] is False and ui["import_mesh"] is True
    assert ui["mesh_type_to_import"] == "FBXImportType.FBXIT_STATIC_MESH"
    data = sets(calls, "FbxStaticMeshImportData")
    assert data["one_convex_hull_per_ucx"] is True and data["auto_generate_collision"] is False
    assert data["normal_import_method"] == "FBXNormalImportMethod.FBXNIM_IMPORT_NORMALS_AND_TANGENTS"
    assert data["normal_generation_method"] == "FBXNormalGenerationMethod.MIKK_T_SPACE"
    task = sets(calls, "AssetImportTask")
    assert task["automated"] is True and task["filename"].endswith("T_Barrel_ORM.png")
    assert Path(task["filename"]).parent == tmp_path  # files are found beside the script

    bc, n, orm = (texture_sets(calls, f"T_Barrel_{s}") for s in ("BC", "N", "ORM"))
    assert bc["compression_settings"] == "TextureCompressionSettings.TC_DEFAULT" and bc["srgb"] is True
    assert n["compression_settings"] == "TextureCompressionSettings.TC_NORMALMAP" and n["srgb"] is False
    assert n["flip_green_channel"] is False  # already DirectX
    assert orm["compression_settings"] == "TextureCompressionSettings.TC_MASKS" and orm["srgb"] is False

    assert ("create_asset", "M_Barrel", "/Game/Open3DForge/Barrel", "Material") in calls
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
    lods = [c for c in calls if c[0] == "import_lod"]
    assert lods == [("import_lod", "subsystem", "SM_Barrel", 1, "SM_Barrel_LOD1.fbx"),
                    ("import_lod", "subsystem", "SM_Barrel", 2, "SM_Barrel_LOD2.fbx")]
    # Order: mesh import, textures, material wiring, material on the mesh, then LOD1 and LOD2.
    order = [calls.index(c) for c in (
        next(c for c in calls if c[0] == "import"), next(c for c in calls if c[0] == "connect"),
        ("set_material", "SM_Barrel", 0, "M_Barrel"), lods[0], lods[1])]
    assert order == sorted(order)
    assert not [c for c in calls if c[0] == "set" and c[3] == "enabled"]  # no Nanite unless asked
    out = capsys.readouterr().out
    assert "[Open3DForge] finished Barrel:" in out and "0 failed" in out


def test_interchange_fbx_import(tmp_path, monkeypatch, capsys):
    """UE 5.5+: FBX goes through Interchange; the script passes Interchange options that keep the UCX hulls."""
    unreal = build_fake_unreal(version="5.5.1-0+UE5", interchange_fbx=True)
    report = run_script(write_script(tmp_path, nanite=True), unreal, monkeypatch)
    calls = unreal.calls
    assert report["failed"] == []
    assert [c[3] for c in calls if c[0] == "import"][0] == "InterchangeGenericAssetsPipeline"
    meshes = sets(calls, "InterchangeGenericMeshPipeline")
    assert meshes["import_collision"] is True and meshes["import_collision_according_to_mesh_name"] is True
    assert meshes["one_convex_hull_per_ucx"] is True and meshes["build_nanite"] is True
    assert sets(calls, "InterchangeGenericMaterialPipeline")["material_import"] == \
        "InterchangeMaterialImportOption.DO_NOT_CREATE_MATERIAL"
    assert sets(calls, "InterchangeGenericTexturePipeline")["import_textures"] is False
    common = sets(calls, "InterchangeGenericCommonMeshesProperties")
    assert common["recompute_tangents"] is False and common["use_mikk_t_space"] is True
    assert [c[3] for c in calls if c[0] == "import_lod"] == [1, 2]
    assert sets(calls, "MeshNaniteSettings")["enabled"] is True
    assert any(c[0] == "log" and "Interchange" in c[1] for c in calls)
    assert "finished Barrel: " in capsys.readouterr().out


def test_interchange_without_pipeline_class_keeps_hulls_via_legacy_options(tmp_path, monkeypatch):
    """Interchange converts FbxImportUI; its auto_generate_collision becomes import_collision, which also
    gates UCX hulls, so the script turns it on there (and only when the file has hulls)."""
    unreal = build_fake_unreal(version="5.5.0", interchange_fbx=True, drop=("InterchangeGenericAssetsPipeline",))
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    assert report["failed"] == []
    assert sets(unreal.calls, "FbxStaticMeshImportData")["auto_generate_collision"] is True
    unreal = build_fake_unreal(version="5.5.0", interchange_fbx=True, drop=("InterchangeGenericAssetsPipeline",))
    run_script(write_script(tmp_path / "nohulls", hull_count=0), unreal, monkeypatch)
    assert sets(unreal.calls, "FbxStaticMeshImportData")["auto_generate_collision"] is False


def test_missing_apis_are_reported_not_fatal(tmp_path, monkeypatch, capsys):
    unreal = build_fake_unreal(drop=(
        "StaticMeshEditorSubsystem", "EditorStaticMeshLibrary", "MaterialEditingLibrary",
        "MaterialSamplerType.SAMPLERTYPE_MASKS", "FBXNormalGenerationMethod.MIKK_T_SPACE", "TextureGroup"))
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    skipped = " | ".join(report["skipped"])
    assert "import_lod" in skipped and "MaterialEditingLibrary" in skipped
    assert "normal_generation_method" in skipped
    assert report["failed"] == []
    calls = unreal.calls
    assert not [c for c in calls if c[0] in ("import_lod", "connect", "set_material")]
    assert [c[1] for c in calls if c[0] == "import"] == ["SM_Barrel.fbx", "T_Barrel_BC.png", "T_Barrel_N.png",
                                                         "T_Barrel_ORM.png"]
    warnings = [c[1] for c in calls if c[0] == "log_warning"]
    assert any("import_lod" in w for w in warnings) and any("MaterialEditingLibrary" in w for w in warnings)
    out = capsys.readouterr().out  # the closing summary repeats every skip
    assert "skipped: LOD1..LOD2" in out and "failed" in out


def test_older_editor_uses_the_static_mesh_library(tmp_path, monkeypatch):
    unreal = build_fake_unreal(version="5.0.3", drop=("StaticMeshEditorSubsystem", "MaterialSamplerType.SAMPLERTYPE_MASKS"))
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    assert report["failed"] == []
    assert [c[1:4] for c in unreal.calls if c[0] == "import_lod"] == [("library", "SM_Barrel", 1), ("library", "SM_Barrel", 2)]
    orm_sampler = [c[4] for c in unreal.calls if c[0] == "set" and c[3] == "sampler_type"][-1]
    assert orm_sampler == "MaterialSamplerType.SAMPLERTYPE_LINEAR_COLOR"


def test_missing_file_is_a_reported_failure(tmp_path, monkeypatch):
    path = write_script(tmp_path)
    (tmp_path / "SM_Barrel_LOD2.fbx").unlink()
    unreal = build_fake_unreal()
    report = run_script(path, unreal, monkeypatch)
    assert any("LOD2" in message for message in report["failed"])
    assert [c[3] for c in unreal.calls if c[0] == "import_lod"] == [1]


def test_editor_without_python_import_api_fails_clearly(tmp_path, monkeypatch):
    unreal = build_fake_unreal(drop=("AssetImportTask",))
    report = run_script(write_script(tmp_path), unreal, monkeypatch)
    assert report["failed"] and "AssetImportTask" in report["failed"][0]


def test_script_from_a_real_zip_runs(tmp_path, monkeypatch):
    textures_bundle = make_bundle()
    path = export_package(textures_bundle, "ue5", tmp_path / "zip", use_fbx=False)
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "unzipped")
    unreal = build_fake_unreal()
    report = run_script(tmp_path / "unzipped" / "import_Barrel.py", unreal, monkeypatch)
    assert report["failed"] == []
    # GLB meshes (no bpy): no FbxImportUI; LODs still come from the GLB files.
    assert [c[1] for c in unreal.calls if c[0] == "import"][0] == "SM_Barrel.glb"
    assert [c[4] for c in unreal.calls if c[0] == "import_lod"] == ["SM_Barrel_LOD1.glb", "SM_Barrel_LOD2.glb"]

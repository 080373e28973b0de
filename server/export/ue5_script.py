"""import_<Name>.py: Unreal editor Python that imports a UE5 zip's mesh, LODs and textures and builds M_<Name>.

The generated script runs inside the editor (`import unreal`): Output Log "Python" mode, or
File > Execute Python Script. It works with the legacy FBX importer (FbxImportUI) and where Interchange
handles FBX (UE 5.5+); it checks every `unreal` attribute before using it and prints what it did,
what it skipped and why.
"""

from __future__ import annotations

BODY = r'''
import os

import unreal

REPORT = {"done": [], "skipped": [], "failed": []}


def _say(kind, message):
    REPORT[kind].append(message)
    line = "[Open3DForge] %s: %s" % (kind, message)
    logger = getattr(unreal, {"failed": "log_error", "skipped": "log_warning"}.get(kind, "log"), None)
    if logger is not None:
        logger(line)  # the Output Log, coloured by severity
    else:
        print(line)


def done(message):
    _say("done", message)


def skipped(message):
    _say("skipped", message)


def failed(message):
    _say("failed", message)


def lookup(dotted):
    """unreal.<dotted> or None when this editor has no such attribute."""
    obj = unreal
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return None
        obj = getattr(obj, part)
    return obj


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


def get_prop(obj, name, what):
    try:
        return obj.get_editor_property(name)
    except Exception as exc:
        skipped("%s.%s: %s" % (what, name, exc))
        return None


def source_dir():
    if SOURCE_DIR:
        return SOURCE_DIR
    here = globals().get("__file__")
    if not here:
        raise RuntimeError("set SOURCE_DIR at the top of this script to the folder of the unzipped files")
    return os.path.dirname(os.path.abspath(here))


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


def fbx_import_ui(for_interchange):
    """Legacy FBX options. Where Interchange converts them, auto_generate_collision becomes Interchange's
    import_collision, which also gates UCX hulls: so it is on there (only when the file has hulls)."""
    ui = unreal.FbxImportUI()
    what = "FbxImportUI"
    set_prop(ui, "import_mesh", True, what)
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
    if not SKELETAL:
        set_prop(data, "combine_meshes", True, what)
        set_prop(data, "one_convex_hull_per_ucx", True, what)
        set_prop(data, "auto_generate_collision", bool(for_interchange and HULL_COUNT > 0), what)
        set_prop(data, "generate_lightmap_u_vs", True, what)
        set_prop(data, "import_mesh_lods", False, what)
    return ui


def interchange_pipeline():
    """Interchange options (UE 5.5+ FBX, and glTF): the same choices as fbx_import_ui."""
    pipeline = unreal.InterchangeGenericAssetsPipeline()
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
        set_prop(meshes, "import_static_meshes", not SKELETAL, what)
        set_prop(meshes, "import_skeletal_meshes", SKELETAL, what)
        set_prop(meshes, "combine_static_meshes", True, what)
        set_prop(meshes, "import_collision", HULL_COUNT > 0, what)
        set_prop(meshes, "import_collision_according_to_mesh_name", True, what)
        set_prop(meshes, "one_convex_hull_per_ucx", True, what)
        set_prop(meshes, "build_nanite", NANITE, what)
        set_prop(meshes, "generate_lightmap_u_vs", True, what)
    materials = get_prop(pipeline, "material_pipeline", "InterchangeGenericAssetsPipeline")
    if materials is not None:
        option = lookup("InterchangeMaterialImportOption.DO_NOT_CREATE_MATERIAL")
        if option is not None:
            set_prop(materials, "material_import", option, "material_pipeline")
        else:
            set_prop(materials, "import_materials", False, "material_pipeline")
        textures = get_prop(materials, "texture_pipeline", "material_pipeline")
        if textures is not None:
            set_prop(textures, "import_textures", False, "texture_pipeline")
    animations = get_prop(pipeline, "animation_pipeline", "InterchangeGenericAssetsPipeline")
    if animations is not None:
        set_prop(animations, "import_animations", False, "animation_pipeline")
    return pipeline


def mesh_options(filename):
    if filename.lower().endswith(".fbx"):
        through_interchange = interchange_handles_fbx()
        if through_interchange and lookup("InterchangeGenericAssetsPipeline") is not None:
            done("FBX goes through Interchange here: Interchange pipeline options (UCX collision by name, no materials)")
            return interchange_pipeline()
        if lookup("FbxImportUI") is None:
            skipped("FbxImportUI: not in this editor; importing %s with the editor's default options" % filename)
            return None
        if through_interchange:
            done("FBX goes through Interchange, which converts the legacy FbxImportUI options")
        else:
            done("legacy FBX importer with FbxImportUI options")
        return fbx_import_ui(through_interchange)
    if lookup("InterchangeGenericAssetsPipeline") is not None:
        return interchange_pipeline()
    skipped("no Interchange pipeline class: importing %s with the editor's default options" % filename)
    return None


def import_file(filename, options=None):
    """Run one AssetImportTask; returns the imported objects (possibly empty)."""
    path = os.path.join(source_dir(), filename)
    if not os.path.isfile(path):
        failed("%s: file not found at %s" % (filename, path))
        return []
    task = unreal.AssetImportTask()
    set_prop(task, "filename", path, "AssetImportTask")
    set_prop(task, "destination_path", DESTINATION, "AssetImportTask")
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


def find(objects, class_name, asset_name):
    cls = lookup(class_name)
    for obj in objects:
        if cls is not None and isinstance(obj, cls):
            return obj
    path = "%s/%s" % (DESTINATION, asset_name)
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
    objects = import_file(filename, mesh_options(filename))
    mesh = find(objects, "SkeletalMesh" if SKELETAL else "StaticMesh", MESH_ASSET)
    if mesh is None:
        failed("%s: no %s came out of the import" % (filename, "skeletal mesh" if SKELETAL else "static mesh"))
        return None
    done("imported %s as %s/%s (%d convex hull(s) in the file)" % (filename, DESTINATION, MESH_ASSET, HULL_COUNT))
    return mesh


def import_textures():
    """Each map with its compression and colour space (BC sRGB; N normal map, linear; ORM masks, linear)."""
    settings = {
        "base_color": ("TextureCompressionSettings.TC_DEFAULT", True, None),
        "normal": ("TextureCompressionSettings.TC_NORMALMAP", False, "TextureGroup.TEXTUREGROUP_WORLD_NORMAL_MAP"),
        "orm": ("TextureCompressionSettings.TC_MASKS", False, None),
    }
    found = {}
    for role, filename in TEXTURES.items():
        objects = import_file(filename)
        stem = os.path.splitext(filename)[0]
        texture = find(objects, "Texture2D", stem)
        if texture is None:
            failed("%s: no texture came out of the import" % filename)
            continue
        compression, srgb, group = settings[role]
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


def build_material(textures):
    """M_<Name> with TextureSample nodes: BC -> Base Color, N -> Normal, ORM R/G/B -> AO/Roughness/Metallic."""
    needed = ["MaterialEditingLibrary", "Material", "MaterialFactoryNew", "MaterialExpressionTextureSample",
              "MaterialProperty"]
    missing = [name for name in needed if lookup(name) is None]
    if missing:
        skipped("material %s: this editor lacks unreal.%s" % (MATERIAL_NAME, ", unreal.".join(missing)))
        return None
    mel = unreal.MaterialEditingLibrary
    assets = unreal.EditorAssetLibrary
    path = "%s/%s" % (DESTINATION, MATERIAL_NAME)
    if hasattr(assets, "does_asset_exist") and assets.does_asset_exist(path):
        material = assets.load_asset(path)
        if hasattr(mel, "delete_all_material_expressions"):
            mel.delete_all_material_expressions(material)
    else:
        material = unreal.AssetToolsHelpers.get_asset_tools().create_asset(
            MATERIAL_NAME, DESTINATION, unreal.Material, unreal.MaterialFactoryNew())
    if material is None:
        failed("material %s: could not be created" % MATERIAL_NAME)
        return None

    def sample(role, x, y, samplers):
        texture = textures.get(role)
        if texture is None:
            skipped("material %s: no %s texture to sample" % (MATERIAL_NAME, role))
            return None
        node = mel.create_material_expression(material, unreal.MaterialExpressionTextureSample, x, y)
        set_prop(node, "texture", texture, "TextureSample " + role)
        for sampler in samplers:
            if lookup(sampler) is not None:
                set_prop(node, "sampler_type", lookup(sampler), "TextureSample " + role)
                break
        return node

    def connect(node, output, prop):
        value = lookup("MaterialProperty." + prop)
        if node is None:
            return
        if value is None:
            skipped("material %s: no MaterialProperty.%s" % (MATERIAL_NAME, prop))
            return
        if mel.connect_material_property(node, output, value) is False:
            failed("material %s: %s -> %s did not connect" % (MATERIAL_NAME, output, prop))
        else:
            done("material %s: %s -> %s" % (MATERIAL_NAME, output, prop))

    base = sample("base_color", -600, -300, ["MaterialSamplerType.SAMPLERTYPE_COLOR"])
    connect(base, "RGB", "MP_BASE_COLOR")
    if USE_OPACITY_MASK:
        set_prop(material, "blend_mode", lookup("BlendMode.BLEND_MASKED"), MATERIAL_NAME)
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
    if hasattr(mesh, "set_material"):
        mesh.set_material(0, material)
        done("%s slot 0 uses %s" % (MESH_ASSET, MATERIAL_NAME))
        return
    slots = get_prop(mesh, "static_materials" if not SKELETAL else "materials", MESH_ASSET)
    if slots:
        set_prop(slots[0], "material_interface", material, MESH_ASSET + " slot 0")
        set_prop(mesh, "static_materials" if not SKELETAL else "materials", slots, MESH_ASSET)
        done("%s slot 0 uses %s" % (MESH_ASSET, MATERIAL_NAME))
    else:
        skipped("%s: no material slots to assign %s to" % (MESH_ASSET, MATERIAL_NAME))


def lod_importer():
    """import_lod(mesh, index, path): StaticMeshEditorSubsystem (UE 5), else EditorStaticMeshLibrary."""
    if SKELETAL:
        library = lookup("EditorSkeletalMeshLibrary")
        if library is not None and hasattr(library, "import_lod"):
            return "EditorSkeletalMeshLibrary.import_lod", library.import_lod
        return None, None
    subsystem_class = lookup("StaticMeshEditorSubsystem")
    if subsystem_class is not None and lookup("get_editor_subsystem") is not None:
        subsystem = unreal.get_editor_subsystem(subsystem_class)
        if subsystem is not None and hasattr(subsystem, "import_lod"):
            return "StaticMeshEditorSubsystem.import_lod", subsystem.import_lod
    library = lookup("EditorStaticMeshLibrary")
    if library is not None and hasattr(library, "import_lod"):
        return "EditorStaticMeshLibrary.import_lod", library.import_lod
    return None, None


def import_lods(mesh):
    if mesh is None or len(MESH_FILES) < 2:
        return
    name, importer = lod_importer()
    if importer is None:
        skipped("LOD1..LOD%d: this editor has no import_lod (StaticMeshEditorSubsystem / EditorStaticMeshLibrary)"
                % (len(MESH_FILES) - 1))
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


def enable_nanite(mesh):
    if not NANITE:
        return
    if mesh is None or SKELETAL:
        skipped("Nanite: only for static meshes")
        return
    settings = get_prop(mesh, "nanite_settings", MESH_ASSET)
    if settings is None:
        skipped("Nanite: this editor has no nanite_settings")
        return
    if set_prop(settings, "enabled", True, "nanite_settings") and set_prop(mesh, "nanite_settings", settings, MESH_ASSET):
        save(mesh)
        done("Nanite enabled on %s (the LOD chain stays as the fallback mesh)" % MESH_ASSET)


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
    import_lods(mesh)
    enable_nanite(mesh)
    print("[Open3DForge] finished %s: %d done, %d skipped, %d failed"
          % (ASSET_NAME, len(REPORT["done"]), len(REPORT["skipped"]), len(REPORT["failed"])))
    for kind in ("skipped", "failed"):
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
) -> str:
    """The text of import_<Name>.py. mesh_files[0] holds LOD0 (+ UCX hulls); the others are LOD1, LOD2...

    textures: role ('base_color', 'normal', 'orm') -> file name beside the script.
    """
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
        f"TEXTURES = {dict(textures)!r}",
        f"MATERIAL_NAME = {material!r}",
        f"USE_OPACITY_MASK = {bool(opacity_mask)!r}  # base colour alpha -> Opacity Mask (masked blend mode)",
        f"NANITE = {bool(nanite)!r}",
        f"SKELETAL = {bool(skeletal)!r}",
        "# ------------------",
    ]
    text = "\n".join(header) + "\n" + BODY
    compile(text, f"import_{name}.py", "exec")  # a broken template fails here, not in the editor
    return text

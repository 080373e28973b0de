"""Writes the engine zip from an imported asset collection: FBX by this Blender, the rest from the server (bpy).

UE5 (CONVENTIONS.md): SM_<Name>.fbx (LOD0 + UCX_SM_<Name>_NN hulls), SM_<Name>_LOD1.fbx, SM_<Name>_LOD2.fbx with
the "Blender FBX export for UE" settings; textures, preview, import script (MESH_FILES rewritten to the .fbx names)
and manifest.json (mesh_format, file names and the file list updated) come from the server's package.
Unity: one <Name>.fbx with <Name>_LOD0/1/2 and the convex parts <Name>_Collider_NN as children of LOD0, metres,
Y up with identity node transforms (the server's Unity handling in server/export/blender_fbx.py); maps, preview and
manifest come from the server's Unity package (GLB), passed in as `server_package`.
Godot: the server's GLB package is the package (Godot imports GLB), copied through unchanged after a check.
Every zip is written to a temporary file and moved into place, so a reader never sees half a zip.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import bpy

from . import importer
from .fbx_settings import FBX_SETTINGS, SKELETAL_SETTINGS
from .package_files import (ENGINES, ExportProblem, fbx_manifest, non_mesh_files, output_folder,
                            replace_atomically, server_package_members, sha256, write_zip_atomically)

_OURS = (importer.ROLE, importer.INDEX)


def _objects(collection) -> dict:
    found = {"lod0": None, "lod1": None, "lod2": None, "armature": None, "ucx": []}
    for obj in collection.all_objects:
        role = obj.get(importer.ROLE)
        if role == "ucx":
            found["ucx"].append(obj)
        elif role in found and found[role] is None:
            found[role] = obj
    found["ucx"].sort(key=lambda obj: obj.get(importer.INDEX, 0))
    return found


@contextmanager
def _exact_names(wanted: dict):
    """Give each object its exact name for the export (swapping out any other holder), then restore."""
    restore = []
    try:
        for obj, name in wanted.items():
            if obj.name == name:
                continue
            holder = bpy.data.objects.get(name)
            if holder is not None:
                restore.append((holder, holder.name))
                holder.name = f"{name}__o3f_tmp"
            restore.append((obj, obj.name))
            obj.name = name
            if obj.name != name:
                raise ExportProblem(f"Blender would not name the object {name!r} (got {obj.name!r})")
        yield
    finally:
        for obj, name in reversed(restore):
            obj.name = name


@contextmanager
def _exporting(context, objects: list):
    """Only `objects` selected and visible, our bookkeeping properties off; everything restored afterwards."""
    view_layer = context.view_layer
    selected = [obj for obj in view_layer.objects if obj.select_get()]
    active = view_layer.objects.active
    hidden = [obj for obj in objects if obj.hide_get()]
    props = {obj: {key: obj[key] for key in _OURS if key in obj} for obj in objects}
    try:
        for obj in selected:
            obj.select_set(False)
        for obj in objects:
            obj.hide_set(False)
            obj.select_set(True)
            for key in props[obj]:
                del obj[key]
        view_layer.objects.active = objects[0]
        yield
    finally:
        for obj, saved in props.items():
            for key, value in saved.items():
                obj[key] = value
        for obj in objects:
            obj.select_set(False)
        for obj in hidden:
            obj.hide_set(True)
        for obj in selected:
            if obj.name in view_layer.objects:
                obj.select_set(True)
        view_layer.objects.active = active


def write_fbx(context, path: Path, objects: list, skeletal: bool = False) -> None:
    with _exporting(context, objects):
        if skeletal:
            result = bpy.ops.export_scene.fbx(filepath=str(path), object_types={'ARMATURE', 'MESH'},
                                              **FBX_SETTINGS, **SKELETAL_SETTINGS)
        else:
            result = bpy.ops.export_scene.fbx(filepath=str(path), object_types={'MESH'}, **FBX_SETTINGS)
    if "FINISHED" not in result or not path.is_file() or path.stat().st_size == 0:
        raise ExportProblem(f"Blender's FBX exporter did not write {path.name} ({sorted(result)})")


def _asset(collection) -> tuple[str, Path, dict]:
    name = collection.get(importer.ASSET_NAME)
    package_dir = Path(collection.get(importer.PACKAGE_DIR) or "")
    if not name or not package_dir.is_dir():
        raise ExportProblem(f"collection {collection.name!r} is not an imported Open3DForge asset with its package")
    found = _objects(collection)
    for role in ("lod0",) if found["armature"] is not None else ("lod0", "lod1", "lod2"):
        if found[role] is None:
            raise ExportProblem(f"collection {collection.name!r} has no {role.upper()} object")
    return name, package_dir, found


def write_engine_zip(context, collection, folder: str | Path, engine: str = "ue5", *,
                     server_package: str | Path | None = None) -> Path:
    """Write <folder>/<Name>_<Engine>.zip from `collection` (made by importer.import_package); returns its path.

    ue5 needs only the imported package; unity and godot need `server_package`, the server's package for that
    engine (GLB meshes, as export with use_fbx false writes it).
    """
    engine = (engine or "").strip().lower()
    if engine not in ENGINES:
        raise ExportProblem(f"engine={engine!r}: expected one of {', '.join(ENGINES)}")
    if engine == "unity":
        return write_unity_zip(context, collection, folder, server_package)
    if engine == "godot":
        return write_godot_zip(collection, folder, server_package)
    name, package_dir, found = _asset(collection)
    manifest = json.loads((package_dir / "manifest.json").read_text(encoding="utf-8"))
    script_name = manifest.get("import_script", f"import_{name}.py")
    skeletal = found["armature"] is not None  # a rigged character: SK_<Name>.fbx, its armature and weights
    render = f"SK_{name}" if skeletal else f"SM_{name}"
    mesh_files = [f"{render}.fbx"] if skeletal else [f"{render}.fbx", f"{render}_LOD1.fbx", f"{render}_LOD2.fbx"]

    folder = output_folder(folder)
    target = folder / f"{name}_UE5.zip"
    with tempfile.TemporaryDirectory(prefix="o3f_export_") as tmp:
        tmp = Path(tmp)
        hulls = {obj: f"UCX_{render}_{i:02d}" for i, obj in enumerate(found["ucx"])}
        if skeletal:  # the armature object named Armature: UE's importer then adds no extra root bone
            with _exact_names({found["lod0"]: render, found["armature"]: importer.ARMATURE_NAME}):
                write_fbx(context, tmp / mesh_files[0], [found["armature"], found["lod0"]], skeletal=True)
        else:
            with _exact_names({found["lod0"]: render, **hulls}):
                write_fbx(context, tmp / mesh_files[0], [found["lod0"], *hulls])
            for lod in (1, 2):
                obj = found[f"lod{lod}"]
                with _exact_names({obj: render}):  # every LOD file's node is SM_<Name>, as the server writes it
                    write_fbx(context, tmp / mesh_files[lod], [obj])

        payload: dict[str, bytes] = {path.name: path.read_bytes() for path in (tmp / f for f in mesh_files)}
        payload.update(non_mesh_files(package_dir, manifest, script_name, mesh_files))

        writer = f"Blender {bpy.app.version_string} (Open3DForge add-on), CONVENTIONS.md settings"
        payload["manifest.json"] = fbx_manifest(manifest, mesh_files, list(hulls.values()), payload, writer)
        write_zip_atomically(target, payload)
    return target


def write_godot_zip(collection, folder: str | Path, server_package) -> Path:
    """<folder>/<Name>_Godot.zip: the server's GLB package (LOD0, -convcolonly hulls, embedded maps), checked
    and copied into place atomically. Godot imports GLB, so no FBX is written."""
    name, _, _ = _asset(collection)
    members, _ = server_package_members(server_package, name, "godot")
    if f"{name}.glb" not in members:
        raise ExportProblem(f"the server's Godot package has no {name}.glb (it holds {', '.join(sorted(members))})")
    folder = output_folder(folder)
    target = folder / f"{name}_Godot.zip"

    def write(handle) -> None:
        with open(server_package, "rb") as source:
            shutil.copyfileobj(source, handle)

    replace_atomically(target, write)
    return target


def _y_up_copy(obj, name: str, parent=None):
    """A temporary object for the Unity FBX: the world-space mesh with its data turned Y up, (x, y, z) ->
    (x, z, -y), and the object turned +90 degrees about X (or parented, with no turn, to one that is), so the
    shape in the scene is unchanged and the exporter's Z-up -> Y-up conversion cancels the turn: every FBX
    node is written with an identity transform, as server/export/blender_fbx.py does for Unity."""
    from mathutils import Matrix

    mesh = obj.data.copy()
    mesh.name = name  # the FBX Geometry's name (Blender adds a suffix where another mesh holds it)
    mesh.transform(Matrix.Rotation(-math.pi / 2.0, 4, 'X') @ obj.matrix_world)
    mesh.update()
    copy = bpy.data.objects.new(f"{name}__o3f_unity", mesh)
    if parent is None:
        copy.rotation_euler = (math.pi / 2.0, 0.0, 0.0)
    else:
        copy.parent = parent
        copy.matrix_parent_inverse.identity()
    return copy


def write_unity_zip(context, collection, folder: str | Path, server_package) -> Path:
    """<folder>/<Name>_Unity.zip: <Name>.fbx written here from the imported LODs and hulls (metres, Y up),
    the maps and preview from the server's Unity package, its manifest rewritten for the FBX."""
    name, _, found = _asset(collection)
    members, manifest = server_package_members(server_package, name, "unity")
    mesh_file = f"{name}.fbx"
    lod_names = [f"{name}_LOD{i}" for i in range(3)]
    hull_names = [f"{name}_Collider_{i:02d}" for i in range(len(found["ucx"]))]
    folder = output_folder(folder)
    target = folder / f"{name}_Unity.zip"
    temporary = []
    try:
        lods = [_y_up_copy(found[f"lod{i}"], lod_names[i]) for i in range(3)]
        temporary += lods
        hulls = [_y_up_copy(obj, hull_names[i], parent=lods[0]) for i, obj in enumerate(found["ucx"])]
        temporary += hulls
        for obj in temporary:
            context.scene.collection.objects.link(obj)
        context.view_layer.update()
        with tempfile.TemporaryDirectory(prefix="o3f_export_") as tmp:
            path = Path(tmp) / mesh_file
            wanted = {obj: n for obj, n in zip(temporary, lod_names + hull_names)}
            with _exact_names(wanted):
                write_fbx(context, path, temporary)
            fbx = path.read_bytes()
    finally:
        meshes = [obj.data for obj in temporary]
        for obj in temporary:
            bpy.data.objects.remove(obj, do_unlink=True)
        for mesh in meshes:
            if mesh.users == 0:
                bpy.data.meshes.remove(mesh)

    payload = {mesh_file: fbx}
    payload.update({member: data for member, data in members.items()
                    if not member.endswith((".glb", ".gltf", ".fbx"))})
    manifest["mesh_format"] = "fbx"
    for lod in manifest.get("lods", []):
        lod["file"] = mesh_file
    if isinstance(manifest.get("collision"), dict):
        manifest["collision"]["nodes"] = hull_names
        manifest["collision"]["hulls"] = len(hull_names)
        manifest["collision"]["parent"] = lod_names[0] if hull_names else None
    manifest["collision_hulls"] = len(hull_names)
    if isinstance(manifest.get("units"), dict):
        manifest["units"]["file"] = "FBX UnitScaleFactor 100 (1 file unit = 1 m): Unity imports at scale 1.0"
    if isinstance(manifest.get("axes"), dict):
        manifest["axes"]["file"] = ("FBX Y up, -Z forward; every node written with an identity transform "
                                    "(no -90 degree X rotation)")
    manifest.pop("fallback", None)
    manifest["fbx_writer"] = f"Blender {bpy.app.version_string} (Open3DForge add-on), CONVENTIONS.md settings"
    manifest["files"] = [{"name": member, "bytes": len(data), "sha256": sha256(data)}
                         for member, data in sorted(payload.items())]
    payload["manifest.json"] = json.dumps(manifest, indent=2).encode("utf-8")
    write_zip_atomically(target, payload)
    return target

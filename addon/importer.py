"""Imports a server package (GLB meshes + maps) into one new collection per asset for inspection (bpy, main thread).

The collection holds the high poly (hidden), LOD0..LOD2 and the UCX hulls (wire), with a Principled BSDF material
built from the baked maps: base colour sRGB, ORM split with a Separate Color node, and the DirectX normal map turned
into Blender's OpenGL convention by inverting its green channel. Nothing else in the scene changes: the active
collection, the selection and the active object are restored, and a failed import leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import zipfile
from contextlib import contextmanager
from pathlib import Path

import bpy

ROLE = "open3dforge_role"  # object custom property: high_poly | lod0 | lod1 | lod2 | ucx | armature
ARMATURE_NAME = "Armature"  # UE's FBX importer takes an armature object of this name as no extra root bone
INDEX = "open3dforge_index"  # LOD or hull number
ASSET_ID = "open3dforge_asset_id"  # collection custom properties
ASSET_NAME = "open3dforge_name"
PACKAGE_DIR = "open3dforge_package_dir"
SCENE = "open3dforge_scene"  # on the collection of a whole scene (its children are the objects)
HIGH_POLY_MEMBER = "high_poly.glb"  # in the server's <Name>_<Engine>_inspect.zip (export include_high_poly)
_SUFFIX = re.compile(r"\.\d{3}$")
_SAFE_MEMBER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ImportProblem(Exception):
    """The package cannot be imported; the message says why."""


def extract_package(package: str | Path, target: str | Path, *, folders: bool = False) -> Path:
    """Unzip the server package into `target` (plain names only; one folder level when `folders`, as in a scene
    zip); returns the folder."""
    target = Path(target)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with zipfile.ZipFile(package) as archive:
            for member in archive.infolist():
                if member.is_dir():
                    continue
                parts = member.filename.split("/")
                if len(parts) > (2 if folders else 1) or not all(_SAFE_MEMBER.match(part) for part in parts):
                    raise ImportProblem(f"package member {member.filename!r}: expected a plain file name")
                (staging / member.filename).parent.mkdir(parents=True, exist_ok=True)
                (staging / member.filename).write_bytes(archive.read(member))
    except zipfile.BadZipFile as exc:
        raise ImportProblem(f"{Path(package).name} is not a zip file ({exc})") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


@contextmanager
def _scene_kept(context):
    """Restore the active collection, the selection and the active object afterwards."""
    view_layer = context.view_layer
    active_layer = view_layer.active_layer_collection
    selected = [obj for obj in view_layer.objects if obj.select_get()]
    active = view_layer.objects.active
    try:
        yield
    finally:
        view_layer.active_layer_collection = active_layer
        for obj in list(view_layer.objects):
            if obj.select_get():
                obj.select_set(False)
        for obj in selected:
            if obj.name in view_layer.objects:
                obj.select_set(True)
        view_layer.objects.active = active if (active is None or active.name in view_layer.objects) else None


def _layer_collection(layer, collection):
    if layer.collection == collection:
        return layer
    for child in layer.children:
        found = _layer_collection(child, collection)
        if found is not None:
            return found
    return None


def _import_glb(context, path: Path, collection) -> list:
    """Import one GLB into `collection`; returns the new objects."""
    before = set(bpy.data.objects)
    context.view_layer.active_layer_collection = _layer_collection(context.view_layer.layer_collection,
                                                                   collection)
    result = bpy.ops.import_scene.gltf(filepath=str(path))
    if "FINISHED" not in result:
        raise ImportProblem(f"Blender's glTF importer could not read {path.name} ({sorted(result)})")
    new = [obj for obj in bpy.data.objects if obj not in before]
    for obj in new:  # the importer links to the active collection; make sure nothing is linked elsewhere
        for other in list(obj.users_collection):
            if other != collection:
                other.objects.unlink(obj)
        if obj.name not in collection.objects:
            collection.objects.link(obj)
    return new


def _without_bone_shapes(objects: list) -> list:
    """Blender's glTF importer draws the bones of an armature it makes with a sphere object of its own: the
    bones go back to Blender's plain look and the sphere goes, so the collection holds only the asset."""
    shapes = set()
    for armature in [obj for obj in objects if obj.type == 'ARMATURE']:
        for bone in armature.pose.bones:
            if bone.custom_shape is not None:
                shapes.add(bone.custom_shape)
                bone.custom_shape = None
    kept = [obj for obj in objects if obj not in shapes]  # before the removal: a removed object cannot be compared
    for shape in shapes:
        bpy.data.objects.remove(shape, do_unlink=True)
    return kept


def _base(name: str) -> str:
    return _SUFFIX.sub("", name)


def _image(path: Path, colorspace: str):
    image = bpy.data.images.load(str(path), check_existing=False)
    image.colorspace_settings.name = colorspace
    return image


def build_material(name: str, folder: Path, asset: str):
    """M_<Name>: Principled BSDF from T_<Name>_BC (sRGB), _N (DirectX -> OpenGL) and _ORM (Non-Color, split)."""
    material = bpy.data.materials.new(f"M_{asset}")
    material.use_nodes = True
    tree = material.node_tree
    nodes, links = tree.nodes, tree.links
    bsdf = next(node for node in nodes if node.type == 'BSDF_PRINCIPLED')
    bsdf.location = (300, 0)

    base = folder / f"T_{asset}_BC.png"
    if base.is_file():
        node = nodes.new("ShaderNodeTexImage")
        node.name = node.label = "Base Color"
        node.image = _image(base, "sRGB")
        node.location = (-500, 300)
        links.new(node.outputs["Color"], bsdf.inputs["Base Color"])

    orm = folder / f"T_{asset}_ORM.png"
    if orm.is_file():
        node = nodes.new("ShaderNodeTexImage")
        node.name = node.label = "ORM"
        node.image = _image(orm, "Non-Color")
        node.location = (-700, 0)
        split = nodes.new("ShaderNodeSeparateColor")
        split.name = split.label = "ORM Split"
        split.location = (-400, 0)
        links.new(node.outputs["Color"], split.inputs["Color"])
        # R = ambient occlusion (kept for engines; Principled has no AO input), G = roughness, B = metallic
        links.new(split.outputs["Green"], bsdf.inputs["Roughness"])
        links.new(split.outputs["Blue"], bsdf.inputs["Metallic"])

    normal = folder / f"T_{asset}_N.png"
    if normal.is_file():
        node = nodes.new("ShaderNodeTexImage")
        node.name = node.label = "Normal (DirectX)"
        node.image = _image(normal, "Non-Color")
        node.location = (-1000, -350)
        split = nodes.new("ShaderNodeSeparateColor")
        split.name = split.label = "Normal Split"
        split.location = (-750, -350)
        invert = nodes.new("ShaderNodeMath")
        invert.name = invert.label = "Flip Green (DirectX to OpenGL)"
        invert.operation = 'SUBTRACT'
        invert.inputs[0].default_value = 1.0
        invert.location = (-550, -400)
        join = nodes.new("ShaderNodeCombineColor")
        join.name = join.label = "Normal OpenGL"
        join.location = (-350, -350)
        normal_map = nodes.new("ShaderNodeNormalMap")
        normal_map.location = (-150, -350)
        links.new(node.outputs["Color"], split.inputs["Color"])
        links.new(split.outputs["Red"], join.inputs["Red"])
        links.new(split.outputs["Green"], invert.inputs[1])
        links.new(invert.outputs["Value"], join.inputs["Green"])
        links.new(split.outputs["Blue"], join.inputs["Blue"])
        links.new(join.outputs["Color"], normal_map.inputs["Color"])
        links.new(normal_map.outputs["Normal"], bsdf.inputs["Normal"])
    return material


def _replace_materials(obj, material, dropped: set) -> None:
    for slot in obj.material_slots:
        if slot.material is not None and slot.material != material:
            dropped.add(slot.material)
    obj.data.materials.clear()
    obj.data.materials.append(material)


def import_package(context, package: str | Path, *, name: str, asset_id: str, cache_dir: str | Path,
                   high_poly: str | Path | None = None):
    """Import `package` (the server's engine zip with GLB meshes) into a new collection named `name`.

    The high poly comes from the package's high_poly.glb (the server's export with include_high_poly: placed
    like the LODs) when it has one, else from `high_poly` (a separate GLB, as generated). Returns the
    collection. On any failure everything created so far is removed and the error re-raised.
    """
    return import_folder(context, extract_package(package, Path(cache_dir) / asset_id), name=name,
                         asset_id=asset_id, high_poly=high_poly)


def import_folder(context, folder: Path, *, name: str, asset_id: str, high_poly: str | Path | None = None):
    """import_package's work on an unpacked package folder."""
    if (folder / HIGH_POLY_MEMBER).is_file():
        high_poly = folder / HIGH_POLY_MEMBER
    skeletal = (folder / f"SK_{name}.glb").is_file()  # a rigged character: one skinned mesh and its armature
    lod_files = [folder / f"SK_{name}.glb"] if skeletal else [
        folder / f"SM_{name}.glb", folder / f"SM_{name}_LOD1.glb", folder / f"SM_{name}_LOD2.glb"]
    missing = [path.name for path in lod_files if not path.is_file()]
    if missing:
        listed = ", ".join(sorted(p.name for p in folder.iterdir()))
        raise ImportProblem(f"the package has no {', '.join(missing)} (it holds {listed}); "
                            "import needs the GLB package (export with use_fbx false)")

    made_objects, made_collection, dropped = [], None, set()
    with _scene_kept(context):
        try:
            collection = bpy.data.collections.new(name)
            made_collection = collection
            context.scene.collection.children.link(collection)
            collection[ASSET_ID] = asset_id
            collection[ASSET_NAME] = name
            collection[PACKAGE_DIR] = str(folder)
            material = build_material(name, folder, name)

            for lod, path in enumerate(lod_files):
                new = _without_bone_shapes(_import_glb(context, path, collection))
                made_objects += new
                meshes = [obj for obj in new if obj.type == 'MESH']
                for obj in new:
                    if obj.type == 'ARMATURE':  # the skeleton of a rigged character, in rest pose
                        obj[ROLE], obj[INDEX] = "armature", 0
                        obj.name = ARMATURE_NAME
                        continue
                    if obj.type != 'MESH':  # the importer makes no empties for these files, but be safe
                        continue
                    base = _base(obj.name)
                    if base.startswith(f"UCX_SM_{name}_"):
                        obj[ROLE], obj[INDEX] = "ucx", int(base.rsplit("_", 1)[1])
                        obj.display_type = 'WIRE'
                        obj.hide_render = True
                        for slot_material in obj.data.materials:
                            if slot_material is not None:
                                dropped.add(slot_material)
                        obj.data.materials.clear()
                        obj.name = base
                    else:
                        obj[ROLE], obj[INDEX] = f"lod{lod}", lod
                        prefix = "SK" if skeletal else "SM"
                        obj.name = f"{prefix}_{name}" if lod == 0 else f"{prefix}_{name}_LOD{lod}"
                        obj.data.name = obj.name
                        _replace_materials(obj, material, dropped)
                if not any(obj.get(ROLE) == f"lod{lod}" for obj in meshes):
                    raise ImportProblem(f"{path.name} holds no render mesh {path.stem}")
                if skeletal and not any(obj.get(ROLE) == "armature" for obj in new):
                    raise ImportProblem(f"{path.name} holds no armature")

            if high_poly is not None and Path(high_poly).is_file():
                new = _import_glb(context, Path(high_poly), collection)
                made_objects += new
                for obj in new:
                    obj[ROLE], obj[INDEX] = "high_poly", 0
                    obj.name = f"{name}_high_poly"
                    obj.hide_render = True
            context.view_layer.update()
            for obj in made_objects:  # hide after the import: hidden objects cannot be made active during it
                role = obj.get(ROLE)
                if role in ("high_poly", "lod1", "lod2"):
                    obj.hide_set(True)
        except BaseException:
            for obj in made_objects:
                if obj.name in bpy.data.objects:
                    bpy.data.objects.remove(obj, do_unlink=True)
            if made_collection is not None:
                bpy.data.collections.remove(made_collection)
            raise
        finally:
            _purge(dropped)
    return collection


def _purge(materials: set) -> None:
    """Remove the glTF materials we replaced (and their images) once nothing uses them."""
    images = set()
    for material in materials:
        try:
            if material.users:
                continue
            if material.node_tree is not None:
                images |= {node.image for node in material.node_tree.nodes
                           if node.type == 'TEX_IMAGE' and node.image is not None}
            bpy.data.materials.remove(material)
        except ReferenceError:
            continue
    for image in images:
        try:
            if image.users == 0:
                bpy.data.images.remove(image)
        except ReferenceError:
            continue


TEST_POSE = {"lowerarm_l": 90.0, "lowerarm_r": 90.0, "calf_l": -90.0, "calf_r": -90.0}  # degrees about X


def set_test_pose(collection, on: bool) -> list[str]:
    """Bend the elbows and knees of the collection's armature 90 degrees (or back to rest), so the user sees the
    skin weights at work; returns the bones it turned."""
    from math import radians

    from mathutils import Euler

    armature = next((obj for obj in collection.objects if obj.get(ROLE) == "armature"), None)
    if armature is None:
        raise ImportProblem(f"{collection.name} has no armature: rig the character first (kind character)")
    turned = []
    for bone_name, angle in TEST_POSE.items():
        bone = armature.pose.bones.get(bone_name)
        if bone is None:
            continue
        bone.rotation_mode = 'XYZ'
        bone.rotation_euler = Euler((radians(angle), 0.0, 0.0), 'XYZ') if on else Euler((0.0, 0.0, 0.0), 'XYZ')
        turned.append(bone_name)
    armature["open3dforge_test_pose"] = bool(on)
    return turned


def import_high_poly(context, glb: str | Path, *, name: str, asset_id: str):
    """After `generate` only: a collection with the (visible) high poly."""
    with _scene_kept(context):
        collection = bpy.data.collections.new(name)
        context.scene.collection.children.link(collection)
        collection[ASSET_ID] = asset_id
        collection[ASSET_NAME] = name
        try:
            for obj in _import_glb(context, Path(glb), collection):
                obj[ROLE], obj[INDEX] = "high_poly", 0
                obj.name = f"{name}_high_poly"
        except BaseException:
            for obj in list(collection.objects):
                bpy.data.objects.remove(obj, do_unlink=True)
            bpy.data.collections.remove(collection)
            raise
    return collection


def import_scene(context, package: str | Path, *, name: str, asset_id: str, cache_dir: str | Path):
    """Import a scene zip (server/scene/package.py): a collection `name` holding one collection per object, made
    as import_package makes it, with every object moved to its place in the scene (scene.json's Blender
    transform). Returns the scene's collection; a failure removes everything made so far."""
    from mathutils import Euler, Matrix

    folder = extract_package(package, Path(cache_dir) / asset_id, folders=True)
    try:
        layout = json.loads((folder / "scene.json").read_text(encoding="utf-8"))
        entries = layout["objects"]
    except (OSError, ValueError, KeyError) as exc:
        raise ImportProblem(f"{Path(package).name} has no readable scene.json ({exc})") from exc
    with _scene_kept(context):
        scene = bpy.data.collections.new(name)
        context.scene.collection.children.link(scene)
        scene[ASSET_ID], scene[ASSET_NAME] = asset_id, name  # no PACKAGE_DIR: a scene is no one engine package
        scene[SCENE] = True
        try:
            for entry in entries:
                part = folder / entry["asset"]["folder"]
                own = json.loads((part / "manifest.json").read_text(encoding="utf-8"))
                collection = import_folder(context, part, name=entry["name"], asset_id=own["asset_id"])
                context.scene.collection.children.unlink(collection)
                scene.children.link(collection)
                placed = entry["blender"]
                matrix = Matrix.LocRotScale(placed["location_m"],
                                            Euler([math.radians(a) for a in placed["rotation_deg"]]),
                                            placed["scale"])
                for obj in collection.objects:
                    obj.matrix_world = matrix @ obj.matrix_world
        except BaseException:
            for child in list(scene.children):
                for obj in list(child.objects):
                    bpy.data.objects.remove(obj, do_unlink=True)
                bpy.data.collections.remove(child)
            bpy.data.collections.remove(scene)
            raise
    return scene


def asset_collections(scene=None) -> list:
    """Collections made by the importer (they carry an asset id)."""
    return [c for c in bpy.data.collections if c.get(ASSET_ID)]


def find_collection(asset_name: str = "", asset_id: str = ""):
    """The newest imported asset (an engine package, not a whole scene) matching the name or id; else None."""
    for collection in reversed(asset_collections()):
        if not collection.get(PACKAGE_DIR):
            continue
        if (asset_id and collection.get(ASSET_ID) == asset_id) or (asset_name and collection.get(ASSET_NAME) == asset_name):
            return collection
    return None


def manifest(collection) -> dict:
    path = Path(collection[PACKAGE_DIR]) / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8"))

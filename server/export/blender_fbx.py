"""Blender side of the FBX writer: `python -m server.export.blender_fbx JOB.json`, run in a subprocess.

This module imports bpy, so the server never imports it: server/export/fbx.py writes the meshes into an
.npz and a job file, and runs this module with the same interpreter. The job file (JSON)::

    {"npz": "/tmp/x/meshes.npz",
     "files": [{"path": "/tmp/x/SM_Barrel.fbx", "preset": "ue5" | "unity", "skeletal": false,
                "objects": [{"name": "SM_Barrel", "mesh": "lod0", "material": "M_Barrel", "parent": null},
                            {"name": "UCX_SM_Barrel_00", "mesh": "hull0", "material": null, "parent": null}]}]}

The npz holds, for each mesh key K: K_vertices (n,3) float, K_faces (m,3) int, and optionally K_uv (n,2)
(v up) and K_normals (n,3), all in Blender axes (metres, Z up, front -Y). On success it prints one JSON
line {"ok": true, "files": [...]} and exits 0; on any failure it prints the traceback to stderr and
exits 1.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .blender_job import job_main
from .fbx_settings import FBX_SETTINGS


def _fail(message: str) -> None:
    raise RuntimeError(message)


def _to_y_up(points: np.ndarray) -> np.ndarray:
    """Blender (x, y, z) -> (x, z, -y): what a +90 degree X rotation of the object turns back."""
    return np.stack([points[:, 0], points[:, 2], -points[:, 1]], axis=1)


def build_mesh(bpy, name: str, arrays: dict, *, y_up: bool):
    """A Blender mesh datablock from arrays: positions, triangles, one UV layer, custom split normals."""
    vertices = np.asarray(arrays["vertices"], dtype=np.float64)
    faces = np.asarray(arrays["faces"], dtype=np.int64)
    uv = arrays.get("uv")
    normals = arrays.get("normals")
    if y_up:
        vertices = _to_y_up(vertices)
        if normals is not None:
            normals = _to_y_up(np.asarray(normals, dtype=np.float64))
    mesh = bpy.data.meshes.new(name)
    # shade_flat=False: smooth faces, so the per-vertex normals below are what the FBX carries.
    mesh.from_pydata(vertices, [], faces, shade_flat=False)
    if len(mesh.polygons) != len(faces):
        _fail(f"{name}: Blender made {len(mesh.polygons)} faces from {len(faces)} triangles")
    if uv is not None:
        uv = np.asarray(uv, dtype=np.float32)
        loop_vertex = np.empty(len(mesh.loops), dtype=np.int32)
        mesh.loops.foreach_get("vertex_index", loop_vertex)
        layer = mesh.uv_layers.new(name="UVMap")
        layer.data.foreach_set("uv", uv[loop_vertex].ravel())
    mesh.update()
    if normals is not None:
        normals = np.asarray(normals, dtype=np.float64)
        lengths = np.linalg.norm(normals, axis=1, keepdims=True)
        normals = normals / np.where(lengths > 0, lengths, 1.0)
        # Blender 4.1+ (and 5.0) has no use_auto_smooth: custom normals are a "custom_normal" corner
        # attribute and are used as they are.
        mesh.normals_split_custom_set_from_vertices(normals)
    return mesh


def clear_scene(bpy) -> None:
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj, do_unlink=True)
    for mesh in list(bpy.data.meshes):
        bpy.data.meshes.remove(mesh)


def build_file(bpy, spec: dict, data) -> list:
    """Objects for one FBX file; returns them. Names are checked: Blender would rename silently."""
    preset = spec.get("preset", "ue5")
    y_up = preset == "unity"
    scene = bpy.context.scene
    made = {}
    for item in spec["objects"]:
        key = item["mesh"]
        arrays = {"vertices": data[f"{key}_vertices"], "faces": data[f"{key}_faces"]}
        for extra in ("uv", "normals"):
            if f"{key}_{extra}" in data.files:
                arrays[extra] = data[f"{key}_{extra}"]
        mesh = build_mesh(bpy, item["name"], arrays, y_up=y_up)
        material_name = item.get("material")
        if material_name:
            material = bpy.data.materials.get(material_name) or bpy.data.materials.new(material_name)
            mesh.materials.append(material)
        obj = bpy.data.objects.new(item["name"], mesh)
        scene.collection.objects.link(obj)
        if obj.name != item["name"] or mesh.name != item["name"]:
            _fail(f"Blender named the object {obj.name!r} / mesh {mesh.name!r}, not {item['name']!r}")
        parent = item.get("parent")
        if parent:
            obj.parent = made[parent]
            obj.matrix_parent_inverse.identity()
        elif y_up:
            # Unity: the mesh data is already Y up and the object is turned +90 degrees about X, so the
            # world shape stays the Blender one and the exporter's Z-up -> Y-up conversion cancels it:
            # every FBX node is written with an identity transform (no -90 X rotation in Unity),
            # without the experimental bake_space_transform.
            obj.rotation_euler = (math.pi / 2.0, 0.0, 0.0)
        made[item["name"]] = obj
    bpy.context.view_layer.update()
    return list(made.values())


_GEOMETRY_NAMES: set[str] = set()


def keep_geometry_names() -> bool:
    """Make the FBX Geometry of each object carry its mesh's own name.

    With use_triangles=True the exporter triangulates a copy of every mesh (a no-op for our triangle
    meshes), and the copy is named '<mesh>.001'; readers of the file would see that name for the mesh
    (Blender's importer does). The exporter looks its name helper up at call time, so wrapping it here, in
    this subprocess only, writes the original names. Returns False (names keep the suffix) where a future
    exporter no longer has the helper.
    """
    try:
        from io_scene_fbx import export_fbx_bin
    except ImportError:
        return False
    original = getattr(export_fbx_bin, "fbx_name_class", None)
    if original is None:
        return False
    if getattr(original, "_o3f_wrapped", False):
        return True

    def fbx_name_class(name: bytes, cls: bytes):
        if cls == b"Geometry":
            base, dot, digits = name.decode("utf-8", "replace").rpartition(".")
            if dot and digits.isdigit() and base in _GEOMETRY_NAMES:
                name = base.encode("utf-8")
        return original(name, cls)

    fbx_name_class._o3f_wrapped = True
    export_fbx_bin.fbx_name_class = fbx_name_class
    return True


def export_file(bpy, spec: dict, objects: list) -> None:
    view_layer = bpy.context.view_layer
    for obj in view_layer.objects:
        obj.select_set(False)
    for obj in objects:
        obj.select_set(True)
    view_layer.objects.active = objects[0]
    object_types = {"MESH", "ARMATURE"} if spec.get("skeletal") else {"MESH"}
    path = Path(spec["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    _GEOMETRY_NAMES.clear()
    _GEOMETRY_NAMES.update(obj.data.name for obj in objects)
    keep_geometry_names()
    result = bpy.ops.export_scene.fbx(filepath=str(path), object_types=object_types, **FBX_SETTINGS)
    if "FINISHED" not in result or not path.is_file() or path.stat().st_size == 0:
        _fail(f"the FBX exporter did not write {path} (returned {sorted(result)})")


def empty_metric_scene(bpy) -> None:
    """Blender's factory settings with nothing in the scene, 1 unit = 1 m (the exporter turns it into cm)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.unit_settings.system = "METRIC"
    scene.unit_settings.scale_length = 1.0


def run(job_path: str) -> dict:
    started = time.perf_counter()
    job = json.loads(Path(job_path).read_text())
    import bpy  # only here: this module runs in its own process

    empty_metric_scene(bpy)
    written = []
    with np.load(job["npz"]) as data:
        for spec in job["files"]:
            clear_scene(bpy)
            objects = build_file(bpy, spec, data)
            export_file(bpy, spec, objects)
            written.append({
                "path": spec["path"],
                "objects": [o.name for o in objects],
                "triangles": {o.name: len(o.data.polygons) for o in objects},
            })
    return {"ok": True, "files": written, "blender": bpy.app.version_string,
            "seconds": round(time.perf_counter() - started, 3)}


if __name__ == "__main__":
    sys.exit(job_main(sys.argv[1:], "server.export.blender_fbx", run))

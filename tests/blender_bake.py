"""Blender as the reference: tangents and Cycles "Selected to Active" bakes (helpers bench/blender_chain.py reuses).

Run in a subprocess (`python tests/blender_bake.py JOB.npz OUT.npz`) so the calling process never
imports bpy. The job npz names a task and carries the arrays; the output npz carries the results.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def run_blender_job(task: str, out_dir: Path, timeout: float = 900, **arrays) -> dict:
    """Run one task in a fresh Python with bpy and return its output arrays."""
    out_dir.mkdir(parents=True, exist_ok=True)
    job, result = out_dir / f"{task}_job.npz", out_dir / f"{task}_out.npz"
    np.savez(job, task=np.array(task), **arrays)
    completed = subprocess.run([sys.executable, __file__, str(job), str(result)], capture_output=True, text=True,
                               timeout=timeout)
    if completed.returncode != 0:
        raise RuntimeError(f"blender task {task} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    with np.load(result, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


# ---- everything below runs inside the bpy subprocess ----

def _mesh_object(bpy, name, vertices, faces, uv=None, normals=None):
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.asarray(vertices, np.float32).ravel())
    mesh.loops.add(len(faces) * 3)
    mesh.loops.foreach_set("vertex_index", np.asarray(faces, np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, len(faces) * 3, 3, dtype=np.int32))
    mesh.polygons.foreach_set("loop_total", np.full(len(faces), 3, np.int32))
    mesh.update(calc_edges=True)
    mesh.validate(clean_customdata=False)
    if uv is not None:
        layer = mesh.uv_layers.new(name="UVMap")
        layer.data.foreach_set("uv", np.asarray(uv, np.float32)[np.asarray(faces).ravel()].ravel())
    if normals is not None:
        mesh.normals_split_custom_set_from_vertices([tuple(n) for n in np.asarray(normals, np.float64)])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _fresh_scene(bpy, threads=2):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.render.threads_mode = "FIXED"
    scene.render.threads = threads
    return scene


def _task_tangents(bpy, job):
    _fresh_scene(bpy)
    obj = _mesh_object(bpy, "low", job["vertices"], job["faces"], job["uv"], job["normals"])
    mesh = obj.data
    mesh.calc_tangents(uvmap="UVMap")
    count = len(mesh.loops)
    tangent = np.zeros(count * 3, np.float32)
    sign = np.zeros(count, np.float32)
    normal = np.zeros(count * 3, np.float32)
    mesh.loops.foreach_get("tangent", tangent)
    mesh.loops.foreach_get("bitangent_sign", sign)
    mesh.loops.foreach_get("normal", normal)
    vertex = np.zeros(count, np.int32)
    mesh.loops.foreach_get("vertex_index", vertex)
    return {"tangent": tangent.reshape(-1, 3), "sign": sign, "normal": normal.reshape(-1, 3), "vertex": vertex}


def _bake_image(bpy, obj, size, name):
    image = bpy.data.images.new(name, size, size, alpha=False, float_buffer=True)
    image.colorspace_settings.name = "Non-Color"
    material = bpy.data.materials.new(f"{name}_material")
    material.use_nodes = True
    node = material.node_tree.nodes.new("ShaderNodeTexImage")
    node.image = image
    material.node_tree.nodes.active = node
    obj.data.materials.clear()
    obj.data.materials.append(material)
    return image


def _select_to_active(bpy, high, low):
    bpy.ops.object.select_all(action="DESELECT")
    high.select_set(True)
    low.select_set(True)
    bpy.context.view_layer.objects.active = low


def _read_image(image, size):
    pixels = np.zeros(size * size * 4, np.float32)
    image.pixels.foreach_get(pixels)
    return pixels.reshape(size, size, 4)[::-1]  # Blender images are bottom-up


def _task_bake(bpy, job):
    """Cycles Selected to Active: NORMAL (tangent, OpenGL) and optionally AO, onto the given low poly."""
    scene = _fresh_scene(bpy, int(job["threads"]))
    size = int(job["size"])
    high = _mesh_object(bpy, "high", job["high_vertices"], job["high_faces"])
    for polygon in high.data.polygons:
        polygon.use_smooth = True
    low = _mesh_object(bpy, "low", job["vertices"], job["faces"], job["uv"], job["normals"])
    bake = scene.render.bake
    bake.use_selected_to_active = True
    bake.cage_extrusion = float(job["cage"])
    bake.max_ray_distance = float(job["max_ray"])
    bake.margin = int(job["margin"])
    bake.normal_space = "TANGENT"
    out = {}
    timings = []
    image = _bake_image(bpy, low, size, "normal")
    _select_to_active(bpy, high, low)
    scene.cycles.samples = 1
    clock = time.perf_counter()
    bpy.ops.object.bake(type="NORMAL")
    timings.append(time.perf_counter() - clock)
    out["normal"] = _read_image(image, size)[..., :3]
    if int(job["ao_samples"]) > 0:
        image = _bake_image(bpy, low, size, "ao")
        _select_to_active(bpy, high, low)
        scene.cycles.samples = int(job["ao_samples"])
        scene.world = bpy.data.worlds.new("world")
        scene.world.light_settings.distance = float(job["ao_distance"])
        clock = time.perf_counter()
        bpy.ops.object.bake(type="AO")
        timings.append(time.perf_counter() - clock)
        out["ao"] = _read_image(image, size)[..., 0]
    out["seconds"] = np.array(timings)
    return out


TASKS = {"tangents": _task_tangents, "bake": _task_bake}


def main(job_path: str, out_path: str) -> None:
    import bpy

    with np.load(job_path, allow_pickle=False) as data:
        job = {key: data[key] for key in data.files}
    result = TASKS[str(job["task"])](bpy, job)
    np.savez(out_path, **result)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

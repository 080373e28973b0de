"""Blender's manual chain in one bpy session: Decimate, Smart UV Project, Cycles normal and AO bakes, FBX export.

Run in a subprocess (`python bench/blender_chain.py JOB.npz OUT.npz`) so the benchmark never imports bpy. Each
step is timed on its own; building the objects from arrays (what opening a .blend would do) is not counted.
The job carries the high poly, the target triangle count, map size, AO samples and distance, cage and threads.
The output carries the timings, Blender's low poly (per-loop UVs and normals), its normal and AO maps.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run_blender_chain(scratch: Path, timeout: float = 3600, **arrays) -> dict:
    """The chain in a fresh Python with bpy; returns its output arrays."""
    scratch.mkdir(parents=True, exist_ok=True)
    job, result = scratch / "chain_job.npz", scratch / "chain_out.npz"
    np.savez(job, **arrays)
    done = subprocess.run([sys.executable, __file__, str(job), str(result)], capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"Blender's chain failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    with np.load(result, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _timed(seconds: dict, name: str, step):
    clock = time.perf_counter()
    out = step()
    seconds[name] = time.perf_counter() - clock
    return out


def chain(bpy, job: dict) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.blender_bake import _bake_image, _fresh_scene, _mesh_object, _read_image, _select_to_active

    scene = _fresh_scene(bpy, int(job["threads"]))
    size = int(job["size"])
    high = _mesh_object(bpy, "high", job["high_vertices"], job["high_faces"])
    high.data.polygons.foreach_set("use_smooth", np.ones(len(high.data.polygons), bool))
    low = _mesh_object(bpy, "low", job["high_vertices"], job["high_faces"])
    bpy.context.view_layer.objects.active = low
    low.select_set(True)
    seconds: dict[str, float] = {}

    def decimate():
        modifier = low.modifiers.new("decimate", "DECIMATE")
        modifier.ratio = float(job["target"]) / len(job["high_faces"])
        modifier.use_collapse_triangulate = True
        bpy.ops.object.modifier_apply(modifier=modifier.name)

    def smart_uv():
        bpy.ops.object.mode_set(mode="EDIT")
        bpy.ops.mesh.select_all(action="SELECT")
        bpy.ops.uv.smart_project(island_margin=0.003)
        bpy.ops.object.mode_set(mode="OBJECT")
        bpy.ops.object.shade_smooth()

    _timed(seconds, "decimate", decimate)
    _timed(seconds, "smart_uv", smart_uv)

    bake = scene.render.bake
    bake.use_selected_to_active = True
    bake.cage_extrusion = float(job["cage"])
    bake.max_ray_distance = 2 * float(job["cage"])
    bake.margin = int(job["margin"])
    bake.normal_space = "TANGENT"
    normal_image = _bake_image(bpy, low, size, "normal")
    _select_to_active(bpy, high, low)
    scene.cycles.samples = 1
    _timed(seconds, "normal_bake", lambda: bpy.ops.object.bake(type="NORMAL"))
    ao_image = _bake_image(bpy, low, size, "ao")
    _select_to_active(bpy, high, low)
    scene.cycles.samples = int(job["ao_samples"])
    scene.world = bpy.data.worlds.new("world")
    scene.world.light_settings.distance = float(job["ao_distance"])
    _timed(seconds, "ao_bake", lambda: bpy.ops.object.bake(type="AO"))

    bpy.ops.object.select_all(action="DESELECT")
    low.select_set(True)
    bpy.context.view_layer.objects.active = low
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "SM_Low.fbx"
        _timed(seconds, "fbx_export", lambda: bpy.ops.export_scene.fbx(
            filepath=str(path), use_selection=True, object_types={"MESH"}, apply_unit_scale=True,
            apply_scale_options="FBX_SCALE_ALL", mesh_smooth_type="FACE", use_triangles=True, use_tspace=True,
            add_leaf_bones=False, bake_anim=False))
        fbx_bytes = path.stat().st_size

    mesh = low.data
    mesh.calc_loop_triangles()
    vertices = np.zeros(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", vertices)
    tris = np.zeros(len(mesh.loop_triangles) * 3, np.int32)
    mesh.loop_triangles.foreach_get("loops", tris)
    loop_vertex = np.zeros(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loop_vertex)
    uv = np.zeros(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers.active.data.foreach_get("uv", uv)
    loop_normals = np.zeros(len(mesh.loops) * 3, np.float32)
    mesh.corner_normals.foreach_get("vector", loop_normals)
    names = ["decimate", "smart_uv", "normal_bake", "ao_bake", "fbx_export"]
    out = {"seconds": np.array([seconds[n] for n in names]), "steps": np.array(names), "fbx_bytes": np.array(fbx_bytes),
           "vertices": vertices.reshape(-1, 3), "loop_faces": tris.reshape(-1, 3), "loop_vertex": loop_vertex,
           "loop_uv": uv.reshape(-1, 2), "loop_normals": loop_normals.reshape(-1, 3),
           "normal": _read_image(normal_image, size)[..., :3], "ao": _read_image(ao_image, size)[..., 0]}
    if "equal_margin" in job:  # not timed: Smart UV Project again, its islands as far apart as ours
        bpy.ops.object.mode_set(mode="EDIT")
        bpy.ops.mesh.select_all(action="SELECT")
        bpy.ops.uv.smart_project(island_margin=float(job["equal_margin"]), margin_method="FRACTION")
        bpy.ops.object.mode_set(mode="OBJECT")
        equal = np.zeros(len(mesh.loops) * 2, np.float32)
        low.data.uv_layers.active.data.foreach_get("uv", equal)
        out["loop_uv_equal"] = equal.reshape(-1, 2)
    return out


def main(job_path: str, out_path: str) -> None:
    import bpy

    with np.load(job_path, allow_pickle=False) as data:
        job = {key: data[key] for key in data.files}
    np.savez(out_path, **chain(bpy, job))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

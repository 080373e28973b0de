"""Skeletal-mesh FBX (`SK_<Name>.fbx`) for UE5: an armature and its weighted mesh, written by Blender.

Two halves, as server/export/fbx.py and blender_fbx.py split them, in one module that imports bpy only
inside `run`, which executes in its own process:

- `write_skeletal_fbx(path, mesh, rig, name=...)` (server side, no bpy) writes the arrays into an .npz
  and a job file and runs `python -m server.export.blender_skeletal JOB.json` with this interpreter;
- `run(JOB.json)` (Blender side) builds the armature (bones with heads, tails, rolls, parents and deform
  flags) and the mesh (parented to it, an Armature modifier, one vertex group per deform bone) and exports
  them with blender_fbx.FBX_SETTINGS plus the skeletal settings of CONVENTIONS.md: primary bone axis Y,
  secondary X, the armature written as a Null node, no leaf bones, all bones (the ik_ bones do not deform
  but are kept). The armature object is named "Armature" by default: Unreal's FBX importer takes a root
  node of that name as the armature itself and adds no extra root bone for it.

The job file (JSON)::

    {"npz": "/tmp/x/skeletal.npz", "path": "/tmp/x/SK_Hero.fbx", "mesh_name": "SK_Hero",
     "armature_name": "Armature", "material": "M_Hero" | null,
     "bones": ["root", "pelvis", ...], "parents": [-1, 0, ...], "deform": [false, true, ...]}

The npz holds vertices (n,3), faces (m,3), optionally uv (n,2) and normals (n,3), heads/tails/up (b,3),
influence_bones (n,k) (-1 for an empty slot) and influence_weights (n,k), all in Blender axes (metres,
Z up, front -Y). On success it prints one JSON line {"ok": true, ...} and exits 0.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ForgeError, InputError
from ..meshdata import MeshArrays
from .blender_job import job_main, run_blender_job
from .fbx import DEFAULT_TIMEOUT_S

if TYPE_CHECKING:  # pragma: no cover
    from ..rigging.rig import RigResult

# What a skeletal mesh adds to the static FBX settings (Epic's Send to Unreal exports the same way).
NAME_PATTERN = re.compile(r"[A-Za-z0-9_]+")


# --------------------------------------------------------------------------------------------------
# server side (no bpy)
# --------------------------------------------------------------------------------------------------

def write_skeletal_fbx(path: str | Path, mesh: MeshArrays, rig: "RigResult", *, name: str,
                       material: str | None = None, armature_name: str = "Armature",
                       timeout: float = DEFAULT_TIMEOUT_S) -> dict:
    """Write `SK_<name>`'s armature and weighted mesh to `path` with Blender in a subprocess.

    `rig` is the rig stage's RigResult for `mesh` (same vertices). Returns Blender's report
    ({"ok", "path", "bones", "vertex_groups", "seconds", ...}); raises InputError for a bad name and
    ForgeError with the tail of Blender's stderr when the export fails.
    """
    for argument, value in (("name", name), ("armature_name", armature_name)):
        if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
            raise InputError(argument, value, "a name of letters, digits and underscores")
    if material is not None and (not isinstance(material, str) or not NAME_PATTERN.fullmatch(material)):
        raise InputError("material", material, "a name of letters, digits and underscores, or None")
    if len(rig.influence_bones) != len(mesh.vertices):
        raise InputError("rig", f"weights for {len(rig.influence_bones)} vertices",
                         f"the rig of this mesh ({len(mesh.vertices)} vertices)")
    mesh_name = f"SK_{name}"
    if armature_name in (mesh_name, *rig.bone_names):
        raise InputError("armature_name", armature_name, "a name no bone and not the mesh uses")
    path = Path(path).resolve()
    with tempfile.TemporaryDirectory(prefix="o3f_sk_") as work:
        work = Path(work)
        arrays = {
            "vertices": np.asarray(mesh.vertices, dtype=np.float64),
            "faces": np.asarray(mesh.faces, dtype=np.int64),
            "heads": np.asarray(rig.heads, dtype=np.float64),
            "tails": np.asarray(rig.tails, dtype=np.float64),
            "up": np.asarray(rig.up, dtype=np.float64),
            "influence_bones": np.asarray(rig.influence_bones, dtype=np.int64),
            "influence_weights": np.asarray(rig.influence_weights, dtype=np.float64),
        }
        if mesh.uv is not None:
            arrays["uv"] = np.asarray(mesh.uv, dtype=np.float32)
        if mesh.normals is not None:
            arrays["normals"] = np.asarray(mesh.normals, dtype=np.float32)
        npz = work / "skeletal.npz"
        np.savez(npz, **arrays)
        job = work / "job.json"
        job.write_text(json.dumps({
            "npz": str(npz), "path": str(path), "mesh_name": mesh_name, "armature_name": armature_name,
            "material": material, "bones": list(rig.bone_names), "parents": [int(p) for p in rig.parents],
            "deform": [bool(d) for d in rig.deform],
        }))
        report = run_blender_job("server.export.blender_skeletal", job, "skeletal FBX export", timeout)
    if not path.is_file():
        raise ForgeError(f"skeletal FBX export wrote no file at {path}")
    return report


# --------------------------------------------------------------------------------------------------
# Blender side (runs in its own process)
# --------------------------------------------------------------------------------------------------

def _fail(message: str) -> None:
    raise RuntimeError(message)


def build_armature(bpy, job: dict, data):
    """The armature object: every bone with its head, tail, roll (align_roll to `up`), parent, deform."""
    name = job["armature_name"]
    armature = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, armature)
    bpy.context.scene.collection.objects.link(obj)
    if obj.name != name:
        _fail(f"Blender named the armature {obj.name!r}, not {name!r}")
    view_layer = bpy.context.view_layer
    view_layer.objects.active = obj
    obj.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    edit_bones = []
    for i, bone_name in enumerate(job["bones"]):
        bone = armature.edit_bones.new(bone_name)
        bone.head = data["heads"][i].tolist()
        bone.tail = data["tails"][i].tolist()
        bone.align_roll(data["up"][i].tolist())
        bone.use_deform = bool(job["deform"][i])
        bone.use_connect = False
        edit_bones.append(bone)
    for bone, parent in zip(edit_bones, job["parents"]):
        if parent >= 0:
            bone.parent = edit_bones[parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    made = [bone.name for bone in armature.bones]
    if sorted(made) != sorted(job["bones"]):
        _fail(f"Blender made bones {made}, not {job['bones']}")
    return obj


def build_skinned_mesh(bpy, job: dict, data, armature_obj):
    """The mesh object, parented to the armature, with its vertex groups and an Armature modifier."""
    from .blender_fbx import build_mesh

    arrays = {"vertices": data["vertices"], "faces": data["faces"]}
    for extra in ("uv", "normals"):
        if extra in data.files:
            arrays[extra] = data[extra]
    name = job["mesh_name"]
    mesh = build_mesh(bpy, name, arrays, y_up=False)
    if job.get("material"):
        mesh.materials.append(bpy.data.materials.get(job["material"]) or bpy.data.materials.new(job["material"]))
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    if obj.name != name or mesh.name != name:
        _fail(f"Blender named the mesh {obj.name!r} / {mesh.name!r}, not {name!r}")
    obj.parent = armature_obj
    obj.matrix_parent_inverse.identity()
    modifier = obj.modifiers.new(name="Armature", type="ARMATURE")
    modifier.object = armature_obj
    bones, weights = data["influence_bones"], data["influence_weights"]
    groups = {}
    for i, bone_name in enumerate(job["bones"]):
        if job["deform"][i]:
            groups[i] = obj.vertex_groups.new(name=bone_name)
    rows, slots = np.nonzero(bones >= 0)
    for row, slot in zip(rows.tolist(), slots.tolist()):
        bone = int(bones[row, slot])
        if bone not in groups:
            _fail(f"vertex {row} is weighted to {job['bones'][bone]!r}, which does not deform")
        groups[bone].add([row], float(weights[row, slot]), "REPLACE")
    return obj


def run(job_path: str) -> dict:
    started = time.perf_counter()
    job = json.loads(Path(job_path).read_text())
    import bpy  # only here: this module runs in its own process

    from .blender_fbx import _GEOMETRY_NAMES, FBX_SETTINGS, empty_metric_scene, keep_geometry_names
    from .fbx_settings import SKELETAL_SETTINGS

    empty_metric_scene(bpy)
    with np.load(job["npz"]) as data:
        armature = build_armature(bpy, job, data)
        mesh = build_skinned_mesh(bpy, job, data, armature)
    view_layer = bpy.context.view_layer
    view_layer.update()  # the view layer lists objects linked since the last update only after one
    for obj in view_layer.objects:
        obj.select_set(False)
    armature.select_set(True)
    mesh.select_set(True)
    view_layer.objects.active = armature
    path = Path(job["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    _GEOMETRY_NAMES.clear()
    _GEOMETRY_NAMES.add(mesh.data.name)
    keep_geometry_names()
    settings = dict(FBX_SETTINGS, **SKELETAL_SETTINGS)
    result = bpy.ops.export_scene.fbx(filepath=str(path), object_types={"ARMATURE", "MESH"}, **settings)
    if "FINISHED" not in result or not path.is_file() or path.stat().st_size == 0:
        _fail(f"the FBX exporter did not write {path} (returned {sorted(result)})")
    return {"ok": True, "path": str(path), "armature": armature.name, "mesh": mesh.name,
            "bones": len(armature.data.bones), "vertex_groups": len(mesh.vertex_groups),
            "vertices": len(mesh.data.vertices), "blender": bpy.app.version_string,
            "seconds": round(time.perf_counter() - started, 3)}


if __name__ == "__main__":
    sys.exit(job_main(sys.argv[1:], "server.export.blender_skeletal", run))

"""The scene description (scene.json) of placed objects in each engine's units and axes, and its scene.glb preview.

Every transform is T(location) R(yaw) S(scale), applied to the object's own mesh as the engine imports it.

* blender: metres, Z up, right-handed; the meshes' own frame (server/meshdata.py).
* ue5: centimetres, Z up, left-handed. Blender +X stays UE +X, +Z stays +Z and Blender -Y (the front)
  becomes UE +Y (server/export/blender_fbx.py), so a point (x, y, z) m is (100x, -100y, 100z) cm. Mirroring
  Y turns a Blender yaw of a degrees into UE's Rotator yaw of -a (UE's yaw turns X toward Y).
* godot: glTF axes, metres, Y up, right-handed, front +Z: (x, y, z) -> (x, z, -y). A Blender yaw about +Z
  is the same angle about +Y; the scale along the mesh's own (X, Y, Z) becomes (X, Z, Y).
* unity: metres, Y up, left-handed: the glTF frame with X negated, as Unity's FBX and glTF importers convert
  it. Position (-x, z, -y), yaw about +Y of -a, scale (X, Z, Y).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import trimesh

from ..errors import InputError
from ..export import naming
from ..export.gltf import blender_to_gltf
from .camera import SceneCamera
from .place import PlacedObject, transform_matrix
from .segment import SceneSegmentation

FORMAT = "open3dforge-scene/1"
DIGITS = 6
# Blender axes -> glTF axes, as a rotation matrix: (x, y, z) -> (x, z, -y).
BLENDER_TO_GLTF = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
GLTF_TO_UNITY = np.diag([-1.0, 1.0, 1.0])


def _rounded(values) -> list[float]:
    return [round(float(v), DIGITS) + 0.0 for v in values]  # + 0.0 turns -0.0 into 0.0


def ue5_transform(placed: PlacedObject) -> dict:
    """Actor transform in Unreal units: location in cm, Rotator in degrees, scale along the asset's axes."""
    x, y, z = placed.location
    return {"location_cm": _rounded([100 * x, -100 * y, 100 * z]),
            "rotation_deg": {"roll": 0.0, "pitch": 0.0, "yaw": round(-placed.yaw_deg, DIGITS) + 0.0},
            "scale": _rounded(placed.scale)}


def godot_transform(placed: PlacedObject) -> dict:
    """Node3D transform in glTF axes (metres, Y up, right-handed): rotation_deg is Euler (x, y, z)."""
    sx, sy, sz = placed.scale
    return {"position_m": _rounded(blender_to_gltf(placed.location[None])[0]),
            "rotation_deg": [0.0, round(placed.yaw_deg, DIGITS) + 0.0, 0.0], "scale": _rounded([sx, sz, sy])}


def unity_transform(placed: PlacedObject) -> dict:
    """Transform in Unity's axes (metres, Y up, left-handed): localEulerAngles (x, y, z) in degrees."""
    sx, sy, sz = placed.scale
    position = GLTF_TO_UNITY @ blender_to_gltf(placed.location[None])[0]
    return {"position_m": _rounded(position), "rotation_deg": [0.0, round(-placed.yaw_deg, DIGITS) + 0.0, 0.0],
            "scale": _rounded([sx, sz, sy])}


def blender_transform(placed: PlacedObject) -> dict:
    return {"location_m": _rounded(placed.location), "rotation_deg": [0.0, 0.0, round(placed.yaw_deg, DIGITS) + 0.0],
            "scale": _rounded(placed.scale)}


def blender_matrix_from_ue5(transform: dict) -> np.ndarray:
    """4x4 Blender-axes matrix (metres) of a scene.json "ue5" entry: the inverse of ue5_transform."""
    x, y, z = (float(v) / 100.0 for v in transform["location_cm"])
    rotation = transform["rotation_deg"]
    if abs(float(rotation.get("roll", 0.0))) > 1e-9 or abs(float(rotation.get("pitch", 0.0))) > 1e-9:
        raise InputError("rotation_deg", rotation, "a yaw only (objects stand upright): roll and pitch 0")
    return transform_matrix([x, -y, z], -float(rotation["yaw"]), transform["scale"])


def gltf_matrix_from_godot(transform: dict) -> np.ndarray:
    """4x4 glTF-axes matrix of a scene.json "godot" entry (for meshes in glTF axes)."""
    rx, ry, rz = (float(v) for v in transform["rotation_deg"])
    if abs(rx) > 1e-9 or abs(rz) > 1e-9:
        raise InputError("rotation_deg", transform["rotation_deg"], "a rotation about Y only")
    a = math.radians(ry)
    m = np.eye(4)
    m[:3, :3] = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]]) \
        @ np.diag([float(v) for v in transform["scale"]])
    m[:3, 3] = [float(v) for v in transform["position_m"]]
    return m


def _gltf_matrix(placed: PlacedObject) -> np.ndarray:
    """The object's transform for a mesh stored in glTF axes: P M P^T."""
    p = np.eye(4)
    p[:3, :3] = BLENDER_TO_GLTF
    return p @ placed.matrix @ p.T


def asset_names(name: str, use_fbx: bool = True) -> dict:
    """Where each object's own asset sits in the scene zip, per engine (one folder per object).

    use_fbx=False: the packages carry GLB meshes under the same base names (a server without Blender).
    """
    ue5 = naming.engine_names(name, "ue5", use_fbx=use_fbx)
    unity = naming.engine_names(name, "unity", use_fbx=use_fbx)
    godot = naming.engine_names(name, "godot")
    return {"folder": name,
            "ue5": {"mesh_asset": ue5.mesh_nodes[0], "mesh_file": ue5.mesh_files[0],
                    "import_script": ue5.import_script},
            "unity": {"mesh_file": unity.mesh_files[0]},
            "godot": {"mesh_file": godot.mesh_files[0]}}


def scene_layout(name: str, placed: list[PlacedObject], camera: SceneCamera,
                 segmentation: SceneSegmentation | None = None, *, use_fbx: bool = True) -> dict:
    """scene.json's content: the camera, and per object its asset names and transform in every engine's axes.

    Object names must be asset names ([A-Za-z0-9_], see server/export/naming.py); the transforms place each
    object's asset, whose own frame is the mesh given to place_objects. use_fbx: whether the objects'
    packages carry FBX (False: GLB under the same names).
    """
    naming.check_name(name)
    if not placed:
        raise InputError("placed", placed, "at least one placed object")
    objects = []
    for item in placed:
        naming.check_name(item.name)
        lo, hi = item.world_bounds()
        entry = {"name": item.name, "asset": asset_names(item.name, use_fbx),
                 "ue5": ue5_transform(item), "godot": godot_transform(item), "unity": unity_transform(item),
                 "blender": blender_transform(item),
                 "size_m": dict(zip(("width", "depth", "height"), _rounded(item.size_m))),
                 "bounds_m": {"min": _rounded(lo), "max": _rounded(hi)},
                 "distance_m": round(float(np.linalg.norm((lo[:2] + hi[:2]) / 2)), DIGITS),
                 "moved_m": _rounded(item.moved_m), "fit_residual_px": round(item.fit_residual_px, 3),
                 "notes": list(item.notes)}
        if item.source is not None:
            entry["image"] = {"bbox_px": list(item.source.bbox), "area_px": item.source.area,
                              "base_px": [item.source.base_col, item.source.base_row],
                              "hidden": list(item.source.hidden), "clipped": list(item.source.clipped)}
        objects.append(entry)
    layout = {"format": FORMAT, "name": name, "camera": camera.as_dict(),
              "units": {"ue5": "centimetres, degrees (Rotator roll, pitch, yaw); Z up, left-handed",
                        "godot": "metres, degrees; glTF axes: Y up, right-handed, front +Z",
                        "unity": "metres, degrees (localEulerAngles); Y up, left-handed",
                        "blender": "metres, degrees; Z up, right-handed, front -Y"},
              "objects": objects}
    if segmentation is not None:
        layout["segmentation"] = segmentation.summary()
    return layout


def write_scene_json(path, layout: dict) -> Path:
    path = Path(path)
    path.write_text(json.dumps(layout, indent=2))
    return path


def scene_glb(placed: list[PlacedObject]) -> bytes:
    """scene.glb: one node per object, named after it, holding its own mesh (glTF axes) under its transform."""
    if not placed:
        raise InputError("placed", placed, "at least one placed object")
    scene = trimesh.Scene()
    for item in placed:
        mesh = trimesh.Trimesh(blender_to_gltf(item.mesh.vertices), item.mesh.faces, process=False)
        if item.mesh.colors is not None:
            mesh.visual.vertex_colors = item.mesh.colors
        scene.add_geometry(mesh, geom_name=item.name, node_name=item.name, transform=_gltf_matrix(item))
    return scene.export(file_type="glb")


def write_scene_glb(path, placed: list[PlacedObject]) -> Path:
    path = Path(path)
    path.write_bytes(scene_glb(placed))
    return path

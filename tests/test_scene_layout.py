"""server/scene/layout.py: scene.json transforms checked against each engine's own rules written out here
(UE5: cm, left-handed, Rotator yaw turning X toward Y; Godot: glTF axes; Unity: glTF axes with X negated),
scene.glb's nodes, and bad input."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import trimesh

from server.errors import InputError
from server.meshdata import MeshArrays
from server.scene.camera import SceneCamera
from server.scene.layout import (blender_matrix_from_ue5, gltf_matrix_from_godot, scene_glb, scene_layout,
                                 write_scene_glb, write_scene_json)
from server.scene.place import PlacedObject


def rz(degrees):
    a = math.radians(degrees)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1.0]])


def ry(degrees):
    """Rotation about +Y: right-handed (Godot), and numerically the same matrix Unity's Euler y gives in its
    left-handed axes (forward +Z turns toward +X for a positive angle)."""
    a = math.radians(degrees)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1.0, 0], [-math.sin(a), 0, math.cos(a)]])


def objects():
    rng = np.random.default_rng(5)
    tetra = trimesh.creation.icosphere(subdivisions=1)
    out = []
    for i, (x, y, yaw) in enumerate([(-1.2, 3.0, 21.8), (0.9, 4.5, -11.3), (0.0, 6.0, 0.0)]):
        mesh = MeshArrays(tetra.vertices * [0.4, 0.3, 0.5] + [0.1, 0.05, 0.5], tetra.faces,
                          colors=np.tile(np.array([[200, 40, 40, 255]], np.uint8), (len(tetra.vertices), 1)))
        out.append(PlacedObject(f"Prop_{i + 1:02d}", mesh, np.array([x, y, 0.2]), yaw,
                                rng.uniform(0.5, 2.0, 3), np.array([x, y, 0.0]), 0.1))
    return out


def blender_world(placed):
    return placed.mesh.vertices @ placed.matrix[:3, :3].T + placed.matrix[:3, 3]


def test_ue5_transform_follows_unreal_rules():
    """The asset comes into UE as (100x, -100y, 100z) cm; its actor applies Rotator yaw (X toward Y), then scale,
    then location: the result must be the Blender world mirrored the same way."""
    layout = scene_layout("Yard", objects(), SceneCamera(320, 240))
    for entry, placed in zip(layout["objects"], objects()):
        ue = entry["ue5"]
        assert ue["rotation_deg"]["roll"] == 0 and ue["rotation_deg"]["pitch"] == 0
        local = placed.mesh.vertices * [100, -100, 100]
        world = local @ (rz(ue["rotation_deg"]["yaw"]) @ np.diag(ue["scale"])).T + ue["location_cm"]
        assert np.abs(world - blender_world(placed) * [100, -100, 100]).max() < 1e-3  # cm
        assert ue["rotation_deg"]["yaw"] == pytest.approx(-placed.yaw_deg)


def test_godot_and_unity_transforms_follow_their_rules():
    layout = scene_layout("Yard", objects(), SceneCamera(320, 240))
    for entry, placed in zip(layout["objects"], objects()):
        truth = blender_world(placed)
        gltf_truth = np.column_stack([truth[:, 0], truth[:, 2], -truth[:, 1]])
        v = placed.mesh.vertices
        godot = entry["godot"]
        local = np.column_stack([v[:, 0], v[:, 2], -v[:, 1]])  # the Godot GLB holds the mesh in glTF axes
        world = local @ (ry(godot["rotation_deg"][1]) @ np.diag(godot["scale"])).T + godot["position_m"]
        assert np.abs(world - gltf_truth).max() < 1e-5
        unity = entry["unity"]
        local = np.column_stack([-v[:, 0], v[:, 2], -v[:, 1]])  # Unity's importers negate glTF/FBX X
        world = local @ (ry(unity["rotation_deg"][1]) @ np.diag(unity["scale"])).T + unity["position_m"]
        assert np.abs(world - gltf_truth * [-1, 1, 1]).max() < 1e-5


def test_scene_glb_nodes_match_every_json_transform(tmp_path):
    placed = objects()
    layout = json.loads(write_scene_json(tmp_path / "scene.json",
                                         scene_layout("Yard", placed, SceneCamera(320, 240))).read_text())
    glb = trimesh.load(write_scene_glb(tmp_path / "scene.glb", placed), file_type="glb")
    assert sorted(glb.graph.nodes_geometry) == sorted(p.name for p in placed)
    for entry, item in zip(layout["objects"], placed):
        matrix, geometry = glb.graph[entry["name"]]
        world_gltf = trimesh.transform_points(glb.geometry[geometry].vertices, matrix)
        v = item.mesh.vertices
        from_ue5 = trimesh.transform_points(v, blender_matrix_from_ue5(entry["ue5"]))
        assert np.abs(np.column_stack([from_ue5[:, 0], from_ue5[:, 2], -from_ue5[:, 1]]) - world_gltf).max() < 0.001
        from_godot = trimesh.transform_points(np.column_stack([v[:, 0], v[:, 2], -v[:, 1]]),
                                              gltf_matrix_from_godot(entry["godot"]))
        assert np.abs(from_godot - world_gltf).max() < 0.001
        colours = glb.geometry[geometry].visual.vertex_colors
        assert colours[:, :3].tolist()[0] == [200, 40, 40]
    assert layout["format"] == "open3dforge-scene/1" and layout["camera"]["vfov_deg"] == 50.0
    assert layout["objects"][0]["asset"]["ue5"] == {"mesh_asset": "SM_Prop_01", "mesh_file": "SM_Prop_01.fbx",
                                                    "import_script": "import_Prop_01.py"}


def test_bad_input_is_named():
    camera = SceneCamera(320, 240)
    with pytest.raises(InputError, match="bundle.name"):
        scene_layout("my scene!", objects(), camera)
    with pytest.raises(InputError, match="placed"):
        scene_layout("Yard", [], camera)
    with pytest.raises(InputError, match="placed"):
        scene_glb([])
    with pytest.raises(InputError, match="rotation_deg"):
        blender_matrix_from_ue5({"location_cm": [0, 0, 0], "rotation_deg": {"roll": 5, "pitch": 0, "yaw": 0},
                                 "scale": [1, 1, 1]})
    data = scene_glb(objects())
    assert trimesh.load(io.BytesIO(data), file_type="glb").geometry  # a readable GLB

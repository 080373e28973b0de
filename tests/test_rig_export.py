"""Engine packages of a rigged character (issue 16 item 4): a humanoid made here (tests/humanoids.py), rigged
with server.rigging.rig_mesh, exported for UE5 (SK_<Name>.fbx read back by Blender, or a skinned GLB checked
by the Khronos glTF-Validator and posed from its own data), Unity (skinned FBX and the Humanoid bone map) and
Godot (one GLB with its skin); static LODs and hulls stay out."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from server.errors import InputError
from server.export.fbx import bpy_available
from server.export.gltf import read_glb_json
from server.export.gltf_skin import BLENDER_TO_GLTF, build_skinned_glb, skin_attributes
from server.export.package import ExportBundle, export_package
from server.export.unity_humanoid import HUMAN_PARENTS, REQUIRED
from server.meshdata import MeshArrays
from server.rigging import pose_vertices, rig_mesh
from tests.humanoids import CAST, make_humanoid
from tests.test_export_gltf import glb_accessor, validate
from tests.test_export_package import assert_manifest_files, make_barrel, make_textures, zip_files

needs_bpy = pytest.mark.skipif(not bpy_available(), reason="bpy (Blender as a module, cp311) is not installed")


def with_surface(mesh: MeshArrays) -> MeshArrays:
    """The body with the normals and UVs an ExportBundle needs: trimesh's vertex normals, a cylinder map."""
    normals = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).vertex_normals
    v = mesh.vertices
    uv = np.stack([np.arctan2(v[:, 1], v[:, 0]) / (2 * np.pi) + 0.5, (v[:, 2] - v[:, 2].min()) / np.ptp(v[:, 2])], 1)
    return MeshArrays(v, mesh.faces, uv=uv, normals=np.asarray(normals))


def make_character():
    """A small A-pose humanoid (about 2k vertices) and its rig."""
    human = make_humanoid(replace(CAST["a_pose_short"], cells=50))
    mesh = with_surface(human.mesh)
    return mesh, rig_mesh(mesh)


def character_bundle(mesh, rig, **overrides) -> ExportBundle:
    """The rigged bundle, with two static LODs and two hulls too: the package must leave them out."""
    fields = dict(name="Hero", lods=[mesh, make_barrel(12, 6), make_barrel(8, 4)],
                  hulls=[MeshArrays(make_barrel(8, 4).vertices, make_barrel(8, 4).faces)] * 2,
                  textures=make_textures(), manifest={"parameters": {"kind": "character"}}, rig=rig)
    fields.update(overrides)
    return ExportBundle(**fields)


@pytest.fixture(scope="module")
def character():
    return make_character()


@pytest.fixture(scope="module")
def ue5_fbx(character, tmp_path_factory):
    if not bpy_available():
        pytest.skip("bpy (Blender as a module, cp311) is not installed")
    mesh, rig = character
    path = export_package(character_bundle(mesh, rig), "ue5", tmp_path_factory.mktemp("ue5"), use_fbx=True)
    folder = tmp_path_factory.mktemp("ue5_files")
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    from tests.test_rig_fbx import read_skeletal

    return {"zip": path, "files": zip_files(path), "read": read_skeletal(folder / "SK_Hero.fbx")}


@pytest.fixture(scope="module")
def ue5_glb(character, tmp_path_factory):
    mesh, rig = character
    path = export_package(character_bundle(mesh, rig), "ue5", tmp_path_factory.mktemp("ue5glb"), use_fbx=False)
    folder = tmp_path_factory.mktemp("ue5glb_files")
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    return {"zip": path, "files": zip_files(path), "folder": folder}


# ------------------------------------------------------------------------------------------------ UE5


def test_ue5_zip_holds_the_skeletal_mesh_and_nothing_static(ue5_fbx, character):
    files = ue5_fbx["files"]
    assert sorted(files) == sorted(["SK_Hero.fbx", "T_Hero_BC.png", "T_Hero_N.png", "T_Hero_ORM.png",
                                    "import_Hero.py", "manifest.json", "preview.png"])
    manifest = json.loads(files["manifest.json"])
    mesh, rig = character
    assert manifest["rigged"] is True and manifest["skeletal"] is True and manifest["mesh_format"] == "fbx"
    assert [entry["file"] for entry in manifest["lods"]] == ["SK_Hero.fbx"]
    assert manifest["lod_triangles"] == [mesh.face_count] and manifest["collision_hulls"] == 0
    assert manifest["left_out"]["lods"] == 2 and manifest["left_out"]["hulls"] == 2
    skeleton = manifest["skeleton"]
    assert skeleton["skeleton"] == "ue5_mannequin" and skeleton["bone_count"] == len(rig.bone_names)
    assert skeleton["bones"] == rig.bone_names and skeleton["parents"] == rig.parent_names
    assert skeleton["height_cm"] == pytest.approx(np.ptp(mesh.vertices[:, 2]) * 100, abs=0.01)
    assert skeleton["armature_node"] == "Armature" and skeleton["root"] == "root"
    assert manifest["parameters"] == {"kind": "character"}
    assert_manifest_files(files, manifest)
    script = files["import_Hero.py"].decode()
    assert "SKELETAL = True" in script and f"BONES = {rig.bone_names!r}" in script


def test_ue5_fbx_read_back_by_blender(ue5_fbx, character):
    """Blender's FBX importer finds one armature with the rig's bones and parents (no leaf bones), one mesh
    weighted to them as the rig says, and no UCX hulls or LOD meshes."""
    mesh, rig = character
    read = ue5_fbx["read"]
    types = sorted((name, entry["type"]) for name, entry in read["objects"].items())
    assert types == [("Armature", "ARMATURE"), ("SK_Hero", "MESH")]
    assert read["bones"] == rig.parent_names
    for name, head in read["heads"].items():
        np.testing.assert_allclose(head, rig.joints[name], atol=1e-4)
    np.testing.assert_allclose(np.array(read["rest"]), mesh.vertices, atol=1e-5)
    groups = read["groups"]
    ours = rig.dense_weights()[:, [rig.bone_names.index(g) for g in groups]]
    np.testing.assert_allclose(np.array(read["weights"]), ours, atol=1e-5)
    assert read["raw"]["global"]["UnitScaleFactor"] == [pytest.approx(100.0)]  # centimetres in UE5


def test_ue5_glb_variant_files(ue5_glb):
    files = ue5_glb["files"]
    assert sorted(files) == sorted(["SK_Hero.glb", "T_Hero_BC.png", "T_Hero_N.png", "T_Hero_ORM.png",
                                    "import_Hero.py", "manifest.json", "preview.png"])
    manifest = json.loads(files["manifest.json"])
    assert manifest["mesh_format"] == "glb" and "fallback" in manifest
    assert "SK_Hero.glb" in files["import_Hero.py"].decode()


def test_ue5_glb_passes_the_khronos_validator(ue5_glb):
    reports = validate([ue5_glb["folder"] / "SK_Hero.glb"])
    (issues,) = reports.values()
    assert issues["numErrors"] == 0, issues["messages"][:5]
    others = {m["code"] for m in issues["messages"] if m["severity"] == 1} - {"MESH_PRIMITIVE_GENERATED_TANGENT_SPACE"}
    assert not others


def node_worlds(doc) -> np.ndarray:
    """Each node's world matrix from its translation and rotation, down the node hierarchy."""
    local = []
    for node in doc["nodes"]:
        matrix = np.eye(4)
        if "rotation" in node:
            matrix[:3, :3] = Rotation.from_quat(node["rotation"]).as_matrix()
        matrix[:3, 3] = node.get("translation", [0.0, 0.0, 0.0])
        local.append(matrix)
    parent = {child: i for i, node in enumerate(doc["nodes"]) for child in node.get("children", [])}
    world = [None] * len(local)

    def resolve(i):
        if world[i] is None:
            world[i] = local[i] if i not in parent else resolve(parent[i]) @ local[i]
        return world[i]

    return np.array([resolve(i) for i in range(len(local))])


def test_glb_skin_matches_the_rig(ue5_glb, character):
    """Joints and weights are the rig's within float32 precision; the joints are the rig's bones in its order
    with its parents; each inverse bind matrix inverts its joint's rest world matrix; the bones sit at the
    rig's joints (glTF axes)."""
    mesh, rig = character
    data = (ue5_glb["folder"] / "SK_Hero.glb").read_bytes()
    doc = read_glb_json(data)
    (skin,) = doc["skins"]
    names = [doc["nodes"][j]["name"] for j in skin["joints"]]
    assert names == rig.bone_names
    parent_of = {child: doc["nodes"][i]["name"] for i, node in enumerate(doc["nodes"]) for child in node.get("children", [])}
    assert {doc["nodes"][j]["name"]: parent_of.get(j) for j in skin["joints"]} == rig.parent_names
    mesh_node = next(n for n in doc["nodes"] if "mesh" in n)
    assert mesh_node == {"name": "SK_Hero", "mesh": 0, "skin": 0}
    assert doc["scenes"][0]["nodes"] == [skin["skeleton"], doc["nodes"].index(mesh_node)]
    attributes = doc["meshes"][0]["primitives"][0]["attributes"]
    joints = glb_accessor(data, doc, attributes["JOINTS_0"]).astype(np.int64)
    weights = glb_accessor(data, doc, attributes["WEIGHTS_0"])
    dense = np.zeros((len(mesh.vertices), len(rig.bone_names)))
    np.add.at(dense, (np.arange(len(dense))[:, None].repeat(4, 1), joints), weights)
    np.testing.assert_allclose(dense, rig.dense_weights(), atol=1e-6)
    assert np.abs(weights.sum(axis=1) - 1).max() < 1e-6
    world = node_worlds(doc)[skin["joints"]]
    ibm = glb_accessor(data, doc, skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    np.testing.assert_allclose(np.einsum("nij,njk->nik", world, ibm), np.tile(np.eye(4), (len(world), 1, 1)), atol=1e-5)
    heads = np.array([rig.joints[n] for n in rig.bone_names]) @ BLENDER_TO_GLTF.T
    np.testing.assert_allclose(world[:, :3, 3], heads, atol=1e-6)


def test_glb_bends_like_the_rig(ue5_glb, character):
    """Turning lowerarm_l 90 degrees through the GLB's own nodes, inverse bind matrices, joints and weights moves
    the vertices where server.rigging.pose_vertices does (linear blend skinning, what engines compute)."""
    mesh, rig = character
    data = (ue5_glb["folder"] / "SK_Hero.glb").read_bytes()
    doc = read_glb_json(data)
    (skin,) = doc["skins"]
    attributes = doc["meshes"][0]["primitives"][0]["attributes"]
    positions = glb_accessor(data, doc, attributes["POSITION"]).astype(np.float64)
    joints = glb_accessor(data, doc, attributes["JOINTS_0"]).astype(np.int64)
    weights = glb_accessor(data, doc, attributes["WEIGHTS_0"]).astype(np.float64)
    turn_blender = Rotation.from_rotvec([0.0, 0.0, np.pi / 2]).as_matrix()
    bone = rig.bone_names.index("lowerarm_l")
    pivot = BLENDER_TO_GLTF @ rig.heads[bone]
    about = np.eye(4)
    about[:3, :3] = BLENDER_TO_GLTF @ turn_blender @ BLENDER_TO_GLTF.T
    about[:3, 3] = pivot - about[:3, :3] @ pivot
    nodes = [dict(n) for n in doc["nodes"]]
    rest = node_worlds({"nodes": nodes})
    local_new = np.linalg.solve(rest[rig.parents[bone]], about @ rest[bone])
    nodes[bone]["translation"] = local_new[:3, 3].tolist()
    nodes[bone]["rotation"] = Rotation.from_matrix(local_new[:3, :3]).as_quat().tolist()
    posed_world = node_worlds({"nodes": nodes})[skin["joints"]]
    ibm = glb_accessor(data, doc, skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    skinning = np.einsum("nij,njk->nik", posed_world, ibm)
    homogeneous = np.c_[positions, np.ones(len(positions))]
    moved = np.zeros_like(positions)
    for slot in range(4):
        moved += weights[:, slot, None] * np.einsum("nij,nj->ni", skinning[joints[:, slot]], homogeneous)[:, :3]
    expected = pose_vertices(rig, mesh.vertices, {"lowerarm_l": [0.0, 0.0, np.pi / 2]}) @ BLENDER_TO_GLTF.T
    np.testing.assert_allclose(moved, expected, atol=1e-5)
    assert np.linalg.norm(moved - positions, axis=1).max() > 0.1  # the arm did move


@needs_bpy
def test_glb_read_back_by_blender(ue5_glb, character):
    """Blender's glTF importer makes an armature of the rig's bones at its joints and a mesh weighted to them."""
    mesh, rig = character
    reader = r'''
import json, sys, bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.gltf(filepath=sys.argv[1])
arm = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
mesh = next(o for o in bpy.context.scene.objects if o.type == "MESH")
weights = {}
for v in mesh.data.vertices:
    for g in v.groups:
        weights.setdefault(mesh.vertex_groups[g.group].name, {})[v.index] = g.weight
print("JSON" + json.dumps({"bones": {b.name: b.parent.name if b.parent else None for b in arm.data.bones},
    "heads": {b.name: list(arm.matrix_world @ b.head_local) for b in arm.data.bones},
    "vertices": len(mesh.data.vertices), "weights": weights}))
'''
    proc = subprocess.run([sys.executable, "-c", reader, str(ue5_glb["folder"] / "SK_Hero.glb")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    read = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("JSON"))[4:])
    assert read["bones"] == rig.parent_names
    for name, head in read["heads"].items():
        np.testing.assert_allclose(head, rig.joints[name], atol=1e-5)
    # Blender's glTF importer may merge vertices; positions are compared through the weights per bone.
    dense = rig.dense_weights()
    for name, by_vertex in read["weights"].items():
        column = dense[:, rig.bone_names.index(name)]
        assert len(by_vertex) == int((column > 0).sum())
    assert read["vertices"] == len(mesh.vertices)


def test_float32_weights_sum_to_one():
    """The weights as written: float32 rows whose sum is 1 to float32 precision, empty slots joint 0."""
    bones = np.array([[3, 1, -1, -1], [2, 0, 5, 4]])
    weights = np.array([[0.7, 0.3, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    joints, out = skin_attributes(bones, weights)
    assert out.dtype == np.float32 and np.abs(out.sum(axis=1, dtype=np.float64) - 1).max() < 1e-7
    assert joints.tolist() == [[3, 1, 0, 0], [2, 0, 5, 4]]
    joints8, out8 = skin_attributes(np.array([[0, 1, 2, 3, 4, -1]]), np.array([[0.2] * 5 + [0.0]]))
    assert joints8.shape == (1, 8) and out8[0, 5:].tolist() == [0.0, 0.0, 0.0]


# --------------------------------------------------------------------------------------------- Unity


@needs_bpy
def test_unity_package_fbx_and_humanoid_map(character, tmp_path):
    mesh, rig = character
    path = export_package(character_bundle(mesh, rig), "unity", tmp_path, use_fbx=True)
    files = zip_files(path)
    assert sorted(files) == sorted(["Hero.fbx", "Hero_BaseMap.png", "Hero_Normal.png", "Hero_MetallicSmoothness.png",
                                    "Hero_MaskMap.png", "manifest.json", "preview.png"])
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "files")
    from tests.test_rig_fbx import read_skeletal

    read = read_skeletal(tmp_path / "files" / "Hero.fbx")
    assert sorted(o["type"] for o in read["objects"].values()) == ["ARMATURE", "MESH"]
    assert read["bones"] == rig.parent_names and read["objects"]["SK_Hero"]["parent"] == "Armature"
    manifest = json.loads(files["manifest.json"])
    assert [entry["node"] for entry in manifest["lods"]] == ["SK_Hero"] and manifest["collision_hulls"] == 0
    assert manifest["skeleton"]["bone_count"] == len(rig.bone_names) and "height_cm" not in manifest["skeleton"]
    assert_humanoid_map(manifest["humanoid"], rig)
    assert_manifest_files(files, manifest)


def assert_humanoid_map(humanoid: dict, rig):
    """Every required Humanoid slot filled, each slot once, each with its Unity parent slot's bone above it."""
    mapping = humanoid["bone_map"]
    slots = list(mapping.values())
    assert humanoid["required_missing"] == [] and set(REQUIRED) <= set(slots) and len(set(slots)) == len(slots)
    assert {"pelvis": "Hips", "spine_01": "Spine", "head": "Head", "hand_l": "LeftHand", "ball_r": "RightToes",
            "clavicle_l": "LeftShoulder", "thigh_r": "RightUpperLeg"}.items() <= mapping.items()
    bone_of = {slot: bone for bone, slot in mapping.items()}
    for bone, slot in mapping.items():
        parent_slot = HUMAN_PARENTS[slot]
        while parent_slot is not None and parent_slot not in bone_of:
            parent_slot = HUMAN_PARENTS[parent_slot]
        if parent_slot is None:
            continue
        ancestor, here = bone_of[parent_slot], rig.parent_names[bone]
        while here is not None and here != ancestor:
            here = rig.parent_names[here]
        assert here == ancestor, (slot, bone, parent_slot)
    assert set(humanoid["unmapped_bones"]) == set(rig.bone_names) - set(mapping)
    assert "root" in humanoid["unmapped_bones"]


def test_unity_glb_without_bpy(character, tmp_path):
    mesh, rig = character
    files = zip_files(export_package(character_bundle(mesh, rig), "unity", tmp_path, use_fbx=False))
    assert "Hero.glb" in files and not [n for n in files if n.endswith(".fbx")]
    doc = read_glb_json(files["Hero.glb"])
    assert len(doc["skins"]) == 1 and [n["name"] for n in doc["nodes"] if "mesh" in n] == ["SK_Hero"]
    assert_humanoid_map(json.loads(files["manifest.json"])["humanoid"], rig)


# --------------------------------------------------------------------------------------------- Godot


def test_godot_package_one_skinned_glb(character, tmp_path):
    mesh, rig = character
    path = export_package(character_bundle(mesh, rig), "godot", tmp_path)
    files = zip_files(path)
    assert sorted(files) == ["Hero.glb", "manifest.json", "preview.png"]
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "files")
    (issues,) = validate([tmp_path / "files" / "Hero.glb"]).values()
    assert issues["numErrors"] == 0, issues["messages"][:5]
    doc = read_glb_json(files["Hero.glb"])
    (skin,) = doc["skins"]
    assert [doc["nodes"][j]["name"] for j in skin["joints"]] == rig.bone_names
    assert not [n for n in doc["nodes"] if "convcolonly" in n["name"]]  # no static hulls on a character
    assert len(doc["images"]) == 3  # maps embedded, as for props
    manifest = json.loads(files["manifest.json"])
    assert manifest["skeleton"]["skin"] == "Armature" and manifest["collision"]["hulls"] == 0
    assert_manifest_files(files, manifest)


# ------------------------------------------------------------------------------------------ bad input


def test_a_rig_of_another_mesh_is_refused_before_any_work(character, tmp_path):
    mesh, rig = character
    other = with_surface(make_humanoid(replace(CAST["t_pose_average"], cells=40)).mesh)
    with pytest.raises(InputError) as info:
        export_package(character_bundle(other, rig), "ue5", tmp_path / "out", use_fbx=False)
    assert info.value.argument == "bundle.rig.influence_bones" and "one row per mesh vertex" in str(info.value)
    renamed = replace(rig, bone_names=["Armature"] + rig.bone_names[1:])
    with pytest.raises(InputError) as info:
        export_package(character_bundle(mesh, renamed), "godot", tmp_path / "out")
    assert info.value.argument == "bundle.rig.bone_names"
    with pytest.raises(InputError) as info:
        export_package(character_bundle(mesh, object()), "godot", tmp_path / "out")
    assert info.value.argument == "bundle.rig"
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_skinned_glb_refuses_unnormalised_weights(character):
    mesh, rig = character
    heavy = replace(rig, influence_weights=rig.influence_weights * 1.5)
    with pytest.raises(InputError) as info:
        build_skinned_glb("SK_Hero", mesh, heavy, None)
    assert info.value.argument == "rig.influence_weights"

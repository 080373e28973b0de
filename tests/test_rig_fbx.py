"""SK_<Name>.fbx read back by Blender (bpy in a subprocess): the Mannequin's bones without leaf bones, the
armature with its weighted mesh, centimetres for UE5, and a posed elbow that moves only its own arm."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from server.errors import InputError
from server.export.blender_skeletal import write_skeletal_fbx
from server.export.fbx import bpy_available
from server.meshdata import MeshArrays
from server.rigging import rig_mesh
from tests.humanoids import CAST, make_humanoid

pytestmark = pytest.mark.skipif(not bpy_available(), reason="bpy (Blender as a module, cp311) is not installed")

# Imports the FBX with Blender's importer (default settings), poses lowerarm_l by 90 degrees about its own
# Z axis and prints JSON: objects, bones, vertex groups and weights, positions at rest and posed, and the
# raw file's GlobalSettings and node types.
READER = r'''
import json, math, sys
import bpy
import numpy as np
from io_scene_fbx import parse_fbx

path = sys.argv[1]
root, _ = parse_fbx.parse(path)
glob, nodes, extent = {}, {}, None
for elem in root.elems:
    if elem.id == b"GlobalSettings":
        for p70 in elem.elems:
            if p70.id == b"Properties70":
                for p in p70.elems:
                    glob[p.props[0].decode()] = [x for x in p.props[4:] if isinstance(x, (int, float))]
    if elem.id == b"Objects":
        for obj in elem.elems:
            if obj.id == b"Model":
                nodes[obj.props[1].split(b"\x00")[0].decode()] = obj.props[2].decode()
            if obj.id == b"Geometry":
                for sub in obj.elems:
                    if sub.id == b"Vertices":
                        local = np.asarray(sub.props[0], dtype=np.float64).reshape(-1, 3)
                        extent = (local.max(axis=0) - local.min(axis=0)).tolist()

bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.fbx(filepath=path)
scene = bpy.context.scene
arm = next(o for o in scene.objects if o.type == "ARMATURE")
mesh = next(o for o in scene.objects if o.type == "MESH")
n = len(mesh.data.vertices)
co = np.empty(n * 3); mesh.data.vertices.foreach_get("co", co)
m = np.array(mesh.matrix_world)
rest = co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
groups = [g.name for g in mesh.vertex_groups]
weights = np.zeros((n, len(groups)))
for v in mesh.data.vertices:
    for g in v.groups:
        weights[v.index, g.group] = g.weight
pose = arm.pose.bones["lowerarm_l"]
pose.rotation_mode = "XYZ"
pose.rotation_euler = (0.0, 0.0, math.pi / 2)
bpy.context.view_layer.update()
evaluated = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
posed = np.empty(n * 3); evaluated.data.vertices.foreach_get("co", posed)
posed = posed.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
result = {
    "objects": {o.name: {"type": o.type, "parent": o.parent.name if o.parent else None,
                         "dimensions": list(o.dimensions)} for o in scene.objects},
    "bones": {b.name: b.parent.name if b.parent else None for b in arm.data.bones},
    "heads": {b.name: list(arm.matrix_world @ b.head_local) for b in arm.data.bones},
    "modifiers": [[mod.type, mod.object.name if mod.object else None] for mod in mesh.modifiers],
    "groups": groups, "weights": weights.tolist(), "rest": rest.tolist(), "posed": posed.tolist(),
    "raw": {"global": glob, "nodes": nodes, "geometry_extent": extent},
}
print("JSON" + json.dumps(result))
'''


def read_skeletal(path) -> dict:
    proc = subprocess.run([sys.executable, "-c", READER, str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("JSON"))
    return json.loads(line[4:])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    human = make_humanoid(replace(CAST["a_pose_short"], cells=70))
    rig = rig_mesh(human.mesh)
    path = tmp_path_factory.mktemp("sk") / "SK_Hero.fbx"
    report = write_skeletal_fbx(path, human.mesh, rig, name="Hero", material="M_Hero")
    return {"human": human, "rig": rig, "report": report, "read": read_skeletal(path)}


def test_bones_are_the_rigs_without_leaf_bones(written):
    rig, read = written["rig"], written["read"]
    assert written["report"]["bones"] == len(rig.bone_names)
    assert read["bones"] == rig.parent_names          # every bone, its parent; no "_end" leaf bones added
    for name, head in read["heads"].items():
        np.testing.assert_allclose(head, rig.joints[name], atol=1e-4)
    # FBX has no deform flag (Blender's importer marks every bone deforming); that root and the ik_ bones
    # carry no weight is checked through the vertex groups below.


def test_armature_and_weighted_mesh(written):
    objects = written["read"]["objects"]
    assert objects["Armature"]["type"] == "ARMATURE" and objects["Armature"]["parent"] is None
    assert objects["SK_Hero"] == {**objects["SK_Hero"], "type": "MESH", "parent": "Armature"}
    assert written["read"]["modifiers"] == [["ARMATURE", "Armature"]]
    nodes = written["read"]["raw"]["nodes"]
    assert nodes["Armature"] == "Null" and nodes["pelvis"] == "LimbNode" and nodes["SK_Hero"] == "Mesh"


def test_weights_survive_the_trip(written):
    rig, read, human = written["rig"], written["read"], written["human"]
    rest = np.array(read["rest"])
    np.testing.assert_allclose(rest, human.mesh.vertices, atol=1e-5)     # same vertices, same order, metres
    groups = read["groups"]
    carrying = {rig.bone_names[b] for b in np.unique(rig.influence_bones[rig.influence_bones >= 0])}
    assert carrying <= set(groups) <= {n for n, d in zip(rig.bone_names, rig.deform) if d}
    ours = rig.dense_weights()[:, [rig.bone_names.index(g) for g in groups]]
    theirs = np.array(read["weights"])
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    assert ((theirs > 0).sum(axis=1) <= 4).all() and np.allclose(theirs.sum(axis=1), 1.0, atol=1e-5)


def test_height_in_centimetres_for_ue5(written):
    """1 file unit is 100 cm and the geometry is in those units: UE5 reads the body's height in cm."""
    raw = written["read"]["raw"]
    height_m = written["human"].height
    assert raw["global"]["UnitScaleFactor"] == [pytest.approx(100.0)]
    assert raw["geometry_extent"][2] * raw["global"]["UnitScaleFactor"][0] == pytest.approx(height_m * 100, rel=1e-4)
    assert written["read"]["objects"]["SK_Hero"]["dimensions"][2] == pytest.approx(height_m, rel=1e-4)


def test_posed_elbow_in_blender_moves_only_its_arm(written):
    rig, read = written["rig"], written["read"]
    moved = np.linalg.norm(np.array(read["posed"]) - np.array(read["rest"]), axis=1)
    lead = rig.influence_bones[:, 0]
    names = rig.bone_names
    right_arm = np.isin(lead, [names.index(n) for n in ("upperarm_r", "lowerarm_r", "hand_r")])
    left_hand = lead == names.index("hand_l")
    assert moved[right_arm].max() < 1e-3
    assert np.median(moved[left_hand]) > 0.1 * written["human"].height


def test_bad_names_are_refused_before_blender_runs(written, tmp_path):
    human, rig = written["human"], written["rig"]
    with pytest.raises(InputError, match="^name="):
        write_skeletal_fbx(tmp_path / "x.fbx", human.mesh, rig, name="Hero Name")
    with pytest.raises(InputError, match="^armature_name="):
        write_skeletal_fbx(tmp_path / "x.fbx", human.mesh, rig, name="Hero", armature_name="pelvis")
    other = MeshArrays(human.mesh.vertices[:-1], human.mesh.faces[:1])
    with pytest.raises(InputError, match="^rig="):
        write_skeletal_fbx(tmp_path / "x.fbx", other, rig, name="Hero")
    assert not (tmp_path / "x.fbx").exists()

"""The rig stage's template method on humanoids of known joints (tests/humanoids.py): joint error, the
Mannequin's names and parents, skin weights that add up and stay local, and clear refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from server.errors import InputError, RefusedInput
from server.meshdata import MeshArrays
from server.rigging import RigOptions, rig_mesh, rig_options
from server.rigging.heat import bone_heat_weights
from server.rigging.pose import bone_transforms, pose_vertices
from tests.humanoids import CAST, MEASURED_JOINTS, Body, make_humanoid, make_quadruped

CELLS = 80  # about 5k vertices a body: small enough for CI, fine enough for the joints

# The UE5 Mannequin's bones (without twist bones and fingers) and their parents, as Epic's SK_Mannequin has them.
UE5_PARENTS = {
    "root": None, "pelvis": "root",
    "spine_01": "pelvis", "spine_02": "spine_01", "spine_03": "spine_02", "spine_04": "spine_03",
    "spine_05": "spine_04", "neck_01": "spine_05", "neck_02": "neck_01", "head": "neck_02",
    "clavicle_l": "spine_05", "upperarm_l": "clavicle_l", "lowerarm_l": "upperarm_l", "hand_l": "lowerarm_l",
    "clavicle_r": "spine_05", "upperarm_r": "clavicle_r", "lowerarm_r": "upperarm_r", "hand_r": "lowerarm_r",
    "thigh_l": "pelvis", "calf_l": "thigh_l", "foot_l": "calf_l", "ball_l": "foot_l",
    "thigh_r": "pelvis", "calf_r": "thigh_r", "foot_r": "calf_r", "ball_r": "foot_r",
    "ik_foot_root": "root", "ik_foot_l": "ik_foot_root", "ik_foot_r": "ik_foot_root",
    "ik_hand_root": "root", "ik_hand_gun": "ik_hand_root", "ik_hand_l": "ik_hand_gun", "ik_hand_r": "ik_hand_gun",
}
NOT_DEFORMING = {"root", "ik_foot_root", "ik_foot_l", "ik_foot_r", "ik_hand_root", "ik_hand_gun", "ik_hand_l",
                 "ik_hand_r"}


@pytest.fixture(scope="session")
def humans():
    return {name: make_humanoid(replace(body, cells=CELLS)) for name, body in CAST.items()}


@pytest.fixture(scope="session")
def rigs(humans):
    return {name: rig_mesh(human.mesh) for name, human in humans.items()}


def joint_errors(rig, human) -> dict[str, float]:
    """Distance of each measured joint from the truth, as a share of the body's height."""
    joints = rig.joints
    return {name: float(np.linalg.norm(joints[name] - human.joints[name])) / human.height for name in MEASURED_JOINTS}


def descendants(rig, name: str) -> list[int]:
    found = [rig.bone_names.index(name)]
    for i, parent in enumerate(rig.parents):   # parents come before children
        if parent in found:
            found.append(i)
    return found


def bend(rig, vertices: np.ndarray, bone: str, axis, degrees: float) -> np.ndarray:
    """Linear blend skinning: `bone` and everything below it turned about its joint, the rest at rest."""
    pivot = rig.joints[bone]
    turn = Rotation.from_rotvec(np.radians(degrees) * np.asarray(axis, float)).as_matrix()
    moved = (vertices - pivot) @ turn.T + pivot
    share = rig.dense_weights()[:, descendants(rig, bone)].sum(axis=1)
    return vertices + share[:, None] * (moved - vertices)


def dominant_in(rig, names) -> np.ndarray:
    return np.isin(rig.influence_bones[:, 0], [rig.bone_names.index(n) for n in names])


@pytest.mark.parametrize("name", list(CAST))
def test_joints_within_three_percent_mean_six_max(name, humans, rigs):
    errors = joint_errors(rigs[name], humans[name])
    worst = max(errors, key=errors.get)
    assert np.mean(list(errors.values())) <= 0.03, errors
    assert errors[worst] <= 0.06, f"{worst} is {errors[worst]:.1%} of the height off"


@pytest.mark.parametrize("name", list(CAST))
def test_pose_read_from_the_arms(name, rigs):
    expected = "T" if CAST[name].arm_drop_deg < 20 else "A"
    assert rigs[name].report["pose"] == expected


def test_names_and_parents_are_the_mannequins(rigs):
    for rig in rigs.values():
        assert rig.parent_names == UE5_PARENTS
        assert all(p < i for i, p in enumerate(rig.parents)), "a child listed before its parent"
        assert {n for n, d in zip(rig.bone_names, rig.deform) if not d} == NOT_DEFORMING
        assert rig.heads.shape == rig.tails.shape == rig.up.shape == (len(UE5_PARENTS), 3)
        assert (np.linalg.norm(rig.tails - rig.heads, axis=1) > 1e-3).all(), "a bone of zero length"


def test_left_is_the_characters_own_left(rigs):
    for rig in rigs.values():
        joints = rig.joints
        middle = joints["pelvis"][0]
        for name in UE5_PARENTS:
            if name.endswith("_l") and not name.startswith("ik_"):
                assert joints[name][0] > middle and joints[name.replace("_l", "_r")][0] < middle, name


def test_every_vertex_weighted_rows_sum_to_one(humans, rigs):
    for name, rig in rigs.items():
        count = len(humans[name].mesh.vertices)
        assert rig.influence_bones.shape == rig.influence_weights.shape == (count, 4)
        used = rig.influence_bones >= 0
        assert used[:, 0].all(), "a vertex without any bone"
        np.testing.assert_allclose(rig.influence_weights.sum(axis=1), 1.0, atol=1e-9)
        assert (rig.influence_weights[used] > 0).all() and (rig.influence_weights[~used] == 0).all()
        assert rig.deform[rig.influence_bones[used]].all(), "weight on a bone that does not deform"


def test_every_deform_bone_leads_somewhere(rigs):
    for rig in rigs.values():
        leading = np.bincount(rig.influence_bones[:, 0], minlength=len(rig.bone_names))
        idle = [n for n, d, c in zip(rig.bone_names, rig.deform, leading) if d and c == 0]
        assert not idle and rig.report["idle_bones"] == []


@pytest.mark.parametrize("side", ["l", "r"])
def test_bending_one_elbow_leaves_the_other_arm(side, humans, rigs):
    other = "r" if side == "l" else "l"
    for name, rig in rigs.items():
        vertices = humans[name].mesh.vertices
        posed = bend(rig, vertices, f"lowerarm_{side}", (0, 0, 1), 90)
        moved = np.linalg.norm(posed - vertices, axis=1)
        other_arm = dominant_in(rig, [f"upperarm_{other}", f"lowerarm_{other}", f"hand_{other}"])
        forearm = dominant_in(rig, [f"hand_{side}"])
        assert other_arm.sum() > 100
        assert moved[other_arm].max() < 1e-3, f"{name}: the other arm moved {moved[other_arm].max() * 1e3:.2f} mm"
        # The bent hand itself travels about the forearm's length times sqrt(2).
        assert np.median(moved[forearm]) > 0.15 * humans[name].height


def test_bending_a_knee_leaves_the_other_leg(humans, rigs):
    for name, rig in rigs.items():
        vertices = humans[name].mesh.vertices
        posed = bend(rig, vertices, "calf_l", (1, 0, 0), 90)
        moved = np.linalg.norm(posed - vertices, axis=1)
        other_leg = dominant_in(rig, ["calf_r", "foot_r", "ball_r"])
        assert moved[other_leg].max() < 1e-3
        assert np.median(moved[dominant_in(rig, ["foot_l"])]) > 0.2 * humans[name].height


def test_weights_blend_across_the_elbow(humans, rigs):
    """Heat weights are smooth: around the elbow vertices share upper arm and forearm."""
    for name, rig in rigs.items():
        dense = rig.dense_weights()
        upper, lower = rig.bone_names.index("upperarm_l"), rig.bone_names.index("lowerarm_l")
        near = np.linalg.norm(humans[name].mesh.vertices - rig.joints["lowerarm_l"], axis=1) < 0.05 * humans[name].height
        both = (dense[near, upper] > 0.2) & (dense[near, lower] > 0.2)
        assert both.any()


def test_max_influences_option(humans):
    human = humans["a_pose_short"]
    rig = rig_mesh(human.mesh, {"max_influences": 2})
    assert rig.influence_bones.shape[1] == 2
    np.testing.assert_allclose(rig.influence_weights.sum(axis=1), 1.0, atol=1e-9)
    assert rig.report["max_influences"] == 2


def test_fingers_option_adds_the_mannequins_finger_bones(humans):
    human = humans["t_pose_average"]
    rig = rig_mesh(human.mesh, RigOptions(fingers=True))
    parents = rig.parent_names
    for side in ("l", "r"):
        assert parents[f"thumb_01_{side}"] == f"hand_{side}"
        for finger in ("index", "middle", "ring", "pinky"):
            assert parents[f"{finger}_metacarpal_{side}"] == f"hand_{side}"
            assert parents[f"{finger}_01_{side}"] == f"{finger}_metacarpal_{side}"
            assert parents[f"{finger}_03_{side}"] == f"{finger}_02_{side}"
        wrist, tip = human.joints[f"hand_{side}"], human.extremities[f"hand_tip_{side}"]
        for name in rig.bone_names:
            if name.endswith(f"_{side}") and name.split("_")[0] in ("thumb", "index", "middle", "ring", "pinky"):
                assert np.linalg.norm(rig.joints[name] - wrist) < 1.2 * np.linalg.norm(tip - wrist), name
    assert len(rig.bone_names) == len(UE5_PARENTS) + 2 * 19
    np.testing.assert_allclose(rig.influence_weights.sum(axis=1), 1.0, atol=1e-9)
    # A mitten hand has no fingers of its own: finger bones may lead no vertex, and the report says which.
    leading = np.bincount(rig.influence_bones[:, 0], minlength=len(rig.bone_names))
    idle = {n for n, d, c in zip(rig.bone_names, rig.deform, leading) if d and c == 0}
    assert idle == set(rig.report["idle_bones"])
    assert all(name.split("_")[0] in ("thumb", "index", "middle", "ring", "pinky") for name in idle)


def test_split_uv_seams_share_their_weights(humans):
    """Vertices split along a seam (as UV unwrapping leaves them) are welded and weighted alike."""
    human = humans["t_pose_average"]
    vertices, faces = human.mesh.vertices, human.mesh.faces.copy()
    seam = np.flatnonzero(vertices[faces].mean(axis=1)[:, 0] > 0.3 * human.height)   # the left forearm and hand
    copies = np.unique(faces[seam])
    new_index = np.full(len(vertices), -1)
    new_index[copies] = len(vertices) + np.arange(len(copies))
    faces[seam] = new_index[faces[seam]]
    split = MeshArrays(np.vstack([vertices, vertices[copies]]), faces)
    rig = rig_mesh(split)
    dense = rig.dense_weights()
    np.testing.assert_allclose(dense[copies], dense[len(vertices):], atol=1e-12)
    assert rig.report["welded_vertices"] == len(vertices)


def test_units_do_not_matter(humans, rigs):
    """The same body in centimetres gets the same skeleton, a hundred times larger."""
    human = humans["a_pose_stocky"]
    scaled = MeshArrays(human.mesh.vertices * 100.0, human.mesh.faces)
    rig = rig_mesh(scaled)
    for name in MEASURED_JOINTS:
        np.testing.assert_allclose(rig.joints[name] / 100.0, rigs["a_pose_stocky"].joints[name], atol=0.005 * human.height)


def test_position_does_not_matter(humans, rigs):
    """The same body moved off the origin gets the same skeleton, moved alike."""
    human = humans["t_pose_tall_slim"]
    offset = np.array([0.7, -0.4, 0.25])
    rig = rig_mesh(MeshArrays(human.mesh.vertices + offset, human.mesh.faces))
    for name in MEASURED_JOINTS:
        np.testing.assert_allclose(rig.joints[name] - offset, rigs["t_pose_tall_slim"].joints[name],
                                   atol=0.005 * human.height)


@pytest.mark.parametrize("sunk", [True, False])
def test_separate_eyes_follow_the_head(sunk, humans):
    """Separate closed parts take the bone nearby: eyeballs half sunk into the head see its bone from
    their hidden half; eyes just off the face see no bone at all and take their nearest one."""
    human = humans["a_pose_short"]
    centre, top = human.extremities["head_centre"], human.extremities["head_top"]
    radius = 0.012 * human.height
    head = human.mesh.vertices[human.mesh.vertices[:, 2] > centre[2]]
    face = head[:, 1].min()                           # the head's front surface
    y = face if sunk else face - radius - 0.002       # half sunk, or floating 2 mm in front of it
    parts = [trimesh.Trimesh(human.mesh.vertices, human.mesh.faces)]
    for side in (-1.0, 1.0):
        eye = trimesh.creation.icosphere(subdivisions=2, radius=radius)
        eye.apply_translation((side * 0.018 * human.height, y, centre[2] + 0.2 * (top[2] - centre[2])))
        parts.append(eye)
    whole = trimesh.util.concatenate(parts)
    rig = rig_mesh(MeshArrays(whole.vertices, whole.faces))
    eyes = np.arange(len(whole.vertices)) >= len(human.mesh.vertices)
    assert rig.report["parts"] == 3 and rig.report["parts_without_sight"] == (0 if sunk else 2)
    assert (rig.influence_bones[eyes, 0] == rig.bone_names.index("head")).all()
    np.testing.assert_allclose(rig.influence_weights[eyes].sum(axis=1), 1.0, atol=1e-9)


def test_too_many_vertices_is_refused_by_name(humans, monkeypatch):
    import server.rigging.rig as rig_module

    monkeypatch.setattr(rig_module, "MAX_VERTICES", 1000)
    with pytest.raises(InputError, match=r"^mesh=.*vertices.*: expected at most 1000 vertices"):
        rig_mesh(humans["t_pose_average"].mesh)


def test_pose_vertices_bends_like_the_chain(humans, rigs):
    """pose_vertices agrees with this file's own skinning for one elbow, and chains rotations down the
    arm: the wrist lands where shoulder + R1 (elbow - shoulder) + R1 R2 (wrist - elbow) puts it."""
    human, rig = humans["t_pose_average"], rigs["t_pose_average"]
    elbow_turn = Rotation.from_rotvec([0.0, 0.0, np.pi / 2])
    posed = pose_vertices(rig, human.mesh.vertices, {"lowerarm_l": elbow_turn.as_rotvec()})
    np.testing.assert_allclose(posed, bend(rig, human.mesh.vertices, "lowerarm_l", (0, 0, 1), 90), atol=1e-9)
    r1 = Rotation.from_rotvec([0.0, -0.6, 0.0]).as_matrix()
    r2 = Rotation.from_rotvec([0.0, 0.0, 1.1]).as_matrix()
    world = bone_transforms(rig, {"upperarm_l": r1, "lowerarm_l": r2})
    s, e, w = rig.joints["upperarm_l"], rig.joints["lowerarm_l"], rig.joints["hand_l"]
    hand = rig.bone_names.index("hand_l")
    np.testing.assert_allclose(world[hand, :3, :3] @ w + world[hand, :3, 3], s + r1 @ (e - s) + r1 @ r2 @ (w - e),
                               atol=1e-12)
    untouched = rig.bone_names.index("hand_r")
    np.testing.assert_array_equal(world[untouched], np.eye(4))
    with pytest.raises(InputError, match="^rotations="):
        pose_vertices(rig, human.mesh.vertices, {"forearm_l": r1})


def test_saved_rig_loads_back_equal(rigs, tmp_path):
    rig = rigs["a_pose_long_arms"]
    rig.save(tmp_path / "rig.npz")
    back = type(rig).load(tmp_path / "rig.npz")
    assert back.bone_names == rig.bone_names and back.parents == rig.parents and back.report == rig.report
    for field_name in ("heads", "tails", "up", "deform", "influence_bones", "influence_weights"):
        np.testing.assert_array_equal(getattr(back, field_name), getattr(rig, field_name))


def test_report_is_json(rigs):
    report = json.loads(json.dumps(rigs["t_pose_average"].report))
    assert report["method"] == "template" and report["bones"] == len(UE5_PARENTS)
    assert set(report["joints"]) == set(UE5_PARENTS)
    assert report["seconds"]["total"] >= report["seconds"]["weights"]


def test_heat_follows_the_bone_in_sight_not_the_nearest():
    """A block's side faces a thin rod whose bone is nearer than the block's own, but behind the rod's
    surface: the block keeps its own bone (Embree visibility), the rod keeps the other."""
    block = trimesh.creation.box(extents=(1.0, 1.0, 2.0))
    rod = trimesh.creation.cylinder(radius=0.05, height=2.0, sections=24)
    rod.apply_translation((0.75, 0.0, 0.0))
    mesh = trimesh.util.concatenate([block.subdivide().subdivide(), rod])
    heads = np.array([[0.0, 0.0, -0.9], [0.75, 0.0, -0.9]])
    tails = np.array([[0.0, 0.0, 0.9], [0.75, 0.0, 0.9]])
    weights = bone_heat_weights(mesh.vertices, mesh.faces, heads, tails)
    in_block = np.arange(len(mesh.vertices)) < len(block.subdivide().subdivide().vertices)
    facing_rod = in_block & (mesh.vertices[:, 0] > 0.49)
    assert facing_rod.sum() > 10
    nearest = np.linalg.norm(mesh.vertices[facing_rod, None, :2] - heads[None, :, :2], axis=2).argmin(axis=1)
    assert (nearest == 1).all(), "the rod's bone must be the nearer one for this test to mean anything"
    assert (weights.bones[facing_rod, 0] == 0).all() and (weights.weights[facing_rod, 0] == 1.0).all()
    assert (weights.bones[~in_block, 0] == 1).all()


# ------------------------------------------------------------------------------------------------
# refusals
# ------------------------------------------------------------------------------------------------

def humanoid_mesh(humans, name="t_pose_average") -> MeshArrays:
    human = humans[name]
    return MeshArrays(human.mesh.vertices.copy(), human.mesh.faces.copy())


@pytest.mark.parametrize("shape", ["box", "sphere", "quadruped"])
def test_non_humanoids_are_refused(shape):
    if shape == "box":
        mesh = trimesh.creation.box(extents=(0.6, 0.4, 1.8)).subdivide()
        mesh.apply_translation((0, 0, 0.9))
    elif shape == "sphere":
        mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.9)
    else:
        mesh = make_quadruped(cells=40).to_trimesh()
    with pytest.raises(RefusedInput, match="touch the ground"):
        rig_mesh(MeshArrays(mesh.vertices, mesh.faces))


def test_quadruped_refusal_counts_its_feet():
    with pytest.raises(RefusedInput, match="^mesh: 4 separate part"):
        rig_mesh(make_quadruped(cells=40))


def test_open_mesh_is_refused_by_name(humans):
    mesh = humanoid_mesh(humans)
    mesh.faces = mesh.faces[10:]
    with pytest.raises(InputError, match=r"^mesh=.*open or non-manifold edges.*: expected a closed \(watertight\)"):
        rig_mesh(mesh)


def test_facing_plus_y_is_refused(humans):
    mesh = humanoid_mesh(humans)
    mesh.vertices[:, :2] *= -1.0     # turned 180 degrees about Z
    with pytest.raises(RefusedInput, match=r"feet point to \+Y"):
        rig_mesh(mesh)


def test_arms_down_is_refused():
    body = make_humanoid(Body(arm_drop_deg=84, cells=64))
    with pytest.raises(RefusedInput, match="T- or A-pose"):
        rig_mesh(body.mesh)


def test_lying_down_is_refused(humans):
    mesh = humanoid_mesh(humans, "a_pose_short")
    mesh.vertices = mesh.vertices @ Rotation.from_euler("x", 90, degrees=True).as_matrix().T
    with pytest.raises(RefusedInput):
        rig_mesh(mesh)


def test_empty_mesh_is_refused():
    with pytest.raises(InputError, match="^mesh="):
        rig_mesh(MeshArrays(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)))


@pytest.mark.parametrize("options, argument", [
    ({"max_influence": 4}, "options.max_influence"),
    ({"max_influences": 0}, "options.max_influences"),
    ({"max_influences": 9}, "options.max_influences"),
    ({"max_influences": "4"}, "options.max_influences"),
    ({"max_influences": True}, "options.max_influences"),
    ({"fingers": "yes"}, "options.fingers"),
    ({"skeleton": "generic"}, "options.skeleton"),
    (["fingers"], "options"),
])
def test_bad_options_are_named(options, argument):
    with pytest.raises(InputError) as caught:
        rig_options(options)
    assert caught.value.argument == argument


def test_options_defaults():
    assert rig_options(None) == RigOptions(max_influences=4, fingers=False, skeleton="ue5_mannequin")
    assert rig_options({"max_influences": 3, "fingers": True}) == RigOptions(3, True)

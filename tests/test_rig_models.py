"""Rig model adapters (Make-It-Animatable, UniRig) against strict recording stand-ins of their upstream code.

Neither model installs from PyPI: Make-It-Animatable and UniRig are GitHub checkouts (their manifests in vendor/
pin the commits read), with compiled extensions (torch-cluster, pytorch3d, flash-attn, spconv, torch-scatter)
that do not build here. So the upstream pieces the adapters call are stand-ins written from the pinned sources:
Make-It-Animatable's model.PCAE (its constructor keywords, load, to, eval, __call__ -> Output) and util.
dataset_mixamo (BONES_IDX_DICT, JOINTS_NUM, KINEMATIC_TREE); UniRig's RawData, Asset.from_raw_data,
TransformConfig.parse + transform_asset (normalised into [-1, 1] by the box, points sampled), ModelInput, get_model
(UniRigAR / UniRigSkin with _process_fn, predict_step, load_state_dict, to, eval), TokenizerConfig.parse +
get_tokenizer and reskin, each with upstream's signature and nothing else. Their answers are exact: the stand-ins
find how the adapter placed the mesh (from the vertex queries or the normalised vertices, which keep the mesh's
order) and return a known skeleton and weights in that frame, so the adapters' way back to Blender is checked to
the millimetre. These tests are not a verification of either model; the real-weight tests at the end are skipped
where the models cannot run.
"""

from __future__ import annotations

import sys
import types
from collections import namedtuple
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from scipy.spatial import cKDTree

from fakes import fake_module, on_zero_gpu
from humanoids import Body, make_humanoid, make_quadruped
from server import gpu
from server.errors import InputError
from server.generators import base, modelhost
from server.meshdata import MeshArrays
from server.rigging.models import make_it_animatable as mia
from server.rigging.models import mixamo, registry
from server.rigging.models import unirig as unirig_module
from server.rigging.models.make_it_animatable import MakeItAnimatable
from server.rigging.models.unirig import UniRig
from server.rigging.skeleton import mannequin_bones, parent_indices

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the test extra installs it on 3.11)")

POSITION_TOL_M = 1e-3
# Make-It-Animatable's joint order, as util/dataset_mixamo.py lists MIXAMO_JOINTS at the pin.
UPSTREAM_JOINTS = (
    "Hips Spine Spine1 Spine2 Neck Head LeftShoulder LeftArm LeftForeArm LeftHand "
    "LeftHandThumb1 LeftHandThumb2 LeftHandThumb3 LeftHandIndex1 LeftHandIndex2 LeftHandIndex3 "
    "LeftHandMiddle1 LeftHandMiddle2 LeftHandMiddle3 LeftHandRing1 LeftHandRing2 LeftHandRing3 "
    "LeftHandPinky1 LeftHandPinky2 LeftHandPinky3 RightShoulder RightArm RightForeArm RightHand "
    "RightHandThumb1 RightHandThumb2 RightHandThumb3 RightHandIndex1 RightHandIndex2 RightHandIndex3 "
    "RightHandMiddle1 RightHandMiddle2 RightHandMiddle3 RightHandRing1 RightHandRing2 RightHandRing3 "
    "RightHandPinky1 RightHandPinky2 RightHandPinky3 LeftUpLeg LeftLeg LeftFoot LeftToeBase "
    "RightUpLeg RightLeg RightFoot RightToeBase").split()
# Mixamo's frame as Make-It-Animatable reads a glTF: Y up, the character facing +Z, its left on +X.
BLENDER_TO_MIXAMO = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
    """(scale, rotation, translation, worst residual) with target = scale * rotation @ source + translation."""
    a, b = np.asarray(source, np.float64), np.asarray(target, np.float64)
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    u, s, vt = np.linalg.svd((b - cb).T @ (a - ca))
    d = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, d]) @ vt
    scale = float((s * [1.0, 1.0, d]).sum() / ((a - ca) ** 2).sum())
    translation = cb - scale * rotation @ ca
    residual = float(np.abs(a @ rotation.T * scale + translation - b).max())
    return scale, rotation, translation, residual


def segment_weights(points: np.ndarray, heads: np.ndarray, tails: np.ndarray, width: float) -> np.ndarray:
    """(n, bones) soft weights, largest for the nearest bone segment, each row summing to one (a softmax, as the
    models' heads end with one)."""
    span = tails - heads
    t = np.clip(np.einsum("nbk,bk->nb", points[:, None] - heads[None], span) / np.maximum((span ** 2).sum(1), 1e-12),
                0.0, 1.0)
    distance = np.linalg.norm(points[:, None] - (heads[None] + t[..., None] * span[None]), axis=2)
    logits = -(distance / width) ** 2
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


# Bodies with known joints. Two boxes make each one lopsided (a satchel on the left hip, a pack on the back), so a
# mirrored frame cannot pass for the right one.


@dataclass
class Character:
    mesh: MeshArrays
    heads: np.ndarray  # (52, 3) Mixamo joints, Blender axes
    tails: np.ndarray
    front: np.ndarray  # the way the character faces


def _box(centre, size) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    box = trimesh.creation.box(extents=size)
    for _ in range(3):  # vertices a few centimetres apart, like the body's: distances to them measure the surface
        box = box.subdivide()
    return box.vertices + centre, box.faces


def character(turn_deg: float = 0.0) -> Character:
    body = make_humanoid(Body(height=1.7, arm_drop_deg=40, cells=40))
    j, e = body.joints, body.extremities
    parts = [(body.mesh.vertices, body.mesh.faces),
             _box(j["thigh_l"] + [0.17, 0.0, 0.0], (0.08, 0.2, 0.25)),     # satchel on the left
             _box(j["neck_01"] + [0.0, 0.2, -0.3], (0.3, 0.12, 0.35))]     # pack on the back (+Y)
    vertices, faces, offset = [], [], 0
    for v, f in parts:
        vertices.append(v)
        faces.append(f + offset)
        offset += len(v)
    vertices, faces = np.concatenate(vertices), np.concatenate(faces)
    # Mixamo's Hips sits above the hip joints (a pelvis level with them would leave no hips plane).
    heads = {"Hips": j["pelvis"] + [0.0, 0.0, 0.06], "Neck": j["neck_01"], "Head": j["head"]}
    for i, name in enumerate(("Spine", "Spine1", "Spine2")):
        heads[name] = heads["Hips"] + (i + 1) / 4 * (j["neck_01"] - heads["Hips"])
    tails = {"Head": e["head_top"]}
    for side, s in (("Left", "l"), ("Right", "r")):
        heads[f"{side}Shoulder"] = j["neck_01"] + 0.35 * (j[f"upperarm_{s}"] - j["neck_01"])
        heads.update({f"{side}Arm": j[f"upperarm_{s}"], f"{side}ForeArm": j[f"lowerarm_{s}"],
                      f"{side}Hand": j[f"hand_{s}"], f"{side}UpLeg": j[f"thigh_{s}"], f"{side}Leg": j[f"calf_{s}"],
                      f"{side}Foot": j[f"foot_{s}"], f"{side}ToeBase": j[f"ball_{s}"]})
        tails[f"{side}ToeBase"] = e[f"toe_{s}"]
        wrist, tip = j[f"hand_{s}"], e[f"hand_tip_{s}"]
        for k, finger in enumerate(("Thumb", "Index", "Middle", "Ring", "Pinky")):
            offset = np.array([0.0, 0.012 * (k - 2), 0.0])
            for n in (1, 2, 3):
                heads[f"{side}Hand{finger}{n}"] = wrist + (0.45 + 0.15 * n) * (tip - wrist) + offset
            tails[f"{side}Hand{finger}3"] = wrist + 0.98 * (tip - wrist) + offset
        tails[f"{side}Hand"] = heads[f"{side}HandMiddle1"]
    parents = {name: mixamo._parent(name) for name in UPSTREAM_JOINTS}
    for name in UPSTREAM_JOINTS:
        if name not in tails:
            children = [c for c, p in parents.items() if p == name]
            tails[name] = heads[children[0]] if children else heads[name] + [0.0, 0.0, 0.02]
    turn = np.radians(turn_deg)
    rotation = np.array([[np.cos(turn), -np.sin(turn), 0.0], [np.sin(turn), np.cos(turn), 0.0], [0.0, 0.0, 1.0]])
    order = lambda table: np.array([table[name] for name in UPSTREAM_JOINTS]) @ rotation.T  # noqa: E731
    mesh = MeshArrays(vertices @ rotation.T, faces.astype(np.int64))
    return Character(mesh, order(heads), order(tails), rotation @ np.array([0.0, -1.0, 0.0]))


# Make-It-Animatable: stand-ins of model.PCAE and util.dataset_mixamo.

Output = namedtuple("Output", ["bw", "joints", "global_trans", "pose_trans"])  # model.py's Output


class FakePCAE:
    """model.PCAE's constructor, load, to, eval and __call__ (forward) as upstream defines them, recording each.
    Answers: the coarse network (no hierarchical sampling) maps the true joints by the points' box; the bw network
    finds the frame exactly from its queries (the mesh's vertices, in order) and weighs them by the true bones; the
    joints network answers in the frame the bw network found for the same points."""

    calls: ClassVar[list] = []
    truth: ClassVar[Character | None] = None
    frame: ClassVar[dict] = {}

    def __init__(self, N=2048, input_normal=False, input_attention=False, num_latents=512, deterministic=True,
                 hierarchical_ratio=0.0, output_dim=52, output_actvn="softmax", output_log=False,
                 kinematic_tree=None, tune_decoder_self_attn=True, tune_decoder_cross_attn=True, predict_bw=True,
                 predict_joints=False, predict_joints_tail=False, joints_attn=False, joints_attn_masked=True,
                 joints_attn_causal=False, predict_global_trans=False, predict_pose_trans=False,
                 pose_mode="dual_quat", pose_input_joints=False, pose_attn=False, pose_attn_masked=True,
                 pose_attn_causal=False, grid_density=128):
        self.config = {key: value for key, value in locals().items() if key not in ("self", "__class__")}
        self.calls.append(("init", self.config))

    def load(self, pth_path, epoch=-1, strict=True, adapt=True):
        self.calls.append(("load", pth_path))
        return self

    def to(self, *args, **kwargs):
        self.calls.append(("to", args, kwargs))
        return self

    def eval(self):
        return self

    def parameters(self, recurse=True):  # nn.Module's: the stand-in's one weight lives on the CPU
        yield torch.zeros(1)

    def __call__(self, pc, queries=None, joints=None, pose=None):
        return self.forward(pc, queries, joints, pose)

    def forward(self, pc, queries=None, joints=None, pose=None):
        assert isinstance(pc, torch.Tensor) and pc.dtype == torch.float32
        assert tuple(pc.shape) == (1, self.config["N"], 3)
        points = pc[0].numpy().astype(np.float64)
        truth = self.truth
        if self.config["predict_bw"]:
            assert queries is not None and queries.shape[0] == 1 and queries.shape[2] == 3
            rows = queries[0].numpy().astype(np.float64)
            first = self.frame.get("offset", 0)
            blender = truth.mesh.vertices[first:first + len(rows)]
            scale, rotation, translation, residual = similarity(blender, rows)
            self.frame.update(scale=scale, rotation=rotation, translation=translation, residual=residual,
                              points=points, offset=first + len(rows))
            weights = segment_weights(blender, truth.heads, truth.tails, 0.04)
            self.calls.append(("bw", points, rows))
            return Output(torch.from_numpy(weights[None].astype(np.float32)), None, None, None)
        if self.config["hierarchical_ratio"] == 0.0:  # the coarse network
            model = truth.mesh.vertices @ BLENDER_TO_MIXAMO.T
            low, high = points.min(axis=0), points.max(axis=0)
            m_low, m_high = model.min(axis=0), model.max(axis=0)
            scale = (high - low).max() / (m_high - m_low).max()
            place = lambda p: (p @ BLENDER_TO_MIXAMO.T - (m_low + m_high) / 2) * scale + (low + high) / 2  # noqa: E731
            back = ((points - (low + high) / 2) / scale + (m_low + m_high) / 2) @ BLENDER_TO_MIXAMO
            self.calls.append(("coarse", points, back))
            out = np.concatenate([place(truth.heads), place(truth.tails)], axis=1)
        else:
            assert np.array_equal(points, self.frame["points"]), "the joints network gets the bw network's points"
            scale, rotation, shift = self.frame["scale"], self.frame["rotation"], self.frame["translation"]
            place = lambda p: scale * p @ rotation.T + shift  # noqa: E731
            self.calls.append(("joints", points))
            out = np.concatenate([place(truth.heads), place(truth.tails)], axis=1)
        return Output(None, torch.from_numpy(out[None].astype(np.float32)), None, None)


KINEMATIC_TREE = object()  # util.dataset_mixamo.KINEMATIC_TREE: a Joint tree the adapter only hands to PCAE


@pytest.fixture
def fake_mia(tmp_path, monkeypatch):
    """A Make-It-Animatable checkout and weights folder with the stand-ins in place of its modules."""
    source, weights = tmp_path / "mia", tmp_path / "mia-weights"
    for name in (*mia.SOURCE_MARKERS, mia.TEMPLATE):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("")
    for name in mia.CHECKPOINTS.values():
        (weights / name).parent.mkdir(parents=True, exist_ok=True)
        (weights / name).write_bytes(b"")
    monkeypatch.setenv(mia.SOURCE_ENV, str(source))
    monkeypatch.setenv(mia.WEIGHTS_ENV, str(weights))
    monkeypatch.setenv("O3F_ALLOW_CPU_MODELS", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    bones = {f"mixamorig:{name}": i for i, name in enumerate(UPSTREAM_JOINTS)}
    monkeypatch.setitem(sys.modules, "model", fake_module("model", PCAE=FakePCAE, Output=Output))
    monkeypatch.setitem(sys.modules, "util", fake_module("util", package=True))
    monkeypatch.setitem(sys.modules, "util.dataset_mixamo", fake_module(
        "util.dataset_mixamo", BONES_IDX_DICT=types.MappingProxyType(bones), JOINTS_NUM=52,
        KINEMATIC_TREE=KINEMATIC_TREE))
    for name in ("einops", "timm", "torch_cluster", "pytorch3d", "bpy"):  # what upstream imports; never called
        monkeypatch.setitem(sys.modules, name, fake_module(name))
    monkeypatch.setattr(mia, "MODEL_HOST", modelhost.ModelHost())
    FakePCAE.calls, FakePCAE.frame = [], {}
    return source, weights


def rig_mia(body: Character, options=None):
    FakePCAE.truth, FakePCAE.frame = body, {}
    return registry.rig_with("make_it_animatable", body.mesh, options or {})


def test_mixamo_joints_come_back_as_the_mannequins_bones_where_the_model_put_them(fake_mia):
    body = character()
    rig = rig_mia(body)
    bones = mannequin_bones(fingers=False)
    assert rig.bone_names == [bone.name for bone in bones] and rig.parents == parent_indices(bones)
    truth = dict(zip(UPSTREAM_JOINTS, body.heads))
    for ue5, joint in {"pelvis": "Hips", "spine_01": "Spine", "spine_03": "Spine1", "spine_05": "Spine2",
                       "neck_01": "Neck", "head": "Head", "clavicle_l": "LeftShoulder", "upperarm_l": "LeftArm",
                       "lowerarm_l": "LeftForeArm", "hand_l": "LeftHand", "upperarm_r": "RightArm",
                       "hand_r": "RightHand", "thigh_l": "LeftUpLeg", "calf_l": "LeftLeg", "foot_l": "LeftFoot",
                       "ball_l": "LeftToeBase", "thigh_r": "RightUpLeg", "ball_r": "RightToeBase"}.items():
        assert np.allclose(rig.joints[ue5], truth[joint], atol=POSITION_TOL_M), ue5
    joints = rig.joints
    assert np.allclose(joints["spine_02"], (truth["Spine"] + truth["Spine1"]) / 2, atol=POSITION_TOL_M)
    assert np.allclose(joints["neck_02"], (truth["Neck"] + truth["Head"]) / 2, atol=POSITION_TOL_M)
    assert joints["upperarm_l"][0] > 0 > joints["upperarm_r"][0]  # _l on the character's own left (+X)
    assert joints["root"][2] == pytest.approx(body.mesh.vertices[:, 2].min())
    assert np.allclose(joints["ik_foot_l"], joints["foot_l"]) and np.allclose(joints["ik_hand_gun"], joints["hand_r"])
    assert not rig.deform[rig.bone_names.index("root")] and not rig.deform[rig.bone_names.index("ik_hand_l")]
    assert FakePCAE.frame["residual"] < 1e-4  # the queries are the mesh's vertices, in order, under a similarity


@pytest.mark.parametrize("turn_deg", [0.0, 35.0], ids=["facing-front", "turned"])
def test_the_networks_see_the_mesh_in_upstreams_frames(fake_mia, turn_deg):
    body = character(turn_deg)
    rig_mia(body)
    inits = [call[1] for call in FakePCAE.calls if call[0] == "init"]
    common = {"N": 32768, "input_normal": False, "deterministic": True, "output_dim": 52}
    assert inits[0] == {**inits[0], **common, "predict_bw": False, "predict_joints": True, "predict_joints_tail": True,
                        "hierarchical_ratio": 0.0}
    assert inits[1] == {**inits[1], **common, "hierarchical_ratio": 0.5, "predict_bw": True}
    assert inits[2] == {**inits[2], **common, "hierarchical_ratio": 0.5, "kinematic_tree": KINEMATIC_TREE,
                        "predict_bw": False, "predict_joints": True, "predict_joints_tail": True,
                        "joints_attn_causal": True}
    loads = [call[1] for call in FakePCAE.calls if call[0] == "load"]
    assert [path.split("mia-weights/")[1] for path in loads] == list(mia.CHECKPOINTS.values())
    (_, coarse, back), = [call for call in FakePCAE.calls if call[0] == "coarse"]
    # Step 1: the surface, in Mixamo's frame (Y up, facing +Z), centred in [-1, 1] along its longest side.
    assert np.allclose(coarse.min(axis=0) + coarse.max(axis=0), 0.0, atol=1e-5)
    assert np.ptp(coarse, axis=0).max() == pytest.approx(2.0, abs=1e-5)
    gap, _ = cKDTree(body.mesh.vertices).query(back)
    assert np.percentile(gap, 99.9) < 0.06  # on the lopsided body's surface: not mirrored, not tipped
    # Step 2: moved to the hips: Hips at the origin, facing +Z, up +Y, left on +X; the farthest coordinate 1.
    rotation, translation = FakePCAE.frame["rotation"], FakePCAE.frame["translation"]
    assert np.linalg.det(rotation) > 0
    assert np.degrees(np.arccos(np.clip(rotation @ body.front @ [0, 0, 1], -1, 1))) < 3
    assert np.degrees(np.arccos(np.clip(rotation @ [0, 0, 1.0] @ [0, 1, 0], -1, 1))) < 3
    hips = FakePCAE.frame["scale"] * rotation @ body.heads[0] + translation
    assert np.linalg.norm(hips) < 0.01
    (_, points, rows), = [call for call in FakePCAE.calls if call[0] == "bw"]
    assert np.abs(points).max() == pytest.approx(1.0, abs=1e-6) and len(rows) == len(body.mesh.vertices)
    # Half the points near the hands (the bw and joints networks' hierarchical sampling), the rest over the body.
    hands = [FakePCAE.frame["scale"] * rotation @ body.tails[UPSTREAM_JOINTS.index(f"{side}Hand")] + translation
             for side in ("Left", "Right")]
    near = np.min([np.abs(points - hand).max(axis=1) for hand in hands], axis=0)
    side = mia.HAND_BOX * float(rows.max() - rows.min())
    assert (near[16384:] <= side / 2 + 0.02).mean() > 0.99 and (near[:16384] <= side / 2).mean() < 0.3


def test_weights_are_pruned_renormalised_and_follow_the_limbs(fake_mia):
    body = character()
    rig = rig_mia(body, {"max_influences": 2, "fingers": True})
    assert "index_metacarpal_l" in rig.bone_names and "thumb_03_r" in rig.bone_names
    assert rig.influence_bones.shape == (len(body.mesh.vertices), 2)
    assert np.allclose(rig.influence_weights.sum(axis=1), 1.0)
    assert ((rig.influence_bones >= 0) | (rig.influence_weights == 0)).all()
    dense = rig.dense_weights()
    assert not dense[:, ~rig.deform].any()  # root and the ik bones carry nothing
    lead = np.array(rig.bone_names)[dense.argmax(axis=1)]
    vertices = body.mesh.vertices
    truth = dict(zip(UPSTREAM_JOINTS, body.heads))
    for name, joint, child in (("lowerarm_l", "LeftForeArm", "LeftHand"), ("upperarm_r", "RightArm", "RightForeArm"),
                               ("calf_l", "LeftLeg", "LeftFoot"), ("thigh_r", "RightUpLeg", "RightLeg")):
        middle = (truth[joint] + truth[child]) / 2
        closest = np.argsort(np.linalg.norm(vertices - middle, axis=1))[:5]
        assert (lead[closest] == name).all(), (name, lead[closest])
    # spine_02 takes over from spine_01 along the way up: both lead somewhere.
    assert {"spine_01", "spine_02", "spine_03", "neck_01", "neck_02"} <= set(lead)


def test_without_fingers_the_finger_weights_go_to_the_hand(fake_mia):
    body = character()
    rig = rig_mia(body, {"max_influences": 4})
    assert not any(name.startswith(("thumb", "index")) for name in rig.bone_names)
    tip = np.argmin(np.linalg.norm(body.mesh.vertices - body.tails[UPSTREAM_JOINTS.index("LeftHandMiddle3")], axis=1))
    assert rig.bone_names[rig.influence_bones[tip, 0]] == "hand_l"
    assert rig.influence_bones.shape[1] == 4 and np.allclose(rig.influence_weights.sum(axis=1), 1.0)


def test_mannequin_mapping_keeps_every_vertex_weight():
    weights = np.random.default_rng(1).dirichlet(np.ones(52), size=200)
    vertices = np.random.default_rng(2).normal(size=(200, 3))
    heads = np.random.default_rng(3).normal(size=(52, 3))
    for fingers in (False, True):
        moved = weights if fingers else mixamo.merged_fingers(weights)
        names, parents, bone_heads, tails, up, deform, dense = mixamo.to_mannequin(
            heads, heads + 0.1, moved, vertices, fingers, -1.0)
        assert np.allclose(dense.sum(axis=1), 1.0) and (dense >= 0).all()
        assert names == [bone.name for bone in mannequin_bones(fingers)]
        assert np.allclose(np.linalg.norm(up, axis=1), 1.0) and np.allclose((up * (tails - bone_heads)).sum(1), 0)
    cleaned = mixamo.exclusive(weights)
    lead = weights.argmax(axis=1)
    left = [i for i, name in enumerate(UPSTREAM_JOINTS) if name.startswith("Left") and "Shoulder" not in name]
    led_right = np.isin(lead, [i for i, name in enumerate(UPSTREAM_JOINTS) if name.startswith("RightUpLeg")])
    assert np.allclose(cleaned.sum(axis=1), 1.0) and not cleaned[np.ix_(led_right, left)].any()


def test_make_it_animatable_says_exactly_what_is_missing(fake_mia, monkeypatch, tmp_path):
    source, weights = fake_mia
    method = MakeItAnimatable()
    monkeypatch.delenv(mia.SOURCE_ENV)
    assert method.availability() == (False, "the source of jasongzy/Make-It-Animatable is not on this server: set "
                                            "O3F_MIA_SOURCE to a checkout of the commit vendor/make_it_animatable.toml "
                                            "pins")
    monkeypatch.setenv(mia.SOURCE_ENV, str(tmp_path))
    assert method.availability() == (False, f"O3F_MIA_SOURCE={tmp_path} is not a checkout of jasongzy/Make-It-"
                                            "Animatable (it has no model.py, models_ae.py, util/dataset_mixamo.py, "
                                            "util/utils.py; vendor/make_it_animatable.toml pins the commit)")
    monkeypatch.setenv(mia.SOURCE_ENV, str(source))
    monkeypatch.setitem(sys.modules, "pytorch3d", None)
    assert method.availability() == (False, "pytorch3d is not installed (a compiled extension: a pytorch3d wheel "
                                            "for this torch and CUDA)")
    monkeypatch.setitem(sys.modules, "pytorch3d", fake_module("pytorch3d"))
    monkeypatch.setitem(sys.modules, "bpy", None)
    assert method.availability()[1] == ("bpy is not installed (Blender as a Python module: upstream reads its "
                                        "Mixamo skeleton template with it on import)")
    monkeypatch.setitem(sys.modules, "bpy", fake_module("bpy"))
    (source / mia.TEMPLATE).unlink()
    assert method.availability() == (False, f"the Mixamo skeleton template data/Mixamo/bones.fbx is missing from "
                                            f"{source} (from the Hugging Face dataset jasongzy/Mixamo, gated: accept "
                                            "its terms and download bones.fbx)")
    (source / mia.TEMPLATE).write_text("")
    monkeypatch.delenv("O3F_ALLOW_CPU_MODELS")
    assert method.availability() == (False, "no CUDA GPU on this server (O3F_ALLOW_CPU_MODELS=1 allows the CPU, "
                                            "for tests)")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    (weights / mia.CHECKPOINTS["bw"]).unlink()
    assert method.availability() == (False, f"O3F_MIA_WEIGHTS={weights} has no output/best/new/bw.pth (a clone of "
                                            "jasongzy/Make-It-Animatable holds them)")
    monkeypatch.delenv(mia.WEIGHTS_ENV)
    monkeypatch.delenv(base.DOWNLOAD_ENV, raising=False)
    monkeypatch.setattr("server.rigging.models.common.cached_on_hub",
                        lambda repo, name: name.endswith("joints.pth"))
    assert method.availability() == (False, "weights jasongzy/Make-It-Animatable (output/best/new/joints_coarse.pth, "
                                            "output/best/new/bw.pth) are not in the Hugging Face cache: download "
                                            "them, point O3F_MIA_WEIGHTS at a clone, or set O3F_DOWNLOAD_WEIGHTS=1")
    with pytest.raises(InputError, match=r"options.method='make_it_animatable': expected an available rig method; "
                                         r"make_it_animatable is not: weights jasongzy/Make-It-Animatable"):
        registry.rig_with("make_it_animatable", character().mesh, {})
    monkeypatch.setenv(base.DOWNLOAD_ENV, "1")
    assert method.availability() == (True, f"Make-It-Animatable on cuda: source {source}, weights jasongzy/Make-It-"
                                           "Animatable download from the Hub on first use; humanoids in any pose, "
                                           "bound in their own pose")


def test_bad_input_is_refused_by_name(fake_mia):
    mesh = character().mesh
    cases = [
        (("rigify", mesh, {}), "options.method='rigify': expected one of make_it_animatable, unirig"),
        (("make_it_animatable", "mesh.glb", {}), "mesh='str': expected a MeshArrays"),
        (("make_it_animatable", mesh, {"max_influences": 0}), "options.max_influences=0: expected a whole number from 1 to 8"),
        (("make_it_animatable", mesh, {"max_influences": True}), "options.max_influences=True"),
        (("make_it_animatable", mesh, {"skeleton": "generic"}),
         "options.skeleton='generic': expected one of ['ue5_mannequin'] for the make_it_animatable method"),
        (("make_it_animatable", mesh, {"fingers": "yes"}), "options.fingers='yes': expected true or false"),
        (("make_it_animatable", mesh, {"seed": -1}), "options.seed=-1"),
        (("make_it_animatable", mesh, {"pose": "T"}), "options.pose='T': expected one of the rig options"),
        (("make_it_animatable", mesh, "fingers"), "options='fingers': expected a dict of rig options"),
        (("make_it_animatable", MeshArrays(np.zeros((3, 3)), np.array([[0, 1, 2]])), {}),
         "mesh='all vertices at one point'"),
        (("make_it_animatable", MeshArrays(mesh.vertices, mesh.faces + len(mesh.vertices)), {}), "mesh.faces="),
    ]
    for (method, the_mesh, options), message in cases:
        with pytest.raises(InputError) as caught:
            registry.rig_with(method, the_mesh, options)
        assert str(caught.value).startswith(message), (message, str(caught.value))
    assert not [call for call in FakePCAE.calls if call[0] != "init"], "nothing ran for refused input"


def test_the_quota_is_checked_before_any_model_runs(fake_mia):
    mesh = character().mesh
    estimate = MakeItAnimatable().gpu_estimate(mesh, {})
    assert estimate == mia.estimate_seconds(len(mesh.vertices))
    with pytest.raises(gpu.QuotaExceeded, match="ZeroGPU quota exceeded: rig with make_it_animatable asks for"):
        registry.rig_with("make_it_animatable", mesh, {}, quota_left_s=estimate - 2)
    assert not FakePCAE.calls
    FakePCAE.truth = character()
    rig = registry.rig_with("make_it_animatable", mesh, {}, quota_left_s=estimate + 1)
    assert rig.report["gpu_estimate_s"] == pytest.approx(estimate, abs=1e-3)
    assert 0 < rig.report["gpu_seconds"] <= rig.report["seconds"]["total"]  # the stand-in ran, within the rig


def test_on_zero_gpu_each_call_asks_for_its_computed_duration(fake_mia, monkeypatch):
    body = character()
    FakePCAE.truth = body
    with on_zero_gpu(monkeypatch, mia) as (zero, asked):
        rig = zero.MakeItAnimatable().rig(body.mesh, {})
    count = len(body.mesh.vertices)
    assert asked == [gpu.requested_duration(gpu.START_UP_S + mia.COARSE_S),
                     gpu.requested_duration(gpu.START_UP_S + mia.MAIN_S + mia.MAIN_S_PER_100K_VERTICES * count / 1e5)]
    assert rig.report["device"] == "cuda" and sum(asked) >= mia.estimate_seconds(count)


# UniRig: stand-ins of its data pipeline, models, tokenizer and reskin.


def quadruped_skeleton(length: float = 1.2) -> tuple[np.ndarray, np.ndarray, list]:
    L = length
    heads = [(0, 0.3 * L, 0.55 * L), (0, 0.0, 0.55 * L), (0, -0.3 * L, 0.55 * L), (0, -0.35 * L, 0.6 * L),
             (0, -0.5 * L, 0.85 * L)]
    tails = [heads[1], heads[2], heads[3], heads[4], (0, -0.7 * L, 0.88 * L)]
    parents = [None, 0, 1, 2, 3]
    for x in (-0.1 * L, 0.1 * L):
        for y in (-0.3 * L, 0.3 * L):
            parent = 2 if y < 0 else 0
            heads += [(x, y, 0.5 * L), (x, y, 0.27 * L)]
            tails += [(x, y, 0.27 * L), (x, y, 0.03 * L)]
            parents += [parent, len(heads) - 2]
    return np.array(heads, float), np.array(tails, float), parents


@dataclass(frozen=True)
class RawData:
    """src/data/raw_data.py RawData's fields."""

    vertices: np.ndarray | None
    vertex_normals: np.ndarray | None
    faces: np.ndarray | None
    face_normals: np.ndarray | None
    joints: np.ndarray | None
    skin: np.ndarray | None
    parents: list | None
    names: list | None
    matrix_local: np.ndarray | None
    tails: np.ndarray | None = None
    no_skin: np.ndarray | None = None
    path: str | None = None
    cls: str | None = None


@dataclass
class Asset:
    """src/data/asset.py Asset's fields (the ones inference fills) and from_raw_data."""

    cls: str
    path: str
    data_name: str
    vertices: np.ndarray
    vertex_normals: np.ndarray
    faces: np.ndarray
    face_normals: np.ndarray
    joints: np.ndarray | None = None
    tails: np.ndarray | None = None
    skin: np.ndarray | None = None
    no_skin: np.ndarray | None = None
    vertex_groups: dict | None = None
    parents: list | None = None
    names: list | None = None
    sampled_vertices: np.ndarray | None = None
    sampled_normals: np.ndarray | None = None
    sampled_vertex_groups: dict | None = None
    parts_bias: dict | None = None
    matrix_local: np.ndarray | None = None
    pose_matrix: np.ndarray | None = None
    meta: dict | None = None

    @staticmethod
    def from_raw_data(raw_data, cls, path, data_name):
        UniRigLog.calls.append(("from_raw_data", raw_data, cls, path, data_name))
        return Asset(cls=cls, path=path, data_name=data_name, vertices=raw_data.vertices,
                     vertex_normals=raw_data.vertex_normals, faces=raw_data.faces, face_normals=raw_data.face_normals,
                     joints=raw_data.joints, tails=raw_data.tails, skin=raw_data.skin, no_skin=raw_data.no_skin,
                     parents=raw_data.parents, names=raw_data.names, matrix_local=raw_data.matrix_local, meta={})

    @property
    def N(self):
        return self.vertices.shape[0]

    @property
    def F(self):
        return self.faces.shape[0]

    @property
    def J(self):
        return self.joints.shape[0]


@dataclass
class ModelInput:
    """src/model/spec.py ModelInput."""

    tokens: np.ndarray | None = None
    pad: int | None = None
    vertices: np.ndarray | None = None
    normals: np.ndarray | None = None
    joints: np.ndarray | None = None
    tails: np.ndarray | None = None
    asset: Asset | None = None
    augments: object = None


class UniRigLog:
    calls: ClassVar[list] = []
    mesh: ClassVar[MeshArrays | None] = None
    skeleton: ClassVar[tuple | None] = None


class TransformConfig:
    """src/data/transform.py TransformConfig.parse: the predict transform's parts as upstream's configs give them."""

    def __init__(self, config):
        self.config = config

    @classmethod
    def parse(cls, config):
        assert set(config) <= {"tail_config", "order_config", "vertex_group_config", "augment_config",
                               "sampler_config"}, set(config)
        for path in config.order_config.skeleton_path.values():
            assert path.startswith("/") and path.endswith(".yaml"), path  # made absolute: run.py runs in the checkout
        UniRigLog.calls.append(("TransformConfig.parse", config))
        return cls(config)


def transform_asset(asset, transform_config):
    """Upstream's inference transform: tails to a unique child, the affine into [-1, 1] (the box of the vertices and
    joints), vertex groups, then 'mix' sampling (vertex samples first, then the surface) with NumPy's generator."""
    config = transform_config.config
    UniRigLog.calls.append(("transform_asset", asset, config))
    if config.tail_config.connect_tail_to_unique_son and asset.tails is not None:
        for i in range(asset.J):
            children = [c for c, p in enumerate(asset.parents) if p == i]
            if len(children) == 1:
                asset.tails[i] = asset.joints[children[0]]
    low, high = asset.vertices.min(axis=0), asset.vertices.max(axis=0)
    if asset.joints is not None:
        low, high = np.minimum(low, asset.joints.min(axis=0)), np.maximum(high, asset.joints.max(axis=0))
    centre, half = (low + high) / 2, (high - low).max() / 2
    asset.vertices = ((asset.vertices - centre) / half).astype(np.float32)
    if asset.joints is not None:
        asset.joints = (asset.joints - centre) / half
        asset.tails = (asset.tails - centre) / half
    groups = {}
    if config.get("vertex_group_config"):
        assert list(config.vertex_group_config.names) == ["voxel_skin"]
        groups["voxel_skin"] = np.full((asset.N, asset.J), 1.0 / asset.J, np.float32)
    asset.vertex_groups = groups
    sampler = config.sampler_config
    count = min(sampler.vertex_samples, asset.N)
    picked = np.random.permutation(asset.N)[:count]
    corners = asset.vertices[asset.faces]
    areas = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    faces = np.random.choice(asset.F, size=sampler.num_samples - count, p=areas / areas.sum())
    u = np.random.rand(len(faces), 2)
    u[u.sum(1) > 1] = 1 - u[u.sum(1) > 1]
    surface = corners[faces, 0] + u[:, :1] * (corners[faces, 1] - corners[faces, 0]) \
        + u[:, 1:] * (corners[faces, 2] - corners[faces, 0])
    asset.sampled_vertices = np.concatenate([asset.vertices[picked], surface])
    asset.sampled_normals = np.concatenate([asset.vertex_normals[picked], asset.face_normals[faces]])
    asset.sampled_vertex_groups = {name: np.concatenate([g[picked], g[asset.faces[faces, 0]]])
                                   for name, g in groups.items()}
    return [], []


@dataclass(frozen=True)
class DetokenizeOutput:
    """src/tokenizer/spec.py DetokenizeOutput's fields (joints is bones[:, 3:] there)."""

    tokens: np.ndarray
    bones: np.ndarray
    parents: list
    tails: np.ndarray | None
    no_skin: np.ndarray | None
    cls: str | None
    parts: list
    names: list | None
    continuous_range: tuple

    @property
    def joints(self):
        return self.bones[:, 3:]


class FakeModel:
    """ModelSpec's _process_fn as upstream defines it, load_state_dict, to and eval, recording each."""

    def _process_fn(self, batch):
        n_batch = self.process_fn(batch)
        for item, b in zip(n_batch, batch):
            asset = b.asset
            item.update(cls=asset.cls, path=asset.path, data_name=asset.data_name, vertices=b.vertices,
                        normals=b.normals, num_points=asset.N, origin_vertices=asset.vertices,
                        origin_vertex_normals=asset.vertex_normals, num_faces=asset.F, origin_faces=asset.faces,
                        origin_face_normals=asset.face_normals)
            if asset.joints is not None:
                item.update(joints=asset.joints, num_bones=asset.J, tails=asset.tails,
                            parents=np.array([-1 if p is None else p for p in asset.parents]))
        return n_batch

    def load_state_dict(self, state_dict, strict=True, assign=False):
        UniRigLog.calls.append(("load_state_dict", type(self).__name__, sorted(state_dict), strict))

    def to(self, *args, **kwargs):
        UniRigLog.calls.append(("to", type(self).__name__, args))
        return self

    def eval(self):
        return self

    def parameters(self, recurse=True):  # nn.Module's: the stand-in's one weight lives on the CPU
        yield torch.zeros(1)


class FakeUniRigAR(FakeModel):
    """UniRigAR(llm, mesh_encoder, tokenizer=...): predict_step returns the known skeleton in the frame it finds by
    matching the normalised vertices (the mesh's own, in order) to the mesh."""

    def __init__(self, llm, mesh_encoder, **kwargs):
        self.tokenizer = kwargs.get("tokenizer")
        UniRigLog.calls.append(("UniRigAR", llm, mesh_encoder, self.tokenizer))

    def process_fn(self, batch):
        assert batch[0].joints is None  # predict
        return [{} for _ in batch]

    def predict_step(self, batch, no_cls=False):
        vertices = batch["origin_vertices"][0].numpy()[:int(batch["num_points"][0])]
        scale, rotation, translation, residual = similarity(UniRigLog.mesh.vertices, vertices)
        UniRigLog.calls.append(("ar.predict_step", batch, rotation, residual))
        heads, tails, parents = UniRigLog.skeleton
        place = lambda p: scale * p @ rotation.T + translation  # noqa: E731
        bones = np.concatenate([np.zeros_like(heads), place(heads)], axis=1)
        return [DetokenizeOutput(np.zeros(4, int), bones, list(parents), place(tails), None, "articulationxl", [],
                                 None, (-1.0, 1.0))]


class FakeUniRigSkin(FakeModel):
    """UniRigSkin(mesh_encoder, global_encoder, **kwargs): predict_step weighs the sampled points by the bones."""

    def __init__(self, mesh_encoder, global_encoder, **kwargs):
        UniRigLog.calls.append(("UniRigSkin", mesh_encoder, global_encoder))

    def process_fn(self, batch):
        return [{"voxel_skin": b.asset.sampled_vertex_groups["voxel_skin"], "skin": np.zeros(1),
                 "offset": b.vertices.shape[0]} for b in batch]

    def predict_step(self, batch):
        points = batch["vertices"][0].numpy().astype(np.float64)
        joints, tails = batch["joints"][0].numpy(), batch["tails"][0].numpy()
        assert tuple(batch["voxel_skin"].shape) == (1, len(points), len(joints))
        UniRigLog.calls.append(("skin.predict_step", batch))
        return [torch.from_numpy(segment_weights(points, joints, tails, 0.05).astype(np.float32))]


def get_model(**kwargs):
    target = kwargs.pop("__target__")
    return {"unirig_ar": FakeUniRigAR, "unirig_skin": FakeUniRigSkin}[target](**kwargs)


class TokenizerConfig:
    @staticmethod
    def parse(config):
        UniRigLog.calls.append(("TokenizerConfig.parse", config))
        return config


class FakeTokenizer:
    def __init__(self, config):
        self.config = config

    @property
    def pad(self):
        return 7


def get_tokenizer(config):
    return FakeTokenizer(config)


def reskin(sampled_vertices, vertices, parents, faces, sampled_skin, sample_method="mean", **kwargs):
    """src/system/skin.py reskin's median of the 7 nearest samples (its diffusion step left out)."""
    UniRigLog.calls.append(("reskin", sampled_vertices, vertices, sample_method, kwargs))
    _, nearest = cKDTree(sampled_vertices).query(vertices, k=7)
    skin = np.median(sampled_skin[nearest], axis=1)
    return skin / skin.sum(axis=1, keepdims=True)


UPSTREAM_CONFIGS = {
    unirig_module.SKELETON_TASK: "components: {data: quick_inference, tokenizer: tok, transform: ar_tf, model: ar, "
                                 "system: ar_sys, data_name: raw_data.npz}\n",
    unirig_module.SKIN_TASK: "components: {data: quick_inference, transform: skin_tf, model: skin, system: skin_sys, "
                             "data_name: predict_skeleton.npz}\n",
    "configs/tokenizer/tok.yaml": "method: tokenizer_part\nnum_discrete: 256\norder_config: {skeleton_path: "
                                  "{vroid: ./configs/skeleton/vroid.yaml}}\n",
    "configs/transform/ar_tf.yaml": "predict_transform_config: {tail_config: {copy_joint_to_tail: false, "
                                    "connect_tail_to_unique_son: true}, order_config: {skeleton_path: {vroid: "
                                    "./configs/skeleton/vroid.yaml}}, sampler_config: {method: mix, num_samples: 4096, "
                                    "vertex_samples: 512}, augment_config: {augment_affine_config: {normalize_into: "
                                    "[-1.0, 1.0]}}}\n",
    "configs/transform/skin_tf.yaml": "predict_transform_config: {tail_config: {copy_joint_to_tail: false, "
                                      "connect_tail_to_unique_son: true}, order_config: {skeleton_path: {vroid: "
                                      "./configs/skeleton/vroid.yaml}}, vertex_group_config: {names: [voxel_skin]}, "
                                      "sampler_config: {method: mix, num_samples: 4096, vertex_samples: 512}, "
                                      "augment_config: {augment_affine_config: {normalize_into: [-1.0, 1.0]}}}\n",
    "configs/model/ar.yaml": "__target__: unirig_ar\nllm: {pretrained_model_name_or_path: facebook/opt-350m, "
                             "hidden_size: 1024}\nmesh_encoder: {__target__: michelangelo_encoder}\n",
    "configs/model/skin.yaml": "__target__: unirig_skin\nnum_heads: 16\nmesh_encoder: {__target__: ptv3obj}\n"
                               "global_encoder: {__target__: michelangelo_encoder}\n",
    "configs/system/ar_sys.yaml": "__target__: ar\ngenerate_kwargs: {max_new_tokens: 2048, num_beams: 15, "
                                  "do_sample: true, assign_cls: articulationxl}\n",
    "configs/system/skin_sys.yaml": "__target__: skin\n",
}


@pytest.fixture
def fake_unirig(tmp_path, monkeypatch):
    """A UniRig checkout (its configs shortened to what the adapter reads) and weights, the stand-ins in place."""
    source, weights = tmp_path / "unirig", tmp_path / "unirig-weights"
    for name in unirig_module.SOURCE_MARKERS:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("")
    for name, text in UPSTREAM_CONFIGS.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    for role, name in unirig_module.CHECKPOINTS.items():
        (weights / name).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": {f"model.{role}.weight": torch.zeros(2), "model.norm.bias": torch.zeros(2)}},
                   weights / name)
    monkeypatch.setenv(unirig_module.SOURCE_ENV, str(source))
    monkeypatch.setenv(unirig_module.WEIGHTS_ENV, str(weights))
    monkeypatch.setenv("O3F_ALLOW_CPU_MODELS", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.setattr(unirig_module, "cached_on_hub", lambda repo, name: repo == "facebook/opt-350m")
    modules = {
        "src": {}, "src.data": {}, "src.model": {}, "src.system": {}, "src.tokenizer": {},
        "src.data.raw_data": {"RawData": RawData}, "src.data.asset": {"Asset": Asset},
        "src.data.transform": {"TransformConfig": TransformConfig, "transform_asset": transform_asset},
        "src.model.spec": {"ModelInput": ModelInput}, "src.model.parse": {"get_model": get_model},
        "src.system.skin": {"reskin": reskin}, "src.tokenizer.spec": {"TokenizerConfig": TokenizerConfig},
        "src.tokenizer.parse": {"get_tokenizer": get_tokenizer},
    }
    for name, attributes in modules.items():
        monkeypatch.setitem(sys.modules, name, fake_module(name, package=not attributes, **attributes))
    for name in ("lightning", "box", "addict", "timm", "flash_attn", "spconv", "torch_scatter", "pyrender"):
        monkeypatch.setitem(sys.modules, name, fake_module(name))
    monkeypatch.setattr(unirig_module, "MODEL_HOST", modelhost.ModelHost())
    unirig_module.stage_configs.cache_clear()
    UniRigLog.calls = []
    UniRigLog.mesh = make_quadruped(cells=30)
    UniRigLog.skeleton = quadruped_skeleton()
    yield source, weights
    unirig_module.stage_configs.cache_clear()


def test_unirig_bones_come_back_where_the_model_put_them_with_its_own_names_and_tree(fake_unirig):
    mesh = UniRigLog.mesh
    rig = registry.rig_with("unirig", mesh, {"max_influences": 3})
    heads, tails, parents = UniRigLog.skeleton
    assert rig.bone_names == [f"bone_{i}" for i in range(len(heads))]  # upstream's names when the model gives none
    assert rig.parents == [-1 if p is None else p for p in parents]
    assert np.allclose(rig.heads, heads, atol=POSITION_TOL_M)
    # A bone with one child ends at it (upstream's connect_tail_to_unique_son); a leaf keeps the model's tail.
    assert np.allclose(rig.tails[0], heads[1], atol=POSITION_TOL_M)
    assert np.allclose(rig.tails[4], tails[4], atol=POSITION_TOL_M)
    assert rig.report["skeleton"] == "generic" and rig.deform.all()
    assert rig.influence_bones.shape == (len(mesh.vertices), 3)
    assert np.allclose(rig.influence_weights.sum(axis=1), 1.0)
    lead = rig.dense_weights().argmax(axis=1)
    for bone in (0, 4, 6, 8, 12):  # the rear body, the head and three lower legs lead the vertices nearest them
        middle = (heads[bone] + tails[bone]) / 2
        assert lead[np.argmin(np.linalg.norm(mesh.vertices - middle, axis=1))] == bone


def test_unirig_gets_the_mesh_as_upstream_extracts_it(fake_unirig):
    source, weights = fake_unirig
    mesh = UniRigLog.mesh
    registry.rig_with("unirig", mesh, {})
    calls = UniRigLog.calls
    raws = [call[1] for call in calls if call[0] == "from_raw_data"]
    # Blender world axes, float32 vertices and normals, int64 faces, as src/data/extract.py writes raw_data.npz.
    assert np.array_equal(raws[0].vertices, mesh.vertices.astype(np.float32)) and raws[0].faces.dtype == np.int64
    assert raws[0].vertex_normals.dtype == np.float32 and raws[0].joints is None
    assert [(c[2], c[3], c[4]) for c in calls if c[0] == "from_raw_data"] == [
        ("inference", "open3dforge", "raw_data.npz"), ("inference", "open3dforge", "predict_skeleton.npz")]
    assert raws[1].parents[0] is None and raws[1].names == [f"bone_{i}" for i in range(len(raws[1].parents))]
    (_, batch, rotation, residual), = [call for call in calls if call[0] == "ar.predict_step"]
    assert residual < 1e-4 and np.allclose(rotation, np.eye(3), atol=1e-6)  # no axis change: Blender's are upstream's
    assert batch["generate_kwargs"] == {"max_new_tokens": 2048, "num_beams": 15, "do_sample": True,
                                        "assign_cls": "articulationxl"}
    assert tuple(batch["vertices"].shape) == (1, 4096, 3) and batch["cls"] == ["inference"]
    (_, llm, encoder, tokenizer), = [call for call in calls if call[0] == "UniRigAR"]
    assert llm.pretrained_model_name_or_path == "facebook/opt-350m" and tokenizer.pad == 7
    assert tokenizer.config.order_config.skeleton_path.vroid == str(source / "configs/skeleton/vroid.yaml")
    loads = [call for call in calls if call[0] == "load_state_dict"]
    assert loads == [("load_state_dict", "FakeUniRigAR", ["norm.bias", "skeleton.weight"], True),
                     ("load_state_dict", "FakeUniRigSkin", ["norm.bias", "skin.weight"], True)]
    (_, skin_batch), = [call for call in calls if call[0] == "skin.predict_step"]
    assert {"voxel_skin", "offset", "joints", "tails", "parents", "num_bones"} <= set(skin_batch)
    (_, sampled, vertices, method, kwargs), = [call for call in calls if call[0] == "reskin"]
    assert method == "median" and kwargs == {"alpha": 2.0, "threshold": 0.03} and len(vertices) == len(mesh.vertices)


def test_unirig_says_exactly_what_is_missing(fake_unirig, monkeypatch, tmp_path):
    source, weights = fake_unirig
    method = UniRig()
    assert method.availability() == (True, f"UniRig on cpu: source {source}, weights from {weights}; any creature, "
                                           "its own bone names")
    monkeypatch.delenv(unirig_module.SOURCE_ENV)
    assert method.availability() == (False, "the source of VAST-AI-Research/UniRig is not on this server: set "
                                            "O3F_UNIRIG_SOURCE to a checkout of the commit vendor/unirig.toml pins")
    monkeypatch.setenv(unirig_module.SOURCE_ENV, str(source))
    monkeypatch.setitem(sys.modules, "spconv", None)
    assert method.availability() == (False, "spconv is not installed (a compiled extension: spconv for this CUDA "
                                            "(the skin model's point transformer))")
    monkeypatch.setitem(sys.modules, "spconv", fake_module("spconv"))
    monkeypatch.setitem(sys.modules, "box", None)
    assert method.availability()[1] == ("box is not installed (pip install python-box: upstream reads its configs "
                                        "with it)")
    monkeypatch.setitem(sys.modules, "box", fake_module("box"))
    (weights / unirig_module.CHECKPOINTS["skin"]).unlink()
    assert method.availability() == (False, f"O3F_UNIRIG_WEIGHTS={weights} has no skin/articulation-xl/model.ckpt "
                                            "(a clone of VAST-AI/UniRig holds them)")
    monkeypatch.delenv(unirig_module.WEIGHTS_ENV)
    monkeypatch.setattr("server.rigging.models.common.cached_on_hub", lambda repo, name: True)
    monkeypatch.setattr(unirig_module, "cached_on_hub", lambda repo, name: False)
    monkeypatch.delenv(base.DOWNLOAD_ENV, raising=False)
    assert method.availability() == (False, "the skeleton model's transformer config facebook/opt-350m (config.json) "
                                            "is not in the Hugging Face cache: download it, or set "
                                            "O3F_DOWNLOAD_WEIGHTS=1")
    with pytest.raises(InputError, match=r"options.method='unirig': expected an available rig method; unirig is not: "
                                         r"the skeleton model's transformer config"):
        registry.rig_with("unirig", UniRigLog.mesh, {})
    for options, message in (({"fingers": True}, "options.fingers=True: expected false for unirig"),
                             ({"skeleton": "ue5_mannequin"}, "options.skeleton='ue5_mannequin': expected one of "
                                                             "['generic'] for the unirig method")):
        with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
            UniRig().check_options(options)


def test_a_checkout_without_a_config_the_task_names_is_a_reason_not_a_crash(fake_unirig):
    source, _ = fake_unirig
    (source / "configs/model/ar.yaml").unlink()
    assert UniRig().availability() == (False, f"UniRig's configs in {source} do not read as the pinned commit's "
                                              f"(UniRig's config configs/model/ar.yaml is missing from {source}: "
                                              "check it against vendor/unirig.toml)")

def test_unirig_on_zero_gpu_asks_for_its_durations(fake_unirig, monkeypatch):
    with on_zero_gpu(monkeypatch, unirig_module) as (zero, asked):
        monkeypatch.setattr(zero, "cached_on_hub", lambda repo, name: True)
        rig = zero.UniRig().rig(UniRigLog.mesh, {})
    assert asked == [gpu.requested_duration(gpu.START_UP_S + unirig_module.SKELETON_S),
                     gpu.requested_duration(gpu.START_UP_S + unirig_module.SKIN_S)]
    assert rig.report["gpu_estimate_s"] == unirig_module.estimate_seconds()


def test_health_rows_name_each_method_and_why(fake_mia, fake_unirig):
    rows = {row["name"]: row for row in registry.report()}
    assert set(rows) == {"make_it_animatable", "unirig"}
    assert rows["make_it_animatable"]["available"] and rows["make_it_animatable"]["skeletons"] == ["ue5_mannequin"]
    assert rows["unirig"]["available"] and rows["unirig"]["skeletons"] == ["generic"]
    assert all(set(row) == {"name", "title", "available", "reason", "skeletons"} for row in rows.values())


# The real models: skipped where they cannot run (no checkout, compiled extensions, CUDA or weights).


@pytest.mark.slow
@pytest.mark.skipif(not MakeItAnimatable().availability()[0],
                    reason=f"Make-It-Animatable cannot run here: {MakeItAnimatable().availability()[1]}")
def test_real_make_it_animatable_rigs_a_humanoid():
    body = make_humanoid(Body(height=1.7, arm_drop_deg=40))
    rig = registry.rig_with("make_it_animatable", body.mesh, {})
    for name in ("pelvis", "hand_l", "hand_r", "foot_l", "foot_r", "head"):
        assert np.linalg.norm(rig.joints[name] - body.joints[name]) < 0.06 * body.height, name
    assert np.allclose(rig.influence_weights.sum(axis=1), 1.0)


@pytest.mark.slow
@pytest.mark.skipif(not UniRig().availability()[0], reason=f"UniRig cannot run here: {UniRig().availability()[1]}")
def test_real_unirig_rigs_a_quadruped():
    mesh = make_quadruped()
    rig = registry.rig_with("unirig", mesh, {})
    assert len(rig.bone_names) >= 5 and rig.parents[0] == -1
    assert np.allclose(rig.influence_weights.sum(axis=1), 1.0)


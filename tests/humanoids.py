"""Humanoids with known joints for the rigging tests: capsules and ellipsoids blended into one signed
distance field and meshed by marching cubes (so every body is one watertight surface), in Blender axes
(metres, Z up, facing -Y, the character's own left on +X), with the true UE5 joint positions alongside.

    body = make_humanoid(Body(height=1.7, arm_drop_deg=40))   # an A-pose
    body.mesh          # MeshArrays
    body.joints        # {"pelvis": (3,), "thigh_l": ..., "lowerarm_r": ..., ...} on the same axes
    body.height        # the mesh's own height (max z - min z)

The proportions follow common anthropometric tables (joint heights and segment lengths as fractions of
the height); every one of them can be changed, so the tests can ask the rig fitter for bodies whose
proportions differ from those tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from server.meshdata import MeshArrays

# Joints that have an anatomical position on these bodies; the rig's error is measured on them.
MEASURED_JOINTS = (
    "pelvis", "neck_01", "head",
    "thigh_l", "calf_l", "foot_l", "ball_l", "upperarm_l", "lowerarm_l", "hand_l",
    "thigh_r", "calf_r", "foot_r", "ball_r", "upperarm_r", "lowerarm_r", "hand_r",
)


@dataclass(frozen=True)
class Body:
    """A humanoid's build. Lengths are fractions of `height` unless named otherwise."""

    height: float = 1.8
    arm_drop_deg: float = 0.0        # arms below horizontal: about 0 for a T-pose, 30-50 for an A-pose
    leg_share: float = 0.53          # hip joint height
    shoulder_share: float = 0.815    # shoulder joint height
    shoulder_half: float = 0.118     # shoulder joint's distance from the middle
    hip_half: float = 0.058          # hip joint's distance from the middle
    head_share: float = 0.13         # chin to crown
    girth: float = 1.0               # thickness of limbs and torso
    arm_share: float = 0.335         # shoulder to wrist
    forearm_share: float = 0.44      # forearm / (upper arm + forearm)
    shank_share: float = 0.5         # knee to ankle / hip to ankle
    hand_share: float = 0.105        # wrist to fingertip
    elbow_bend_deg: float = 0.0      # forearms turned forward (-Y)
    knee_bend_deg: float = 0.0       # knees bent forward, shanks back
    cells: int = 90                  # marching-cubes cells along the height


@dataclass
class Humanoid:
    body: Body
    mesh: MeshArrays
    joints: dict = field(default_factory=dict)
    extremities: dict = field(default_factory=dict)

    @property
    def height(self) -> float:
        z = self.mesh.vertices[:, 2]
        return float(z.max() - z.min())


# --------------------------------------------------------------------------------------------------
# signed distances (negative inside), evaluated on (n, 3) point arrays
# --------------------------------------------------------------------------------------------------

def _round_cone(p, a, b, ra, rb):
    """Approximate distance to a capsule whose radius goes from ra at a to rb at b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    closest = a + t[:, None] * ab
    return np.linalg.norm(p - closest, axis=1) - (ra + t * (rb - ra))


def _ellipsoid(p, centre, radii, frame=None):
    """Approximate distance to an ellipsoid; `frame` rows are its axes (default: world axes)."""
    local = p - np.asarray(centre, float)
    if frame is not None:
        local = local @ np.asarray(frame, float).T
    radii = np.asarray(radii, float)
    k0 = np.linalg.norm(local / radii, axis=1)
    k1 = np.linalg.norm(local / radii ** 2, axis=1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _smooth_union(a, b, k):
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def _unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _mesh_from_field(parts, low, high, pitch, blend) -> MeshArrays:
    """Marching cubes over the smooth union of `parts` (functions of points) inside [low, high]."""
    import trimesh
    from skimage.measure import marching_cubes

    low = np.asarray(low, float) - 2 * pitch
    high = np.asarray(high, float) + 2 * pitch
    shape = np.ceil((high - low) / pitch).astype(int) + 1
    axes = [low[i] + pitch * np.arange(shape[i]) for i in range(3)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    distance = None
    for part in parts:
        d = part(points)
        distance = d if distance is None else _smooth_union(distance, d, blend)
    volume = distance.reshape(shape)
    verts, faces, _, _ = marching_cubes(volume, level=0.0, spacing=(pitch, pitch, pitch))
    verts = verts + low
    mesh = trimesh.Trimesh(verts, faces, process=True)
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    mesh.merge_vertices()
    if mesh.volume < 0:
        mesh.invert()
    return MeshArrays(np.asarray(mesh.vertices), np.asarray(mesh.faces))


# --------------------------------------------------------------------------------------------------
# the humanoid
# --------------------------------------------------------------------------------------------------

def humanoid_joints(body: Body) -> tuple[dict, dict]:
    """True joint positions (UE5 names) and extremities of `body`, before the mesh is made."""
    H = body.height
    g = body.girth
    joints: dict[str, np.ndarray] = {}
    ends: dict[str, np.ndarray] = {}
    hip_z = body.leg_share * H
    ankle_height = 0.045 * H
    leg = hip_z - ankle_height
    thigh = (1 - body.shank_share) * leg
    shank = body.shank_share * leg
    half_knee = np.radians(body.knee_bend_deg) / 2
    upper = (1 - body.forearm_share) * body.arm_share * H
    fore = body.forearm_share * body.arm_share * H
    drop = np.radians(body.arm_drop_deg)
    bend = np.radians(body.elbow_bend_deg)
    joints["pelvis"] = np.array([0.0, 0.0, hip_z])
    for side, sx in (("l", 1.0), ("r", -1.0)):
        hip = np.array([sx * body.hip_half * H, 0.0, hip_z])
        knee = hip + thigh * np.array([0.0, -np.sin(half_knee), -np.cos(half_knee)])
        ankle = knee + shank * np.array([0.0, np.sin(half_knee), -np.cos(half_knee)])
        ball = ankle + np.array([0.0, -0.072 * H, -(ankle[2] - 0.02 * H * g)])
        joints[f"thigh_{side}"], joints[f"calf_{side}"], joints[f"foot_{side}"] = hip, knee, ankle
        joints[f"ball_{side}"] = ball
        ends[f"toe_{side}"] = ball + np.array([0.0, -0.03 * H, -0.003 * H])
        ends[f"heel_{side}"] = np.array([ankle[0], ankle[1] + 0.02 * H, 0.022 * H * g])
        shoulder = np.array([sx * body.shoulder_half * H, 0.0, body.shoulder_share * H])
        arm = np.array([sx * np.cos(drop), 0.0, -np.sin(drop)])
        elbow = shoulder + upper * arm
        forearm = _unit(np.cos(bend) * arm + np.sin(bend) * np.array([0.0, -1.0, 0.0]))
        wrist = elbow + fore * forearm
        joints[f"upperarm_{side}"], joints[f"lowerarm_{side}"], joints[f"hand_{side}"] = shoulder, elbow, wrist
        ends[f"hand_tip_{side}"] = wrist + body.hand_share * H * forearm
    # The legs were built down from the hips; the soles stand on z = 0 (the mesh is moved the same way).
    joints["neck_01"] = np.array([0.0, 0.0, body.shoulder_share * H + 0.025 * H])
    head_rz = body.head_share * H / 2
    head_centre = np.array([0.0, -0.005 * H, H - head_rz])
    ends["head_centre"] = head_centre
    ends["head_top"] = head_centre + np.array([0.0, 0.0, head_rz])
    joints["head"] = np.array([0.0, 0.0, head_centre[2] - 0.6 * head_rz])
    return joints, ends


def make_humanoid(body: Body = Body()) -> Humanoid:
    """A watertight humanoid mesh of `body` and its true joints, standing on z = 0."""
    H, g = body.height, body.girth
    joints, ends = humanoid_joints(body)
    head_rz = body.head_share * H / 2
    parts = []
    hip_z = joints["pelvis"][2]
    shoulder_z = body.shoulder_share * H
    chest_rx = body.shoulder_half * H - 0.028 * H * g
    # torso: pelvis, waist, chest
    parts.append(lambda p: _ellipsoid(p, (0, 0.004 * H, hip_z + 0.01 * H),
                                      (body.hip_half * H + 0.035 * H * g, 0.068 * H * g, 0.065 * H)))
    waist_z = 0.5 * (hip_z + shoulder_z) - 0.01 * H
    parts.append(lambda p: _ellipsoid(p, (0, 0, waist_z), (0.085 * H * g, 0.058 * H * g, 0.13 * H)))
    parts.append(lambda p: _ellipsoid(p, (0, 0, shoulder_z - 0.07 * H), (chest_rx, 0.07 * H * g, 0.105 * H)))
    # neck and head
    parts.append(lambda p: _round_cone(p, joints["neck_01"] - [0, 0, 0.03 * H], ends["head_centre"],
                                       0.034 * H * g, 0.03 * H * g))
    parts.append(lambda p: _ellipsoid(p, ends["head_centre"], (0.045 * H, 0.055 * H, head_rz)))
    for side in ("l", "r"):
        hip, knee, ankle = joints[f"thigh_{side}"], joints[f"calf_{side}"], joints[f"foot_{side}"]
        ball, toe, heel = joints[f"ball_{side}"], ends[f"toe_{side}"], ends[f"heel_{side}"]
        shoulder, elbow, wrist = joints[f"upperarm_{side}"], joints[f"lowerarm_{side}"], joints[f"hand_{side}"]
        tip = ends[f"hand_tip_{side}"]
        parts.append(lambda p, a=hip, b=knee: _round_cone(p, a, b, 0.05 * H * g, 0.034 * H * g))
        parts.append(lambda p, a=knee, b=ankle: _round_cone(p, a, b, 0.033 * H * g, 0.02 * H * g))
        parts.append(lambda p, a=heel, b=ball: _round_cone(p, a, b, 0.022 * H * g, 0.02 * H * g))
        parts.append(lambda p, a=ball, b=toe: _round_cone(p, a, b, 0.02 * H * g, 0.014 * H * g))
        parts.append(lambda p, c=shoulder: _ellipsoid(p, c, (0.036 * H * g,) * 3))
        # the shoulder girdle, from the base of the neck out to the shoulder
        girdle = np.array([np.sign(shoulder[0]) * 0.03 * H, 0.0, shoulder[2] + 0.005 * H])
        parts.append(lambda p, a=girdle, b=shoulder: _round_cone(p, a, b, 0.032 * H * g, 0.03 * H * g))
        parts.append(lambda p, a=shoulder, b=elbow: _round_cone(p, a, b, 0.031 * H * g, 0.025 * H * g))
        parts.append(lambda p, a=elbow, b=wrist: _round_cone(p, a, b, 0.024 * H * g, 0.017 * H * g))
        along = _unit(tip - wrist)
        across = _unit(np.cross([0.0, 0.0, 1.0], along)) if abs(along[2]) < 0.99 else np.array([0.0, 1.0, 0.0])
        flat = np.cross(along, across)
        frame = np.stack([along, across, flat])
        centre = wrist + 0.45 * (tip - wrist)
        radii = (0.55 * np.linalg.norm(tip - wrist), 0.024 * H, 0.011 * H * g)
        parts.append(lambda p, c=centre, r=radii, f=frame: _ellipsoid(p, c, r, f))
    every = np.array(list(joints.values()) + list(ends.values()))
    margin = 0.12 * H * g
    mesh = _mesh_from_field(parts, every.min(axis=0) - margin, every.max(axis=0) + margin,
                            pitch=H / body.cells, blend=0.012 * H)
    floor = mesh.vertices[:, 2].min()
    mesh.vertices[:, 2] -= floor
    shift = np.array([0.0, 0.0, floor])
    return Humanoid(body, mesh, {k: v - shift for k, v in joints.items()}, {k: v - shift for k, v in ends.items()})


def make_quadruped(length: float = 1.2, cells: int = 60) -> MeshArrays:
    """A four-legged animal of the same make (body, four legs, neck and head), facing -Y."""
    L = length
    parts = [lambda p: _ellipsoid(p, (0, 0, 0.55 * L), (0.16 * L, 0.42 * L, 0.16 * L))]
    for x in (-0.1 * L, 0.1 * L):
        for y in (-0.3 * L, 0.3 * L):
            parts.append(lambda p, x=x, y=y: _round_cone(p, (x, y, 0.5 * L), (x, y, 0.03 * L), 0.06 * L, 0.035 * L))
    parts.append(lambda p: _round_cone(p, (0, -0.35 * L, 0.6 * L), (0, -0.5 * L, 0.85 * L), 0.08 * L, 0.06 * L))
    parts.append(lambda p: _ellipsoid(p, (0, -0.58 * L, 0.88 * L), (0.08 * L, 0.14 * L, 0.08 * L)))
    mesh = _mesh_from_field(parts, (-0.3 * L, -0.8 * L, -0.02 * L), (0.3 * L, 0.5 * L, 1.0 * L),
                            pitch=L / cells, blend=0.02 * L)
    mesh.vertices[:, 2] -= mesh.vertices[:, 2].min()
    return mesh


# A small cast of different builds: heights, proportions, T- and A-poses, bent and straight limbs.
CAST = {
    "t_pose_average": Body(),
    "a_pose_short": Body(height=1.55, arm_drop_deg=40, leg_share=0.5, head_share=0.14, girth=1.1),
    "t_pose_tall_slim": Body(height=1.95, arm_drop_deg=5, leg_share=0.55, girth=0.85, shoulder_half=0.11,
                             forearm_share=0.47, elbow_bend_deg=15),
    "a_pose_stocky": Body(height=1.72, arm_drop_deg=32, girth=1.2, shoulder_half=0.128, hip_half=0.062,
                          shank_share=0.46, knee_bend_deg=12),
    "a_pose_long_arms": Body(height=1.8, arm_drop_deg=48, arm_share=0.36, forearm_share=0.42, hand_share=0.11,
                             shoulder_share=0.82),
}


def cast(cells: int | None = None) -> dict[str, Humanoid]:
    """Every body of CAST made into a humanoid (at `cells` resolution if given)."""
    return {name: make_humanoid(body if cells is None else replace(body, cells=cells)) for name, body in CAST.items()}


if __name__ == "__main__":  # a quick look: python -m tests.humanoids OUT_DIR
    import sys
    from pathlib import Path

    import trimesh

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "humanoids")
    out.mkdir(parents=True, exist_ok=True)
    for name, human in cast().items():
        trimesh.Trimesh(human.mesh.vertices, human.mesh.faces).export(out / f"{name}.ply")
        print(name, len(human.mesh.vertices), "vertices", f"{human.height:.3f} m")


# --------------------------------------------------------------------------------------------------
# a second family: stick figures grown by Blender's Skin modifier (bpy in a subprocess)
# --------------------------------------------------------------------------------------------------

# Builds the stick figure given as JSON (nodes, radii, edges), grows it with Skin + Subdivision Surface,
# and saves the evaluated, triangulated surface to an .npz.
_SKIN_SCRIPT = r'''
import json, sys
import bpy
import numpy as np
spec = json.load(open(sys.argv[1]))
bpy.ops.wm.read_factory_settings(use_empty=True)
mesh = bpy.data.meshes.new("figure")
mesh.from_pydata(spec["nodes"], spec["edges"], [])
obj = bpy.data.objects.new("figure", mesh)
bpy.context.scene.collection.objects.link(obj)
bpy.context.view_layer.objects.active = obj
skin = obj.modifiers.new("skin", "SKIN")
skin.branch_smoothing = 0.5
layer = mesh.skin_vertices[0].data
for i, radius in enumerate(spec["radii"]):
    layer[i].radius = radius
    layer[i].use_root = i == 0
obj.modifiers.new("smooth", "SUBSURF").levels = spec["subdivisions"]
bpy.context.view_layer.update()
evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
evaluated.calc_loop_triangles()
co = np.empty(len(evaluated.vertices) * 3); evaluated.vertices.foreach_get("co", co)
tris = np.empty(len(evaluated.loop_triangles) * 3, dtype=np.int64)
evaluated.loop_triangles.foreach_get("vertices", tris)
np.savez(sys.argv[2], vertices=co.reshape(-1, 3), faces=tris.reshape(-1, 3))
'''


def make_skin_humanoid(body: Body, work_dir, subdivisions: int = 2) -> Humanoid:
    """The same build as make_humanoid, grown from a stick figure by Blender's Skin modifier instead.

    The figure's nodes are the true joints; a ball node splits each foot. Needs bpy (run in a subprocess).
    """
    import json
    import subprocess
    import sys
    from pathlib import Path

    import trimesh

    H, g = body.height, body.girth
    joints, ends = humanoid_joints(body)
    nodes, radii, edges, index = [], [], [], {}

    def node(name, point, rx, ry=None):
        index[name] = len(nodes)
        nodes.append([float(c) for c in point])
        radii.append([float(rx), float(ry if ry is not None else rx)])

    def edge(a, b):
        edges.append([index[a], index[b]])

    shoulder_z = body.shoulder_share * H
    node("pelvis", joints["pelvis"], body.hip_half * H + 0.02 * H * g, 0.065 * H * g)
    node("waist", (0, 0, 0.5 * (joints["pelvis"][2] + shoulder_z)), 0.085 * H * g, 0.058 * H * g)
    node("chest", (0, 0, shoulder_z - 0.06 * H), 0.095 * H * g, 0.065 * H * g)
    node("neck_01", joints["neck_01"], 0.034 * H * g)
    node("head", joints["head"], 0.032 * H * g)
    node("head_centre", ends["head_centre"], 0.05 * H, 0.058 * H)
    node("head_top", ends["head_top"] - [0, 0, 0.025 * H], 0.03 * H)
    for a, b in (("pelvis", "waist"), ("waist", "chest"), ("chest", "neck_01"), ("neck_01", "head"),
                 ("head", "head_centre"), ("head_centre", "head_top")):
        edge(a, b)
    for side in ("l", "r"):
        node(f"thigh_{side}", joints[f"thigh_{side}"], 0.05 * H * g)
        node(f"calf_{side}", joints[f"calf_{side}"], 0.034 * H * g)
        node(f"foot_{side}", joints[f"foot_{side}"], 0.024 * H * g)
        node(f"ball_{side}", joints[f"ball_{side}"], 0.022 * H * g, 0.02 * H * g)
        node(f"toe_{side}", ends[f"toe_{side}"], 0.016 * H * g)
        node(f"upperarm_{side}", joints[f"upperarm_{side}"], 0.032 * H * g)
        node(f"lowerarm_{side}", joints[f"lowerarm_{side}"], 0.025 * H * g)
        node(f"hand_{side}", joints[f"hand_{side}"], 0.018 * H * g)
        node(f"hand_tip_{side}", ends[f"hand_tip_{side}"], 0.012 * H, 0.02 * H)
        for a, b in (("pelvis", "thigh"), ("thigh", "calf"), ("calf", "foot"), ("foot", "ball"), ("ball", "toe"),
                     ("neck_01", "upperarm"), ("upperarm", "lowerarm"), ("lowerarm", "hand"),
                     ("hand", "hand_tip")):
            edge(a if a in ("pelvis", "neck_01") else f"{a}_{side}", f"{b}_{side}")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    spec_path, out_path = work / "figure.json", work / "figure.npz"
    spec_path.write_text(json.dumps({"nodes": nodes, "radii": radii, "edges": edges, "subdivisions": subdivisions}))
    proc = subprocess.run([sys.executable, "-c", _SKIN_SCRIPT, str(spec_path), str(out_path)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"Blender's Skin modifier failed: {proc.stderr[-2000:]}")
    with np.load(out_path) as data:
        mesh = trimesh.Trimesh(data["vertices"], data["faces"], process=True)
    floor = float(mesh.vertices[:, 2].min())
    mesh.apply_translation((0.0, 0.0, -floor))
    shift = np.array([0.0, 0.0, floor])
    return Humanoid(body, MeshArrays(np.asarray(mesh.vertices), np.asarray(mesh.faces)),
                    {k: v - shift for k, v in joints.items()}, {k: v - shift for k, v in ends.items()})

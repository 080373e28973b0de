"""Make-It-Animatable (Guo et al., CVPR 2025): a humanoid in any pose to 52 Mixamo joints and skin weights, handed
back as the UE5 Mannequin's bones (server/rigging/models/mixamo.py) bound in the mesh's own pose.

Upstream (vendor/make_it_animatable.toml pins the commit) has no package: its app.py builds three PCAE networks
from model.py (joints_coarse, bw, joints; the pose network is not needed to bind in the mesh's pose) and loads
each with PCAE.load(path). Its inference, which this module follows with its own code: the mesh in Mixamo's frame
(Y up, facing +Z, the character's left on +X) is sampled at 32768 surface points, scaled into [-1, 1] by the
points' box; the coarse network finds the joints; the body is moved to the hips (Hips at the origin, the hips'
normal on +Z, RightUpLeg -> LeftUpLeg on +X) and sampled again, half of the points near the two hands (boxes of
0.15 of the mesh's span around the hands' tails), scaled so the farthest coordinate is 1; the bw network weighs
every mesh vertex (queries, 100000 at a time) and the joints network gives heads and tails (52, 6). Here those are
taken back to Blender axes, cleared of impossible influences (a left limb's vertex keeps nothing of the right
limbs, an arm's nothing of the legs), renamed to the Mannequin's bones and pruned.

Importing upstream's model.py imports util/dataset_mixamo.py, which builds the Mixamo kinematic tree from
data/Mixamo/bones.fbx with Blender (bpy) at import time, and util/utils.py, which imports pytorch3d: both are
required here although the adapter does not call them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ... import gpu
from ...errors import ForgeError
from ...generators.base import to_numpy
from ...generators.modelhost import MODEL_HOST
from ..rig import RigResult
from . import mixamo
from .common import (
    ModelRigOptions,
    RunHooks,
    Upstream,
    checked_mesh,
    device,
    find_upstream,
    influences,
    local_file,
    model_options,
    nearest_bone,
    upstream_on_path,
)

NAME = "make_it_animatable"
TITLE = "Make-It-Animatable (humanoids in any pose; Mixamo joints renamed to the UE5 Mannequin's)"
UPSTREAM = "jasongzy/Make-It-Animatable"
MANIFEST = "vendor/make_it_animatable.toml"
SOURCE_ENV = "O3F_MIA_SOURCE"
DEFAULT_FOLDER = "make_it_animatable"  # at the Space bundle's root, beside server/
SOURCE_MARKERS = ("model.py", "models_ae.py", "util/dataset_mixamo.py", "util/utils.py")
MODULES = ("model", "models_ae", "util")  # upstream's top-level names
TEMPLATE = "data/Mixamo/bones.fbx"  # util/dataset_mixamo.py's TEMPLATE_PATH, read with bpy on import
TEMPLATE_REPO = "jasongzy/Mixamo"  # a Hugging Face dataset (gated: accept its terms)
WEIGHTS_ENV = "O3F_MIA_WEIGHTS"
REPO = "jasongzy/Make-It-Animatable"
CHECKPOINTS = {"coarse": "output/best/new/joints_coarse.pth", "bw": "output/best/new/bw.pth",
               "joints": "output/best/new/joints.pth"}
LIBRARIES = (
    ("torch", "PyTorch"),
    ("einops", "pip install einops"),
    ("timm", "pip install timm"),
    ("torch_cluster", "a compiled extension: PyG's torch-cluster wheel for this torch and CUDA"),
    ("pytorch3d", "a compiled extension: a pytorch3d wheel for this torch and CUDA"),
    ("bpy", "Blender as a Python module: upstream reads its Mixamo skeleton template with it on import"),
)
POINTS = 32768           # app.py's N: the networks' point count (PCAE.fps asserts it)
HANDS_SHARE = 0.5        # hands_resample_ratio = the hierarchical_ratio of the bw and joints networks
HAND_BOX = 0.15          # sample_mesh's attn_rel_radius: the box side as a share of the mesh's span
QUERY_CHUNK = 100_000    # app.py's CHUNK: mesh vertices weighed at a time
DEFAULT_SEED = 0         # upstream's fix_random()
# Blender (x, y, z) -> Mixamo's frame (x, z, -y): Z up becomes Y up, facing -Y becomes facing +Z; a rotation.
TO_MODEL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
# GPU seconds, not measured: the paper reports under a second per character on an A100; the margins cover the
# attention over 32768 points, and weighing large meshes grows with their vertex count.
COARSE_S = 2.0
MAIN_S = 4.0
MAIN_S_PER_100K_VERTICES = 2.0


@dataclass(frozen=True)
class Networks:
    coarse: object
    bw: object
    joints: object
    device: str


@dataclass(frozen=True)
class Job:
    """A GPU call's input: picklable CPU data only (ZeroGPU runs the call in another process)."""

    source: str
    files: tuple[tuple[str, str], ...]  # (role, local file or hub:path)
    device: str
    points: np.ndarray                 # (POINTS, 3) float32 in the networks' frame
    queries: np.ndarray | None         # (n, 3) float32 mesh vertices in the same frame, for the bw network
    seed: int

    @property
    def key(self) -> str:
        return f"{NAME}:{self.source}:{':'.join(path for _, path in self.files)}"


def load_networks(source: str, files: tuple[tuple[str, str], ...], device_name: str) -> Networks:
    """The three PCAE networks as upstream's app.py builds and loads them."""
    upstream_on_path(Path(source), MODULES)
    from model import PCAE
    from util.dataset_mixamo import BONES_IDX_DICT, JOINTS_NUM, KINEMATIC_TREE

    order = [name.removeprefix(mixamo.PREFIX) for name in BONES_IDX_DICT]
    if tuple(order) != mixamo.JOINTS:
        raise ForgeError("Make-It-Animatable's joint order differs from the one this adapter maps to the UE5 "
                         "Mannequin: check the source against vendor/make_it_animatable.toml's pin")
    paths = {role: local_file(REPO, where) for role, where in files}
    coarse = PCAE(N=POINTS, input_normal=False, deterministic=True, output_dim=JOINTS_NUM, predict_bw=False,
                  predict_joints=True, predict_joints_tail=True)
    bw = PCAE(N=POINTS, input_normal=False, deterministic=True, hierarchical_ratio=HANDS_SHARE,
              output_dim=JOINTS_NUM)
    joints = PCAE(N=POINTS, input_normal=False, deterministic=True, hierarchical_ratio=HANDS_SHARE,
                  output_dim=JOINTS_NUM, kinematic_tree=KINEMATIC_TREE, predict_bw=False, predict_joints=True,
                  predict_joints_tail=True, joints_attn_causal=True)
    networks = []
    for role, network in (("coarse", coarse), ("bw", bw), ("joints", joints)):
        network.load(paths[role])
        networks.append(network.to(device_name).eval())
    return Networks(*networks, device_name)


def networks_for(job: Job) -> Networks:
    return MODEL_HOST.get(job.key, partial(load_networks, job.source, job.files, job.device))


def weights_device(network):
    """The device a network's weights are on (as app.py asks it: next(model.parameters()).device)."""
    return next(network.parameters()).device


def coarse_seconds(job: Job) -> float:
    return gpu.START_UP_S + COARSE_S


def main_seconds(job: Job) -> float:
    count = 0 if job.queries is None else len(job.queries)
    return gpu.START_UP_S + MAIN_S + MAIN_S_PER_100K_VERTICES * count / 1e5


def estimate_seconds(vertex_count: int) -> float:
    """Both GPU calls of one rig, for the quota check before any work."""
    return 2 * gpu.START_UP_S + COARSE_S + MAIN_S + MAIN_S_PER_100K_VERTICES * vertex_count / 1e5


@gpu.gpu_task(duration=coarse_seconds)
def coarse_joints(job: Job) -> tuple[np.ndarray, float]:
    """The coarse network's joints (52, 6: heads then tails) for the normalised points, and seconds taken."""
    import torch

    started = time.perf_counter()
    networks = networks_for(job)
    torch.manual_seed(job.seed)
    with torch.no_grad():
        points = torch.from_numpy(job.points).unsqueeze(0).to(weights_device(networks.coarse))
        joints = networks.coarse(points).joints
    return to_numpy(joints)[0].astype(np.float64), time.perf_counter() - started


@gpu.gpu_task(duration=main_seconds)
def weights_and_joints(job: Job) -> tuple[np.ndarray, np.ndarray, float]:
    """The bw network's weights for every query (n, 52) and the joints network's heads and tails (52, 6)."""
    import torch

    started = time.perf_counter()
    networks = networks_for(job)
    torch.manual_seed(job.seed)
    with torch.no_grad():
        points = torch.from_numpy(job.points).unsqueeze(0).to(weights_device(networks.bw))
        parts = []
        for begin in range(0, len(job.queries), QUERY_CHUNK):
            chunk = torch.from_numpy(job.queries[begin:begin + QUERY_CHUNK]).unsqueeze(0).to(points.device)
            parts.append(to_numpy(networks.bw(points, chunk).bw)[0])
        joints = to_numpy(networks.joints(points.to(weights_device(networks.joints))).joints)[0]
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return np.concatenate(parts).astype(np.float64), joints.astype(np.float64), time.perf_counter() - started


# The frames between Blender and the networks.


@dataclass(frozen=True)
class Frame:
    """p_net = scale_2 * rotation @ (scale_1 * (TO_MODEL @ p - centre) - hips): Blender to the networks' frame."""

    centre: np.ndarray
    scale_1: float
    hips: np.ndarray
    rotation: np.ndarray
    scale_2: float

    def to_blender(self, points: np.ndarray) -> np.ndarray:
        hipped = np.asarray(points, np.float64) / self.scale_2 @ self.rotation + self.hips
        return (hipped / self.scale_1 + self.centre) @ TO_MODEL


def surface_points(vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` points spread over the triangles by area."""
    corners = vertices[faces]
    areas = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    if not areas.sum() > 0:
        raise ForgeError("Make-It-Animatable needs a surface with area to sample")
    chosen = rng.choice(len(faces), size=count, p=areas / areas.sum())
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    tri = corners[chosen]
    return tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0])


def box_normalised(points: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, scale) that put the points' box centred in [-1, 1] along its longest side."""
    low, high = points.min(axis=0), points.max(axis=0)
    return (low + high) / 2, 2.0 / float((high - low).max())


def hips_rotation(hips: np.ndarray, right_up_leg: np.ndarray, left_up_leg: np.ndarray) -> np.ndarray:
    """Rows x, y, z of the hips' frame: z along (RightUpLeg - Hips) x (LeftUpLeg - Hips), x along RightUpLeg ->
    LeftUpLeg made perpendicular to it (upstream's get_hips_transform, which also moves Hips to the origin)."""
    normal = np.cross(right_up_leg - hips, left_up_leg - hips)
    if not np.linalg.norm(normal) > 1e-9:
        raise ForgeError("Make-It-Animatable put both hip joints in line with the pelvis: no body frame; is this "
                         "a humanoid?")
    z = normal / np.linalg.norm(normal)
    across = left_up_leg - right_up_leg
    x = across - (across @ z) * z
    x = x / max(float(np.linalg.norm(x)), 1e-12)
    return np.vstack([x, np.cross(z, x), z])


def hands_points(vertices: np.ndarray, faces: np.ndarray, centres: list[np.ndarray], count: int,
                 rng: np.random.Generator) -> np.ndarray:
    """`count` points, shared between the boxes around the hands (faces whose centre lies in a box of HAND_BOX of
    the mesh's span), made up from the whole surface where a box holds no surface."""
    side = HAND_BOX * float(vertices.max() - vertices.min())
    centroids = vertices[faces].mean(axis=1)
    shares = [count // len(centres)] * (len(centres) - 1)
    shares.append(count - sum(shares))
    parts = []
    for centre, share in zip(centres, shares):
        inside = np.all(np.abs(centroids - centre) <= side / 2, axis=1)
        if inside.any():
            parts.append(surface_points(vertices, faces[inside], share, rng))
    found = sum(len(part) for part in parts)
    if found < count:
        parts.append(surface_points(vertices, faces, count - found, rng))
    return np.concatenate(parts)


UPSTREAM_PLACES = Upstream(SOURCE_ENV, DEFAULT_FOLDER, SOURCE_MARKERS, UPSTREAM, MANIFEST, LIBRARIES, WEIGHTS_ENV,
                           REPO, CHECKPOINTS)


def _template_problem(source: Path) -> str | None:
    if (source / TEMPLATE).is_file():
        return None
    return (f"the Mixamo skeleton template {TEMPLATE} is missing from {source} (from the Hugging Face dataset "
            f"{TEMPLATE_REPO}, gated: accept its terms and download bones.fbx)")


class MakeItAnimatable:
    """The rig method 'make_it_animatable'."""

    name = NAME
    title = TITLE
    skeletons = ("ue5_mannequin",)
    uses_gpu = True

    def _ready(self) -> tuple[Path | None, dict[str, str] | None, str]:
        return find_upstream(UPSTREAM_PLACES, checkout_problem=_template_problem)

    def availability(self) -> tuple[bool, str]:
        source, _, reason = self._ready()
        if source is None:
            return False, reason
        return True, f"Make-It-Animatable on {device()}: {reason}; humanoids in any pose, bound in their own pose"

    def check_options(self, options) -> ModelRigOptions:
        return model_options(options, NAME, self.skeletons, DEFAULT_SEED)

    def gpu_estimate(self, mesh, options) -> float:
        self.check_options(options)
        return estimate_seconds(len(checked_mesh(mesh).vertices))

    def preload(self) -> str:
        """Load the networks now (a Space serving this method calls it at start-up, outside any GPU call)."""
        source, files, reason = self._ready()
        if source is None:
            raise ForgeError(f"Make-It-Animatable cannot run: {reason}")
        job = Job(str(source), tuple(files.items()), device(), np.zeros((0, 3), np.float32), None, DEFAULT_SEED)
        MODEL_HOST.pin(job.key, partial(load_networks, job.source, job.files, job.device))
        return "Make-It-Animatable loaded"

    def rig(self, mesh, options=None, hooks: RunHooks | None = None) -> RigResult:
        """Skeleton and weights for the mesh (Blender axes, metres, facing -Y), as the UE5 Mannequin's bones."""
        hooks = hooks or RunHooks()
        started = time.perf_counter()
        opts = self.check_options(options)
        mesh = checked_mesh(mesh)
        source, files, reason = self._ready()
        if source is None:
            raise ForgeError(f"Make-It-Animatable cannot run: {reason}")
        vertices = np.asarray(mesh.vertices, np.float64)
        faces = np.asarray(mesh.faces, np.int64)
        rng = np.random.default_rng(opts.seed)
        model_vertices = vertices @ TO_MODEL.T
        points = surface_points(model_vertices, faces, POINTS, rng)
        centre, scale_1 = box_normalised(points)
        base = Job(str(source), tuple(files.items()), device(), None, None, opts.seed)
        with MODEL_HOST.lease():
            hooks.progress(0.05, "loading Make-It-Animatable")
            networks_for(base)  # outside the GPU calls: ZeroGPU keeps the weights in the parent process
            hooks.check_cancelled()
            hooks.progress(0.2, "finding the joints roughly")
            coarse, coarse_s = coarse_joints(_with(base, points=((points - centre) * scale_1).astype(np.float32)))
            hooks.check_cancelled()
            index = mixamo.INDEX
            hips = coarse[index["Hips"], :3]
            rotation = hips_rotation(hips, coarse[index["RightUpLeg"], :3], coarse[index["LeftUpLeg"], :3])
            hipped = ((model_vertices - centre) * scale_1 - hips) @ rotation.T
            hands = [(coarse[index[f"{side}Hand"], 3:] - hips) @ rotation.T for side in ("Left", "Right")]
            main = POINTS - int(POINTS * HANDS_SHARE)
            resampled = np.concatenate([surface_points(hipped, faces, main, rng),
                                        hands_points(hipped, faces, hands, POINTS - main, rng)])
            scale_2 = 1.0 / float(np.abs(resampled).max())
            hooks.progress(0.45, "weighing every vertex and placing the 52 joints")
            weights, joints, main_s = weights_and_joints(_with(
                base, points=(resampled * scale_2).astype(np.float32),
                queries=(hipped * scale_2).astype(np.float32)))
        hooks.check_cancelled()
        frame = Frame(centre, scale_1, hips, rotation, scale_2)
        heads, tails = frame.to_blender(joints[:, :3]), frame.to_blender(joints[:, 3:])
        weights = mixamo.exclusive(weights)
        if not opts.fingers:
            weights = mixamo.merged_fingers(weights)
        names, parents, bone_heads, bone_tails, up, deform, dense = mixamo.to_mannequin(
            heads, tails, weights, vertices, opts.fingers, float(vertices[:, 2].min()))
        fallback = nearest_bone(vertices, bone_heads, bone_tails, deform)
        bones, bone_weights = influences(dense * deform, opts.max_influences, fallback)
        gpu_seconds = coarse_s + main_s
        report = {
            "method": NAME,
            "skeleton": opts.skeleton,
            "model": REPO,
            "bind_pose": "the mesh's own pose (the pose network that would reset it to a T-pose is not run)",
            "bones": len(names),
            "deform_bones": int(deform.sum()),
            "vertices": int(len(vertices)),
            "max_influences": opts.max_influences,
            "fingers": opts.fingers,
            "seed": opts.seed,
            "device": base.device,
            "gpu_seconds": round(float(gpu_seconds), 3),
            "gpu_estimate_s": round(estimate_seconds(len(vertices)), 3),
            "seconds": {"total": round(time.perf_counter() - started, 3)},
            "mixamo_joints": {name: [round(float(c), 5) for c in heads[i]] for i, name in enumerate(mixamo.JOINTS)},
            "joints": {name: [round(float(c), 5) for c in bone_heads[i]] for i, name in enumerate(names)},
        }
        hooks.progress(1.0, f"{len(names)} bones")
        return RigResult(names, parents, bone_heads, bone_tails, up, deform, bones, bone_weights, report)


def _with(job: Job, **changes) -> Job:
    values = {**job.__dict__, **changes}
    return Job(**values)

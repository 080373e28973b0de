"""UniRig (Zhang et al., SIGGRAPH 2025): any creature to a skeleton of its own (generic bone names) and skin
weights, in two steps, as upstream's launch scripts run them.

Upstream (vendor/unirig.toml pins the commit) has no package. Its run.py reads YAML configs and calls, for a mesh
already extracted to RawData in Blender's world axes (Z up; src/data/extract.py imports with Blender): Asset
.from_raw_data, transform_asset (normalise into [-1, 1] by the box's centre and longest side, sample points),
ModelInput, the model's _process_fn and torch's default_collate, then model.predict_step. The skeleton model
(get_model with the OPT-350m based UniRigAR and its tokenizer) generates the bones autoregressively; the skin
model (UniRigSkin) weighs sampled points for those bones, and src/system/skin.py's reskin carries the weights to
the mesh's vertices. This module makes the RawData from our mesh (already Blender axes), calls those pieces, and
takes the joints back out of the normalised cube as upstream's merge.py does (times half the longest side, plus
the box's centre). Lightning's Trainer is not used: the checkpoints' state_dict is loaded into the model without
the system's "model." prefix, and bf16 autocast stands in for its "bf16-mixed" precision.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import trimesh

from ... import gpu
from ...errors import ForgeError, InputError
from ...generators.base import DOWNLOAD_ENV, cached_on_hub, to_numpy
from ...generators.modelhost import MODEL_HOST
from ..rig import RigResult
from .common import (
    FRONT,
    ModelRigOptions,
    RunHooks,
    Upstream,
    checked_mesh,
    device,
    find_upstream,
    influences,
    lean,
    local_file,
    model_options,
    nearest_bone,
    sound_tails,
    upstream_on_path,
)

NAME = "unirig"
TITLE = "UniRig (any creature; its own skeleton with generic bone names)"
UPSTREAM = "VAST-AI-Research/UniRig"
MANIFEST = "vendor/unirig.toml"
SOURCE_ENV = "O3F_UNIRIG_SOURCE"
DEFAULT_FOLDER = "unirig"  # at the Space bundle's root, beside server/
SKELETON_TASK = "configs/task/quick_inference_skeleton_articulationxl_ar_256.yaml"
SKIN_TASK = "configs/task/quick_inference_unirig_skin.yaml"
SOURCE_MARKERS = ("src/model/unirig_ar.py", "src/model/unirig_skin.py", "src/data/transform.py", "src/system/skin.py",
                  SKELETON_TASK, SKIN_TASK)
MODULES = ("src",)
WEIGHTS_ENV = "O3F_UNIRIG_WEIGHTS"
REPO = "VAST-AI/UniRig"
# src/inference/download.py maps the tasks' resume_from_checkpoint to these paths in VAST-AI/UniRig.
CHECKPOINTS = {"skeleton": "skeleton/articulation-xl_quantization_256/model.ckpt",
               "skin": "skin/articulation-xl/model.ckpt"}
LIBRARIES = (
    ("torch", "PyTorch"),
    ("lightning", "pip install lightning"),
    ("transformers", "pip install transformers"),
    ("box", "pip install python-box: upstream reads its configs with it"),
    ("addict", "pip install addict"),
    ("timm", "pip install timm"),
    ("einops", "pip install einops"),
    ("flash_attn", "a compiled extension: a flash-attn wheel for this torch and CUDA"),
    ("spconv", "a compiled extension: spconv for this CUDA (the skin model's point transformer)"),
    ("torch_scatter", "a compiled extension: PyG's torch-scatter wheel for this torch and CUDA"),
    ("pyrender", "pip install pyrender (the skin step's voxelisation; it renders with EGL)"),
    ("yaml", "pip install PyYAML"),
)
CLS = "inference"     # what upstream's Datapath calls a file given on the command line
LABEL = "open3dforge"  # the asset's path: upstream names output folders with it; nothing is written here
DEFAULT_SEED = 12345  # launch/inference/generate_skeleton.sh
CONFIG_PREFIX = "./configs/"  # upstream's configs name other configs relative to the checkout
# GPU seconds, not measured: the skeleton is sampled with 15 beams for up to 2048 tokens by a 350M-parameter
# decoder; the skin model weighs 32768 points once.
SKELETON_S = 40.0
SKIN_S = 10.0


class AttrConfig(dict):
    """A YAML mapping read with attribute access, nested mappings alike (what python-box gives upstream's run.py)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _config(value, source: Path):
    if isinstance(value, dict):
        return AttrConfig({key: _config(item, source) for key, item in value.items()})
    if isinstance(value, list):
        return [_config(item, source) for item in value]
    if isinstance(value, str) and value.startswith(CONFIG_PREFIX):
        return str(source / value[2:])  # run.py runs in the checkout; the server does not change its folder
    return value


def read_config(source: Path, relative: str) -> AttrConfig:
    import yaml

    path = source / relative
    if not path.is_file():
        raise ForgeError(f"UniRig's config {relative} is missing from {source}: check it against vendor/unirig.toml")
    with open(path, encoding="utf-8") as handle:
        try:
            return _config(yaml.safe_load(handle), source)
        except yaml.YAMLError as exc:
            raise ForgeError(f"UniRig's config {relative} does not read as YAML ({exc})") from exc


@dataclass(frozen=True)
class StageConfigs:
    """One step's configs as run.py gathers them from its task file."""

    task: AttrConfig
    transform: AttrConfig
    model: AttrConfig
    tokenizer: AttrConfig | None
    system: AttrConfig | None


@lru_cache(maxsize=4)
def stage_configs(source: str, task_file: str) -> StageConfigs:
    root = Path(source)
    task = read_config(root, task_file)
    parts = task.components

    def component(kind: str) -> AttrConfig | None:
        name = parts.get(kind)
        return None if name is None else read_config(root, f"configs/{kind}/{str(name).removesuffix('.yaml')}.yaml")

    return StageConfigs(task, component("transform"), component("model"), component("tokenizer"), component("system"))


def load_model(source: str, task_file: str, checkpoint: str, device_name: str):
    """The step's model as run.py builds it (tokenizer first for the skeleton), with the checkpoint's weights."""
    import torch

    upstream_on_path(Path(source), MODULES)
    from src.model.parse import get_model

    configs = stage_configs(source, task_file)
    tokenizer = None
    if configs.tokenizer is not None:
        from src.tokenizer.parse import get_tokenizer
        from src.tokenizer.spec import TokenizerConfig

        tokenizer = get_tokenizer(config=TokenizerConfig.parse(config=configs.tokenizer))
    model = get_model(tokenizer=tokenizer, **configs.model)
    state = torch.load(local_file(REPO, checkpoint), map_location="cpu", weights_only=False)["state_dict"]
    prefix = "model."  # the Lightning system holds the model as .model
    model.load_state_dict({key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)},
                          strict=True)
    return model.to(device_name).eval()


@dataclass(frozen=True)
class Job:
    """A GPU call's input: picklable CPU data only (ZeroGPU runs the call in another process)."""

    source: str
    task_file: str
    checkpoint: str
    device: str
    batch: dict | None
    seed: int
    generate_kwargs: tuple[tuple[str, object], ...] = ()

    @property
    def key(self) -> str:
        return f"{NAME}:{self.task_file}:{self.source}:{self.checkpoint}"


def model_for(job: Job):
    return MODEL_HOST.get(job.key, partial(load_model, job.source, job.task_file, job.checkpoint, job.device))


def skeleton_seconds(job: Job) -> float:
    return gpu.START_UP_S + SKELETON_S


def skin_seconds(job: Job) -> float:
    return gpu.START_UP_S + SKIN_S


def estimate_seconds() -> float:
    """Both GPU calls of one rig, for the quota check before any work."""
    return 2 * gpu.START_UP_S + SKELETON_S + SKIN_S


def _predict(job: Job):
    """model.predict_step on the job's batch on the model's device, seeded, under bf16 autocast on CUDA."""
    import torch

    model = model_for(job)
    random.seed(job.seed)
    np.random.seed(job.seed)
    torch.manual_seed(job.seed)
    on = next(model.parameters()).device
    batch = {key: value.to(on) if isinstance(value, torch.Tensor) else value for key, value in job.batch.items()}
    if job.generate_kwargs:
        batch["generate_kwargs"] = dict(job.generate_kwargs)
    if on.type == "cuda":
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            return model.predict_step(batch)
    return model.predict_step(batch)


@gpu.gpu_task(duration=skeleton_seconds)
def generate_skeleton(job: Job) -> tuple[dict, float]:
    """The skeleton model's bones for the normalised mesh: joints and tails in [-1, 1], parents, names."""
    started = time.perf_counter()
    outputs = _predict(job)
    if not outputs:
        raise ForgeError("UniRig generated no skeleton for this mesh; try another seed")
    bones = outputs[0]
    tails = getattr(bones, "tails", None)
    names = getattr(bones, "names", None)
    result = {"joints": np.asarray(bones.joints, np.float64),
              "tails": None if tails is None else np.asarray(tails, np.float64),
              "parents": list(bones.parents), "names": None if names is None else [str(n) for n in names]}
    return result, time.perf_counter() - started


@gpu.gpu_task(duration=skin_seconds)
def predict_skin(job: Job) -> tuple[np.ndarray, float]:
    """The skin model's weights (sampled points, bones) for the step's batch."""
    import torch

    started = time.perf_counter()
    with torch.no_grad():
        skin = _predict(job)[0]
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return to_numpy(skin).astype(np.float32), time.perf_counter() - started


def cube(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, half of the longest side): upstream's normalisation into [-1, 1] and merge.py's way back."""
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    return (low + high) / 2, float((high - low).max()) / 2


def skeleton_from(bones: dict, centre: np.ndarray, half: float):
    """(names, parents, heads, tails) in Blender axes from the skeleton step's bones."""
    joints = np.asarray(bones["joints"], np.float64)
    count = len(joints)
    parents = [-1 if parent is None else int(parent) for parent in bones["parents"]]
    if len(parents) != count or parents.count(-1) != 1 or parents[0] != -1 \
            or any(not 0 <= p < i for i, p in enumerate(parents) if i):
        raise ForgeError(f"UniRig's skeleton is not one tree with parents before children (parents {parents})")
    names = bones["names"] or [f"bone_{i}" for i in range(count)]  # upstream's SkinWriter names them so
    if len(set(names)) != count:
        raise ForgeError(f"UniRig gave {count} bones but {len(set(names))} different names")
    heads = joints * half + centre
    tails = None if bones["tails"] is None else np.asarray(bones["tails"], np.float64) * half + centre
    children: dict[int, list[int]] = {}
    for i, parent in enumerate(parents):
        if parent >= 0:
            children.setdefault(parent, []).append(i)
    if tails is None:
        tails = heads.copy()
    for i in range(count):
        if len(children.get(i, [])) == 1:  # as the skin step's tail_config: connect_tail_to_unique_son
            tails[i] = heads[children[i][0]]
    return list(names), parents, heads, tails


UPSTREAM_PLACES = Upstream(SOURCE_ENV, DEFAULT_FOLDER, SOURCE_MARKERS, UPSTREAM, MANIFEST, LIBRARIES, WEIGHTS_ENV,
                           REPO, CHECKPOINTS)


def _configs_problem(source: Path) -> str | None:
    """Why the checkout's configs cannot serve: unreadable, or the transformer config they name is absent."""
    try:
        llm = stage_configs(str(source), SKELETON_TASK).model.llm.pretrained_model_name_or_path
    except (ForgeError, AttributeError, KeyError, TypeError, ValueError, OSError) as exc:
        return f"UniRig's configs in {source} do not read as the pinned commit's ({exc})"
    if not Path(str(llm)).is_dir() and not cached_on_hub(str(llm), "config.json") \
            and os.environ.get(DOWNLOAD_ENV) != "1":
        return (f"the skeleton model's transformer config {llm} (config.json) is not in the Hugging Face cache: "
                f"download it, or set {DOWNLOAD_ENV}=1")
    return None


class UniRig:
    """The rig method 'unirig'."""

    name = NAME
    title = TITLE
    skeletons = ("generic",)
    uses_gpu = True

    def _ready(self) -> tuple[Path | None, dict[str, str] | None, str]:
        return find_upstream(UPSTREAM_PLACES, ready_problem=_configs_problem)

    def availability(self) -> tuple[bool, str]:
        source, _, reason = self._ready()
        if source is None:
            return False, reason
        return True, f"UniRig on {device()}: {reason}; any creature, its own bone names"

    def check_options(self, options) -> ModelRigOptions:
        opts = model_options(options, NAME, self.skeletons, DEFAULT_SEED)
        if opts.fingers:
            raise InputError("options.fingers", True, "false for unirig (its skeleton has the bones it finds)")
        return opts

    def gpu_estimate(self, mesh, options) -> float:
        self.check_options(options)
        checked_mesh(mesh)
        return estimate_seconds()

    def preload(self) -> str:
        """Load both steps' models now (a Space serving this method calls it at start-up, outside any GPU call)."""
        source, files, reason = self._ready()
        if source is None:
            raise ForgeError(f"UniRig cannot run: {reason}")
        for task, role in ((SKELETON_TASK, "skeleton"), (SKIN_TASK, "skin")):
            job = Job(str(source), task, files[role], device(), None, DEFAULT_SEED)
            MODEL_HOST.pin(job.key, partial(load_model, job.source, job.task_file, job.checkpoint, job.device))
        return "UniRig loaded"

    def rig(self, mesh, options=None, hooks: RunHooks | None = None) -> RigResult:
        """UniRig's skeleton and weights for the mesh (Blender axes, metres), bone names its own."""
        hooks = hooks or RunHooks()
        started = time.perf_counter()
        opts = self.check_options(options)
        mesh = checked_mesh(mesh)
        source, files, reason = self._ready()
        if source is None:
            raise ForgeError(f"UniRig cannot run: {reason}")
        upstream_on_path(source, MODULES)
        from src.data.asset import Asset
        from src.data.raw_data import RawData
        from src.data.transform import TransformConfig, transform_asset
        from src.model.spec import ModelInput
        from src.system.skin import reskin
        from torch.utils.data import default_collate

        vertices = np.asarray(mesh.vertices, np.float64)
        faces = np.asarray(mesh.faces, np.int64)
        surface = trimesh.Trimesh(vertices, faces, process=False)
        normals = np.asarray(surface.vertex_normals, np.float32)
        face_normals = np.asarray(surface.face_normals, np.float32)
        skeleton = stage_configs(str(source), SKELETON_TASK)
        skin_configs = stage_configs(str(source), SKIN_TASK)
        dev = device()
        with MODEL_HOST.lease():
            hooks.progress(0.05, "loading UniRig's skeleton model")
            first = Job(str(source), SKELETON_TASK, files["skeleton"], dev, None, opts.seed,
                        tuple(dict(skeleton.system.generate_kwargs).items()))
            model = model_for(first)  # outside the GPU call: ZeroGPU keeps the weights in the parent process
            np.random.seed(opts.seed)  # transform_asset samples with NumPy's global generator
            raw = RawData(vertices=vertices.astype(np.float32), vertex_normals=normals, faces=faces,
                          face_normals=face_normals, joints=None, skin=None, parents=None, names=None,
                          matrix_local=None)
            asset = Asset.from_raw_data(raw_data=raw, cls=CLS, path=LABEL, data_name="raw_data.npz")
            transform_asset(asset=asset,
                            transform_config=TransformConfig.parse(config=skeleton.transform.predict_transform_config))
            tokenizer = getattr(model, "tokenizer", None)
            item = ModelInput(tokens=None, pad=None if tokenizer is None else tokenizer.pad,
                              vertices=asset.sampled_vertices.astype(np.float32),
                              normals=asset.sampled_normals.astype(np.float32), joints=None, tails=None, asset=asset,
                              augments=None)
            batch = default_collate(model._process_fn([item]))
            hooks.check_cancelled()
            hooks.progress(0.15, "generating the skeleton")
            bones, skeleton_s = generate_skeleton(_with(first, batch=batch))
            hooks.check_cancelled()
            centre, half = cube(vertices)
            names, parents, heads, tails = skeleton_from(bones, centre, half)
            size = float(np.linalg.norm(np.ptp(vertices, axis=0)))
            tails = sound_tails(heads, tails, parents, size)
            hooks.progress(0.6, f"weighing the mesh for {len(names)} bones")
            second = Job(str(source), SKIN_TASK, files["skin"], dev, None, opts.seed)
            skin_model = model_for(second)
            np.random.seed(opts.seed)
            raw = RawData(vertices=vertices.astype(np.float32), vertex_normals=normals, faces=faces,
                          face_normals=face_normals, joints=heads.astype(np.float32), tails=tails.astype(np.float32),
                          skin=None, parents=[None if p < 0 else p for p in parents], names=list(names),
                          matrix_local=None)
            asset = Asset.from_raw_data(raw_data=raw, cls=CLS, path=LABEL, data_name="predict_skeleton.npz")
            skin_transform = TransformConfig.parse(config=skin_configs.transform.predict_transform_config)
            transform_asset(asset=asset, transform_config=skin_transform)
            item = ModelInput(tokens=None, pad=None, vertices=asset.sampled_vertices.astype(np.float32),
                              normals=asset.sampled_normals.astype(np.float32),
                              joints=asset.joints.astype(np.float32), tails=asset.tails.astype(np.float32),
                              asset=asset, augments=None)
            batch = default_collate(skin_model._process_fn([item]))
            sampled_skin, skin_s = predict_skin(_with(second, batch=batch))
        hooks.check_cancelled()
        order = [names.index(name) for name in asset.names]  # the skin's columns follow the asset's bone order
        skin = reskin(sampled_vertices=to_numpy(batch["vertices"])[0], vertices=asset.vertices,
                      parents=list(asset.parents), faces=asset.faces, sampled_skin=sampled_skin,
                      sample_method="median", alpha=2.0, threshold=0.03)
        dense = np.zeros((len(vertices), len(names)))
        dense[:, order] = np.asarray(skin, np.float64)
        deform = np.ones(len(names), bool)
        fallback = nearest_bone(vertices, heads, tails, deform)
        bone_ids, weights = influences(dense, opts.max_influences, fallback)
        up = np.array([lean(tails[i] - heads[i], FRONT) for i in range(len(names))])
        gpu_seconds = skeleton_s + skin_s
        report = {
            "method": NAME,
            "skeleton": opts.skeleton,
            "model": REPO,
            "bones": len(names),
            "deform_bones": int(deform.sum()),
            "vertices": int(len(vertices)),
            "max_influences": opts.max_influences,
            "seed": opts.seed,
            "device": dev,
            "gpu_seconds": round(float(gpu_seconds), 3),
            "gpu_estimate_s": round(estimate_seconds(), 3),
            "seconds": {"total": round(time.perf_counter() - started, 3)},
            "joints": {name: [round(float(c), 5) for c in heads[i]] for i, name in enumerate(names)},
        }
        hooks.progress(1.0, f"{len(names)} bones")
        return RigResult(list(names), parents, heads, tails, up, deform, bone_ids, weights, report)


def _with(job: Job, **changes) -> Job:
    return Job(**{**job.__dict__, **changes})

"""SceneGen (Mengmouxu/SceneGen, 3DV 2026): each object's textured asset plus a position head that lays them out.

Upstream (vendor/scenegen.toml pins the commit): SceneGenImageToScenePipeline.from_pretrained(folder holding
pipeline.json and ckpts/), which also loads DINOv2 through torch.hub and VGGT-1B (named in pipeline.json), then
.cuda(). run_scene(image=[RGBA per object: its pixels opaque, the rest transparent], scene_image=the picture,
mask_image=[RGB per object, 255 on it], seed, sampler params, preprocess_image=True, resorted_indices=...,
simplify, texture_size) returns {'scene': trimesh.Scene, 'positions', 'assets': [textured trimesh per object]}.
Its batch script hands the objects largest mask first (the first is the query asset the head places the others
against) and resorted_indices puts the assets back in the caller's order.

Axes: each asset is TRELLIS's GLB output (its to_glb turns Z up into glTF's Y up), and the scene graph places
them (rotation, scale, translation) in one frame, normalised into [-1, 1], where one asset sits unturned: so
the frame is glTF-style and level (Y up), and (x, y, z) -> Blender (x, -z, y) stands it on Z. Nothing ties that
frame to the camera (the layout is predicted relative to the query asset), so frame.fit_frame finds the turn
about the vertical, the scale and the shift from the masks, from several starting turns.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from ... import gpu
from ...errors import ForgeError, InputError
from ...generators import attention
from ...generators.base import DOWNLOAD_ENV, cached_on_hub, runtime_problem, space_wheel, weights_source
from ...generators.modelhost import MODEL_HOST
from ..segment import SceneSegmentation
from .common import (
    SETTINGS_ARGUMENT,
    SceneModelResult,
    SceneRequest,
    blender_mesh,
    checked_request,
    known_keys,
    number,
    on_white,
    pil_rgb,
    whole,
)
from .frame import Y_UP_TO_BLENDER, Start, fit_frame, place_fitted

MODULE = "scenegen.pipelines"  # PyPI's 'scenegen' (0.1.2, 2020) is an unrelated project without .pipelines
REPO = "haoningwu/SceneGen"
WEIGHTS_ENV = "O3F_SCENEGEN_WEIGHTS"
MARKER = "pipeline.json"
MODEL_KEY = "scenegen"
# TRELLIS's stack: sparse convolutions, rasterisers for the texture bake, FlexiCubes' kaolin (attention:
# generators/attention.py).
COMPILED = (("spconv", "PyPI spconv-cu126, its sparse convolutions (SPCONV_ALGO=native)"),
            ("nvdiffrast", space_wheel("nvdiffrast")),
            ("diff_gaussian_rasterization", "mip-splatting's rasteriser, built from source (no Space wheel yet)"),
            ("kaolin", "NVIDIA kaolin built for this torch and CUDA (FlexiCubes imports it)"))
VGGT_REPO = "facebook/VGGT-1B"
VGGT_MARKER = "config.json"  # huggingface_hub's PyTorchModelHubMixin folder
DINO_DEFAULT = "dinov2_vitl14_reg"
# Where upstream looks for DINOv2's torch.hub code before fetching it from GitHub (hard-coded there).
DINO_CODE = Path("~/.cache/torch/hub/facebookresearch_dinov2_main")
# Its batch script's samplers (inference.py), with the steps as a setting.
DEFAULT_STEPS = 25
CFG_STRENGTH = 5.0
CFG_INTERVAL = [0.5, 1.0]
RESCALE_T = 3.0
DEFAULT_SIMPLIFY = 0.9  # share of triangles to_glb removes (upstream 0.95); post-processing decimates again
TEXTURE_SIZES = (512, 1024, 2048)
MAX_OBJECTS = 16  # not an upstream limit: one texture bake per object, and ZeroGPU's 300 s cap
SETTING_KEYS = ("steps", "cfg_strength", "simplify", "texture_size")
SCENEGEN_TO_BLENDER = Y_UP_TO_BLENDER
YAW_STARTS = tuple(Start(float(yaw), 0.0) for yaw in range(-180, 180, 45))
# GPU seconds, not measured: encoders (DINOv2, VGGT), both flow samplers per step and object, and to_glb's
# per-object texture bake from Gaussian renders.
ENCODE_S = 10.0
STEP_S_PER_OBJECT = 0.05
GLB_S_PER_OBJECT = 12.0


@dataclass(frozen=True)
class Inputs:
    """What run_scene reads, largest object first, and the order that gives the assets back as the caller's."""

    images: tuple[Image.Image, ...]  # RGBA, in the order handed over
    masks: tuple[Image.Image, ...]  # RGB, 255 on the object
    scene: Image.Image
    order: tuple[int, ...]  # order[k]: the caller's index of the k-th object handed over
    restore: tuple[int, ...]  # restore[i]: where the caller's object i was handed over (resorted_indices)


def model_inputs(rgba: np.ndarray, segmentation: SceneSegmentation) -> Inputs:
    """Per object its pixels opaque on transparent and its mask in RGB, as upstream's split_rgb_mask makes them; the
    picture itself (on white, where it was transparent); largest mask first, as its batch script orders them."""
    rgb = on_white(rgba)
    objects = segmentation.objects
    order = sorted(range(len(objects)), key=lambda i: (-int(objects[i].mask.sum()), i))
    restore = [0] * len(order)
    for position, index in enumerate(order):
        restore[index] = position
    images, masks = [], []
    for index in order:
        mask = objects[index].mask
        cut = np.zeros(rgb.shape[:2] + (4,), np.uint8)
        cut[mask, :3] = rgb[mask]
        cut[mask, 3] = 255
        images.append(Image.fromarray(cut, "RGBA"))
        masks.append(Image.fromarray(np.repeat(np.where(mask, 255, 0).astype(np.uint8)[..., None], 3, axis=2), "RGB"))
    return Inputs(tuple(images), tuple(masks), pil_rgb(rgb), tuple(order), tuple(restore))


def check_settings(settings) -> dict:
    settings = known_keys(settings, SETTING_KEYS)
    texture_size = settings.get("texture_size", 1024)
    if texture_size not in TEXTURE_SIZES or isinstance(texture_size, bool):
        raise InputError(f"{SETTINGS_ARGUMENT}.texture_size", texture_size,
                         f"one of {', '.join(map(str, TEXTURE_SIZES))}")
    return {"steps": whole(settings, "steps", DEFAULT_STEPS, 1, 100),
            "cfg_strength": number(settings, "cfg_strength", CFG_STRENGTH, 0.0, 20.0),
            "simplify": number(settings, "simplify", DEFAULT_SIMPLIFY, 0.0, 0.98), "texture_size": int(texture_size)}


def seconds_for(object_count: int, steps: int) -> float:
    return gpu.START_UP_S + ENCODE_S + 2 * steps * STEP_S_PER_OBJECT * object_count + GLB_S_PER_OBJECT * object_count


def sampler_params(plan: dict) -> dict:
    return {"steps": plan["steps"], "cfg_strength": plan["cfg_strength"], "cfg_interval": list(CFG_INTERVAL),
            "rescale_t": RESCALE_T}


@dataclass(frozen=True)
class SampleJob:
    """The GPU call's input: picklable CPU data only (ZeroGPU runs the call in another process)."""

    source: str
    inputs: Inputs
    seed: int
    plan: dict

    @property
    def key(self) -> str:
        return f"{MODEL_KEY}:{self.source}"


def load_pipeline(source: str):
    attention.prepare()
    from scenegen.pipelines import SceneGenImageToScenePipeline

    pipeline = SceneGenImageToScenePipeline.from_pretrained(source)
    pipeline.cuda()
    return pipeline


def sample_seconds(job: SampleJob) -> float:
    return seconds_for(len(job.inputs.images), job.plan["steps"])


def _colours(mesh) -> np.ndarray | None:
    """Per-vertex RGBA from a textured or vertex-coloured trimesh (the texture sampled at each vertex's UV)."""
    visual = getattr(mesh, "visual", None)
    if visual is None or visual.kind is None:
        return None
    if visual.kind == "texture":
        visual = visual.to_color()
    colours = np.asarray(visual.vertex_colors, np.uint8)
    return colours if colours.shape == (len(mesh.vertices), 4) else None


def read_scene(outputs: dict) -> list[dict]:
    """The one place that reads run_scene's result: per asset (the caller's order) its vertices, faces and colours
    in its own frame, and the 4x4 transform the scene graph gives it."""
    scene, assets = outputs["scene"], list(outputs["assets"])
    placements = {}
    for node in scene.graph.nodes_geometry:
        matrix, geometry = scene.graph[node]
        placements[id(scene.geometry[geometry])] = np.asarray(matrix, np.float64)
    out = []
    for index, asset in enumerate(assets):
        if id(asset) not in placements:
            raise ForgeError(f"SceneGen's scene does not place asset {index + 1}: its output format has changed")
        out.append({"vertices": np.asarray(asset.vertices, np.float64), "faces": np.asarray(asset.faces, np.int64),
                    "colors": _colours(asset), "transform": placements[id(asset)]})
    return out


@gpu.gpu_task(duration=sample_seconds)
def sample(job: SampleJob) -> tuple[list[dict], float]:
    """SceneGen's one pass: every asset and its place in the shared frame, as CPU arrays, and the seconds it took."""
    import torch

    started = time.perf_counter()
    pipeline = MODEL_HOST.get(job.key, partial(load_pipeline, job.source))
    params = sampler_params(job.plan)
    outputs = pipeline.run_scene(
        image=list(job.inputs.images), scene_image=job.inputs.scene, mask_image=list(job.inputs.masks),
        seed=job.seed, sparse_structure_sampler_params=dict(params), slat_sampler_params=dict(params),
        preprocess_image=True, resorted_indices=list(job.inputs.restore), simplify=job.plan["simplify"],
        texture_size=job.plan["texture_size"])
    assets = read_scene(outputs)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return assets, time.perf_counter() - started


def own_yaw_deg(matrix: np.ndarray) -> float:
    """The turn about the vertical that a scene-graph transform (glTF axes) gives its asset, in Blender's sense
    (about +Z, counter-clockwise seen from above)."""
    turn = SCENEGEN_TO_BLENDER @ np.asarray(matrix, np.float64)[:3, :3] @ SCENEGEN_TO_BLENDER.T
    return float(np.degrees(np.arctan2(turn[1, 0], turn[0, 0])))


def torch_hub_dir() -> Path:
    """torch.hub's folder, found as torch finds it ($TORCH_HOME/hub, else $XDG_CACHE_HOME or ~/.cache, /torch/hub)."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser() / "hub"
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "torch" / "hub"


def dino_checkpoint(name: str) -> str:
    """The file torch.hub stores for a DINOv2 backbone: registers versions are the 4-register checkpoints."""
    if name.endswith("_reg"):
        return f"{name}4_pretrain.pth"
    return f"{name}_pretrain.pth"


def _pipeline_args(source: str) -> dict:
    path = Path(source) / MARKER
    if not path.is_file():
        return {}  # a Hub id: read at load time
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("args", {}))
    except (OSError, ValueError, AttributeError):
        return {}


def vggt_problem(args: dict) -> str | None:
    """Why the VGGT weights pipeline.json names cannot load here, or None."""
    name = str(args.get("vggt_model", VGGT_REPO))
    if Path(name).expanduser().is_dir():
        if (Path(name).expanduser() / VGGT_MARKER).is_file():
            return None
        return f"VGGT weights folder {name} (named in SceneGen's pipeline.json) has no {VGGT_MARKER}"
    if name.count("/") == 1 and not name.startswith((".", "/")):
        if cached_on_hub(name, VGGT_MARKER) or os.environ.get(DOWNLOAD_ENV) == "1":
            return None
        return (f"VGGT weights {name} are not in the Hugging Face cache: download them or set {DOWNLOAD_ENV}=1 "
                "(licence: see vendor/scenegen.toml)")
    return (f"VGGT weights {name} (named in SceneGen's pipeline.json, relative to the working folder) are not "
            f"there: put {VGGT_REPO} there")


def dino_problem(args: dict) -> str | None:
    """Why DINOv2's torch.hub code or checkpoint is missing, or None."""
    if os.environ.get(DOWNLOAD_ENV) == "1":
        return None  # torch.hub fetches both from GitHub and Meta's server on first use
    name = str(args.get("image_cond_model", DINO_DEFAULT))
    code = DINO_CODE.expanduser()
    if not code.is_dir():
        return (f"DINOv2's torch.hub code is not in {DINO_CODE} (git clone facebookresearch/dinov2 there, or set "
                f"{DOWNLOAD_ENV}=1)")
    checkpoint = torch_hub_dir() / "checkpoints" / dino_checkpoint(name)
    if not checkpoint.is_file():
        return f"DINOv2 checkpoint {checkpoint.name} is not in torch.hub's checkpoints (or set {DOWNLOAD_ENV}=1)"
    return None


class SceneGenModel:
    """SceneGen: textured assets from TRELLIS's decoders and their layout from its position head, in one pass."""

    name = "scenegen"
    title = "SceneGen (SJTU)"
    module = "scenegen"
    max_objects = MAX_OBJECTS
    uses_gpu = True

    def availability(self) -> tuple[bool, str]:
        backend = attention.choose_backend()["backend"]  # before SceneGen (TRELLIS's modules) is imported
        problem = runtime_problem(MODULE, "SceneGen", "see vendor/scenegen.toml", COMPILED)
        if problem:
            return False, problem
        source, where = weights_source(WEIGHTS_ENV, REPO, MARKER)
        if source is None:
            return False, where
        args = _pipeline_args(source)
        problem = vggt_problem(args) or dino_problem(args)
        if problem:
            return False, problem
        return True, f"SceneGen on CUDA, {where}; attention: {backend}"

    def check_settings(self, settings) -> dict:
        return check_settings(settings)

    def gpu_estimate(self, object_count: int, settings) -> float:
        return seconds_for(object_count, check_settings(settings)["steps"])

    def _source(self) -> str:
        source, where = weights_source(WEIGHTS_ENV, REPO, MARKER)
        if source is None:
            raise ForgeError(f"SceneGen cannot run: {where}")
        return source

    def preload(self) -> str:
        """Pin the pipeline (a Space serving SceneGen calls this at start-up, outside any GPU call)."""
        source = self._source()
        MODEL_HOST.pin(f"{MODEL_KEY}:{source}", partial(load_pipeline, source))
        return "SceneGen loaded"

    def generate(self, request: SceneRequest) -> SceneModelResult:
        rgba, names = checked_request(request, self.name, self.max_objects)
        plan = check_settings(request.settings)
        objects = request.segmentation.objects
        inputs = model_inputs(rgba, request.segmentation)
        job = SampleJob(self._source(), inputs, int(request.seed), plan)
        with MODEL_HOST.lease():
            request.progress(0.05, "loading SceneGen")
            MODEL_HOST.get(job.key, partial(load_pipeline, job.source))  # outside the GPU call
            request.check_cancelled()
            request.progress(0.15, f"generating {len(objects)} assets and their layout ({plan['steps']} steps)")
            assets, seconds = sample(job)
        request.check_cancelled()
        if len(assets) != len(objects):
            raise ForgeError(f"SceneGen returned {len(assets)} assets for {len(objects)} objects")
        meshes, own_yaws = [], []
        for index, asset in enumerate(assets):
            if len(asset["faces"]) == 0:
                raise ForgeError(f"SceneGen made an empty asset for object {index + 1} ({names[index]}); try "
                                 "another seed")
            matrix = asset["transform"]
            in_scene = asset["vertices"] @ matrix[:3, :3].T + matrix[:3, 3]
            meshes.append(blender_mesh(in_scene, asset["faces"], SCENEGEN_TO_BLENDER, asset["colors"]))
            own_yaws.append(own_yaw_deg(matrix))
        request.progress(0.85, "fitting the layout to the picture's camera")
        fit = fit_frame(objects, [mesh.vertices for mesh in meshes], request.camera, starts=YAW_STARTS,
                        fit_yaw=True, fit_tilt=False)
        # Each asset keeps its own front (TRELLIS's canonical frame): the head's turn goes into its yaw.
        placed = place_fitted(objects, meshes, fit, request.camera, names=names, own_yaw_deg=own_yaws,
                              snap=request.snap_to_ground, resolve=request.resolve_overlaps)
        info = {"model": REPO, **plan, "seed": job.seed, "query_object": inputs.order[0] + 1,
                "gpu_seconds": round(float(seconds), 3), "frame": fit.as_dict(),
                "texture": f"SceneGen's baked texture, sampled per vertex ({plan['texture_size']} px)"}
        return SceneModelResult(self.name, placed, fit, info, list(fit.notes))

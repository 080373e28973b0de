"""MIDI-3D (VAST-AI-Research): the picture and its instance masks to one mesh per object, all in one shared frame.

Upstream (vendor/midi3d.toml pins the commit): MIDIPipeline.from_pretrained(folder or VAST-AI/MIDI-3D), moved to
the device, then init_custom_adapter(set_self_attn_module_names=blocks 8 to 12) turns those self-attention
layers into multi-instance attention, as its scripts do. A call takes three lists of equal length, one entry
per instance: `image` (the picture on white with only that instance's pixels), `mask` (mode L, 255 on the
instance) and `image_scene` (the whole picture), plus attention_kwargs={"num_instances": n}. With
decode_progressive=True and return_dict=False it returns (logits, grid_sizes, bbox_sizes, bbox_mins, bbox_maxs):
per instance a field on a regular grid whose zero level is the surface (meshed here with marching cubes after
upstream's own smoothing, midi.utils.smoothing.smooth_gpu).

Axes: MIDI writes these meshes into a GLB as they come, and its texturing script (scripts/
image_to_textured_scene.py) paints each one from the picture's view with MV-Adapter's front camera (azimuth
-90 after load_mesh maps the mesh's (x, y, z) to (x, -z, y)): so the frame is glTF-style, Y up, with the
picture's camera on +Z looking toward -Z, image right +X. (x, y, z) -> Blender (x, -z, y) puts that camera on
-Y looking +Y, like the scene's own camera. The frame has no metric scale, and it may be tipped with the
camera's pitch: frame.fit_frame finds the scale, shift and the small tilt and turn from the masks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial

import numpy as np
from PIL import Image

from ... import gpu
from ...errors import ForgeError
from ...generators.base import runtime_problem, weights_source
from ...generators.modelhost import MODEL_HOST
from ..segment import SceneSegmentation
from .common import (
    SceneModelResult,
    SceneRequest,
    blender_mesh,
    checked_request,
    known_keys,
    number,
    on_white,
    pil_mask,
    pil_rgb,
    whole,
)
from .frame import Y_UP_TO_BLENDER, Start, fit_frame, place_fitted

MODULE = "midi.pipelines.pipeline_midi"  # no pip package: the pinned source tree's midi/ folder
REPO = "VAST-AI/MIDI-3D"
WEIGHTS_ENV = "O3F_MIDI3D_WEIGHTS"
MARKER = "model_index.json"  # a diffusers pipeline folder
MODEL_KEY = "midi3d"
MI_BLOCKS = ("blocks.8", "blocks.9", "blocks.10", "blocks.11", "blocks.12")
# Its torch_cluster import (the VAE's farthest point sampling) is a compiled extension.
COMPILED = (("torch_cluster", "PyPI torch-cluster built for this torch and CUDA (PyG publishes wheels)"),)
DEFAULT_STEPS = 35  # its Gradio demo; scripts/inference_midi.py uses 50
DEFAULT_GUIDANCE = 7.0
SMOOTH_SIGMA = 1.0
MAX_OBJECTS = 16  # not an upstream limit: time and memory grow with the instances attending to each other
# Objects reaching further than this share of the side from the centre get a wider white margin (upstream
# advises padding when instances come close to the border).
REACH_SHARE = 0.8
SETTING_KEYS = ("steps", "guidance_scale")
MIDI_TO_BLENDER = Y_UP_TO_BLENDER
# GPU seconds, not measured: the paper's about 40 s for a scene, shared out per step and instance (classifier-free
# guidance doubles the batch), and each instance decoded twice on a 257^3 grid then meshed.
STEP_S = 0.3
STEP_S_PER_OBJECT = 0.12
DECODE_S_PER_OBJECT = 3.0


@dataclass(frozen=True)
class Inputs:
    """What MIDIPipeline.__call__ reads, on a square canvas, and where the picture sits on it."""

    images: tuple[Image.Image, ...]
    masks: tuple[Image.Image, ...]
    scene: Image.Image
    offset: tuple[int, int]  # (row, column) of the picture's top-left corner on the canvas
    side: int


def square_canvas(rgb: np.ndarray, masks: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray], tuple[int, int]]:
    """The picture centred on a white square (and the masks on an empty one): MIDI's image processors centre-crop
    to a square, which would cut a wide picture's sides. Widened when the objects reach near its border."""
    height, width = rgb.shape[:2]
    side = max(height, width)
    union = np.logical_or.reduce(masks)
    rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
    top, left = (side - height) // 2, (side - width) // 2
    reach = 2 * max(abs(rows[0] + top - side / 2), abs(rows[-1] + 1 + top - side / 2),
                    abs(cols[0] + left - side / 2), abs(cols[-1] + 1 + left - side / 2))
    if reach > REACH_SHARE * side:
        side = int(math.ceil(reach / REACH_SHARE))
        top, left = (side - height) // 2, (side - width) // 2
    canvas = np.full((side, side, 3), 255, np.uint8)
    canvas[top:top + height, left:left + width] = rgb
    placed = []
    for mask in masks:
        full = np.zeros((side, side), bool)
        full[top:top + height, left:left + width] = mask
        placed.append(full)
    return canvas, placed, (top, left)


def model_inputs(rgba: np.ndarray, segmentation: SceneSegmentation) -> Inputs:
    """One entry per object, in the segmentation's order: the picture on white with only that object's pixels, its
    mask (L, 255 on the object) and the whole picture, as upstream's split_rgb_mask makes them from a label map."""
    rgb = on_white(rgba)
    canvas, masks, offset = square_canvas(rgb, [obj.mask for obj in segmentation.objects])
    images = []
    for mask in masks:
        alone = np.full_like(canvas, 255)
        alone[mask] = canvas[mask]
        images.append(pil_rgb(alone))
    return Inputs(tuple(images), tuple(pil_mask(mask) for mask in masks), pil_rgb(canvas), offset, canvas.shape[0])


def check_settings(settings) -> dict:
    settings = known_keys(settings, SETTING_KEYS)
    return {"steps": whole(settings, "steps", DEFAULT_STEPS, 1, 100),
            "guidance_scale": number(settings, "guidance_scale", DEFAULT_GUIDANCE, 0.0, 20.0)}


def seconds_for(object_count: int, steps: int, guidance_scale: float) -> float:
    batch = 2 if guidance_scale > 1 else 1  # upstream's do_classifier_free_guidance
    return (gpu.START_UP_S + steps * batch * (STEP_S + STEP_S_PER_OBJECT * object_count)
            + DECODE_S_PER_OBJECT * object_count)


@dataclass(frozen=True)
class SampleJob:
    """The GPU call's input: picklable CPU data only (ZeroGPU runs the call in another process)."""

    source: str
    device: str
    inputs: Inputs
    seed: int
    steps: int
    guidance_scale: float

    @property
    def key(self) -> str:
        return f"{MODEL_KEY}:{self.source}"


def load_pipeline(source: str, device: str):
    """MIDIPipeline as MIDI's own scripts load it: from the folder, to the device, multi-instance attention on."""
    import torch
    from midi.pipelines.pipeline_midi import MIDIPipeline

    dtype = torch.float16 if device == "cuda" else torch.float32
    pipeline = MIDIPipeline.from_pretrained(source).to(device, dtype)
    pipeline.init_custom_adapter(set_self_attn_module_names=list(MI_BLOCKS))
    return pipeline


def sample_seconds(job: SampleJob) -> float:
    return seconds_for(len(job.inputs.images), job.steps, job.guidance_scale)


def surface(field: np.ndarray, bbox_min, bbox_size) -> tuple[np.ndarray, np.ndarray]:
    """The zero level of one instance's field as (vertices, faces) in MIDI's frame; empty when it has none.

    The grid's points run from bbox_min to bbox_min + bbox_size in (count - 1) steps per axis ('ij' order), so
    grid index k sits at bbox_min + k * bbox_size / (count - 1). (Upstream's script divides by count, a 0.4 %
    shrink at 257 points; one scale for every object either way.)"""
    from skimage import measure

    if not (field.min() < 0.0 < field.max()):
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    vertices, faces, _, _ = measure.marching_cubes(field, 0.0, method="lewiner")
    steps = (np.asarray(field.shape, np.float64) - 1.0)
    vertices = np.asarray(bbox_min, np.float64) + vertices * (np.asarray(bbox_size, np.float64) / steps)
    return vertices.astype(np.float32), faces.astype(np.int64)


@gpu.gpu_task(duration=sample_seconds)
def sample(job: SampleJob) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    """The multi-instance diffusion and each instance's surface: [(vertices, faces)] in MIDI's frame, and seconds."""
    import torch
    from midi.utils.smoothing import smooth_gpu

    started = time.perf_counter()
    pipeline = MODEL_HOST.get(job.key, partial(load_pipeline, job.source, job.device))
    count = len(job.inputs.images)
    generator = torch.Generator(device=pipeline.device).manual_seed(job.seed)
    with torch.no_grad():
        logits, grid_sizes, bbox_sizes, bbox_mins, _ = pipeline(
            image=list(job.inputs.images), mask=list(job.inputs.masks), image_scene=[job.inputs.scene] * count,
            attention_kwargs={"num_instances": count}, num_inference_steps=job.steps,
            guidance_scale=job.guidance_scale, decode_progressive=True, return_dict=False, generator=generator)
        meshes = []
        for index in range(count):
            grid = smooth_gpu(logits[index].view(grid_sizes[index]), method="gaussian", sigma=SMOOTH_SIGMA)
            field = grid.float().cpu().numpy()
            meshes.append(surface(field, np.asarray(bbox_mins[index]), np.asarray(bbox_sizes[index])))
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return meshes, time.perf_counter() - started


def _device() -> str:
    return "cuda"  # availability() refuses a server without a CUDA GPU (or ZeroGPU, which provides one)


class Midi3DModel:
    """MIDI-3D: every object's geometry at once, conditioned on its mask, its pixels and the whole picture."""

    name = "midi3d"
    title = "MIDI-3D (VAST)"
    module = "midi"
    max_objects = MAX_OBJECTS
    uses_gpu = True

    def availability(self) -> tuple[bool, str]:
        problem = runtime_problem(MODULE, "MIDI-3D", "see vendor/midi3d.toml", COMPILED)
        if problem:
            return False, problem
        source, where = weights_source(WEIGHTS_ENV, REPO, MARKER)
        if source is None:
            return False, where
        return True, f"MIDI-3D on CUDA, {where}"

    def check_settings(self, settings) -> dict:
        return check_settings(settings)

    def gpu_estimate(self, object_count: int, settings) -> float:
        plan = check_settings(settings)
        return seconds_for(object_count, plan["steps"], plan["guidance_scale"])

    def _source(self) -> str:
        source, where = weights_source(WEIGHTS_ENV, REPO, MARKER)
        if source is None:
            raise ForgeError(f"MIDI-3D cannot run: {where}")
        return source

    def preload(self) -> str:
        """Pin the pipeline (a Space serving MIDI-3D calls this at start-up, outside any GPU call)."""
        source = self._source()
        MODEL_HOST.pin(f"{MODEL_KEY}:{source}", partial(load_pipeline, source, _device()))
        return "MIDI-3D loaded"

    def generate(self, request: SceneRequest) -> SceneModelResult:
        rgba, names = checked_request(request, self.name, self.max_objects)
        plan = check_settings(request.settings)
        objects = request.segmentation.objects
        inputs = model_inputs(rgba, request.segmentation)
        job = SampleJob(self._source(), _device(), inputs, int(request.seed), plan["steps"], plan["guidance_scale"])
        with MODEL_HOST.lease():
            request.progress(0.05, "loading MIDI-3D")
            MODEL_HOST.get(job.key, partial(load_pipeline, job.source, job.device))  # outside the GPU call
            request.check_cancelled()
            request.progress(0.15, f"generating {len(objects)} objects together ({plan['steps']} steps)")
            raw, seconds = sample(job)
        request.check_cancelled()
        meshes = []
        for index, (vertices, faces) in enumerate(raw):
            if len(faces) == 0:
                raise ForgeError(f"MIDI-3D found no surface for object {index + 1} ({names[index]}); try another "
                                 "seed, or a looser mask around it")
            meshes.append(blender_mesh(vertices, faces, MIDI_TO_BLENDER))
        request.progress(0.85, "fitting the scene to the picture's camera")
        pitch = request.camera.pitch_deg
        # The frame follows the camera's view (tipped by its pitch) or stands level: both are tried, anchored.
        fit = fit_frame(objects, [mesh.vertices for mesh in meshes], request.camera,
                        starts=(Start(0.0, -pitch), Start(0.0, 0.0)), fit_yaw=True, fit_tilt=True, anchored=True)
        placed = place_fitted(objects, meshes, fit, request.camera, names=names, snap=request.snap_to_ground,
                              resolve=request.resolve_overlaps)
        info = {"model": REPO, "steps": plan["steps"], "guidance_scale": plan["guidance_scale"], "seed": job.seed,
                "canvas_px": inputs.side, "gpu_seconds": round(float(seconds), 3), "frame": fit.as_dict(),
                "texture": "none: MIDI-3D makes geometry only (neutral grey)"}
        return SceneModelResult(self.name, placed, fit, info, list(fit.notes))

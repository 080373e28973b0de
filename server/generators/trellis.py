"""TRELLIS image-large (Microsoft, v1) adapter: one to four views to a vertex-coloured high poly, optionally DSO."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from .. import gpu
from ..errors import ForgeError, InputError
from . import attention
from .base import (
    DOWNLOAD_ENV,
    VIEW_LABELS,
    GeneratedMesh,
    GenerationRequest,
    cached_on_hub,
    library_present,
    placed_in_blender,
    quality_of,
    runtime_problem,
    to_numpy,
    weights_source,
)
from .modelhost import MODEL_HOST

MODULE = "trellis.pipelines"  # PyPI's 'trellis' is an unrelated project: only the real one has .pipelines
# Its compiled extensions: PyPI wheels for this stack (space/requirements.txt).
COMPILED = (("spconv", "PyPI spconv-cu126, its sparse convolutions"),)  # attention: generators/attention.py
REPO = "JeffreyXiang/TRELLIS-image-large"
WEIGHTS_ENV = "O3F_TRELLIS_WEIGHTS"
# DSO ("must stand"): a LoRA on the sparse-structure flow model (github.com/RuiningLi/dso, example.py).
DSO_REPO = "rayli/DSO-finetuned-TRELLIS"
DSO_FILE = "dro-4000iters.safetensors"
DSO_ENV = "O3F_DSO_WEIGHTS"
DSO_TARGET = "sparse_structure_flow_model"
DSO_LORA = {"r": 64, "lora_alpha": 128, "lora_dropout": 0.0, "target_modules": ["to_q", "to_kv", "to_out", "to_qkv"]}
STEPS = {"fast": 8, "balanced": 12, "hero": 25}
SPARSE_CFG = 7.5
SLAT_CFG = 3.0
MULTI_VIEW_MODES = ("stochastic", "multidiffusion")
# TRELLIS decodes Z up with the front toward -Y: its GLB writer turns (x, y, z) into glTF (x, z, -y), as
# meshfile.blender_to_gltf does, so its native axes are Blender's. Fix this one matrix if a deploy shows otherwise.
NATIVE_TO_BLENDER = np.eye(3)


def read_mesh_extract(mesh) -> dict:
    """The one place that reads TRELLIS's MeshExtractResult: vertices, faces, vertex_attrs (RGB first, in [0, 1])."""
    if getattr(mesh, "success", True) is False:
        raise ForgeError("TRELLIS decoded an empty mesh; try another seed or a clearer cut-out")
    raw = {"vertices": to_numpy(mesh.vertices).astype(np.float64), "faces": to_numpy(mesh.faces).astype(np.int64)}
    attrs = getattr(mesh, "vertex_attrs", None)
    if attrs is not None:
        attrs = to_numpy(attrs).astype(np.float32)
        if attrs.ndim == 2 and attrs.shape[1] >= 3 and len(attrs) == len(raw["vertices"]):
            raw["colors"] = np.clip(attrs[:, :3], 0.0, 1.0)
    return raw


def sampler_arguments(quality: str) -> dict:
    steps = STEPS[quality]
    return {"sparse_structure_sampler_params": {"steps": steps, "cfg_strength": SPARSE_CFG},
            "slat_sampler_params": {"steps": steps, "cfg_strength": SLAT_CFG}}


def dso_weights() -> tuple[str | None, str]:
    """(the LoRA file, or the Hub repo to fetch it from; how it was found) or (None, why it is missing)."""
    local = os.environ.get(DSO_ENV, "").strip()
    if local:
        path = Path(local) / DSO_FILE if Path(local).is_dir() else Path(local)
        return (str(path), f"DSO LoRA {path}") if path.is_file() else (None, f"{DSO_ENV}={local}: no {DSO_FILE}")
    if cached_on_hub(DSO_REPO, DSO_FILE):
        return DSO_REPO, f"DSO LoRA {DSO_REPO} from the Hugging Face cache"
    if os.environ.get(DOWNLOAD_ENV) == "1":
        return DSO_REPO, f"DSO LoRA {DSO_REPO} downloads from the Hub on first use"
    return None, f"DSO LoRA {DSO_REPO}/{DSO_FILE} is not in the Hugging Face cache (or point {DSO_ENV} at it)"


def dso_problem() -> str | None:
    if not library_present("peft"):
        return "DSO needs peft (pip install peft)"
    source, where = dso_weights()
    return None if source is not None else where


def apply_dso(pipeline) -> None:
    """Wrap the sparse-structure flow model in the DSO LoRA and load its weights."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file

    source, where = dso_weights()
    if source is None:
        raise ForgeError(f"must_stand needs the DSO LoRA: {where}")
    if source == DSO_REPO:
        from huggingface_hub import hf_hub_download

        source = hf_hub_download(DSO_REPO, DSO_FILE)
    model = get_peft_model(pipeline.models[DSO_TARGET], LoraConfig(**DSO_LORA))
    loaded = model.load_state_dict(load_file(source), strict=False)
    missing = [key for key in getattr(loaded, "missing_keys", []) if "lora_" in key]
    if missing:
        raise ForgeError(f"the DSO LoRA at {source} does not fit TRELLIS's flow model ({len(missing)} LoRA weights "
                         f"missing, e.g. {missing[0]})")
    pipeline.models[DSO_TARGET] = model


def model_key(dso: bool) -> str:
    return "trellis+dso" if dso else "trellis"


def load_pipeline(dso: bool):
    attention.prepare()
    from trellis.pipelines import TrellisImageTo3DPipeline

    source, _ = weights_source(WEIGHTS_ENV, REPO, "pipeline.json")
    pipeline = TrellisImageTo3DPipeline.from_pretrained(source or REPO)
    if dso:
        apply_dso(pipeline)  # before .cuda(), so the LoRA layers move to the GPU with the rest
    pipeline.cuda()
    return pipeline


@gpu.gpu_task(duration=lambda views, seed, quality, dso, mode: gpu.generation_seconds(quality, len(views)))
def sample(views: list[np.ndarray], seed: int, quality: str, dso: bool, mode: str) -> dict:
    """The CUDA part: RGBA views in, the first mesh's arrays out (plus the GPU seconds it took)."""
    pipeline = MODEL_HOST.get(model_key(dso), lambda: load_pipeline(dso))
    images = [Image.fromarray(view, "RGBA") for view in views]
    arguments = {"seed": int(seed), "formats": ["mesh"], **sampler_arguments(quality)}
    started = time.perf_counter()
    if len(images) == 1:
        outputs = pipeline.run(images[0], **arguments)
    else:
        outputs = pipeline.run_multi_image(images, mode=mode, **arguments)
    if isinstance(outputs, (list, tuple)):  # DSO's fork returns a list of output dicts
        outputs = outputs[0]
    meshes = outputs.get("mesh") or []
    if not meshes:
        raise ForgeError("TRELLIS made no mesh from these views; try another seed")
    raw = read_mesh_extract(meshes[0])  # reading the tensors back waits for the GPU to finish
    raw["gpu_seconds"] = time.perf_counter() - started
    return raw


def to_blender(raw: dict, height: float) -> trimesh.Trimesh:
    return placed_in_blender(raw["vertices"], raw["faces"], NATIVE_TO_BLENDER, height)[0]


def vertex_colors(raw: dict) -> np.ndarray:
    """RGBA per vertex the faces use, in the order placed_in_blender keeps them (it drops the unused ones)."""
    used = np.unique(np.asarray(raw["faces"], np.int64))
    rgba = np.full((len(used), 4), 255, np.uint8)
    if "colors" in raw:
        rgba[:, :3] = np.clip(np.rint(np.asarray(raw["colors"])[used] * 255), 0, 255)
    else:
        rgba[:, :3] = 200  # the mesh decoder gave no colours: a neutral grey to paint over
    return rgba


class TrellisGenerator:
    """TRELLIS image-large: one view, or two to four fused by run_multi_image; must_stand loads the DSO LoRA."""

    name = "trellis"
    title = "TRELLIS image-large (+DSO)"
    module = "trellis"
    max_views = 4
    uses_gpu = True

    def availability(self) -> tuple[bool, str]:
        backend = attention.choose_backend()["backend"]  # before TRELLIS is imported: it reads the choice then
        problem = runtime_problem(MODULE, "TRELLIS", "see vendor/trellis.toml; PyPI's 'trellis' is another project",
                                  COMPILED)
        if problem:
            return False, problem
        source, where = weights_source(WEIGHTS_ENV, REPO, "pipeline.json")
        if source is None:
            return False, where
        dso = dso_problem()
        return True, (f"TRELLIS image-large on CUDA, {where}; attention: {backend}; "
                      f"must_stand: {dso or 'DSO LoRA ready'}")

    def check_settings(self, settings: dict, view_count: int) -> None:
        quality_of(settings)
        if not 1 <= view_count <= self.max_views:
            raise InputError("images", f"{view_count} images", f"1 to {self.max_views} for trellis")
        mode = settings.get("multiview_mode", "stochastic")
        if mode not in MULTI_VIEW_MODES:
            raise InputError("options.multiview_mode", mode, f"one of {', '.join(MULTI_VIEW_MODES)}")
        if settings.get("must_stand"):
            problem = dso_problem()
            if problem:
                raise InputError("options.must_stand", True, f"false on this server ({problem})")

    def generate(self, request: GenerationRequest) -> GeneratedMesh:
        settings = request.settings
        self.check_settings(settings, len(request.views))
        quality = quality_of(settings)
        dso = bool(settings.get("must_stand", False))
        mode = settings.get("multiview_mode", "stochastic")
        views = [np.ascontiguousarray(request.views[label], np.uint8) for label in VIEW_LABELS
                 if label in request.views]
        request.progress(0.05, "loading TRELLIS" + (" with the DSO LoRA" if dso else ""))
        MODEL_HOST.get(model_key(dso), lambda: load_pipeline(dso))  # outside the GPU call, see trellis2.py
        request.check_cancelled()
        request.progress(0.2, f"sampling with TRELLIS ({quality}, {len(views)} view{'s' if len(views) > 1 else ''})")
        raw = sample(views, int(request.seed), quality, dso, mode)
        request.check_cancelled()
        mesh = to_blender(raw, float(settings.get("height", 1.0)))
        info = {"model": REPO, "quality": quality, "dso": dso, "views": len(views),
                "vertex_colors": "colors" in raw, "gpu_seconds": round(float(raw["gpu_seconds"]), 3)}
        if len(views) > 1:
            info["multiview_mode"] = mode
        return GeneratedMesh(mesh, vertex_colors(raw), info=info)

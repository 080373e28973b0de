"""TRELLIS.2 (Microsoft) adapter: one image to a high poly with a voxel volume of PBR attributes."""

from __future__ import annotations

import time

import numpy as np
import trimesh
from PIL import Image

from .. import gpu
from ..errors import ForgeError, InputError
from . import attention
from .base import (
    GeneratedMesh,
    GenerationRequest,
    hf_token,
    placed_in_blender,
    quality_of,
    runtime_problem,
    space_wheel,
    to_numpy,
    weights_source,
)
from .modelhost import MODEL_HOST
from .volume import AttributeVolume, vertex_rgba

MODULE = "trellis2.pipelines"
# Its compiled extensions: our wheels on the Space (vendor/wheels.toml); attention: generators/attention.py.
COMPILED = (("o_voxel", space_wheel("o_voxel")), ("cumesh", space_wheel("cumesh")),
            ("flex_gemm", space_wheel("flex_gemm")), ("nvdiffrast", space_wheel("nvdiffrast")))
REPO = "microsoft/TRELLIS.2-4B"
WEIGHTS_ENV = "O3F_TRELLIS2_WEIGHTS"
MODEL_KEY = "trellis2"
# Quality presets: the pipeline type sets the output resolution (512, then 1024 or 1536 through a cascade).
PRESETS = {"fast": ("512", 8), "balanced": ("1024_cascade", 12), "hero": ("1536_cascade", 16)}
# Guidance as in TRELLIS.2's own demo (strength, rescale, rescale_t per sampler).
SPARSE_GUIDANCE = {"guidance_strength": 7.5, "guidance_rescale": 0.7, "rescale_t": 5.0}
SHAPE_GUIDANCE = {"guidance_strength": 7.5, "guidance_rescale": 0.5, "rescale_t": 3.0}
TEXTURE_GUIDANCE = {"guidance_strength": 1.0, "guidance_rescale": 0.0, "rescale_t": 3.0}
# TRELLIS.2 decodes Z up with the front toward -Y: its GLB writer maps (x, y, z) to glTF (x, z, -y), as
# meshfile.blender_to_gltf does, so its native axes are Blender's. Fix this one matrix if a deploy shows otherwise.
NATIVE_TO_BLENDER = np.eye(3)
DEFAULT_ORIGIN = (-0.5, -0.5, -0.5)  # the decoder's volume is the cube [-0.5, 0.5]^3


def read_mesh_with_voxel(mesh) -> dict:
    """The one place that reads TRELLIS.2's MeshWithVoxel: vertices, faces, and the sparse attribute volume
    (coords (n, 3) voxel indices, attrs (n, c) in [0, 1], layout name -> channel slice, voxel_size, origin)."""
    coords = to_numpy(mesh.coords).astype(np.int64)
    origin = getattr(mesh, "origin", None)
    if origin is None and getattr(mesh, "aabb", None) is not None:
        origin = to_numpy(mesh.aabb)[0]
    layout = {name: (part.start, part.stop) for name, part in dict(mesh.layout).items()}
    return {"vertices": to_numpy(mesh.vertices).astype(np.float64), "faces": to_numpy(mesh.faces).astype(np.int64),
            "coords": coords[:, -3:], "attrs": to_numpy(mesh.attrs).astype(np.float32), "layout": layout,
            "voxel_size": float(to_numpy(mesh.voxel_size).reshape(-1)[0]),
            "origin": to_numpy(DEFAULT_ORIGIN if origin is None else origin).astype(np.float64).reshape(3)}


def sampler_arguments(quality: str) -> dict:
    pipeline_type, steps = PRESETS[quality]
    return {"pipeline_type": pipeline_type,
            "sparse_structure_sampler_params": {"steps": steps, **SPARSE_GUIDANCE},
            "shape_slat_sampler_params": {"steps": steps, **SHAPE_GUIDANCE},
            "tex_slat_sampler_params": {"steps": steps, **TEXTURE_GUIDANCE}}


def load_pipeline():
    attention.prepare()
    from trellis2.pipelines import Trellis2ImageTo3DPipeline

    source, _ = weights_source(WEIGHTS_ENV, REPO, "pipeline.json")
    pipeline = Trellis2ImageTo3DPipeline.from_pretrained(source or REPO)
    _layers_where_trellis2_reads_them(getattr(pipeline, "image_cond_model", None))
    pipeline.cuda()
    return pipeline


def _layers_where_trellis2_reads_them(encoder) -> None:
    """transformers 5 moved DINOv3's blocks to model.model.layer; TRELLIS.2's image encoder reads model.layer
    (seen on the GPU machine with transformers 5.17: bench/RESULTS.md). Point the old name at the new place."""
    model = getattr(encoder, "model", None)
    inner = getattr(model, "model", None)
    if model is not None and not hasattr(model, "layer") and hasattr(inner, "layer"):
        object.__setattr__(model, "layer", inner.layer)


@gpu.gpu_task(duration=lambda rgba, seed, quality: gpu.generation_seconds(quality, 1))
def sample(rgba: np.ndarray, seed: int, quality: str) -> dict:
    """The CUDA part: RGBA pixels in, the first mesh's arrays out (plus the GPU seconds it took)."""
    pipeline = MODEL_HOST.get(MODEL_KEY, load_pipeline)
    started = time.perf_counter()
    meshes = pipeline.run(Image.fromarray(rgba, "RGBA"), seed=int(seed), **sampler_arguments(quality))
    if not meshes:
        raise ForgeError("TRELLIS.2 made no mesh from this image; try another seed or a clearer cut-out")
    raw = read_mesh_with_voxel(meshes[0])  # reading the tensors back waits for the GPU to finish
    raw["gpu_seconds"] = time.perf_counter() - started
    return raw


def attribute_volume(raw: dict) -> AttributeVolume:
    values = {name: np.clip(raw["attrs"][:, start:stop], 0.0, 1.0) for name, (start, stop) in raw["layout"].items()}
    return AttributeVolume(raw["coords"], values, raw["voxel_size"], raw["origin"])


def to_blender(raw: dict, height: float) -> tuple[trimesh.Trimesh, AttributeVolume]:
    """Mesh and volume in Blender axes, `height` tall, standing centred on the origin, in one shared frame."""
    mesh, scale, translation = placed_in_blender(raw["vertices"], raw["faces"], NATIVE_TO_BLENDER, height)
    volume = attribute_volume(raw).permuted(NATIVE_TO_BLENDER)
    return mesh, volume.transformed(scale, translation)


class Trellis2Generator:
    """TRELLIS.2-4B: one view; geometry plus base colour, metallic, roughness and alpha in a voxel volume."""

    name = "trellis2"
    title = "TRELLIS.2 (Microsoft)"
    module = "trellis2"
    max_views = 1
    uses_gpu = True

    def availability(self) -> tuple[bool, str]:
        backend = attention.choose_backend()["backend"]  # before TRELLIS.2 is imported: it reads the choice then
        problem = runtime_problem(MODULE, "TRELLIS.2", "see vendor/trellis2.toml", COMPILED)
        if problem:
            return False, problem
        source, where = weights_source(WEIGHTS_ENV, REPO, "pipeline.json")
        if source is None:
            return False, where
        if hf_token() is None:
            return False, ("HF_TOKEN is not set: TRELLIS.2 loads a gated image encoder and background model; "
                           "set it to a token whose account accepted their terms")
        return True, f"TRELLIS.2-4B on CUDA, {where}; attention: {backend}"

    def check_settings(self, settings: dict, view_count: int) -> None:
        quality_of(settings)
        if view_count != 1:
            raise InputError("images", f"{view_count} images", "one image for trellis2")

    def preload(self) -> str:
        """Pin the pipeline (a Space serving TRELLIS.2 calls this at start-up)."""
        MODEL_HOST.pin(MODEL_KEY, load_pipeline)
        return "TRELLIS.2-4B loaded"

    def generate(self, request: GenerationRequest) -> GeneratedMesh:
        quality = quality_of(request.settings)
        self.check_settings(request.settings, len(request.views))
        (rgba,) = request.views.values()
        request.progress(0.05, "loading TRELLIS.2")
        MODEL_HOST.get(MODEL_KEY, load_pipeline)  # outside the GPU call: ZeroGPU keeps the weights in the parent
        request.check_cancelled()
        request.progress(0.2, f"sampling with TRELLIS.2 ({quality})")
        raw = sample(np.ascontiguousarray(rgba, np.uint8), int(request.seed), quality)
        request.check_cancelled()
        request.progress(0.85, "reading the voxel attributes")
        mesh, volume = to_blender(raw, float(request.settings.get("height", 1.0)))
        values = volume.values
        metallic = float(np.median(values["metallic"])) if "metallic" in values else 0.0
        roughness = float(np.median(values["roughness"])) if "roughness" in values else 0.8
        info = {"model": REPO, "quality": quality, "pipeline_type": PRESETS[quality][0], "voxels": len(volume.coords),
                "gpu_seconds": round(float(raw["gpu_seconds"]), 3)}
        return GeneratedMesh(mesh, vertex_rgba(volume, mesh.vertices), metallic, roughness, info,
                             attribute_volume=volume)

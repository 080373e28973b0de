"""Hunyuan3D-2, 2mini and 2mv (Tencent) through hy3dgen 2.0.2: one to four labelled views to a shape."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from .. import gpu
from ..errors import ForgeError, InputError, RefusedInput
from ..schema import GENERATE, plain_value
from .base import (
    DOWNLOAD_ENV,
    GeneratedMesh,
    GenerationRequest,
    cached_on_hub,
    library_present,
    placed_in_blender,
    quality_of,
)
from .modelhost import MODEL_HOST

INSTALL_HINT = "hy3dgen is not installed (pip install hy3dgen==2.0.2)"
WEIGHTS_ENV = "O3F_HUNYUAN_WEIGHTS"  # a folder holding the repositories' subfolders side by side
LICENCE = ("Tencent Hunyuan 3D 2.0 Community Licence: not licensed for use in the European Union, "
           "the United Kingdom or South Korea")
NEUTRAL_GREY = (180, 180, 180, 255)
SHAPE_FILES = ("config.yaml", "model.fp16.safetensors")  # hy3dgen's from_pretrained defaults (fp16 variant)
PAINT_FOLDERS = ("hunyuan3d-delight-v2-0", "hunyuan3d-paint-v2-0")
PAINT_REPO = "tencent/Hunyuan3D-2"
# hy3dgen's MVImageProcessorV2 takes a dict with these keys (view indices 0 to 3 in this order).
MV_KEYS = ("front", "left", "back", "right")
# Our view label -> Hunyuan3D-2mv's key. CONVENTIONS.md "Input views": our labels are Blender's, named by the
# camera's side (left = camera on -X); 2mv names a view by the object's side it shows (its example left.png
# shows the object's left side, the object facing image-left), which for an object facing -Y is its +X side,
# our "right". So left and right swap; front and back do not. The output mesh needs no mirror for this:
# to_blender is a rotation that keeps hy3dgen's +X (the object's left in its Y-up, front-+Z frame) on +X.
MV_KEY_OF_VIEW = {"front": "front", "left": "right", "back": "back", "right": "left"}


@dataclass(frozen=True)
class Variant:
    """One shape model: its weight repository, the subfolder hy3dgen loads, and for turbo DiTs the FlashVDM
    VAE (repository, subfolder) that hy3dgen's enable_flashvdm swaps in."""

    repo: str
    subfolder: str
    multiview: bool = False
    turbo_vae: tuple[str, str] | None = None

    def parts(self) -> list[tuple[str, str]]:
        return [(self.repo, self.subfolder)] + ([self.turbo_vae] if self.turbo_vae else [])


V2_TURBO_VAE = ("tencent/Hunyuan3D-2", "hunyuan3d-vae-v2-0-turbo")
MINI_TURBO_VAE = ("tencent/Hunyuan3D-2mini", "hunyuan3d-vae-v2-mini-turbo")
VARIANTS = {
    "2.0": Variant("tencent/Hunyuan3D-2", "hunyuan3d-dit-v2-0"),
    "2.0-turbo": Variant("tencent/Hunyuan3D-2", "hunyuan3d-dit-v2-0-turbo", turbo_vae=V2_TURBO_VAE),
    "mini": Variant("tencent/Hunyuan3D-2mini", "hunyuan3d-dit-v2-mini"),
    "mini-turbo": Variant("tencent/Hunyuan3D-2mini", "hunyuan3d-dit-v2-mini-turbo", turbo_vae=MINI_TURBO_VAE),
    "mv": Variant("tencent/Hunyuan3D-2mv", "hunyuan3d-dit-v2-mv", multiview=True),
    "mv-turbo": Variant("tencent/Hunyuan3D-2mv", "hunyuan3d-dit-v2-mv-turbo", multiview=True,
                        turbo_vae=V2_TURBO_VAE),
}
# quality: (variant for one view, variant for 2 to 4 views, sampling steps, octree resolution)
QUALITY = {
    "fast": ("2.0-turbo", "mv-turbo", 5, 256),
    "balanced": ("2.0", "mv", 30, 256),
    "hero": ("2.0", "mv", 50, 384),
}


@dataclass(frozen=True)
class Plan:
    """What one generation runs: the variant, its sampling steps and octree resolution, and the rest."""

    quality: str
    variant: str
    steps: int
    octree_resolution: int
    target_faces: int
    height: float
    texture: bool


@dataclass(frozen=True)
class SampleJob:
    """The GPU call's input: picklable CPU data only (ZeroGPU runs the call in another process)."""

    variant: str
    sources: tuple[str, ...]
    device: str
    images: Image.Image | dict[str, Image.Image]
    seed: int
    steps: int
    octree_resolution: int
    quality: str

    @property
    def key(self) -> str:
        return f"hunyuan3d-2:{self.variant}:{':'.join(self.sources)}"

    @property
    def view_count(self) -> int:
        return len(self.images) if isinstance(self.images, dict) else 1


@dataclass(frozen=True)
class PaintJob:
    """The paint call's input: the cleaned mesh in hy3dgen's axes and the front view."""

    root: str
    vertices: np.ndarray
    faces: np.ndarray
    image: Image.Image

    @property
    def key(self) -> str:
        return f"hunyuan3d-2:paint:{self.root}"


def _whole(settings: dict, key: str, default: int, low: int, high: int) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value \
            or not low <= value <= high:
        raise InputError(f"options.{key}", value, f"a whole number from {low} to {high}")
    return int(value)


def plan(settings: dict, view_count: int) -> Plan:
    """The quality preset (fast, balanced, hero) as a variant, steps and octree resolution, with overrides."""
    quality = quality_of(settings)
    one_view, many_views, steps, octree = QUALITY[quality]
    variant = settings.get("variant") or (many_views if view_count > 1 else one_view)
    if variant not in VARIANTS:
        raise InputError("options.variant", variant, f"one of {', '.join(VARIANTS)}")
    if VARIANTS[variant].multiview != (view_count > 1):
        raise InputError("options.variant", variant, "mv or mv-turbo for 2 to 4 views, another variant for one")
    height = settings.get("height", 1.0)
    height = GENERATE.field("height").check(plain_value(height), "options.height")
    texture = settings.get("texture", False)
    if not isinstance(texture, bool):
        raise InputError("options.texture", texture, "true or false")
    return Plan(quality, variant, _whole(settings, "steps", steps, 1, 200),
                _whole(settings, "octree_resolution", octree, 16, 1024),
                _whole(settings, "target_faces", 200_000, 1000, 1_000_000), float(height), texture)


def _pil(label: str, rgba: np.ndarray) -> Image.Image:
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise InputError(f"views[{label}]", f"array {rgba.shape} {rgba.dtype}", "an RGBA uint8 image")
    if not (rgba[..., 3] > 0).any():
        raise RefusedInput(f"views[{label}]: the view has no object in it after background removal")
    return Image.fromarray(np.ascontiguousarray(rgba))


def model_images(views: dict[str, np.ndarray]) -> Image.Image | dict[str, Image.Image]:
    """One front view as a PIL image for the single-view models, or 2 to 4 side views as the mv model's dict,
    keyed by Hunyuan3D-2mv's names (MV_KEY_OF_VIEW: our left is its right and our right its left)."""
    if not 1 <= len(views) <= len(MV_KEYS):
        raise InputError("views", list(views), f"1 to {len(MV_KEYS)} labelled views for hunyuan3d-2")
    if len(views) == 1:
        (label, rgba), = views.items()
        if label != "front":
            raise InputError("views", label, "'front' for a single image")
        return _pil(label, rgba)
    for label in views:
        if label not in MV_KEY_OF_VIEW:
            raise InputError("views", label, "front, left, back or right (Hunyuan3D-2mv takes no top view)")
    images = {MV_KEY_OF_VIEW[label]: _pil(label, rgba) for label, rgba in views.items()}
    return {key: images[key] for key in MV_KEYS if key in images}  # in hy3dgen's view order


def find_weights(repo: str, subfolder: str, files: tuple[str, ...] = SHAPE_FILES) -> Path | None:
    """The folder that holds `subfolder` of `repo`, looked up without downloading: $O3F_HUNYUAN_WEIGHTS,
    hy3dgen's own cache ($HY3DGEN_MODELS/<repo>), then the Hugging Face cache."""
    roots = [Path(os.environ[WEIGHTS_ENV])] if os.environ.get(WEIGHTS_ENV) else []
    roots.append(Path(os.environ.get("HY3DGEN_MODELS", "~/.cache/hy3dgen")).expanduser() / repo)
    for root in roots:
        if all((root / subfolder / name).is_file() for name in files):
            return root
    if all(cached_on_hub(repo, f"{subfolder}/{name}") for name in files):
        from huggingface_hub import try_to_load_from_cache

        return Path(try_to_load_from_cache(repo, f"{subfolder}/{files[0]}")).parent.parent  # snapshots/<rev>
    return None


def variant_sources(variant: Variant, download: bool | None = None) -> tuple[str, ...] | None:
    """What from_pretrained loads for each part of the variant: a local folder, or with O3F_DOWNLOAD_WEIGHTS=1
    the repository itself (hy3dgen then downloads the subfolder on first use); None when a part is missing."""
    download = os.environ.get(DOWNLOAD_ENV) == "1" if download is None else download
    sources = []
    for repo, subfolder in variant.parts():
        root = find_weights(repo, subfolder)
        if root is None and not download:
            return None
        sources.append(str(root) if root is not None else repo)
    return tuple(sources)


def paint_root() -> Path | None:
    roots = {find_weights(PAINT_REPO, folder, ("model_index.json",)) for folder in PAINT_FOLDERS}
    return roots.pop() if len(roots) == 1 else None


def _cuda() -> bool:
    import torch

    return gpu.on_zero_gpu() or torch.cuda.is_available()


def runtime_status() -> tuple[bool, str]:
    """Whether hy3dgen and PyTorch can run here (weights aside), and on what."""
    if not library_present("hy3dgen"):
        return False, INSTALL_HINT
    if not library_present("torch"):
        return False, "PyTorch is not installed (hy3dgen needs torch and torchvision)"
    if not library_present("torchvision"):
        return False, "torchvision is not installed (hy3dgen's image encoder imports it)"
    if _cuda():
        return True, "CUDA"
    if os.environ.get("O3F_ALLOW_CPU_MODELS") == "1":
        return True, "the CPU (O3F_ALLOW_CPU_MODELS=1: slow, for tests)"
    return False, "no CUDA GPU on this server (O3F_ALLOW_CPU_MODELS=1 allows the CPU, for tests)"


def paint_status() -> tuple[bool, str]:
    """Texture painting needs a CUDA GPU, custom_rasterizer (compiled, not in the hy3dgen wheel) and weights."""
    if not _cuda():
        return False, "texture painting needs a CUDA GPU"
    if not library_present("custom_rasterizer"):
        return False, "texture painting needs custom_rasterizer (a compiled extension the hy3dgen wheel lacks)"
    if paint_root() is None:
        return False, f"texture painting weights ({PAINT_REPO}: {', '.join(PAINT_FOLDERS)}) are not downloaded"
    return True, "texture painting available"


def _device() -> str:
    return "cuda" if _cuda() else "cpu"


def load_shape_pipeline(variant_name: str, sources: tuple[str, ...], device: str):
    """hy3dgen's flow-matching pipeline from the folders found (a repository id downloads, see variant_sources)."""
    import torch
    from hy3dgen.shapegen import Hunyuan3DDiTFlowMatchingPipeline
    from hy3dgen.shapegen.models import ShapeVAE

    variant = VARIANTS[variant_name]
    dtype = torch.float16 if device == "cuda" else torch.float32
    pipeline = Hunyuan3DDiTFlowMatchingPipeline.from_pretrained(
        sources[0], subfolder=variant.subfolder, device=device, dtype=dtype)
    if variant.turbo_vae:
        # enable_flashvdm picks the turbo VAE by the folder's last name and loads it in float16; load it from
        # the source found here instead, in the pipeline's dtype, and let enable_flashvdm switch the decoder.
        pipeline.vae = ShapeVAE.from_pretrained(sources[1], subfolder=variant.turbo_vae[1], device=device,
                                                dtype=dtype)
        pipeline.enable_flashvdm(replace_vae=False)
    return pipeline


def shape_pipeline(job: SampleJob):
    return MODEL_HOST.get(job.key, partial(load_shape_pipeline, job.variant, job.sources, job.device))


# Not measured: the octree decode's share at the preset's resolution; it grows with the cube of the resolution.
DECODE_S = 4.0


def shape_seconds(quality: str, views: int, steps: int, octree_resolution: int) -> float:
    """The quality's figure, scaled up for more sampling steps and a finer octree than the preset's."""
    _, _, preset_steps, preset_octree = QUALITY[quality]
    sampling = gpu.generation_seconds(quality, views) * max(1.0, steps / preset_steps)
    return sampling + DECODE_S * max(0.0, (octree_resolution / preset_octree) ** 3 - 1.0)


def sample_seconds(job: SampleJob) -> float:
    return shape_seconds(job.quality, job.view_count, job.steps, job.octree_resolution)


@gpu.gpu_task(duration=sample_seconds)
def sample(job: SampleJob) -> tuple[np.ndarray, np.ndarray, float]:
    """Diffusion sampling and surface extraction: (vertices, faces) in hy3dgen's axes, empty when there is no
    surface, and the seconds the call took."""
    import torch

    started = time.perf_counter()
    pipeline = shape_pipeline(job)
    # A CPU generator gives the same starting noise for a seed on every device.
    generator = torch.Generator(device="cpu").manual_seed(job.seed)
    meshes = pipeline(image=job.images, num_inference_steps=job.steps, octree_resolution=job.octree_resolution,
                      generator=generator, output_type="trimesh", enable_pbar=False)
    mesh = meshes[0] if meshes else None
    if mesh is None or len(mesh.faces) == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64), time.perf_counter() - started
    return (np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int64),
            time.perf_counter() - started)


def load_paint_pipeline(root: str):
    from hy3dgen.texgen import Hunyuan3DPaintPipeline

    return Hunyuan3DPaintPipeline.from_pretrained(root)


def paint_seconds(job: PaintJob) -> float:
    return gpu.START_UP_S + gpu.PAINT_S


@gpu.gpu_task(duration=paint_seconds)
def paint(job: PaintJob) -> tuple[np.ndarray, float]:
    """hy3dgen's texture painting, read back as one RGBA colour per input vertex, and the seconds it took."""
    from scipy.spatial import cKDTree

    started = time.perf_counter()
    pipeline = MODEL_HOST.get(job.key, partial(load_paint_pipeline, job.root))
    textured = pipeline(trimesh.Trimesh(job.vertices, job.faces, process=False), image=job.image)
    # The painted mesh is split along its UV seams; each input vertex takes its nearest painted twin.
    colours = np.asarray(textured.visual.to_color().vertex_colors, np.uint8)
    _, nearest = cKDTree(np.asarray(textured.vertices)).query(job.vertices)
    return colours[nearest], time.perf_counter() - started


def clean_mesh(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """hy3dgen's own clean-up order: floaters off, degenerate faces off, faces reduced."""
    import pymeshlab
    from hy3dgen.shapegen import FaceReducer, FloaterRemover

    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int32)))
    # Given a MeshSet, hy3dgen's postprocessors write no temporary files; its DegenerateFaceRemover always
    # round-trips one PLY it never deletes, so pymeshlab's own filters stand in for it.
    meshes = FloaterRemover()(meshes)
    for name in ("meshing_remove_null_faces", "meshing_remove_duplicate_faces",
                 "meshing_remove_unreferenced_vertices"):
        meshes.apply_filter(name)
    meshes = FaceReducer()(meshes, max_facenum=max_faces)
    result = meshes.current_mesh()
    return result.vertex_matrix(), result.face_matrix()


Y_UP_TO_BLENDER = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])  # (x, y, z) -> (x, -z, y)


def to_blender(vertices: np.ndarray, faces: np.ndarray, height: float) -> trimesh.Trimesh:
    """hy3dgen meshes are glTF-style, Y up with the object's front toward +Z (texgen's front camera, azimuth
    0, sits on +Z), in about [-1, 1]^3. Blender's axes are Z up, front toward -Y: (x, y, z) -> (x, -z, y),
    a rotation, so windings stay. Scaled to `height` metres, standing on z = 0, centred on the Z axis."""
    return placed_in_blender(vertices, faces, Y_UP_TO_BLENDER, height)[0]


class Hunyuan3DGenerator:
    """Tencent's Hunyuan3D-2 family: 2.0 and mini for one view, 2mv for two to four; turbo for 'fast'."""

    name = "hunyuan3d-2"
    title = "Hunyuan3D-2 / 2mv (Tencent)"
    module = "hy3dgen"
    max_views = 4
    uses_gpu = True

    def availability(self) -> tuple[bool, str]:
        ready, device = runtime_status()
        if not ready:
            return False, device
        found = [name for name, variant in VARIANTS.items() if variant_sources(variant, download=False)]
        downloads = os.environ.get(DOWNLOAD_ENV) == "1"
        if not found and not downloads:
            return False, (f"no Hunyuan3D-2 weights in ${WEIGHTS_ENV}, hy3dgen's cache or the Hugging Face cache "
                           f"(download tencent/Hunyuan3D-2, -2mini or -2mv ahead, or set {DOWNLOAD_ENV}=1; "
                           f"nothing is downloaded here). {LICENCE}")
        cached = f"variants {', '.join(found)} cached" if found else "no variant cached"
        later = f", {DOWNLOAD_ENV}=1 downloads the others on first use" if downloads else ""
        return True, f"on {device}: {cached}{later}; {paint_status()[1]}. {LICENCE}"

    def check_settings(self, settings: dict, view_count: int) -> tuple[Plan, tuple[str, ...]]:
        """Every setting and the variant's weights, before the pipeline creates an asset; the plan and the
        weight sources it will load."""
        if not 1 <= view_count <= self.max_views:
            raise InputError("images", f"{view_count} images", f"1 to {self.max_views} for hunyuan3d-2")
        the_plan = plan(settings, view_count)
        variant = VARIANTS[the_plan.variant]
        sources = variant_sources(variant)
        if sources is None:
            missing = [f"{repo}/{folder}" for repo, folder in variant.parts() if find_weights(repo, folder) is None]
            raise InputError("options.quality", the_plan.quality,
                             f"a quality whose Hunyuan3D-2 weights are on this server ({the_plan.variant} needs "
                             f"{', '.join(missing)})")
        return the_plan, sources

    def gpu_estimate(self, settings: dict, view_count: int) -> float:
        """GPU seconds this request will ask ZeroGPU for: the shape call, and painting when it will run."""
        the_plan = plan(settings, view_count)
        seconds = shape_seconds(the_plan.quality, view_count, the_plan.steps, the_plan.octree_resolution)
        if the_plan.texture and paint_status()[0]:
            seconds += paint_seconds(None)
        return seconds

    def preload(self) -> str:
        """Pin the shape model a single image gets at the default quality (a Space calls this at start-up)."""
        the_plan, sources = self.check_settings({}, 1)
        job = SampleJob(the_plan.variant, sources, _device(), None, 0, the_plan.steps, the_plan.octree_resolution,
                        the_plan.quality)
        MODEL_HOST.pin(job.key, partial(load_shape_pipeline, job.variant, job.sources, job.device))
        return f"Hunyuan3D-2 {the_plan.variant} loaded"

    def generate(self, request: GenerationRequest) -> GeneratedMesh:
        images = model_images(request.views)
        the_plan, sources = self.check_settings(request.settings, len(request.views))
        job = SampleJob(the_plan.variant, sources, _device(), images, int(request.seed), the_plan.steps,
                        the_plan.octree_resolution, the_plan.quality)
        request.progress(0.05, f"loading Hunyuan3D-2 {the_plan.variant}")
        shape_pipeline(job)  # outside the GPU call: ZeroGPU keeps the weights in the parent process
        request.check_cancelled()
        request.progress(0.15, f"sampling the shape ({the_plan.steps} steps)")
        vertices, faces, gpu_seconds = sample(job)
        if len(faces) == 0:
            raise ForgeError("Hunyuan3D-2 found no surface for these views: try another seed or image")
        request.check_cancelled()
        request.progress(0.7, "removing floaters and reducing faces")
        vertices, faces = clean_mesh(vertices, faces, the_plan.target_faces)
        colours, texture, paint_s = self._colours(the_plan, images, vertices, faces, request)
        mesh = to_blender(vertices, faces, the_plan.height)
        info = {"mode": "hunyuan3d-2", "variant": the_plan.variant, "quality": the_plan.quality,
                "steps": the_plan.steps, "octree_resolution": the_plan.octree_resolution,
                "views": list(request.views), "device": job.device,
                "gpu_seconds": round(gpu_seconds + paint_s, 3),
                "texture": texture, "licence": LICENCE}
        return GeneratedMesh(mesh, colours, info=info)

    def _colours(self, the_plan: Plan, images, vertices, faces, request) -> tuple[np.ndarray, str, float]:
        grey = np.tile(np.array(NEUTRAL_GREY, np.uint8), (len(vertices), 1))
        if not the_plan.texture:
            return grey, "not asked: neutral grey", 0.0
        ready, reason = paint_status()
        root = paint_root()
        if not ready or root is None:
            return grey, f"not painted ({reason}): neutral grey", 0.0
        front = images.get("front") if isinstance(images, dict) else images
        if front is None:
            return grey, "not painted (painting needs the front view): neutral grey", 0.0
        job = PaintJob(str(root), np.asarray(vertices, np.float32), np.asarray(faces, np.int64), front)
        request.progress(0.8, "painting the texture")
        MODEL_HOST.get(job.key, partial(load_paint_pipeline, job.root))
        request.check_cancelled()
        colours, seconds = paint(job)
        return colours, "painted by Hunyuan3D-Paint", seconds

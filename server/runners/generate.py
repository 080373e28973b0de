"""The runs that make an asset's high poly: images through background removal and a generator, or an uploaded
mesh."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import gpu
from ..asset import ATTRIBUTES, HIGH_POLY, Asset, cutout_file, input_file, upload_file
from ..errors import InputError, RefusedInput
from ..generators.base import GenerationRequest
from ..generators.modelhost import MODEL_HOST
from ..generators.registry import choose
from ..images import load_rgba, save_png
from ..jobs import Context, Progress, charged_if_failed
from ..meshfile import glb_bytes, load_mesh_upload, vertex_coloured
from ..owners import LOCAL
from ..stages.background import cut_out


@dataclass
class GenerateJob:
    """A validated generate request (see api.generate for how each field was checked)."""

    images: list[Path]
    views: list[str]
    name: str
    kind: str
    generator: str
    preset: dict
    seed: int
    settings: dict
    background: str
    asset_id: str | None = None
    owner: str = LOCAL
    extra: dict = field(default_factory=dict)


def generation_estimate(ctx: Context, generator, job: GenerateJob) -> float | None:
    """GPU seconds a model generator will ask for; refuses now when today's quota cannot cover them."""
    if not getattr(generator, "uses_gpu", False):
        return None
    own_estimate = getattr(generator, "gpu_estimate", None)  # a generator whose cost depends on more settings
    if own_estimate is not None:
        estimate = own_estimate(job.settings, len(job.images))
    else:
        estimate = gpu.generation_seconds(job.settings.get("quality", "balanced"), len(job.images))
    gpu.check_quota(estimate, ctx.quota.left_today(), f"generate with {generator.name}")
    return estimate


def run_generate(ctx: Context, job: GenerateJob, progress: Progress) -> tuple[dict, Path]:
    """Cut out every view, run the generator, and save high_poly.glb into a new asset."""
    generator = choose(job.generator, len(job.images), job.kind, job.settings)
    estimate = generation_estimate(ctx, generator, job)
    # Decode every image before creating anything, so bad input leaves no asset behind.
    pictures = [load_rgba(path, argument=f"images[{i}]", max_pixels=ctx.settings.max_image_pixels,
                          max_bytes=ctx.settings.max_image_bytes) for i, path in enumerate(job.images)]
    parameters = {"preset": job.preset["name"], "views": job.views, "background": job.background,
                  **job.settings}
    asset_id = job.asset_id or ctx.store.new_id()
    # Claimed before the folder exists, so no other request can act on the asset while it is made.
    with ctx.flags.claim(asset_id) as check:
        asset = ctx.store.create(name=job.name, kind=job.kind, generator=generator.name, seed=job.seed,
                                 parameters=parameters, asset_id=asset_id, owner=job.owner)
        try:
            cutouts = _background_stage(asset, job, pictures, check, progress)
            glb = _generate_stage(ctx, asset, job, generator, cutouts, check, progress, estimate)
        except (InputError, RefusedInput):  # the input itself was refused (no object in a picture, ...): nothing was made
            ctx.store.discard(asset)
            raise
    return asset.read(), glb


def _background_stage(asset: Asset, job: GenerateJob, pictures: list[np.ndarray], check, progress):
    inputs = []
    for index, (path, view, rgba) in enumerate(zip(job.images, job.views, pictures)):
        name = input_file(index, view, Path(path).suffix.lower())
        asset.write_file(name, path)
        inputs.append({"file": name, "view": view, "original_name": Path(path).name[:200]})
    asset.update(lambda record: record.update(inputs=inputs))
    cutouts = {}
    with asset.stage("background", {"method": job.background}) as run:
        for index, (view, rgba) in enumerate(zip(job.views, pictures)):
            check()
            progress(0.05 + 0.15 * index / len(pictures), f"removing the background of the {view} view")
            cutout = cut_out(rgba, method=job.background, label=f"images[{index}] ({view})")
            cutouts[view] = cutout.rgba
            name = cutout_file(view)
            asset.write_bytes(name, save_png(cutout.rgba))
            run["outputs"][f"cutout_{view}"] = name
            run["parameters"][f"method_{view}"] = cutout.method
    return cutouts


def _generate_stage(ctx: Context, asset: Asset, job: GenerateJob, generator, cutouts, check, progress,
                    estimate: float | None) -> Path:
    with asset.stage("generate", {"generator": generator.name, "seed": job.seed, **job.settings}) as run:
        started = time.perf_counter()
        request = GenerationRequest(
            views=cutouts, seed=job.seed, settings=job.settings, check_cancelled=check,
            progress=lambda fraction, message: progress(0.2 + 0.75 * fraction, message))
        if getattr(generator, "uses_gpu", False):
            with MODEL_HOST.lease(), charged_if_failed(ctx.quota, asset, "generate", estimate):
                result = generator.generate(request)  # one model job at a time: the GPU holds one model
        else:
            result = generator.generate(request)
        check()
        progress(0.96, "writing high_poly.glb")
        mesh = result.mesh
        vertex_coloured(mesh, result.colors, metallic=result.metallic, roughness=result.roughness)
        path = asset.write_bytes(HIGH_POLY, glb_bytes(mesh))
        run["outputs"]["high_poly"] = HIGH_POLY
        if result.attribute_volume is not None:
            asset.write_bytes(ATTRIBUTES, result.attribute_volume.to_bytes())
            run["outputs"]["attributes"] = ATTRIBUTES
        run["gpu_seconds"] = float(result.info.get("gpu_seconds", 0.0))
        run["gpu_charged_seconds"] = gpu.charged_seconds(run["gpu_seconds"], estimate)
        run["parameters"]["faces"] = len(mesh.faces)
        run["parameters"]["watertight"] = bool(mesh.is_watertight)
        info = {k: v for k, v in result.info.items() if isinstance(v, (int, float, str, list, bool))}
        asset.update(lambda record: record.update(
            surface={"metallic": result.metallic, "roughness": result.roughness},
            mesh={"faces": len(mesh.faces), "vertices": len(mesh.vertices),
                  "watertight": bool(mesh.is_watertight), "bounds_m": np.round(mesh.bounds, 5).tolist(),
                  "axes": "glTF (Y up, front faces +Z)", **info}))
        ctx.quota.record("generate", asset.asset_id, run["gpu_charged_seconds"])
        progress(1.0, f"done in {time.perf_counter() - started:.1f} s")
    return path


def run_import_mesh(ctx: Context, source: Path, *, name: str, kind: str, up_axis: str,
                    asset_id: str | None, progress: Progress, owner: str = LOCAL) -> tuple[dict, Path]:
    """Store an uploaded mesh as a new asset's high poly, keeping its textures or vertex colours."""
    progress(0.1, "reading the mesh")
    mesh = load_mesh_upload(source, argument="mesh", up_axis=up_axis, max_faces=ctx.settings.max_upload_faces,
                            max_bytes=ctx.settings.max_upload_bytes)
    asset = ctx.store.create(name=name, kind=kind, generator="import", seed=0,
                             parameters={"up_axis": up_axis, "source": source.name[:200]}, asset_id=asset_id,
                             owner=owner)
    asset.write_file(upload_file(source.suffix.lower()), source)
    asset.update(lambda record: record.update(inputs=[{"file": upload_file(source.suffix.lower()),
                                                       "original_name": source.name[:200]}]))
    with asset.stage("import_mesh", {"up_axis": up_axis}) as run:
        progress(0.6, "writing high_poly.glb")
        path = asset.write_bytes(HIGH_POLY, glb_bytes(mesh))
        run["outputs"]["high_poly"] = HIGH_POLY
        visual = mesh.visual.kind or "none"
        asset.update(lambda record: record.update(
            mesh={"faces": len(mesh.faces), "vertices": len(mesh.vertices),
                  "watertight": bool(mesh.is_watertight), "visual": visual,
                  "bounds_m": np.round(mesh.bounds, 5).tolist(), "axes": "glTF (Y up, front faces +Z)"}))
    progress(1.0, "imported")
    return asset.read(), path

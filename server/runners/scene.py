"""The scene run: one picture -> its objects, each made game-ready as its own asset, placed, and one scene zip."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import gpu
from ..asset import EXPORTS, HIGH_POLY, Asset, object_crop_file, scene_input_file
from ..gameready import PostSettings
from ..images import load_rgba, save_png
from ..jobs import Context, Progress, charged_if_failed
from ..meshfile import glb_bytes, vertex_coloured
from ..presets import get_preset
from ..scene import (
    SceneSettings,
    object_crop,
    place_objects,
    scene_layout,
    segment_scene,
    write_scene_zip,
)
from ..scene.models import SceneRequest, choose_scene_model, quota_estimate, with_mesh
from .bake import run_bake
from .export import run_export
from .generate import GenerateJob, run_generate
from .postprocess import run_postprocess
from .stored import load_game_mesh


@dataclass
class SceneJob:
    """A validated scene request (api.scene checked every field before this exists)."""

    image: Path
    name: str
    settings: SceneSettings
    generator: str
    seed: int
    generate: dict
    post: PostSettings
    bake: tuple  # (BakeSettings, engine name) from options.bake_settings
    export: dict
    engine: str
    preset: str
    owner: str
    asset_id: str
    scene_model: str = "auto"
    scene_model_options: dict = field(default_factory=dict)


def run_scene(ctx: Context, job: SceneJob, progress: Progress) -> tuple[dict, Path]:
    """Segment the picture, make every object with the image-to-3D chain, place them, write the scene zip.

    Each object is an asset of its own (generate, postprocess, bake, export), named <Name>_01, <Name>_02 ... from
    left to right, so it can be opened and re-run alone. Objects are placed twice: once to measure each one's
    real size from the picture, then again after post-processing has scaled the object to that size, so every
    actor stands at scale 1 in the level.
    """
    rgba = load_rgba(job.image, argument="image", max_pixels=ctx.settings.max_image_pixels,
                     max_bytes=ctx.settings.max_image_bytes)
    segmentation = segment_scene(rgba, max_objects=job.settings.max_objects, background=job.settings.background)
    camera = job.settings.camera(rgba.shape)
    names = [f"{job.name}_{i:02d}" for i in range(1, len(segmentation.objects) + 1)]
    model = choose_scene_model(job.scene_model, len(names), job.scene_model_options)
    estimate = None if model is None else quota_estimate(model, len(names), job.scene_model_options,
                                                         ctx.quota.left_today())
    with ctx.flags.claim(job.asset_id) as check:
        scene = ctx.store.create(name=job.name, kind="environment", generator=f"scene+{job.generator}",
                                 seed=job.seed, parameters={"preset": job.preset, **_settings_record(job)},
                                 asset_id=job.asset_id, owner=job.owner)
        scene.write_file(scene_input_file(job.image.suffix.lower()), job.image)
        scene.update(lambda record: record.update(inputs=[{"file": scene_input_file(job.image.suffix.lower()),
                                                           "view": "scene", "original_name": job.image.name[:200]}]))
        with scene.stage("segment", {"max_objects": job.settings.max_objects,
                                     "background": job.settings.background}) as run:
            crops = []
            for obj, name in zip(segmentation.objects, names):
                crop = scene.write_bytes(object_crop_file(name), save_png(object_crop(rgba, obj)))
                crops.append(crop)
                run["outputs"][f"crop_{name}"] = object_crop_file(name)
            run["parameters"]["segmentation"] = segmentation.summary()
        if model is None:
            objects = _make_objects(ctx, job, scene, crops, names, check, progress)
            progress(0.8, "placing the objects")
            with scene.stage("layout", {"fit": job.settings.fit, "camera": camera.as_dict()}) as run:
                placed = place_objects(segmentation.objects, [_lod0(asset) for asset in objects], camera,
                                       names=names, fit=job.settings.fit)
                for asset, item in zip(objects, placed):
                    check()
                    run_postprocess(asset, _sized(job.post, float(item.size_m[2]) * 100.0), _quiet, check)
                placed = place_objects(segmentation.objects, [_lod0(asset) for asset in objects], camera,
                                       names=names, fit=job.settings.fit)
                run["parameters"]["scales"] = [np.round(item.scale, 4).tolist() for item in placed]
        else:
            objects, placed = _made_by_model(ctx, job, scene, model, estimate, rgba, segmentation, camera, names,
                                             check, progress)
        packages = {}
        for index, (asset, name) in enumerate(zip(objects, names)):
            check()
            progress(0.82 + 0.13 * index / len(objects), f"baking and exporting {name}")
            run_bake(asset, job.bake[0], job.bake[1], _quiet, check, quota=ctx.quota)
            packages[name] = run_export(asset, job.engine, job.export, _quiet, check)
        with scene.stage("export", {"engine": job.engine}) as run:
            layout = scene_layout(job.name, placed, camera, segmentation, use_fbx=_uses_fbx(packages))
            path = write_scene_zip(scene.folder / EXPORTS, layout, placed, packages, job.engine)
            run["outputs"][f"export_{job.engine}"] = str(path.relative_to(scene.folder))
        scene.update(lambda record: record.update(scene={
            "objects": [{"name": name, "asset_id": asset.asset_id, "ue5": entry["ue5"],
                         "size_m": entry["size_m"], "notes": entry["notes"]}
                        for name, asset, entry in zip(names, objects, layout["objects"])],
            "notes": segmentation.notes, "found": segmentation.found, "capped": segmentation.capped}))
        progress(1.0, f"{len(objects)} objects placed")
    return scene.read(), path


def _made_by_model(ctx: Context, job: SceneJob, scene: Asset, model, estimate: float, rgba, segmentation, camera,
                   names: list[str], check, progress: Progress) -> tuple[list[Asset], list]:
    """A scene model (MIDI-3D, SceneGen) makes and places every object in one GPU call; each object then becomes
    its own asset, post-processed at the height the model gave it and placed where the model put it."""
    with scene.stage("objects", {"scene_model": model.name, "count": len(names)}) as run:
        with charged_if_failed(ctx.quota, scene, "scene", estimate):
            result = model.generate(SceneRequest(rgba, segmentation, camera, names=names, seed=job.seed,
                                                 settings=job.scene_model_options, check_cancelled=check,
                                                 progress=lambda f, m: progress(0.05 + 0.6 * f, m)))
        run["gpu_seconds"] = result.gpu_seconds
        run["gpu_charged_seconds"] = gpu.charged_seconds(result.gpu_seconds, estimate)
        ctx.quota.record("scene", scene.asset_id, run["gpu_charged_seconds"])
        objects = []
        for item in result.placed:
            check()
            asset = ctx.store.create(name=item.name, kind="prop", generator=model.name, seed=job.seed,
                                     parameters={"scene": scene.asset_id}, owner=job.owner)
            with asset.stage("generate", {"generator": model.name, "scene": scene.asset_id}) as made:
                mesh = item.mesh.to_trimesh()
                vertex_coloured(mesh, item.mesh.colors if item.mesh.colors is not None else
                                np.full((len(item.mesh.vertices), 4), 200, np.uint8), metallic=0.0, roughness=0.8)
                asset.write_bytes(HIGH_POLY, glb_bytes(mesh))
                made["outputs"]["high_poly"] = HIGH_POLY
            run_postprocess(asset, _sized(job.post, float(item.size_m[2]) * 100.0), _quiet, check)
            objects.append(asset)
            run["outputs"][item.name] = asset.asset_id
    with scene.stage("layout", {"scene_model": model.name, "camera": camera.as_dict()}) as run:
        placed = [with_mesh(item, _lod0(asset)) for item, asset in zip(result.placed, objects)]
        run["parameters"].update(info=result.info, notes=result.notes,
                                 scales=[np.round(item.scale, 4).tolist() for item in placed])
    return objects, placed


def _make_objects(ctx: Context, job: SceneJob, scene: Asset, crops: list[Path], names: list[str], check,
                  progress: Progress) -> list[Asset]:
    """Each crop through generate and a first postprocess (at the generator's own size)."""
    objects = []
    with scene.stage("objects", {"generator": job.generator, "count": len(crops)}) as run:
        for index, (crop, name) in enumerate(zip(crops, names)):
            check()
            progress(0.05 + 0.7 * index / len(crops), f"making {name} ({index + 1} of {len(crops)})")
            record, _ = run_generate(ctx, GenerateJob(
                images=[crop], views=["front"], name=name, kind="prop", generator=job.generator,
                preset=get_preset(job.preset or None), seed=job.seed, settings=dict(job.generate),
                background="alpha", owner=job.owner), _quiet)
            asset = ctx.store.open(record["asset_id"], job.owner)
            run_postprocess(asset, _sized(job.post, None), _quiet, check)
            objects.append(asset)
            run["outputs"][name] = record["asset_id"]
    return objects


def _sized(post: PostSettings, height_cm: float | None) -> PostSettings:
    values = dict(post.__dict__, height_cm=height_cm)
    return PostSettings(**values).validate()


def _lod0(asset: Asset):
    lods, _, _ = load_game_mesh(asset)
    return lods[0]


def _uses_fbx(packages: dict) -> bool:
    import zipfile

    with zipfile.ZipFile(next(iter(packages.values()))) as archive:
        return any(name.endswith(".fbx") for name in archive.namelist())


def _settings_record(job: SceneJob) -> dict:
    return {"scene": job.settings.__dict__, "engine": job.engine, "generate": job.generate,
            "postprocess": job.post.__dict__, "export": job.export}


def _quiet(fraction: float, message: str) -> None:
    """Progress of one object's stage: the scene reports its own steps instead."""

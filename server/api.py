"""One typed function per endpoint: validate every argument first, then call the pipeline."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__
from .asset import DECIMATE_PREVIEW, AssetStore, validate_asset_id
from .bake.engine import bake_engine_report
from .config import Settings, load_settings
from .errors import InputError, RefusedInput
from .export.fbx import bpy_available
from .export.warm_blender import WARM
from .generators.registry import choose
from .generators.registry import report as generator_report
from .jobs import CancelFlags, Context
from .meshdata import MeshArrays
from .meshfile import glb_bytes
from .options import (
    bake_settings,
    engine_name,
    export_options,
    generate_settings,
    kind_option,
    paint_settings,
    parse_options,
    parse_views,
    post_settings,
    sanitize_name,
    seed_value,
    uploaded_path,
)
from .owners import LOCAL
from .presets import all_presets, get_preset
from .quota import QuotaLedger
from .rigging.methods import report as rig_method_report
from .rigging.methods import resolve as resolve_rig_method
from .runners.bake import run_bake
from .runners.export import run_export
from .runners.generate import GenerateJob, run_generate, run_import_mesh
from .runners.postprocess import run_postprocess
from .runners.rig import run_rig
from .runners.scene import SceneJob, run_scene
from .runners.stored import read_high_poly, unwrapped_size
from .runners.text import check_text, run_generate_text
from .scene import SCENE_KEYS, scene_settings
from .scene.models import check_scene_model
from .scene.models import report as scene_model_report
from .schema import BAKE, FORGE_KEYS, GENERATE, POSTPROCESS, RIG
from .stages.background import METHODS as BACKGROUND_METHODS
from .stages.background import rembg_status
from .stages.decimate import decimate_preview
from .text2image import models as text_models
from .text2image.instruct import instruct_source

MAX_IMAGES = 4
GENERATE_OPTIONS = GENERATE.names
IMPORT_OPTIONS = {"kind", "up_axis", "asset_id"}
POSTPROCESS_OPTIONS = POSTPROCESS.names
RIG_OPTIONS = RIG.names
BAKE_OPTIONS = BAKE.names
FORGE_SECTIONS = FORGE_KEYS
TEXT_SECTIONS = GENERATE_OPTIONS | {"text", "generator", "preset", "seed"}
SCENE_SECTIONS = {"generate", "postprocess", "bake", "export", "engine", "generator", "seed", "asset_id",
                  "scene_model", "scene_model_options", *SCENE_KEYS}


def _no_progress(fraction: float, message: str) -> None:
    return None


def _generate_job(paths: list[Path], labels: list[str], name: str, generator: Any, preset: Any, seed: Any,
                  opts: dict, owner: str) -> GenerateJob:
    """A generate request with every setting checked (the images and views are checked by the caller)."""
    preset_data = get_preset(preset or None)
    if generator is not None and not isinstance(generator, str):
        raise InputError("generator", generator, "a generator name such as 'silhouette' or 'auto'")
    settings, background = generate_settings(opts, preset_data)
    return GenerateJob(
        images=paths, views=labels, name=name, kind=kind_option(opts.get("kind"), preset_data.get("kind", "prop")),
        generator=generator or "auto", preset=preset_data, seed=seed_value(seed), settings=settings,
        background=background, asset_id=validate_asset_id(opts["asset_id"]) if "asset_id" in opts else None,
        owner=owner)


class ForgeApi:
    """The server's endpoints as plain Python; app.py only wires them to Gradio."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()
        store = AssetStore(self.settings.workspace)
        self.interrupted = store.mark_interrupted()
        ledger = QuotaLedger(self.settings.workspace / "quota.json", self.settings.daily_gpu_seconds)
        self.ctx = Context(self.settings, store, CancelFlags(), ledger)
        if bpy_available():
            WARM.start()  # Blender imports itself now, so the first export finds it ready

    def health(self) -> str:
        rembg_ok, rembg_reason = rembg_status()
        try:
            import torch
            device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            device = "cpu"
        return json.dumps({
            "status": "ok", "version": __version__, "device": device, "python": platform.python_version(),
            "generators": generator_report(),
            "background_removal": {"methods": list(BACKGROUND_METHODS), "rembg": {"available": rembg_ok,
                                                                                 "reason": rembg_reason}},
            "bake_engines": bake_engine_report(),
            "rig_methods": rig_method_report(),
            "scene_models": scene_model_report(),
            "text_to_image": text_models.report(),
            "prompt_expander": {"instruct": instruct_source()[1]},
            "paint_hidden": dict(zip(("available", "reason"), text_models.availability(text_models.INPAINT))),
            "limits": {"max_images": MAX_IMAGES, "max_image_pixels": self.settings.max_image_pixels,
                       "max_upload_faces": self.settings.max_upload_faces},
            "queue_size": self.settings.queue_size,
        })

    def generate(self, images: Any, name: Any = "", generator: Any = "auto", views: Any = "",
                 preset: Any = "", seed: Any = 0, options: Any = "",
                 progress: Callable[[float, str], None] = _no_progress, *, owner: str = LOCAL) -> tuple[str, str]:
        """Images (1 to 4, labelled views) to a coloured high poly; returns (asset JSON, GLB path)."""
        if images is None or images == []:
            raise InputError("images", images, "1 to 4 image files")
        if not isinstance(images, (list, tuple)):
            images = [images]
        if len(images) > MAX_IMAGES:
            raise InputError("images", f"{len(images)} files", f"1 to {MAX_IMAGES} images")
        paths = [uploaded_path(image, f"images[{i}]") for i, image in enumerate(images)]
        labels = parse_views(views, len(paths))
        job = _generate_job(paths, labels, sanitize_name(name, sanitize_name(Path(paths[0]).stem)), generator,
                            preset, seed, parse_options(options, GENERATE_OPTIONS), owner)
        record, glb = run_generate(self.ctx, job, progress)
        return json.dumps(record), str(glb)

    def generate_text(self, prompt: Any, name: Any = "", options: Any = "",
                      progress: Callable[[float, str], None] = _no_progress, *,
                      owner: str = LOCAL) -> tuple[str, str]:
        """A prompt to a concept picture (text-to-image, gated for a clean background) to a coloured high poly.

        options: generate's options plus generator, preset, seed and text ({model, seed, attempts, size, steps,
        expander}); returns (asset JSON with text_to_image: expanded prompt, seed, model, gate verdicts; GLB path).
        """
        opts = parse_options(options, TEXT_SECTIONS)
        text_options = opts.get("text") or {}
        if not isinstance(text_options, dict):
            raise InputError("options.text", text_options, "a JSON object of text-to-image options")
        seed = seed_value(opts.get("seed", 0))
        text_options = {"seed": seed, **text_options}
        expanded = check_text(prompt, text_options, self.ctx)
        job = _generate_job([], ["front"], sanitize_name(name, sanitize_name(expanded.subject.title(), "Asset")),
                            opts.get("generator", "auto"), opts.get("preset", ""), seed,
                            {key: value for key, value in opts.items() if key in GENERATE_OPTIONS}, owner)
        choose(job.generator, 1, job.kind, job.settings)  # the 3D step too is checked before the picture is made
        record, glb = run_generate_text(self.ctx, prompt, text_options, job, progress)
        return json.dumps(record), str(glb)

    def import_mesh(self, mesh: Any, name: Any = "", options: Any = "",
                    progress: Callable[[float, str], None] = _no_progress, *, owner: str = LOCAL) -> tuple[str, str]:
        """An uploaded GLB, glTF, PLY or OBJ zip becomes an asset; returns (asset JSON, GLB path)."""
        path = uploaded_path(mesh, "mesh")
        opts = parse_options(options, IMPORT_OPTIONS)
        asset_id = validate_asset_id(opts["asset_id"]) if "asset_id" in opts else None
        record, glb = run_import_mesh(
            self.ctx, path, name=sanitize_name(name), kind=kind_option(opts.get("kind"), "prop"),
            up_axis=str(opts.get("up_axis", "auto")), asset_id=asset_id, progress=progress, owner=owner)
        return json.dumps(record), str(glb)

    def postprocess(self, asset_id: Any, options: Any = "",
                    progress: Callable[[float, str], None] = _no_progress, *, owner: str = LOCAL) -> str:
        """Repair, clean, decimate, symmetrise, unwrap, LODs, collision, pivot and scale; returns asset JSON."""
        opts = parse_options(options, POSTPROCESS_OPTIONS)
        asset = self.ctx.store.open(asset_id, owner)
        settings = post_settings(opts, asset.read().get("parameters", {}).get("preset"))
        with self.ctx.flags.claim(asset.asset_id) as check:
            run_postprocess(asset, settings, progress, check)
        return json.dumps(asset.read())

    def bake(self, asset_id: Any, options: Any = "",
             progress: Callable[[float, str], None] = _no_progress, *, owner: str = LOCAL) -> str:
        """Bake normal (DirectX and OpenGL), base colour, metallic, roughness, AO onto LOD0; returns asset JSON."""
        opts = parse_options(options, BAKE_OPTIONS)
        asset = self.ctx.store.open(asset_id, owner)
        record = asset.read()
        settings, engine = bake_settings(opts, record.get("parameters", {}).get("preset"), unwrapped_size(asset))
        # A text asset's hidden sides are painted after its own subject unless a prompt is given.
        paint = paint_settings(opts.get("paint_hidden"), (record.get("text_to_image") or {}).get("prompt", {})
                               .get("subject", ""))
        with self.ctx.flags.claim(asset.asset_id) as check:
            run_bake(asset, settings, engine, progress, check, quota=self.ctx.quota, paint=paint)
        return json.dumps(asset.read())

    def rig(self, asset_id: Any, options: Any = "",
            progress: Callable[[float, str], None] = _no_progress, *, owner: str = LOCAL) -> str:
        """Rig a post-processed character: a skeleton and skin weights on LOD0; returns asset JSON.

        options: method (auto, template, make_it_animatable, unirig; health says which can run here and why
        not), skeleton (ue5_mannequin, generic), fingers (bool), max_influences (1 to 8, default 4), seed.
        """
        opts = {key: value for key, value in RIG.check(options).items() if value is not None}
        method = resolve_rig_method(opts.pop("method", "auto"), opts)
        asset = self.ctx.store.open(asset_id, owner)
        with self.ctx.flags.claim(asset.asset_id) as check:
            run_rig(asset, method, opts, progress, check, quota=self.ctx.quota)
        return json.dumps(asset.read())

    def export(self, asset_id: Any, engine: Any = "ue5", options: Any = "",
               progress: Callable[[float, str], None] = _no_progress, *, owner: str = LOCAL) -> tuple[str, str]:
        """The engine package (UE5 by default); returns (asset JSON, zip path)."""
        engine_key = engine_name(engine)
        opts = export_options(options)
        asset = self.ctx.store.open(asset_id, owner)
        with self.ctx.flags.claim(asset.asset_id) as check:
            path = run_export(asset, engine_key, opts, progress, check)
        return json.dumps(asset.read()), str(path)

    def decimate_preview(self, asset_id: Any, target_triangles: Any, *, owner: str = LOCAL) -> tuple[str, str]:
        """A quick fast-simplification of the high poly for the UI slider: (JSON with the count, GLB path)."""
        POSTPROCESS.field("target_triangles").check(target_triangles, "target_triangles")
        asset = self.ctx.store.open(asset_id, owner)
        with self.ctx.flags.claim(asset.asset_id):  # it writes into the asset folder like any other job
            mesh = read_high_poly(asset)
            preview = decimate_preview(MeshArrays(mesh.vertices, mesh.faces), int(target_triangles))
            path = asset.write_bytes(DECIMATE_PREVIEW, glb_bytes(preview.to_trimesh()))
        return json.dumps({"asset_id": asset.asset_id, "triangles": preview.face_count,
                           "high_poly_triangles": len(mesh.faces)}), str(path)

    def forge(self, images: Any, name: Any = "", views: Any = "", preset: Any = "", options: Any = "",
              progress: Callable[[float, str], None] = _no_progress, *, owner: str = LOCAL) -> tuple[str, str]:
        """The whole chain: generate, postprocess, rig (characters), bake, export; returns (asset JSON, zip path).

        With no images and options.prompt, the chain starts from the prompt (generate_text; options.text holds
        its text-to-image options). With neither, options.asset_id names an existing asset (generated or
        imported) whose chain is finished from postprocess on. This is the one place the stage order is written.
        """
        opts = parse_options(options, FORGE_SECTIONS)
        prompt = opts.get("prompt")
        has_images = images not in (None, [], "")
        if prompt is not None and has_images:
            raise InputError("options.prompt", prompt, "no prompt when images are given (images or a prompt)")
        existing = None
        if not has_images and prompt is None:
            if "asset_id" not in opts:
                raise InputError("images", images, "1 to 4 image files, or options.prompt, or options.asset_id of "
                                 "an asset to finish")
            existing = self.ctx.store.open(opts["asset_id"], owner)
        sections = {key: opts.get(key) or {} for key in ("generate", "postprocess", "rig", "bake", "export")}
        for key, value in sections.items():
            if not isinstance(value, dict):
                raise InputError(f"options.{key}", value, "a JSON object of that stage's options")
        engine_key = engine_name(opts.get("engine", "ue5"))
        generate_options = dict(sections["generate"])
        if "kind" in opts:
            generate_options["kind"] = opts["kind"]
        # Check every stage's options before the first one runs.
        parse_options(sections["postprocess"], POSTPROCESS_OPTIONS)
        post_settings(sections["postprocess"], preset or None)
        bake_settings(parse_options(sections["bake"], BAKE_OPTIONS), preset or None)
        export_options(sections["export"])
        RIG.check(sections["rig"], "options.rig")

        def part(start: float, end: float):
            return lambda fraction, message: progress(start + (end - start) * fraction, message)

        chosen = opts.get("asset_id", generate_options.get("asset_id"))
        asset_id = existing.asset_id if existing else validate_asset_id(chosen) if chosen else self.ctx.store.new_id()
        generate_options["asset_id"] = asset_id
        # One claim over the whole chain: a cancel that arrives between two stages stops the next one.
        with self.ctx.flags.claim(asset_id):
            if existing is not None:
                progress(0.35, "finishing an existing asset")
            elif prompt is not None:
                text = {"generator": opts.get("generator", "auto"), "preset": preset, "seed": opts.get("seed", 0),
                        "text": opts.get("text") or {}, **generate_options}
                self.generate_text(prompt, name, text, part(0.0, 0.35), owner=owner)
            else:
                self.generate(images, name, opts.get("generator", "auto"), views, preset, opts.get("seed", 0),
                              generate_options, part(0.0, 0.35), owner=owner)
            self.postprocess(asset_id, sections["postprocess"], part(0.35, 0.55), owner=owner)
            if self.ctx.store.open(asset_id, owner).read().get("kind") == "character":
                try:
                    self.rig(asset_id, sections["rig"], part(0.55, 0.6), owner=owner)
                except (InputError, RefusedInput):
                    pass  # recorded as the rig stage's error; the character is exported unrigged, and says why
            self.bake(asset_id, sections["bake"], part(0.6, 0.9), owner=owner)
            return self.export(asset_id, engine_key, sections["export"], part(0.9, 1.0), owner=owner)

    def scene(self, image: Any, name: Any = "", options: Any = "",
              progress: Callable[[float, str], None] = _no_progress, *, owner: str = LOCAL) -> tuple[str, str]:
        """One picture of a scene -> each object made game-ready as its own asset, placed; (asset JSON, scene zip).

        options: the scene's own (vfov_deg, camera_height_m, pitch_deg, max_objects, background, fit), plus
        engine, generator, seed, asset_id and the stage sections generate, postprocess, bake, export as in forge.
        """
        path = uploaded_path(image, "image")
        opts = parse_options(options, SCENE_SECTIONS)
        sections = {key: opts.get(key) or {} for key in ("generate", "postprocess", "rig", "bake", "export")}
        for key, value in sections.items():
            if not isinstance(value, dict):
                raise InputError(f"options.{key}", value, "a JSON object of that stage's options")
        preset_data = get_preset(None)
        generate_opts = parse_options(sections["generate"], GENERATE_OPTIONS - {"asset_id", "kind", "background"})
        generate, _ = generate_settings(generate_opts, preset_data)
        scene_model = check_scene_model(opts.get("scene_model"), opts.get("scene_model_options"))
        generator = choose(str(opts.get("generator", "auto")), 1, "prop", generate)
        settings = scene_settings(opts, fit_default="bounds" if generator.name == "silhouette" else "outline")
        post = post_settings(parse_options(sections["postprocess"], POSTPROCESS_OPTIONS), None)
        bake = bake_settings(parse_options(sections["bake"], BAKE_OPTIONS), None)
        job = SceneJob(image=path, name=sanitize_name(name, "Scene"), settings=settings, generator=generator.name,
                       seed=seed_value(opts.get("seed", 0)), generate=generate, post=post, bake=bake,
                       export=export_options(sections["export"]), engine=engine_name(opts.get("engine", "ue5")),
                       preset=preset_data["name"], owner=owner, scene_model=scene_model,
                       scene_model_options=dict(opts.get("scene_model_options") or {}),
                       asset_id=validate_asset_id(opts["asset_id"]) if "asset_id" in opts else self.ctx.store.new_id())
        record, package = run_scene(self.ctx, job, progress)
        return json.dumps(record), str(package)

    def assets(self, *, owner: str = LOCAL) -> str:
        return json.dumps(self.ctx.store.history(owner))

    def asset(self, asset_id: Any, *, owner: str = LOCAL) -> str:
        return json.dumps(self.ctx.store.open(asset_id, owner).read())

    def cancel(self, asset_id: Any, *, owner: str = LOCAL) -> str:
        """Ask a running job to stop; it stops at its next check and the asset is marked cancelled."""
        asset_id = validate_asset_id(asset_id)
        asset = self.ctx.store.open(asset_id, owner)
        status = asset.read().get("status")
        running = self.ctx.flags.cancel(asset_id)
        return json.dumps({"asset_id": asset_id, "cancel_requested": running, "status": status})

    def presets(self) -> str:
        return json.dumps(all_presets())

    def quota(self) -> str:
        return json.dumps(self.ctx.quota.summary())

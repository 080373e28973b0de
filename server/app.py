"""Gradio Blocks: the tabs and the named API endpoints, wired to ForgeApi and nothing else."""

from __future__ import annotations

import functools
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder as gradio_upload_folder

from .api import ForgeApi
from .errors import Cancelled, ForgeError, public_message
from .generators.registry import GENERATORS
from .owners import on_space, owner_of
from .presets import DEFAULT_PRESET, all_presets

log = logging.getLogger("open3dforge")


# Folders whose paths never reach a client (build_app adds the workspace): see errors.public_message.
SERVER_ROOTS = [tempfile.gettempdir(), gradio_upload_folder(), str(Path(__file__).resolve().parent.parent),
                sys.prefix, sys.base_prefix, str(Path.home())]


def _endpoint(fn):
    """Turn domain errors into gr.Error so clients see the message (less server paths); log anything unexpected."""

    def shown(exc: BaseException) -> str:
        return public_message(str(exc), SERVER_ROOTS)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Cancelled as exc:
            raise gr.Error(shown(exc), title="Cancelled") from exc
        except ForgeError as exc:
            # A quota refusal keeps ZeroGPU's own title so clients can tell it apart.
            raise gr.Error(shown(exc), title=getattr(exc, "title", "Open3DForge")) from exc
        except gr.Error:
            raise
        except Exception as exc:
            log.exception("unexpected failure in %s", fn.__name__)
            raise gr.Error(f"internal error in {fn.__name__}: {type(exc).__name__}: {shown(exc)}",
                           title="Open3DForge internal error") from exc

    return wrapper


def _progress_of(progress: gr.Progress):
    return lambda fraction, message: progress(fraction, desc=message)


UPLOAD_CACHE = (3600, 24 * 3600)  # (how often, how old) in seconds


def launch_options(api: ForgeApi) -> dict:
    """What every launch of the app passes (python -m server and the Space): uploads over the limit are refused
    by Gradio before they reach an endpoint. The workspace is not among Gradio's allowed paths: no route serves
    its files; a client gets only the copies its own requests returned (see deliver)."""
    return {"show_error": True, "max_file_size": api.settings.max_upload_bytes}


OUTBOX_AGE_S = 600  # Gradio copies a returned file into its cache as the request ends; ours can go after that


def deliver(path: str) -> str:
    """A copy of an asset's file where Gradio may take it from (its upload folder), for this response only.

    Gradio serves a returned file from its cache under a digest of the content, so only the client that got the
    response knows the address. Copies older than OUTBOX_AGE_S are removed on the way.
    """
    outbox = Path(gradio_upload_folder()) / "o3f-outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - OUTBOX_AGE_S
    for old in outbox.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:
            pass
    folder = Path(tempfile.mkdtemp(dir=outbox))
    target = folder / Path(path).name
    shutil.copyfile(path, target)
    return str(target)


def build_app(api: ForgeApi) -> gr.Blocks:
    SERVER_ROOTS.append(str(api.settings.workspace))
    # Every function takes the gr.Request (Gradio passes it; it is not an API argument) to know the owner.
    @_endpoint
    def generate(images, name, generator, views, preset, seed, options, request: gr.Request,
                 progress=gr.Progress()):
        record, glb = api.generate(images, name, generator, views, preset, seed, options, _progress_of(progress),
                                   owner=owner_of(request))
        return record, deliver(glb)

    @_endpoint
    def generate_text(prompt, name, options, request: gr.Request, progress=gr.Progress()):
        record, glb = api.generate_text(prompt, name, options, _progress_of(progress), owner=owner_of(request))
        return record, deliver(glb)

    @_endpoint
    def import_mesh(mesh, name, options, request: gr.Request, progress=gr.Progress()):
        record, glb = api.import_mesh(mesh, name, options, _progress_of(progress), owner=owner_of(request))
        return record, deliver(glb)

    @_endpoint
    def postprocess(asset_id, options, request: gr.Request, progress=gr.Progress()):
        return api.postprocess(asset_id, options, _progress_of(progress), owner=owner_of(request))

    @_endpoint
    def preview_decimation(asset_id, target, request: gr.Request):
        summary, glb = api.decimate_preview(asset_id, target, owner=owner_of(request))
        return f"{json.loads(summary)['triangles']} triangles", deliver(glb)

    @_endpoint
    def bake(asset_id, options, request: gr.Request, progress=gr.Progress()):
        return api.bake(asset_id, options, _progress_of(progress), owner=owner_of(request))

    @_endpoint
    def rig(asset_id, options, request: gr.Request, progress=gr.Progress()):
        return api.rig(asset_id, options, _progress_of(progress), owner=owner_of(request))

    @_endpoint
    def export(asset_id, engine, options, request: gr.Request, progress=gr.Progress()):
        record, package = api.export(asset_id, engine, options, _progress_of(progress), owner=owner_of(request))
        return record, deliver(package)

    @_endpoint
    def forge(images, name, views, preset, options, request: gr.Request, progress=gr.Progress()):
        record, package = api.forge(images, name, views, preset, options, _progress_of(progress),
                                    owner=owner_of(request))
        return record, deliver(package)

    @_endpoint
    def scene(image, name, options, request: gr.Request, progress=gr.Progress()):
        record, package = api.scene(image, name, options, _progress_of(progress), owner=owner_of(request))
        return record, deliver(package)

    @_endpoint
    def health():
        return api.health()

    @_endpoint
    def assets(request: gr.Request):
        return api.assets(owner=owner_of(request))

    @_endpoint
    def asset(asset_id, request: gr.Request):
        return api.asset(asset_id, owner=owner_of(request))

    @_endpoint
    def cancel(asset_id, request: gr.Request):
        return api.cancel(asset_id, owner=owner_of(request))

    @_endpoint
    def presets():
        return api.presets()

    @_endpoint
    def quota():
        return api.quota()

    heavy = {"concurrency_limit": api.settings.heavy_jobs, "concurrency_id": "heavy"}  # one limit for them all
    generator_choices = ["auto", *GENERATORS]
    preset_choices = list(all_presets())

    # Uploads land in Gradio's cache: files older than a day are deleted every hour (the assets keep their copies).
    with gr.Blocks(title="Open3DForge", delete_cache=UPLOAD_CACHE) as app:
        gr.Markdown("# Open3DForge\nConcept images or meshes to game-ready assets for UE5, Unity and Godot.")
        if on_space():  # signed-in visitors own their assets across visits (server/owners.py)
            gr.LoginButton()
        with gr.Tabs():
            with gr.Tab("Generate"):
                with gr.Row():
                    with gr.Column():
                        images = gr.File(label="Images (1 to 4 views)", file_count="multiple", type="filepath",
                                         file_types=["image"])
                        views = gr.Textbox(label="Views", placeholder="front,left,back,right",
                                           info="one label per image, in order; one image is the front")
                        name = gr.Textbox(label="Asset name", placeholder="Barrel_01")
                        with gr.Row():
                            generator = gr.Dropdown(generator_choices, value="auto", label="Generator",
                                                    allow_custom_value=True)
                            preset = gr.Dropdown(preset_choices, value=DEFAULT_PRESET, label="Preset",
                                                 allow_custom_value=True)
                            seed = gr.Number(value=0, precision=0, label="Seed")
                        options = gr.Textbox(label="Options (JSON)", placeholder='{"thickness": 1.0}')
                        with gr.Row():
                            prompt = gr.Textbox(label="Or a prompt instead of images",
                                                placeholder="a wooden barrel with iron bands", scale=3)
                            text_button = gr.Button("Generate from prompt", scale=1)
                        with gr.Row():
                            generate_button = gr.Button("Generate", variant="primary")
                            forge_button = gr.Button("Forge to UE5 zip", variant="primary")
                        forge_options = gr.Textbox(label="Forge options (JSON)",
                                                   placeholder='{"engine": "ue5", "postprocess": {"target_triangles": 8000}}')
                    with gr.Column():
                        viewer = gr.Model3D(label="High poly", clear_color=(0.12, 0.12, 0.14, 1.0))
                        generate_report = gr.Code(label="Asset", language="json")
                        forge_zip = gr.File(label="Engine package")
                with gr.Accordion("Import a mesh instead", open=False):
                    mesh_file = gr.File(label="GLB, glTF, PLY, or a zip with an OBJ, its MTL and textures",
                                        type="filepath", file_types=[".glb", ".gltf", ".ply", ".zip"])
                    mesh_name = gr.Textbox(label="Asset name")
                    mesh_options = gr.Textbox(label="Options (JSON)", placeholder='{"up_axis": "auto"}')
                    import_button = gr.Button("Import mesh")
            with gr.Tab("Post-Process"):
                with gr.Row():
                    post_asset = gr.Textbox(label="Asset id")
                    post_options = gr.Textbox(label="Options (JSON)",
                                              placeholder='{"target_triangles": 10000, "texture_size": 2048, '
                                                          '"symmetry": "off", "height": "barrel"}')
                with gr.Row():
                    post_button = gr.Button("Post-process", variant="primary")
                    bake_options = gr.Textbox(label="Bake options (JSON)", placeholder='{"ao_samples": 32}')
                    bake_button = gr.Button("Bake maps", variant="primary")
                with gr.Row():
                    with gr.Column():
                        post_target = gr.Slider(100, 500_000, value=10_000, step=100, label="Target triangles (preview)")
                        post_count = gr.Markdown()
                    post_viewer = gr.Model3D(label="Decimation preview", clear_color=(0.12, 0.12, 0.14, 1.0))
                post_report = gr.Code(label="Asset", language="json")
            with gr.Tab("Scene"):
                gr.Markdown("One picture of several objects on a plain backdrop: each object becomes its own "
                            "game-ready asset, placed where it stood, in one zip with scene.json and a level "
                            "import script.")
                with gr.Row():
                    with gr.Column():
                        scene_image = gr.File(label="Scene picture", type="filepath", file_types=["image"])
                        scene_name = gr.Textbox(label="Scene name", placeholder="Market")
                        scene_options = gr.Textbox(label="Options (JSON)",
                                                   placeholder='{"vfov_deg": 50, "camera_height_m": 1.6, '
                                                               '"pitch_deg": 15, "max_objects": 16}')
                        scene_button = gr.Button("Make the scene", variant="primary")
                    with gr.Column():
                        scene_report = gr.Code(label="Scene asset", language="json")
                        scene_zip = gr.File(label="Scene package")
            with gr.Tab("Auto-Rig"):
                gr.Markdown("A post-processed humanoid in a T- or A-pose gets the UE5 Mannequin's skeleton and skin "
                            "weights (forge does this for kind: character); its UE5 zip then holds SK_<Name>.")
                with gr.Row():
                    rig_asset = gr.Textbox(label="Asset id")
                    rig_options = gr.Textbox(label="Options (JSON)",
                                             placeholder='{"method": "auto", "fingers": false, "max_influences": 4}')
                rig_button = gr.Button("Rig", variant="primary")
                rig_report = gr.Code(label="Asset", language="json")
            with gr.Tab("Export"):
                with gr.Row():
                    export_asset = gr.Textbox(label="Asset id")
                    export_engine = gr.Dropdown(["ue5", "unity", "godot"], value="ue5", label="Engine",
                                                allow_custom_value=True)
                    export_options = gr.Textbox(label="Options (JSON)", placeholder='{"nanite": false}')
                export_button = gr.Button("Export", variant="primary")
                export_zip = gr.File(label="Engine package")
                export_report = gr.Code(label="Asset", language="json")
            with gr.Tab("Presets"):
                presets_button = gr.Button("Show presets")
                presets_out = gr.Code(language="json", label="Presets")
            with gr.Tab("Diagnostics"):
                with gr.Row():
                    health_button = gr.Button("Health")
                    quota_button = gr.Button("GPU quota")
                    assets_button = gr.Button("History")
                diagnostics_out = gr.Code(language="json", label="Result")
                with gr.Row():
                    asset_id = gr.Textbox(label="Asset id")
                    asset_button = gr.Button("Show asset")
                    cancel_button = gr.Button("Cancel job", variant="stop")

        generate_button.click(generate, [images, name, generator, views, preset, seed, options],
                              [generate_report, viewer], api_name="generate", **heavy)
        text_button.click(generate_text, [prompt, name, options], [generate_report, viewer], api_name="generate_text",
                          **heavy)
        import_button.click(import_mesh, [mesh_file, mesh_name, mesh_options], [generate_report, viewer],
                            api_name="import_mesh", **heavy)
        forge_button.click(forge, [images, name, views, preset, forge_options], [generate_report, forge_zip],
                           api_name="forge", **heavy)
        post_button.click(postprocess, [post_asset, post_options], post_report, api_name="postprocess",
                          **heavy)
        post_target.change(preview_decimation, [post_asset, post_target], [post_count, post_viewer],
                           api_name="decimate_preview", trigger_mode="always_last", **heavy)
        bake_button.click(bake, [post_asset, bake_options], post_report, api_name="bake",
                          **heavy)
        rig_button.click(rig, [rig_asset, rig_options], rig_report, api_name="rig", **heavy)
        export_button.click(export, [export_asset, export_engine, export_options], [export_report, export_zip],
                            api_name="export", **heavy)
        scene_button.click(scene, [scene_image, scene_name, scene_options], [scene_report, scene_zip],
                           api_name="scene", **heavy)
        health_button.click(health, None, diagnostics_out, api_name="health")
        quota_button.click(quota, None, diagnostics_out, api_name="quota")
        assets_button.click(assets, None, diagnostics_out, api_name="assets")
        asset_button.click(asset, asset_id, diagnostics_out, api_name="asset")
        cancel_button.click(cancel, asset_id, diagnostics_out, api_name="cancel", concurrency_limit=None)
        presets_button.click(presets, None, presets_out, api_name="presets")
    app.queue(max_size=api.settings.queue_size)
    return app

"""The named API endpoints (the contract clients rely on), wired to ForgeApi through hidden components.

Every argument but the inputs themselves has a default, so the shortest call works:
`client.predict(images=[handle_file("front.png")], api_name="/forge")`. The visible web UI (server/ui.py) calls
the same ForgeApi through its own private events, so its controls can change without changing the API.
"""

from __future__ import annotations

import json

import gradio as gr

from .api import ForgeApi
from .owners import owner_of
from . import tool_docs as docs
from .presets import DEFAULT_PRESET
from .tool_docs import described
from .web import deliver, endpoint, progress_of

IMAGE_TYPES = ["image"]
MESH_TYPES = [".glb", ".gltf", ".ply", ".zip"]


def _text(value: str = "", label: str = "") -> gr.Textbox:
    return gr.Textbox(value=value, label=label)


def _json(label: str) -> gr.Code:
    return gr.Code(language="json", label=label)


def add_routes(api: ForgeApi, heavy: dict) -> None:
    """Define every endpoint inside the Blocks being built (its components stay hidden)."""

    @endpoint
    @described(images=docs.IMAGES, name=docs.NAME, generator=docs.GENERATOR, views=docs.VIEWS, preset=docs.PRESET,
               seed="Random seed (0 to 2147483647); the same seed and inputs give the same shape",
               options=docs.GENERATE_OPTIONS)
    def generate(images, name, generator, views, preset, seed, options, request: gr.Request,
                 progress=gr.Progress()):
        """Images (1 to 4, labelled views) to a coloured high poly: the asset's JSON and high_poly.glb."""
        record, glb = api.generate(images, name, generator, views, preset, seed, options, progress_of(progress),
                                   owner=owner_of(request))
        return record, deliver(glb)

    @endpoint
    @described(prompt="What to make, in words (1 to 1000 characters), e.g. 'a wooden barrel with iron bands'",
               name=docs.NAME, options="A JSON object: generate's options plus generator, preset, seed and text "
               "(text-to-image options: model, seed, attempts, size, steps, expander)")
    def generate_text(prompt, name, options, request: gr.Request, progress=gr.Progress()):
        """A prompt to a concept picture (gated for a clean background) to a coloured high poly."""
        record, glb = api.generate_text(prompt, name, options, progress_of(progress), owner=owner_of(request))
        return record, deliver(glb)

    @endpoint
    @described(mesh="A GLB, glTF, PLY or zipped OBJ (with its MTL and textures)", name=docs.NAME,
               options="A JSON object: kind (prop, character, environment), up_axis (auto, Y or Z), asset_id")
    def import_mesh(mesh, name, options, request: gr.Request, progress=gr.Progress()):
        """A GLB, glTF, PLY or zipped OBJ becomes an asset's high poly."""
        record, glb = api.import_mesh(mesh, name, options, progress_of(progress), owner=owner_of(request))
        return record, deliver(glb)

    @endpoint
    @described(asset_id=docs.ASSET_ID, options=docs.POSTPROCESS_OPTIONS)
    def postprocess(asset_id, options, request: gr.Request, progress=gr.Progress()):
        """Repair, clean, decimate, unwrap, LODs, collision, pivot and size of an asset."""
        return api.postprocess(asset_id, options, progress_of(progress), owner=owner_of(request))

    @endpoint
    @described(asset_id=docs.ASSET_ID, target="Triangles to decimate the high poly to (100 to 500000)")
    def decimate_preview(asset_id, target, request: gr.Request):
        """A quick decimation of the high poly to see a triangle count."""
        summary, glb = api.decimate_preview(asset_id, target, owner=owner_of(request))
        return f"{json.loads(summary)['triangles']} triangles", deliver(glb)

    @endpoint
    @described(asset_id=docs.ASSET_ID, options=docs.RIG_OPTIONS)
    def rig(asset_id, options, request: gr.Request, progress=gr.Progress()):
        """The UE5 Mannequin skeleton and skin weights on a post-processed humanoid."""
        return api.rig(asset_id, options, progress_of(progress), owner=owner_of(request))

    @endpoint
    @described(asset_id=docs.ASSET_ID, options=docs.BAKE_OPTIONS)
    def bake(asset_id, options, request: gr.Request, progress=gr.Progress()):
        """Normal, base colour, metallic, roughness and AO maps onto LOD0."""
        return api.bake(asset_id, options, progress_of(progress), owner=owner_of(request))

    @endpoint
    @described(asset_id=docs.ASSET_ID, engine=docs.ENGINE, options=docs.EXPORT_OPTIONS)
    def export(asset_id, engine, options, request: gr.Request, progress=gr.Progress()):
        """The engine package (ue5, unity or godot) of a baked asset."""
        record, package = api.export(asset_id, engine, options, progress_of(progress), owner=owner_of(request))
        return record, deliver(package)

    @endpoint
    @described(images=docs.IMAGES + "; none with options.prompt or options.asset_id", name=docs.NAME,
               views=docs.VIEWS, preset=docs.PRESET, options=docs.FORGE_OPTIONS)
    def forge(images, name, views, preset, options, request: gr.Request, progress=gr.Progress()):
        """The whole chain from images (or options.prompt, or options.asset_id) to the engine zip."""
        record, package = api.forge(images, name, views, preset, options, progress_of(progress),
                                    owner=owner_of(request))
        return record, deliver(package)

    @endpoint
    @described(image="One picture of several objects standing on a plain floor or backdrop", name=docs.NAME,
               options="A JSON object: vfov_deg, camera_height_m, pitch_deg, max_objects, background, fit, "
               "scene_model, scene_model_options, engine, generator, seed, asset_id and the sections generate, "
               "postprocess, bake and export as in forge")
    def scene(image, name, options, request: gr.Request, progress=gr.Progress()):
        """One picture of several objects to placed game-ready assets in one scene zip."""
        record, package = api.scene(image, name, options, progress_of(progress), owner=owner_of(request))
        return record, deliver(package)

    @endpoint
    def health():
        """What this server can do: generators, models, bake engines, limits."""
        return api.health()

    @endpoint
    def assets(request: gr.Request):
        """Your assets, newest first."""
        return api.assets(owner=owner_of(request))

    @endpoint
    @described(asset_id=docs.ASSET_ID)
    def asset(asset_id, request: gr.Request):
        """One asset's full record."""
        return api.asset(asset_id, owner=owner_of(request))

    @endpoint
    @described(asset_id=docs.ASSET_ID)
    def cancel(asset_id, request: gr.Request):
        """Ask a running job on the asset to stop."""
        return api.cancel(asset_id, owner=owner_of(request))

    @endpoint
    def presets():
        """The named presets."""
        return api.presets()

    @endpoint
    def quota():
        """GPU seconds used today against the daily limit."""
        return api.quota()

    with gr.Group(visible=False):
        images = gr.File(label="images", file_count="multiple", type="filepath", file_types=IMAGE_TYPES)
        image = gr.File(label="image", type="filepath", file_types=IMAGE_TYPES)
        mesh = gr.File(label="mesh", type="filepath", file_types=MESH_TYPES)
        name, views, options, prompt = _text(label="name"), _text(label="views"), _text(label="options"), \
            _text(label="prompt")
        asset_id = _text(label="asset_id")
        generator = gr.Dropdown(["auto"], value="auto", label="generator", allow_custom_value=True)
        preset = gr.Dropdown([DEFAULT_PRESET], value=DEFAULT_PRESET, label="preset", allow_custom_value=True)
        engine = gr.Dropdown(["ue5", "unity", "godot"], value="ue5", label="engine", allow_custom_value=True)
        seed = gr.Number(value=0, precision=0, label="seed")
        target = gr.Slider(100, 500_000, value=10_000, step=100, label="target_triangles")
        record, glb, package, text = _json("record"), gr.File(label="glb"), gr.File(label="package"), _text()

    routes = [
        (generate, [images, name, generator, views, preset, seed, options], [record, glb], True),
        (generate_text, [prompt, name, options], [record, glb], True),
        (import_mesh, [mesh, name, options], [record, glb], True),
        (forge, [images, name, views, preset, options], [record, package], True),
        (postprocess, [asset_id, options], record, True),
        (decimate_preview, [asset_id, target], [text, glb], True),
        (rig, [asset_id, options], record, True),
        (bake, [asset_id, options], record, True),
        (export, [asset_id, engine, options], [record, package], True),
        (scene, [image, name, options], [record, package], True),
        (health, None, record, False), (quota, None, record, False), (assets, None, record, False),
        (asset, asset_id, record, False), (presets, None, record, False),
    ]
    for fn, inputs, outputs, is_heavy in routes:
        _listener(fn, inputs, outputs, fn.__name__, heavy if is_heavy else {})
    _listener(cancel, asset_id, record, "cancel", {"concurrency_limit": None})


def _listener(fn, inputs, outputs, api_name: str, limits: dict) -> None:
    """One endpoint: a hidden trigger whose event carries the API name and the function's docstring."""
    trigger = gr.Button(visible=False)
    # api_description left None: Gradio reads the summary and the Args lines (view_api and the MCP tools).
    trigger.click(fn, inputs, outputs, api_name=api_name, **limits)

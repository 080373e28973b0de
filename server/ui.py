"""The web UI a Space visitor uses: typed controls from the schema, the asset carried across tabs, a viewer, the
checklist, the library, progress and Cancel. Its events are private; clients use the endpoints in routes.py."""

from __future__ import annotations

import json

import gradio as gr

from .api import ForgeApi
from .asset import HIGH_POLY, RECORD
from .generators.registry import GENERATORS
from .errors import InputError
from .inspect_views import VIEWS, checklist_rows, preview_png, quota_bar, view_glb
from .owners import owner_of
from .options import parse_views
from .presets import DEFAULT_PRESET, all_presets, get_preset
from .schema import BAKE, EXPORT, GENERATE, POSTPROCESS, RIG, parse
from .ui_controls import controls, options_from, shown_value
from .web import deliver, endpoint, progress_of

STAGES = {"generate": GENERATE, "postprocess": POSTPROCESS, "rig": RIG, "bake": BAKE, "export": EXPORT}
PRIVATE = {"api_visibility": "private"}
CHECK_HEADERS = ["check", "result", "value", "expected"]


def _merged(preset_name: str) -> dict[str, dict]:
    preset = get_preset(preset_name)
    return {name: stage.merged({}, preset) for name, stage in STAGES.items()}


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def build_ui(api: ForgeApi, heavy: dict) -> None:
    """The tabs, inside the Blocks being built."""
    current = gr.State("")  # the asset the tabs work on
    library_ids = gr.State([])
    start = _merged(DEFAULT_PRESET)
    quota = gr.HTML(quota_bar(json.loads(api.quota())))

    with gr.Tabs():
        with gr.Tab("Create"):
            with gr.Row():
                with gr.Column(scale=5):
                    images = gr.File(label="Concept images (1 to 4 views of one object)", file_count="multiple",
                                     type="filepath", file_types=["image"])
                    views = gr.Textbox(value="", label="Views", placeholder="front,left,back,right",
                                       info="one label per image, in order; a single image is the front")
                    labelled = gr.Gallery(label="Your views", columns=4, height=140, allow_preview=False)
                    prompt = gr.Textbox(value="", label="Or describe it (used when there are no images)",
                                        placeholder="a wooden barrel with iron bands")
                    with gr.Row():
                        name = gr.Textbox(value="", label="Asset name", placeholder="Barrel_01")
                        generator = gr.Dropdown(["auto", *GENERATORS], value="auto", label="Generator")
                        preset = gr.Dropdown(list(all_presets()), value=DEFAULT_PRESET, label="Preset")
                        seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
                        engine = gr.Dropdown(["ue5", "unity", "godot"], value="ue5", label="Engine")
                    boxes = {}
                    for stage_name, title, opened in (("postprocess", "Post-process", True), ("generate", "Generate", False),
                                                      ("bake", "Bake", False), ("rig", "Rig (characters)", False),
                                                      ("export", "Export", False)):
                        with gr.Accordion(title, open=opened):
                            boxes[stage_name] = controls(STAGES[stage_name], start[stage_name])
                    with gr.Accordion("Advanced JSON (merged over the controls)", open=False):
                        advanced = gr.Code(value="{}", language="json", label="Forge options")
                    with gr.Row():
                        forge_button = gr.Button("Forge", variant="primary")
                        generate_button = gr.Button("Generate only")
                        cancel_button = gr.Button("Cancel", variant="stop")
                with gr.Column(scale=6):
                    cutouts = gr.Gallery(label="What the generator saw (backgrounds removed)", columns=4, height=160)
                    which = gr.Radio(list(VIEWS), value=VIEWS[0], label="Show")
                    viewer = gr.Model3D(label="Asset", clear_color=(0.12, 0.12, 0.14, 1.0))
                    checklist = gr.Dataframe(headers=CHECK_HEADERS, label="Game-ready checklist", interactive=False)
                    package = gr.File(label="Engine package")
                    status = gr.Markdown()
                    with gr.Accordion("Asset record", open=False):
                        record = gr.Code(language="json", label=RECORD)

        with gr.Tab("Library"):
            refresh = gr.Button("Refresh")
            gallery = gr.Gallery(label="Your assets", columns=4, allow_preview=False, height=360)
            picked = gr.Markdown("Pick an asset to open it.")
            with gr.Row():
                library_engine = gr.Dropdown(["ue5", "unity", "godot"], value="ue5", label="Engine")
                reexport = gr.Button("Export again", variant="primary")
                rerun = gr.Button("Finish again with the Create tab's settings")
            library_package = gr.File(label="Engine package")
            library_checklist = gr.Dataframe(headers=CHECK_HEADERS, label="Game-ready checklist", interactive=False)

        with gr.Tab("Auto-Rig"):
            gr.Markdown("Rig the asset open in Create or picked in the Library (post-processed first): a skeleton "
                        "and skin weights on LOD0. Export it again from the Library to get `SK_<Name>`.")
            rig_boxes = controls(RIG, start["rig"])
            rig_button = gr.Button("Rig this asset", variant="primary")
            rig_summary = gr.Markdown()
            rig_record = gr.Code(language="json", label="Rig report")

        with gr.Tab("Scene"):
            gr.Markdown("One picture of several objects on a plain backdrop: each object becomes its own game-ready "
                        "asset, placed where it stood, in one zip with scene.json and a level import script.")
            with gr.Row():
                scene_image = gr.File(label="Scene picture", type="filepath", file_types=["image"])
                scene_name = gr.Textbox(value="", label="Scene name", placeholder="Market")
                scene_options = gr.Code(value='{"vfov_deg": 50, "camera_height_m": 1.6, "pitch_deg": 15}',
                                        language="json", label="Scene options")
            scene_button = gr.Button("Make the scene", variant="primary")
            scene_package = gr.File(label="Scene package")
            scene_record = gr.Code(language="json", label="Scene asset")

        with gr.Tab("Diagnostics"):
            with gr.Row():
                health_button = gr.Button("Health")
                presets_button = gr.Button("Presets")
            diagnostics = gr.Code(language="json", label="Result")


    control_inputs = [c for stage in STAGES for c in boxes[stage].values()]
    names = [(stage, name) for stage in STAGES for name in boxes[stage]]

    def options_of(data: dict) -> dict:
        """Forge options from the Create tab's controls (data: component -> value, as Gradio passes a set)."""
        sections = {}
        for stage in STAGES:
            stage_names = list(boxes[stage])
            sections[stage] = options_from(STAGES[stage], stage_names, [data[boxes[stage][n]] for n in stage_names])
        options = {**sections, "generator": data[generator] or "auto", "seed": int(data[seed] or 0),
                   "engine": data[engine] or "ue5", "kind": sections["generate"].pop("kind", "prop")}
        if (data[prompt] or "").strip() and not data[images]:
            options["prompt"] = data[prompt].strip()
        return _deep_merge(options, parse(data[advanced], "advanced JSON"))

    def shown(asset_id: str, request: gr.Request, part: str = VIEWS[0]):
        """The viewer, checklist and record of an asset (what every finished job updates)."""
        asset = api.ctx.store.open(asset_id, owner_of(request))
        data = asset.read()
        try:
            glb = deliver(view_glb(asset, part))
        except Exception:  # not post-processed yet: the high poly
            glb = deliver(view_glb(asset, "high poly")) if (asset.folder / HIGH_POLY).is_file() else None
        cut = [str(asset.folder / run["outputs"][key]) for run in data.get("stages", []) if run["stage"] == "background"
               for key in run.get("outputs", {})]
        return glb, checklist_rows(data), json.dumps(data, indent=2), [deliver(path) for path in cut]

    @endpoint
    def ui_forge(data: dict, request: gr.Request, progress=gr.Progress()):
        options = options_of(data)
        record_json, path = api.forge(data[images] or None, data[name], data[views], data[preset], options,
                                      progress_of(progress), owner=owner_of(request))
        asset_id = json.loads(record_json)["asset_id"]
        glb, rows, full, cut = shown(asset_id, request)
        return (asset_id, glb, rows, full, cut, deliver(path), f"**{json.loads(record_json)['name']}** is ready.",
                quota_bar(json.loads(api.quota())))

    @endpoint
    def ui_generate(data: dict, request: gr.Request, progress=gr.Progress()):
        options = options_of(data)
        generate_options = {**options["generate"], "kind": options["kind"]}
        if data[images]:
            record_json, _ = api.generate(data[images], data[name], options["generator"], data[views], data[preset],
                                          options["seed"], generate_options, progress_of(progress),
                                          owner=owner_of(request))
        else:
            record_json, _ = api.generate_text(data[prompt], data[name], {
                **generate_options, "generator": options["generator"], "preset": data[preset],
                "seed": options["seed"], "text": options.get("text") or {}}, progress_of(progress),
                owner=owner_of(request))
        asset_id = json.loads(record_json)["asset_id"]
        glb, rows, full, cut = shown(asset_id, request, "high poly")
        return (asset_id, glb, rows, full, cut, None, f"**{json.loads(record_json)['name']}** generated.",
                quota_bar(json.loads(api.quota())))

    create_outputs = [current, viewer, checklist, record, cutouts, package, status, quota]
    create_inputs = {images, views, prompt, name, generator, preset, seed, engine, advanced, *control_inputs}
    forge_event = forge_button.click(ui_forge, create_inputs, create_outputs, **PRIVATE, **heavy)
    generate_event = generate_button.click(ui_generate, create_inputs, create_outputs, **PRIVATE, **heavy)

    @endpoint
    def ui_cancel(asset_id, request: gr.Request):
        if asset_id:
            api.cancel(asset_id, owner=owner_of(request))
        return "Cancelled." if asset_id else "Nothing to cancel yet."

    # Gradio's own cancel stops a job still waiting in the queue; the server-side cancel stops a running one.
    cancel_button.click(ui_cancel, current, status, cancels=[forge_event, generate_event], **PRIVATE)

    def fill_from_preset(preset_name):
        merged = _merged(preset_name)
        return [shown_value(STAGES[stage].field(name), merged[stage][name]) for stage, name in names]

    preset.change(fill_from_preset, preset, control_inputs, **PRIVATE)

    def show_views(files, labels):
        """Each uploaded image captioned with the view it will be used as (or why the labels do not fit)."""
        files = files or []
        try:
            names = parse_views(labels, len(files)) if files else []
        except InputError as exc:
            return [(path, f"views: {exc.expected}") for path in files]
        return [(path, name) for path, name in zip(files, names)]

    images.change(show_views, [images, views], labelled, **PRIVATE)
    views.change(show_views, [images, views], labelled, **PRIVATE)

    @endpoint
    def ui_view(asset_id, part, request: gr.Request):
        if not asset_id:
            return None
        return deliver(view_glb(api.ctx.store.open(asset_id, owner_of(request)), part))

    which.change(ui_view, [current, which], viewer, **PRIVATE)

    @endpoint
    def ui_library(request: gr.Request):
        rows = json.loads(api.assets(owner=owner_of(request)))
        items, ids = [], []
        for row in rows:
            if not row.get("asset_id"):
                continue
            asset = api.ctx.store.open(row["asset_id"], owner_of(request))
            picture = preview_png(asset)
            if picture is None:
                continue
            data = asset.read()
            items.append((deliver(picture), f"{row.get('name')} · {str(row.get('created', ''))[:16]} · "
                                            f"{row.get('generator')} · seed {data.get('seed')} · {row.get('status')}"))
            ids.append(row["asset_id"])
        return items, ids

    refresh.click(ui_library, None, [gallery, library_ids], **PRIVATE)

    @endpoint
    def ui_pick(ids, evt: gr.SelectData, request: gr.Request):
        asset_id = ids[evt.index]
        glb, rows, full, cut = shown(asset_id, request)
        data = json.loads(full)
        return asset_id, f"**{data['name']}** ({asset_id}), {data['status']}", rows, glb, rows, full

    gallery.select(ui_pick, library_ids, [current, picked, library_checklist, viewer, checklist, record], **PRIVATE)

    @endpoint
    def ui_reexport(asset_id, engine_name, request: gr.Request, progress=gr.Progress()):
        if not asset_id:
            raise gr.Error("Pick an asset in the library first.")
        _, path = api.export(asset_id, engine_name, {}, progress_of(progress), owner=owner_of(request))
        return deliver(path)

    reexport.click(ui_reexport, [current, library_engine], library_package, **PRIVATE, **heavy)

    @endpoint
    def ui_rerun(data: dict, request: gr.Request, progress=gr.Progress()):
        """Post-process, rig, bake and export the picked asset again with the Create tab's settings."""
        asset_id = data[current]
        if not asset_id:
            raise gr.Error("Pick an asset in the library first.")
        options = {key: value for key, value in options_of(data).items() if key not in ("prompt", "generate")}
        record_json, path = api.forge(None, "", "", data[preset], {**options, "asset_id": asset_id},
                                      progress_of(progress), owner=owner_of(request))
        glb, rows, full, _ = shown(asset_id, request)
        return deliver(path), rows, glb, rows, full

    rerun.click(ui_rerun, {current, *create_inputs}, [library_package, library_checklist, viewer, checklist, record],
                **PRIVATE, **heavy)

    @endpoint
    def ui_rig(data: dict, request: gr.Request, progress=gr.Progress()):
        asset_id = data[current]
        if not asset_id:
            raise gr.Error("Open or pick a post-processed asset first (Create or Library).")
        options = options_from(RIG, list(rig_boxes), [data[box] for box in rig_boxes.values()])
        record = json.loads(api.rig(asset_id, options, progress_of(progress), owner=owner_of(request)))
        report = record["stages"][-1]["parameters"]["report"]
        summary = (f"**{record['name']}** rigged by {report.get('method')}: {report.get('bones')} bones "
                   f"({report.get('skeleton')}), at most {report.get('max_influences')} per vertex.")
        return summary, json.dumps(report, indent=2)

    rig_button.click(ui_rig, {current, *rig_boxes.values()}, [rig_summary, rig_record], **PRIVATE, **heavy)

    @endpoint
    def ui_scene(image, scene_name_text, options_text, request: gr.Request, progress=gr.Progress()):
        record_json, path = api.scene(image, scene_name_text, options_text, progress_of(progress),
                                      owner=owner_of(request))
        return json.dumps(json.loads(record_json), indent=2), deliver(path)

    scene_button.click(ui_scene, [scene_image, scene_name, scene_options], [scene_record, scene_package],
                       **PRIVATE, **heavy)
    health_button.click(lambda: api.health(), None, diagnostics, **PRIVATE)
    presets_button.click(lambda: api.presets(), None, diagnostics, **PRIVATE)

"""Operators (thin): copy settings into a plain dict, run a jobs.Job (modal timer, or pumped in background mode),
import/export on the main thread, and turn one domain error into self.report({'ERROR'}, message).

Runtime job state (status, percent, queue position, ETA, last error, last asset) lives in STATE, a plain dict of
this module, never in the scene; the worker thread never touches it (only the main thread applies events).
"""

# No `from __future__ import annotations`: Blender reads the property annotations as objects.
import json
import os
import tempfile
import traceback

import bpy
from bpy.props import BoolProperty, CollectionProperty, StringProperty
from bpy.types import OperatorFileListElement

from . import exporter, importer, jobs
from .client import ServerError

STATE = {
    "running": False, "title": "", "stage": "", "status": "", "percent": 0.0, "queue_position": None,
    "eta_s": None, "error": "", "asset_id": "", "asset_name": "", "health": None, "quota": None, "assets": [],
    "last_zip": "",
}
_ACTIVE = {"job": None, "timer": None, "window_manager": None}  # the one running job


class AddonError(Exception):
    """A problem with what the user asked for; shown verbatim."""


DOMAIN_ERRORS = (AddonError, ServerError, importer.ImportProblem, exporter.ExportProblem)


def _redraw_all(context=None) -> None:
    wm = getattr(context if context is not None else bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        screen = window.screen
        for area in (screen.areas if screen is not None else ()):
            if area.type == 'VIEW_3D':
                area.tag_redraw()


def describe(exc: BaseException) -> str:
    """What the user reads: a domain error's own words; anything else with its type, so it is never blank."""
    if isinstance(exc, DOMAIN_ERRORS):
        return str(exc)
    words = str(exc).strip()
    return f"{type(exc).__name__}: {words}" if words else type(exc).__name__


def can_run_modal(context) -> bool:
    """Whether Blender will deliver events to a modal operator; otherwise (background mode) jobs are pumped."""
    return not bpy.app.background and context.window is not None


def _drop_active():
    """Forget the running job and remove its timer (once); returns the job, or None."""
    job, timer, wm = _ACTIVE["job"], _ACTIVE["timer"], _ACTIVE["window_manager"]
    _ACTIVE.update(job=None, timer=None, window_manager=None)
    if timer is not None and wm is not None:
        wm.event_timer_remove(timer)
    return job


def end_active(reason: str, wait_s: float = 0.0) -> bool:
    """End the running job from outside its own modal loop (add-on disabled, another file opened, Blender
    quitting): cancel it here and on the server, remove its timer, clear "running". With `wait_s`, wait that
    long for the worker to tell the server (Blender quitting would kill it first). Returns whether one ran."""
    job = _drop_active()
    if job is None:
        return False
    job.cancel()
    STATE.update(running=False, status=f"cancelled: {reason}", stage="cancelled", queue_position=None, eta_s=None)
    print(f"Open3DForge: {job.title} cancelled ({reason})")
    if wait_s > 0:
        job.join(timeout=wait_s)
    return True


def refuse(operator, exc: BaseException):
    """An operator could not start or finish its work: say why in the report and the panel."""
    if not isinstance(exc, DOMAIN_ERRORS):
        traceback.print_exc()  # the console keeps the details; the panel and the report keep the words
    message = describe(exc)
    STATE.update(error=message, status="failed")
    operator.report({'ERROR'}, message)
    return {'CANCELLED'}


def apply_event(event: jobs.JobEvent) -> None:
    """Main thread only: fold a job event into STATE for the panel."""
    if event.kind == jobs.PROGRESS:
        if event.fraction is not None:
            STATE["percent"] = round(100.0 * event.fraction, 1)
        STATE["stage"] = event.stage or STATE["stage"]
        STATE["status"] = event.message or STATE["status"]
        STATE["queue_position"] = event.queue_position
        STATE["eta_s"] = event.eta_s
    elif event.kind == jobs.DONE:
        STATE.update(percent=100.0, status="done", stage="done", queue_position=None, eta_s=None)
    elif event.kind == jobs.CANCELLED:
        STATE.update(status="cancelled", stage="cancelled", queue_position=None, eta_s=None)
    elif event.kind == jobs.ERROR:
        STATE.update(status="failed", stage="error", error=event.message, queue_position=None, eta_s=None)


def _preferences(context):
    from . import preferences  # the other half of the add-on; imported late so this module loads without it

    return preferences


def connection(context) -> jobs.Connection:
    prefs_module = _preferences(context)
    try:
        settings = prefs_module.connection_settings(context)
    except RuntimeError as exc:
        raise AddonError(str(exc)) from exc
    problem = prefs_module.server_problem(settings.server)
    if problem:
        raise AddonError(problem)
    download = os.path.join(tempfile.gettempdir(), "Open3DForge", "downloads")
    return jobs.Connection.of(settings, download_dir=download)


def output_folder(context, override: str = "") -> str:
    panel = getattr(context.scene, "open3dforge", None)
    for candidate in (override, panel.output_folder if panel else ""):
        if candidate and candidate.strip():
            return os.path.normpath(bpy.path.abspath(candidate.strip()))
    return _preferences(context).output_directory(context)


def cache_folder(context) -> str:
    return os.path.join(_preferences(context).output_directory(context), "packages")


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def panel_options(panel, options_text: str) -> dict:
    """The forge options from the panel (overrides only when asked) merged with an options JSON text."""
    options: dict = {"kind": panel.kind}
    if panel.generator.strip() and panel.generator.strip() != "auto":
        options["generator"] = panel.generator.strip()
    if panel.seed:
        options["seed"] = panel.seed
    generate = {}
    if panel.quality != "preset":
        generate["quality"] = panel.quality
    if panel.must_stand:
        generate["must_stand"] = True
    if generate:
        options["generate"] = generate
    if panel.kind == "character" and panel.rig_method != "auto":
        options["rig"] = {"method": panel.rig_method}
        if panel.rig_method == "unirig":
            options["rig"]["skeleton"] = "generic"
    if panel.override_postprocess:
        post = {"target_triangles": panel.target_triangles, "texture_size": int(panel.texture_size),
                "lod_ratios": [1.0, panel.lod1_ratio, panel.lod2_ratio], "collision": panel.collision,
                "max_hulls": panel.max_hulls, "pivot": panel.pivot}
        if panel.real_height > 0:
            post["height_cm"] = round(panel.real_height * 100.0, 3)
        options["postprocess"] = post
    text = (options_text or "").strip()
    if text:
        try:
            extra = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AddonError(f"options={text[:80]!r}: expected a JSON object ({exc.msg})") from exc
        if not isinstance(extra, dict):
            raise AddonError(f"options={text[:80]!r}: expected a JSON object")
        options = _merge(options, extra)
    post, bake = options.get("postprocess") or {}, options.get("bake") or {}
    if "texture_size" in post and "texture_size" not in bake:  # the bake uses the preset's size otherwise
        options["bake"] = {**bake, "texture_size": post["texture_size"]}
    return options


class _Network:
    """Shared by the network operators: poll() on online access, the modal timer loop, background pumping."""

    @classmethod
    def poll(cls, context):
        if not bpy.app.online_access:
            cls.poll_message_set("Online access is off: allow it in Preferences > System > Network")
            return False
        if _ACTIVE["job"] is not None:
            cls.poll_message_set("An Open3DForge job is running; wait for it or cancel it")
            return False
        return True

    def _begin(self, context, job: jobs.Job, finish):
        self._job, self._finish = job, finish
        _ACTIVE.update(job=job, timer=None, window_manager=None)
        STATE.update(running=True, title=job.title, stage="starting", status="starting", percent=0.0,
                     queue_position=None, eta_s=None, error="")
        job.start()
        if not can_run_modal(context):
            final = jobs.pump(job, timeout=job.connection.job_timeout + 120.0, on_event=apply_event)
            return self._end(context, final)
        wm = context.window_manager
        _ACTIVE.update(timer=wm.event_timer_add(0.1, window=context.window), window_manager=wm)
        wm.modal_handler_add(self)
        _redraw_all(context)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if _ACTIVE["job"] is not self._job:  # ended from outside (add-on disabled, file load): nothing left to do
            return {'CANCELLED'}
        try:
            if event.type == 'ESC' and event.value == 'PRESS':
                self._job.cancel()
                STATE["status"] = "cancelling on the server..."
                _redraw_all(context)
                return {'RUNNING_MODAL'}
            if event.type != 'TIMER':  # any timer of this window: polling more often does no harm
                return {'PASS_THROUGH'}
            for item in self._job.poll():
                apply_event(item)
            _redraw_all(context)
            if self._job.final is None:
                return {'PASS_THROUGH'}
            return self._end(context, self._job.final)
        except Exception as exc:  # never let an exception escape modal(): Blender would keep the handler
            self._job.cancel()
            return self._failed(context, exc)

    def cancel(self, context):
        """Blender aborts the operator: when it quits or closes the window (a file load has already ended the job
        in the load handler). Stop the job here and on the server, waiting a few seconds for the server to hear."""
        if _ACTIVE["job"] is self._job:
            end_active("Blender stopped the operator", wait_s=5.0)
            self.report({'WARNING'}, f"Open3DForge: {self._job.title} cancelled")

    def _release(self) -> None:
        """Remove this job's timer and clear "running"; every exit of a job comes through here."""
        if _ACTIVE["job"] is self._job:
            _drop_active()
        STATE.update(running=False, queue_position=None, eta_s=None)

    def _failed(self, context, exc: BaseException):
        self._release()
        STATE["stage"] = "error"
        _redraw_all(context)
        return refuse(self, exc)

    def _end(self, context, final: jobs.JobEvent):
        self._release()
        if final.kind == jobs.ERROR:
            self.report({'ERROR'}, final.message)
            _redraw_all(context)
            return {'CANCELLED'}
        if final.kind == jobs.CANCELLED:
            self.report({'WARNING'}, f"Open3DForge: {self._job.title} cancelled")
            _redraw_all(context)
            return {'CANCELLED'}
        try:
            message = self._finish(context, final.result)
        except Exception as exc:
            return self._failed(context, exc)
        if message:
            self.report({'INFO'}, message)
        _redraw_all(context)
        return {'FINISHED'}


def with_placed_high_poly(options: dict) -> dict:
    """Ask the export for the <Name>_<Engine>_inspect.zip: the package plus high_poly.glb placed like the LODs."""
    return {**options, "export": {"include_high_poly": True, **(options.get("export") or {})}}


def _import_result(context, result: dict) -> str:
    record = result["record"]
    name = record["name"]
    collection = importer.import_package(context, result["package"], name=name, asset_id=result["asset_id"],
                                         cache_dir=cache_folder(context), high_poly=result.get("high_poly"))
    STATE.update(asset_id=result["asset_id"], asset_name=name)
    return f"Open3DForge: imported {name} into collection {collection.name}"


class _Inputs:
    """The image/selection inputs shared by forge and generate."""

    directory: StringProperty(subtype='DIR_PATH', options={'HIDDEN', 'SKIP_SAVE'})
    files: CollectionProperty(type=OperatorFileListElement, options={'HIDDEN', 'SKIP_SAVE'})
    views: StringProperty(name="Views", description="One label per image, e.g. front,left", options={'SKIP_SAVE'})
    asset_name: StringProperty(name="Asset Name", options={'SKIP_SAVE'})
    preset: StringProperty(name="Preset", options={'SKIP_SAVE'})
    use_selection: BoolProperty(name="Use Selected Object", options={'SKIP_SAVE'})
    engine: StringProperty(name="Engine", description="ue5 (default), unity or godot", options={'SKIP_SAVE'})
    options: StringProperty(name="Options (JSON)", description="Forge options per stage", options={'SKIP_SAVE'})
    prompt: StringProperty(name="Prompt", description="With no images: a description of one object",
                           options={'SKIP_SAVE'})

    def settings(self, context) -> dict:
        """Everything the job needs, as plain data (read on the main thread)."""
        panel = context.scene.open3dforge
        given = self.properties.is_property_set
        files = [os.path.join(bpy.path.abspath(self.directory), f.name) for f in self.files if f.name]
        if files:
            images = files
            views = [v.strip().lower() for v in self.views.split(",") if v.strip()]
        elif given("directory") and not files:
            raise AddonError("directory is set but files is empty: name the images, e.g. files=[{'name': 'front.png'}]")
        else:
            slots = [panel.image_1, panel.image_2, panel.image_3, panel.image_4]
            used = [slot for slot in slots if slot.filepath.strip()]
            images = [bpy.path.abspath(slot.filepath.strip()) for slot in used]
            views = [slot.view for slot in used]
            if given("views"):
                views = [v.strip().lower() for v in self.views.split(",") if v.strip()]
        use_selection = self.use_selection if given("use_selection") else panel.use_selection
        prompt = (self.prompt if given("prompt") else panel.prompt).strip()
        if images or use_selection:
            prompt = ""  # images and the selection come first; the prompt is for when there are none
        if not use_selection and not prompt:
            if not images:
                raise AddonError("No input: choose 1 to 4 images in the Input panel, write a prompt, or use the "
                                 "selected object")
            missing = [path for path in images if not os.path.isfile(path)]
            if missing:
                raise AddonError(f"image {missing[0]!r} does not exist")
        engine = (self.engine if given("engine") else panel.engine).strip().lower() or "ue5"
        return {
            "images": images, "views": views, "use_selection": use_selection, "prompt": prompt,
            "name": (self.asset_name if given("asset_name") else panel.asset_name).strip(),
            "preset": (self.preset if given("preset") else panel.preset).strip(),
            "generator": panel.generator.strip() or "auto", "seed": panel.seed, "kind": panel.kind,
            "engine": engine,
            "options": panel_options(panel, self.options if given("options") else panel.options),
        }


def export_selection_glb(context) -> tuple[str, str]:
    """The selected mesh objects (with materials and textures) as a temporary GLB; returns (path, name)."""
    meshes = [obj for obj in context.selected_objects if obj.type == 'MESH']
    if not meshes:
        raise AddonError("Use Selected Object is on but no mesh object is selected")
    active = context.view_layer.objects.active
    name = (active if active in meshes else meshes[0]).name
    folder = tempfile.mkdtemp(prefix="o3f_selection_")
    path = os.path.join(folder, "selection.glb")
    result = bpy.ops.export_scene.gltf(filepath=path, use_selection=True, export_format='GLB')
    if "FINISHED" not in result or not os.path.isfile(path):
        raise AddonError(f"Blender's glTF exporter could not write the selection ({sorted(result)})")
    return path, name


class OPEN3DFORGE_OT_forge(_Inputs, _Network, bpy.types.Operator):
    """Images or the selected object to a game-ready asset: generate, post-process, bake, import for inspection"""

    bl_idname = "open3dforge.forge"
    bl_label = "Forge"
    bl_options = {'REGISTER'}

    def execute(self, context):
        try:
            settings = self.settings(context)
            conn = connection(context)
            options = with_placed_high_poly(settings["options"])
            if settings["use_selection"]:
                glb, selected_name = export_selection_glb(context)
                plan = jobs.mesh_plan(glb, name=settings["name"] or selected_name, options=options,
                                      engine=settings["engine"], kind=settings["kind"])
            else:
                plan = jobs.forge_plan(settings["images"], name=settings["name"], views=settings["views"],
                                       preset=settings["preset"], generator=settings["generator"],
                                       seed=settings["seed"], options=options, engine=settings["engine"],
                                       prompt=settings["prompt"])
            job = jobs.Job(plan, conn, asset_id=jobs.new_asset_id(), title="forge")
        except Exception as exc:
            return refuse(self, exc)
        STATE["asset_id"] = job.asset_id
        return self._begin(context, job, _import_result)


class OPEN3DFORGE_OT_generate(_Inputs, _Network, bpy.types.Operator):
    """Generate the high poly only and import it"""

    bl_idname = "open3dforge.generate"
    bl_label = "Generate"
    bl_options = {'REGISTER'}

    def execute(self, context):
        try:
            settings = self.settings(context)
            if settings["use_selection"]:
                raise AddonError("Generate makes a mesh from images; for the selected object use Forge")
            plan = jobs.generate_plan(settings["images"], name=settings["name"], views=settings["views"],
                                      preset=settings["preset"], generator=settings["generator"],
                                      seed=settings["seed"], options=settings["options"], prompt=settings["prompt"])
            job = jobs.Job(plan, connection(context), asset_id=jobs.new_asset_id(), title="generate")
        except Exception as exc:
            return refuse(self, exc)

        def finish(context, result):
            name = result["record"]["name"]
            collection = importer.import_high_poly(context, result["high_poly"], name=name,
                                                   asset_id=result["asset_id"])
            STATE.update(asset_id=result["asset_id"], asset_name=name)
            return f"Open3DForge: generated {name} ({collection.name})"

        return self._begin(context, job, finish)


class OPEN3DFORGE_OT_scene(_Inputs, _Network, bpy.types.Operator):
    """One picture of a whole scene: each object made game-ready on the server, imported where it stood"""

    bl_idname = "open3dforge.scene"
    bl_label = "Make Scene"
    bl_options = {'REGISTER'}

    def execute(self, context):
        try:
            settings = self.settings(context)
            if settings["use_selection"] or settings["prompt"] or len(settings["images"]) != 1:
                raise AddonError("Make Scene takes exactly one picture of the whole scene (the first image slot)")
            plan = jobs.scene_plan(settings["images"][0], name=settings["name"], generator=settings["generator"],
                                   seed=settings["seed"], options=settings["options"], engine=settings["engine"])
            job = jobs.Job(plan, connection(context), asset_id=jobs.new_asset_id(), title="scene")
        except Exception as exc:
            return refuse(self, exc)

        def finish(context, result):
            name = result["record"]["name"]
            collection = importer.import_scene(context, result["package"], name=name, asset_id=result["asset_id"],
                                               cache_dir=cache_folder(context))
            STATE.update(asset_id=result["asset_id"], asset_name=name)
            return f"Open3DForge: imported scene {name} ({len(collection.children)} objects) into {collection.name}"

        STATE["asset_id"] = job.asset_id
        return self._begin(context, job, finish)


class OPEN3DFORGE_OT_postprocess(_Network, bpy.types.Operator):
    """Post-process, bake and export an asset on the server, then import it for inspection"""

    bl_idname = "open3dforge.postprocess"
    bl_label = "Post-process"
    bl_options = {'REGISTER'}

    asset_id: StringProperty(name="Asset Id", description="Empty: the last asset", options={'SKIP_SAVE'})
    options: StringProperty(name="Options (JSON)", options={'SKIP_SAVE'})

    def execute(self, context):
        try:
            asset_id = self.asset_id.strip() or STATE["asset_id"]
            if not asset_id:
                raise AddonError("No asset yet: generate one first or give asset_id")
            panel = context.scene.open3dforge
            text = self.options if self.properties.is_property_set("options") else panel.options
            options = with_placed_high_poly(panel_options(panel, text))
            job = jobs.Job(jobs.finish_plan(options, panel.engine), connection(context),
                           asset_id=asset_id, title="post-process")
        except Exception as exc:
            return refuse(self, exc)
        return self._begin(context, job, _import_result)


def rigged_collections() -> list:
    """Imported assets whose collection holds an armature (rigged characters), oldest first."""
    return [c for c in importer.asset_collections() if any(o.get(importer.ROLE) == "armature" for o in c.objects)]


class OPEN3DFORGE_OT_test_pose(bpy.types.Operator):
    """Bend the imported character's elbows and knees 90 degrees to see its skin weights work; again: back to rest"""

    bl_idname = "open3dforge.test_pose"
    bl_label = "Test Pose"
    bl_options = {'REGISTER', 'UNDO'}

    asset_name: StringProperty(name="Asset Name", description="Empty: the last rigged character imported",
                               options={'SKIP_SAVE'})

    @classmethod
    def poll(cls, context):
        if not rigged_collections():
            cls.poll_message_set("No rigged character imported yet: forge one with Kind set to Character")
            return False
        return True

    def execute(self, context):
        rigged = rigged_collections()
        name = self.asset_name.strip()
        found = next((c for c in reversed(rigged) if c.get(importer.ASSET_NAME) == name), None) if name else \
            (rigged[-1] if rigged else None)
        if found is None:
            self.report({'ERROR'}, f"No rigged character named {name!r} in this file")
            return {'CANCELLED'}
        armature = next(o for o in found.objects if o.get(importer.ROLE) == "armature")
        on = not armature.get("open3dforge_test_pose", False)
        turned = importer.set_test_pose(found, on)
        self.report({'INFO'}, f"Open3DForge: {found.name} " + (f"bent at {', '.join(turned)}" if on else
                                                                  "back in its rest pose"))
        return {'FINISHED'}


class OPEN3DFORGE_OT_import_asset(_Network, bpy.types.Operator):
    """Import an asset from the server's history (its LODs, hulls and maps) for inspection"""

    bl_idname = "open3dforge.import_asset"
    bl_label = "Import Asset"
    bl_options = {'REGISTER'}

    asset_id: StringProperty(name="Asset Id", options={'SKIP_SAVE'})

    def execute(self, context):
        try:
            if not self.asset_id.strip():
                raise AddonError("asset_id is empty: pick an asset from the History panel")
            job = jobs.Job(jobs.export_plan("ue5", {"include_high_poly": True}), connection(context),
                           asset_id=self.asset_id.strip(), title="import")
        except Exception as exc:
            return refuse(self, exc)
        return self._begin(context, job, _import_result)


class OPEN3DFORGE_OT_connect(_Network, bpy.types.Operator):
    """Ask the server what it can do, the GPU quota left and the recent assets"""

    bl_idname = "open3dforge.connect"
    bl_label = "Connect / Refresh"

    def execute(self, context):
        try:
            job = jobs.Job(jobs.health_plan(), connection(context), title="connect")
        except Exception as exc:
            STATE["health"] = None
            return refuse(self, exc)

        def finish(context, result):
            STATE.update(health=result["health"], quota=result["quota"], assets=result["assets"])
            return f"Open3DForge: connected (server {result['health'].get('version', '?')})"

        return self._begin(context, job, finish)


class OPEN3DFORGE_OT_cancel(bpy.types.Operator):
    """Cancel the running Open3DForge job, here and on the server"""

    bl_idname = "open3dforge.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        if _ACTIVE["job"] is None:
            cls.poll_message_set("No Open3DForge job is running")
            return False
        return True

    def execute(self, context):
        _ACTIVE["job"].cancel()
        STATE["status"] = "cancelling on the server..."
        _redraw_all(context)
        return {'FINISHED'}


class OPEN3DFORGE_OT_export(_Network, bpy.types.Operator):
    """Write the engine zip: FBX files written by this Blender, textures, import script and manifest from the server"""

    bl_idname = "open3dforge.export"
    bl_label = "Export Engine Zip"
    bl_options = {'REGISTER'}

    asset_name: StringProperty(name="Asset Name", description="Empty: the last imported asset",
                               options={'SKIP_SAVE'})
    engine: StringProperty(name="Engine", options={'SKIP_SAVE'})
    directory: StringProperty(name="Folder", subtype='DIR_PATH', options={'SKIP_SAVE'})

    @classmethod
    def poll(cls, context):
        if not importer.asset_collections():
            cls.poll_message_set("Nothing to export: forge or import an asset first")
            return False
        if _ACTIVE["job"] is not None:
            cls.poll_message_set("An Open3DForge job is running; wait for it or cancel it")
            return False
        return True

    def execute(self, context):
        """UE5: written here from the imported package, no network. Unity and Godot: the server's package for
        that engine is fetched first (a job, like the other network operators), then written here."""
        try:
            given = self.properties.is_property_set
            engine = ((self.engine if given("engine") else context.scene.open3dforge.engine).strip().lower()
                      or "ue5")
            if engine not in exporter.ENGINES:
                raise AddonError(f"engine={engine!r}: expected one of {', '.join(exporter.ENGINES)}")
            collection = self._collection(context)
            folder = output_folder(context, self.directory)
            if engine == "ue5":
                return self._written(exporter.write_engine_zip(context, collection, folder, engine))
            if not bpy.app.online_access:
                raise AddonError(f"Online access is off: the {engine} package's textures and manifest come from "
                                 "the server; allow it in Preferences > System > Network")
            asset_id = collection.get(importer.ASSET_ID, "")
            job = jobs.Job(jobs.export_plan(engine, {"use_fbx": False}), connection(context), asset_id=asset_id,
                           title=f"export {engine}")
        except Exception as exc:
            return refuse(self, exc)
        wanted = collection.name

        def finish(context, result):
            found = bpy.data.collections.get(wanted)
            if found is None or found.get(importer.ASSET_ID) != asset_id:
                raise AddonError(f"the collection {wanted!r} went away while its {engine} package was fetched")
            path = exporter.write_engine_zip(context, found, folder, engine, server_package=result["package"])
            STATE.update(last_zip=str(path), error="")
            return f"Open3DForge: wrote {path}"

        return self._begin(context, job, finish)

    def _written(self, path):
        STATE.update(last_zip=str(path), error="", status="done")
        self.report({'INFO'}, f"Open3DForge: wrote {path}")
        return {'FINISHED'}

    def _collection(self, context):
        name = self.asset_name.strip()
        if name:
            found = importer.find_collection(asset_name=name)
            if found is None:
                raise AddonError(f"asset_name={name!r}: no imported Open3DForge asset has that name")
            return found
        active = context.view_layer.objects.active
        if active is not None:
            for collection in active.users_collection:
                if collection.get(importer.PACKAGE_DIR):
                    return collection
        found = importer.find_collection(asset_id=STATE["asset_id"]) if STATE["asset_id"] else None
        found = found or next((c for c in reversed(importer.asset_collections()) if c.get(importer.PACKAGE_DIR)), None)
        if found is None:
            raise AddonError("Nothing to export: forge or import an asset first")
        return found


CLASSES = (OPEN3DFORGE_OT_forge, OPEN3DFORGE_OT_generate, OPEN3DFORGE_OT_scene, OPEN3DFORGE_OT_postprocess,
           OPEN3DFORGE_OT_import_asset, OPEN3DFORGE_OT_connect, OPEN3DFORGE_OT_cancel, OPEN3DFORGE_OT_export,
           OPEN3DFORGE_OT_test_pose)


@bpy.app.handlers.persistent
def _on_load_pre(*_args) -> None:
    end_active("another file was opened")


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.app.handlers.load_pre.append(_on_load_pre)


def unregister() -> None:
    end_active("the add-on was disabled")
    for handler in [h for h in bpy.app.handlers.load_pre if getattr(h, "__name__", "") == _on_load_pre.__name__
                    and getattr(h, "__module__", "") == __name__]:
        bpy.app.handlers.load_pre.remove(handler)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

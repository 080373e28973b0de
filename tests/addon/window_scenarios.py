"""Run inside Blender (the bpy module): the add-on's interactive path on the strict window stand-ins.

Every network operator goes through Blender's modal protocol (poll, execute, TIMER and other events, cancel)
against a real local server; panels and preferences are drawn in every state. Findings go to a JSON file that
tests/addon/test_window.py checks. argv[-1] is a JSON object: root, url, work, images, options, result, mode.
mode "quit" starts a forge and quits mid-job as Blender does (the test then asks the server what became of it).
"""

import json
import os
import sys
import time
import traceback

args = json.loads(sys.argv[-1])
sys.path.insert(0, args["root"])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy  # noqa: E402  (first: it puts Blender's own modules such as addon_utils on the path)
import addon_utils  # noqa: E402

import window  # noqa: E402

out: dict = {}


def save() -> None:
    with open(args["result"], "w") as handle:
        json.dump(out, handle, indent=1, default=str)


bpy.context.preferences.system.use_online_access = True
if addon_utils.enable("addon", default_set=True) is None:
    raise SystemExit("could not enable the add-on package")
from addon import importer, operators, panels, preferences  # noqa: E402
from addon.client import ForgeClient  # noqa: E402

# The one thing a background process cannot show: Blender delivering events. The stand-in window does that.
operators.can_run_modal = lambda context: context.window is not None
prefs = bpy.context.preferences.addons["addon"].preferences
prefs.server, prefs.output_folder, prefs.request_timeout = args["url"], args["work"], 30
scene = bpy.context.scene
wm = window.window_manager()
ctx = window.Context(wm)
images = args["images"]
FRONT = [{"name": "front.png"}]
OWNER_KEY = {"key": ""}  # the add-on's owner key, read once it has made one (its preferences go when it is disabled)
BIG = dict(args["options"], generate={"resolution": 256, "target_faces": 200000})


def state() -> dict:
    keys = ("running", "status", "stage", "error", "percent", "last_zip", "asset_id")
    return {key: operators.STATE[key] for key in keys} | {"job": operators._ACTIVE["job"] is not None,
                                                           "timer": operators._ACTIVE.get("timer") is not None}


def draw_all() -> dict:
    """Every panel and the preferences, drawn on stand-ins; labels and operators by panel."""
    drawn = {}
    for cls in panels.CLASSES:
        drawn[cls.__name__] = window.draw(cls, ctx)
    drawn["preferences"] = window.draw(preferences.Open3DForgePreferences, ctx, data=prefs)
    return drawn


def run(name: str, cls, on_tick=None, **props) -> dict:
    """One operator through Blender's modal protocol; what it returned, reported and left behind."""
    timers_before, removed_before = len(wm.timers), len(wm.removed)
    op = window.RunningOperator(cls, **props)
    record = {"raised": None}
    try:
        record.update(window.run_modal(op, ctx, on_tick=on_tick))
    except Exception as exc:  # an exception out of execute/modal/cancel is a finding, not a crash of the harness
        record["raised"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()[-2000:]
    record.update(reports=op.reports, timers_added=len(wm.timers) - timers_before,
                  timers_removed=len(wm.removed) - removed_before, live_timers=wm.live_timers,
                  handlers=wm.handlers.count(op), after=state())
    out[name] = record
    save()
    return record


def server_status(asset_id: str, wait: float = 60.0) -> str:
    """The asset's status on the server once it is no longer running (or "running" after `wait`)."""
    client = ForgeClient(args["url"], owner_key=OWNER_KEY["key"])
    end = time.monotonic() + wait
    while True:
        status = client.asset(asset_id)["status"]
        if status != "running" or time.monotonic() > end:
            return status
        time.sleep(0.3)


def when_progressing(action):
    """on_tick: call `action(op, n)` once, at the first tick after the server reported progress."""
    done = {"fired": False}

    def on_tick(op, n):
        if not done["fired"] and operators.STATE["percent"] > 0:
            done["fired"] = True
            return action(op, n)
        return None

    return on_tick


if args.get("mode") == "quit":
    def leave(op, n):
        # Quitting, Blender calls cancel() on every modal handler, then its Python ends (daemon threads die).
        out["quit_asset_id"] = operators.STATE["asset_id"]
        out["owner_key"] = prefs.owner_key  # the asset is this add-on's: the test asks the server with its key
        op.cancel(ctx)
        save()
        sys.exit(0)

    run("quit", operators.OPEN3DFORGE_OT_forge, on_tick=when_progressing(leave), directory=images, files=FRONT,
        views="front", asset_name="Quit", options=json.dumps(BIG))
    raise SystemExit("the job ended before Blender quit")

# -- panels before anything: offline, then online without a server ------------------------------------------
bpy.context.preferences.system.use_online_access = False
out["offline"] = {"poll_forge": bool(operators.OPEN3DFORGE_OT_forge.poll(ctx)), "drawn": draw_all()}
bpy.context.preferences.system.use_online_access = True
out["no_server"] = {"drawn": draw_all()}
save()

# -- connect, forge to the end (panels drawn while it runs and after) ---------------------------------------
run("connect", operators.OPEN3DFORGE_OT_connect)
OWNER_KEY["key"] = prefs.owner_key
out["connected"] = {"drawn": draw_all(), "health": bool(operators.STATE["health"])}


def draw_while_running(op, n):
    if n == 4:
        out["running_drawn"] = draw_all()
        out["running_state"] = state()
    return None


run("forge", operators.OPEN3DFORGE_OT_forge, on_tick=draw_while_running, directory=images, files=FRONT,
    views="front", asset_name="Crate", preset="prop_UE5_standard", engine="ue5",
    options=json.dumps(args["options"]))
out["forge"]["collection"] = importer.find_collection(asset_name="Crate") is not None
out["finished"] = {"drawn": draw_all()}
save()

# -- the ways to stop a job: ESC, the Cancel button, Blender's cancel() -------------------------------------
run("esc", operators.OPEN3DFORGE_OT_forge, on_tick=when_progressing(lambda op, n: window.Event('ESC', 'PRESS')),
    directory=images, files=FRONT, views="front", asset_name="Esc", options=json.dumps(BIG))
out["esc"]["server"] = server_status(out["esc"]["after"]["asset_id"])
out["esc"]["collection"] = importer.find_collection(asset_name="Esc") is not None


def press_cancel(op, n):
    out["cancel_button_result"] = sorted(bpy.ops.open3dforge.cancel())
    return None


run("cancel_button", operators.OPEN3DFORGE_OT_forge, on_tick=when_progressing(press_cancel), directory=images,
    files=FRONT, views="front", asset_name="Button", options=json.dumps(BIG))
out["cancel_button"]["server"] = server_status(out["cancel_button"]["after"]["asset_id"])

run("blender_cancel", operators.OPEN3DFORGE_OT_forge, on_tick=when_progressing(lambda op, n: "cancel"),
    directory=images, files=FRONT, views="front", asset_name="Aborted", options=json.dumps(BIG))
out["blender_cancel"]["server"] = server_status(out["blender_cancel"]["after"]["asset_id"])
save()

# -- a server error, and an unexpected error while importing the result -------------------------------------
run("server_error", operators.OPEN3DFORGE_OT_forge, directory=images, files=FRONT, views="sideways",
    asset_name="Bad", options=json.dumps(args["options"]))
out["error_drawn"] = draw_all()
crate_id = out["forge"]["after"]["asset_id"]
original_import = importer.import_package


def broken_import(*a, **k):
    raise KeyError("lod0")


importer.import_package = broken_import
run("import_crash", operators.OPEN3DFORGE_OT_import_asset, asset_id=crate_id)
importer.import_package = original_import
run("import", operators.OPEN3DFORGE_OT_import_asset, asset_id=crate_id)
run("scene", operators.OPEN3DFORGE_OT_scene, directory=images, files=[{"name": "scene.png"}], asset_name="Yard",
    options=json.dumps(args["options"]))
found_scene = bpy.data.collections.get("Yard")
out["scene"]["children"] = sorted(c.name for c in found_scene.children) if found_scene else None

# -- exports for the three engines, into a bad folder, and "Last error" cleared by a UE5 export --------------
blocker = os.path.join(args["work"], "a_file")
os.makedirs(args["work"], exist_ok=True)
with open(blocker, "w") as handle:
    handle.write("not a folder")
bad_folder = os.path.join(blocker, "zips")
run("export_bad_ue5", operators.OPEN3DFORGE_OT_export, asset_name="Crate", engine="ue5", directory=bad_folder)
run("export_bad_unity", operators.OPEN3DFORGE_OT_export, asset_name="Crate", engine="unity", directory=bad_folder)
out["export_bad_unity"]["state_error"] = operators.STATE["error"]
good = os.path.join(args["work"], "zips")
for engine in ("ue5", "unity", "godot"):
    record = run(f"export_{engine}", operators.OPEN3DFORGE_OT_export, asset_name="Crate", engine=engine,
                 directory=good)
    record["zip"] = operators.STATE["last_zip"]
    record["zip_exists"] = os.path.isfile(operators.STATE["last_zip"])
save()

# -- post-process takes the panel's Options field, like Forge and Generate ----------------------------------
scene.open3dforge.options = json.dumps({"postprocess": {"target_triangles": 1200, "texture_size": 256,
                                                        "max_hulls": 2}, "bake": {"ao_samples": 4}})
run("postprocess", operators.OPEN3DFORGE_OT_postprocess, asset_id=crate_id)
scene.open3dforge.options = ""
found = importer.find_collection(asset_id=crate_id)
if found is not None:
    from PIL import Image

    package = found[importer.PACKAGE_DIR]
    out["postprocess"]["texture_sizes"] = sorted({Image.open(os.path.join(package, f)).size[0]
                                                  for f in os.listdir(package) if f.endswith(".png")
                                                  and f.startswith("T_")})
save()

# -- panels for the quota and a long history with a row the server could not name ---------------------------
operators.STATE.update(quota={"error": "ZeroGPU quota exceeded: You have exceeded your GPU quota (0s left)"},
                       error="ZeroGPU quota exceeded: You have exceeded your GPU quota (0s left)")
out["quota_drawn"] = draw_all()
operators.STATE["assets"] = ([{"asset_id": f"20261204T0000{i:02d}-0000000{i % 10}", "name": f"A{i}",
                               "status": "done"} for i in range(40)]
                             + [{"asset_id": None, "name": None, "status": None}, "not a row"])
out["history_drawn"] = draw_all()["OPEN3DFORGE_PT_history"]
save()

# -- another file opened mid-job: the load handler ends the job before Blender calls cancel() ----------------
saved = os.path.join(args["work"], "scene.blend")
bpy.ops.wm.save_as_mainfile(filepath=saved)


def open_other_file(op, n):
    bpy.ops.wm.open_mainfile(filepath=saved, load_ui=False)
    out["after_load"] = {"state": state(), "live_timers": wm.live_timers}
    return "cancel"  # what Blender does next to the modal handlers of the old file


run("file_load", operators.OPEN3DFORGE_OT_forge, on_tick=when_progressing(open_other_file), directory=images,
    files=FRONT, views="front", asset_name="Loaded", options=json.dumps(BIG))
out["file_load"]["server"] = server_status(out["file_load"]["after"]["asset_id"])
scene = bpy.context.scene
save()

# -- the add-on disabled mid-job, then enabled again --------------------------------------------------------
job_module = operators


def disable(op, n):
    addon_utils.disable("addon", default_set=True)
    out["after_disable"] = {"state": {k: job_module.STATE[k] for k in ("running", "status")},
                            "job": job_module._ACTIVE["job"] is not None, "live_timers": wm.live_timers,
                            "load_handlers": [h.__name__ for h in bpy.app.handlers.load_pre]}
    return "stop"  # unregistering frees the operator's handler without calling it again


run("disable", operators.OPEN3DFORGE_OT_forge, on_tick=when_progressing(disable), directory=images,
    files=FRONT, views="front", asset_name="Disabled", options=json.dumps(BIG))
out["disable"]["server"] = server_status(job_module.STATE["asset_id"])
addon_utils.enable("addon", default_set=True)
from addon import operators as operators_again  # noqa: E402
from addon import panels as panels_again  # noqa: E402

out["reenabled"] = {"main": window.draw(panels_again.OPEN3DFORGE_PT_main, ctx),
                    "poll_forge": bool(operators_again.OPEN3DFORGE_OT_forge.poll(ctx))}
out["complete"] = True
save()

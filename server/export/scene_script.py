"""import_scene.py: Unreal editor Python that imports each object's asset package and spawns it in the open level.

The scene zip holds one folder per object with its own UE5 package (SM_<Name>.fbx, LODs, textures,
import_<Name>.py, written by server/export/package.py) beside scene.json and this script. The script runs
each object's import_<Name>.py (so every asset gets exactly its own package's import), loads the static
mesh it made, spawns an actor from it in the level open in the editor at the scene.json transform
(EditorActorSubsystem.spawn_actor_from_object; the deprecated EditorLevelLibrary where the subsystem is
missing), labels it, files it under one Outliner folder, and ends with a self-check that reads every
actor's location, rotation, scale and mesh back. It checks every `unreal` attribute before using it and
reports what it did, skipped and why.
"""

from __future__ import annotations

from ..errors import InputError
from .naming import check_name
from .unreal_preamble import PREAMBLE

BODY = r'''
import os
import runpy

import unreal

REPORT = {"done": [], "skipped": [], "failed": [], "checked": [], "mismatch": []}
LOG_PREFIX = "[Open3DForge scene]"
SPAWNED = []  # (object entry, actor, mesh) of this run, for the self-check


''' + PREAMBLE + r'''
def method(obj, name):
    return getattr(obj, name) if obj is not None and hasattr(obj, name) else None


def get_prop(obj, name):
    try:
        return obj.get_editor_property(name)
    except Exception:
        return None


def actor_tools():
    """(name, spawn, all actors, destroy): EditorActorSubsystem, else the deprecated EditorLevelLibrary."""
    found = subsystem("EditorActorSubsystem")
    if method(found, "spawn_actor_from_object") is not None:
        return ("EditorActorSubsystem", found.spawn_actor_from_object, method(found, "get_all_level_actors"),
                method(found, "destroy_actor"))
    library = lookup("EditorLevelLibrary")
    if method(library, "spawn_actor_from_object") is not None:
        return ("EditorLevelLibrary (deprecated)", library.spawn_actor_from_object,
                method(library, "get_all_level_actors"), method(library, "destroy_actor"))
    return None, None, None, None


def asset_exists(path):
    checker = lookup("EditorAssetLibrary.does_asset_exist")
    return bool(checker is not None and checker(path))


def load(path):
    loader = lookup("EditorAssetLibrary.load_asset")
    return loader(path) if loader is not None and asset_exists(path) else None


def import_object(item):
    """Run the object's own import_<Name>.py; return its static mesh (or None, reported)."""
    folder = os.path.join(source_dir(), item["folder"])
    script = os.path.join(folder, item["import_script"])
    destination, mesh_asset = item["destination"], item["mesh_asset"]
    if IMPORT_ASSETS:
        if not os.path.isfile(script):
            failed("%s: no import script at %s" % (item["name"], script))
            return None
        try:
            scope = runpy.run_path(script, run_name="__main__")
        except Exception as exc:  # the object's own script failed: report it, go on with the others
            failed("%s: %s raised %s: %s" % (item["name"], item["import_script"], type(exc).__name__, exc))
            return None
        report = scope.get("REPORT") or {}
        problems = len(report.get("failed", [])) + len(report.get("mismatch", []))
        if problems:
            failed("%s: %s reported %d problem(s); see its lines above"
                   % (item["name"], item["import_script"], problems))
        else:
            done("%s: imported by %s" % (item["name"], item["import_script"]))
        destination = scope.get("DESTINATION", destination)
        mesh_asset = scope.get("MESH_ASSET", mesh_asset)
    path = "%s/%s" % (destination, mesh_asset)
    mesh = load(path)
    if mesh is None:
        failed("%s: no asset at %s%s" % (item["name"], path, "" if IMPORT_ASSETS else
                                          " (IMPORT_ASSETS is off: import it first)"))
        return None
    static_mesh = lookup("StaticMesh")
    if static_mesh is not None and not isinstance(mesh, static_mesh):
        failed("%s: %s is a %s, not a StaticMesh" % (item["name"], path, type(mesh).__name__))
        return None
    return mesh


def label_of(item):
    return "%s_%s" % (SCENE_NAME, item["name"]) if LABEL_WITH_SCENE else item["name"]


def remove_earlier(all_actors, destroy):
    """Actors an earlier run of this script left (same label in the same Outliner folder) are removed."""
    if all_actors is None or destroy is None:
        skipped("earlier actors of this scene not looked for: this editor cannot list or destroy actors")
        return
    labels = set(label_of(item) for item in OBJECTS)
    removed = 0
    for actor in list(all_actors() or []):
        label = method(actor, "get_actor_label")
        folder = method(actor, "get_folder_path")
        if label is None or folder is None:
            continue
        if str(label()) in labels and str(folder()) == OUTLINER_FOLDER:
            destroy(actor)
            removed += 1
    if removed:
        done("removed %d actor(s) of an earlier run from %s" % (removed, OUTLINER_FOLDER))


def spawn(item, mesh, spawner):
    location = unreal.Vector(*[float(v) for v in item["location_cm"]])
    r = item["rotation_deg"]
    rotation = unreal.Rotator(roll=float(r["roll"]), pitch=float(r["pitch"]), yaw=float(r["yaw"]))
    try:
        actor = spawner(mesh, location, rotation)
    except Exception as exc:
        failed("%s: spawning raised %s: %s" % (item["name"], type(exc).__name__, exc))
        return None
    if actor is None:
        failed("%s: the editor spawned no actor (is a level open?)" % item["name"])
        return None
    for name, args in (("set_actor_scale3d", (unreal.Vector(*[float(v) for v in item["scale"]]),)),
                       ("set_actor_label", (label_of(item),)), ("set_folder_path", (OUTLINER_FOLDER,))):
        call = method(actor, name)
        if call is None:
            (failed if name == "set_actor_scale3d" else skipped)("%s: actor has no %s" % (item["name"], name))
            continue
        call(*args)
    done("%s: spawned at (%.1f, %.1f, %.1f) cm, yaw %.2f, scale (%.4f, %.4f, %.4f)" % (
        label_of(item), location.x, location.y, location.z, float(r["yaw"]), *[float(v) for v in item["scale"]]))
    return actor


def close(a, b, tolerance):
    return all(abs(float(x) - float(y)) <= tolerance for x, y in zip(a, b))


def angle_close(a, b, tolerance):
    return abs((float(a) - float(b) + 180.0) % 360.0 - 180.0) <= tolerance


def self_check():
    """Reads every spawned actor back: location, rotation, scale and the mesh it shows."""
    for item, actor, mesh in SPAWNED:
        label = label_of(item)
        getters = [method(actor, n) for n in ("get_actor_location", "get_actor_rotation", "get_actor_scale3d")]
        if None in getters:
            skipped("check %s: this editor cannot read an actor's transform" % label)
            continue
        loc, rot, scale = (getter() for getter in getters)
        got = (loc.x, loc.y, loc.z)
        if close(got, item["location_cm"], TOLERANCE_CM):
            checked("%s location (%.2f, %.2f, %.2f) cm" % ((label,) + tuple(got)))
        else:
            mismatch("%s location %s cm, scene.json says %s" % (label, list(got), item["location_cm"]))
        wanted = item["rotation_deg"]
        if all(angle_close(getattr(rot, k), wanted[k], TOLERANCE_DEG) for k in ("roll", "pitch", "yaw")):
            checked("%s rotation yaw %.3f" % (label, rot.yaw))
        else:
            mismatch("%s rotation (roll %s, pitch %s, yaw %s), scene.json says %s" % (
                label, rot.roll, rot.pitch, rot.yaw, wanted))
        got = (scale.x, scale.y, scale.z)
        if close(got, item["scale"], TOLERANCE_SCALE):
            checked("%s scale (%.4f, %.4f, %.4f)" % ((label,) + tuple(got)))
        else:
            mismatch("%s scale %s, scene.json says %s" % (label, list(got), item["scale"]))
        component = get_prop(actor, "static_mesh_component")
        shown = get_prop(component, "static_mesh") if component is not None else None
        if component is None:
            skipped("check %s: no static_mesh_component to read" % label)
        elif shown is mesh:
            checked("%s shows %s" % (label, item["mesh_asset"]))
        else:
            mismatch("%s shows %s, not %s" % (label, getattr(shown, "get_name", lambda: shown)(), item["mesh_asset"]))


def main():
    missing = [name for name in ("Vector", "Rotator", "EditorAssetLibrary") if lookup(name) is None]
    if missing:
        failed("this editor lacks unreal.%s: is the Python Editor Script Plugin enabled?" % ", unreal.".join(missing))
        return REPORT
    tool, spawner, all_actors, destroy = actor_tools()
    if spawner is None:
        failed("this editor has neither EditorActorSubsystem.spawn_actor_from_object nor "
               "EditorLevelLibrary.spawn_actor_from_object: no actors can be placed")
        return REPORT
    editor = subsystem("UnrealEditorSubsystem")
    world_getter = method(editor, "get_editor_world")
    if world_getter is not None and world_getter() is None:
        failed("no level is open in the editor: open or create one, then run this script again")
        return REPORT
    print("[Open3DForge scene] placing %d object(s) of %s with %s" % (len(OBJECTS), SCENE_NAME, tool))
    if REPLACE_EXISTING:
        remove_earlier(all_actors, destroy)
    for item in OBJECTS:
        mesh = import_object(item)
        if mesh is None:
            continue
        actor = spawn(item, mesh, spawner)
        if actor is not None:
            SPAWNED.append((item, actor, mesh))
    self_check()
    print("[Open3DForge scene] finished %s: %d of %d actor(s) placed; %d done, %d skipped, %d failed; "
          "self-check %d ok, %d mismatch(es)" % (SCENE_NAME, len(SPAWNED), len(OBJECTS), len(REPORT["done"]),
                                                 len(REPORT["skipped"]), len(REPORT["failed"]),
                                                 len(REPORT["checked"]), len(REPORT["mismatch"])))
    for kind in ("skipped", "failed", "mismatch"):
        for message in REPORT[kind]:
            print("[Open3DForge scene]   %s: %s" % (kind, message))
    return REPORT


if __name__ == "__main__":
    main()
'''


def scene_objects(layout: dict) -> list[dict]:
    """The per-object entries import_scene.py needs, taken from a scene.json layout (server/scene/layout.py)."""
    objects = layout.get("objects") if isinstance(layout, dict) else None
    if not objects:
        raise InputError("layout.objects", objects, "a non-empty list of placed objects (scene.json)")
    out = []
    for index, entry in enumerate(objects):
        try:
            name = check_name(entry["name"])
            asset = entry["asset"]
            ue5 = entry["ue5"]
            rotation = ue5["rotation_deg"]
            item = {
                "name": name, "folder": str(asset["folder"]),
                "import_script": str(asset["ue5"]["import_script"]),
                "mesh_asset": str(asset["ue5"]["mesh_asset"]),
                "destination": str(asset["ue5"].get("destination") or f"/Game/Open3DForge/{name}"),
                "location_cm": [float(v) for v in ue5["location_cm"]],
                "rotation_deg": {k: float(rotation[k]) for k in ("roll", "pitch", "yaw")},
                "scale": [float(v) for v in ue5["scale"]],
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"layout.objects[{index}]", entry if isinstance(entry, dict) else type(entry).__name__,
                             f"a scene.json object with name, asset and ue5 transform ({exc})") from None
        if len(item["location_cm"]) != 3 or len(item["scale"]) != 3:
            raise InputError(f"layout.objects[{index}].ue5", ue5, "location_cm and scale of three numbers each")
        out.append(item)
    return out


def import_scene_script(layout: dict, *, outliner_folder: str | None = None, label_with_scene: bool = False) -> str:
    """The text of import_scene.py for a scene.json layout; it sits beside one folder per object.

    outliner_folder: where the actors go in the Outliner (default Open3DForge/<Scene>). label_with_scene:
    actor labels <Scene>_<Object> instead of <Object>.
    """
    name = check_name(layout.get("name") if isinstance(layout, dict) else None)
    objects = scene_objects(layout)
    folder = outliner_folder or f"Open3DForge/{name}"
    header = [
        f'"""Place scene {name} in the level open in Unreal Engine 5: run in the editor (Output Log, Python;',
        'or File > Execute Python Script). Written by Open3DForge; edit the settings below if needed."""',
        "",
        "# ---- settings ----",
        f"SCENE_NAME = {name!r}",
        'SOURCE_DIR = ""  # folder of the unzipped scene; empty: the folder this script is in',
        f"OUTLINER_FOLDER = {folder!r}  # the actors' folder in the Outliner",
        "IMPORT_ASSETS = True  # False: use the assets an earlier run imported (at each object's destination)",
        "REPLACE_EXISTING = True  # remove actors an earlier run left in OUTLINER_FOLDER with the same labels",
        f"LABEL_WITH_SCENE = {bool(label_with_scene)!r}  # actor labels <Scene>_<Object> instead of <Object>",
        "TOLERANCE_CM = 0.01  # self-check tolerances",
        "TOLERANCE_DEG = 0.01",
        "TOLERANCE_SCALE = 1e-4",
        "# Per object: its folder beside this script, its import script and mesh asset, and where the actor goes",
        "# (centimetres; Rotator degrees; scale along the asset's own axes).",
        "OBJECTS = [",
        *[f"    {item!r}," for item in objects],
        "]",
        "# ------------------",
    ]
    text = "\n".join(header) + "\n" + BODY
    compile(text, "import_scene.py", "exec")  # a broken template fails here, not in the editor
    return text

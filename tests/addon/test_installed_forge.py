"""The add-on as a user gets it: the built zip installed into a clean Blender, forging against a real local server.

One Blender process (the bpy module, in a subprocess so pytest never imports bpy; `python -S` so gradio_client and
its dependencies come from the zip's wheels, as in a user's Blender) installs dist/open3dforge-<version>.zip with
package_install_files into user folders under a temporary directory, turns online access on, points the installed
package's preferences at a server this test started, and then:

- forges the four Blender renders of tests/data/house.glb (front, left, back, right) and checks the collection:
  hidden high poly placed like the LODs, LOD0..2, UCX hulls as wire, the M_House material from the baked maps;
- forges a primitive with a material through "use selected object";
- imports the house again from the server's history (import_asset): it also gets its placed, hidden high poly;
- exports the UE5 zip and reads SM_House*.fbx back (UCX hulls, metres, falling LOD triangle counts);
- exports the Unity zip (House.fbx written here: House_LOD0/1/2, colliders as children of LOD0, Y up with identity
  node transforms, metres) and the Godot zip (the server's GLB package, passed through);
- uninstalls: no operator, panel, property or module of ours remains.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from server.local import running_server

PKG = "bl_ext.user_default.open3dforge"
BLENDER_BUNDLED = ("numpy", "numpy.libs", "requests", "urllib3", "certifi", "idna", "charset_normalizer",
                   "zstandard")
TINY = {"generate": {"resolution": 96, "target_faces": 20000},
        "postprocess": {"target_triangles": 1500, "texture_size": 256, "max_hulls": 4},
        "bake": {"ao_samples": 4}}
SELECTION = {**TINY, "postprocess": {"target_triangles": 300, "texture_size": 256, "max_hulls": 2}}

SCRIPT = r'''
import json, os, site, sys, time, zipfile
args = json.loads(sys.argv[1])
site.getsitepackages = lambda prefixes=None: [args["bundled"]]  # bpy sees only Blender's own modules as "its own"
import bpy, addon_utils
from mathutils import Vector

PKG = args["pkg"]
out = {}
def save():
    with open(args["result"], "w") as handle:
        json.dump(out, handle, indent=1, default=str)

def world_box(objects):
    points = [o.matrix_world @ Vector(c) for o in objects for c in o.bound_box]
    low = [min(p[i] for p in points) for i in range(3)]
    high = [max(p[i] for p in points) for i in range(3)]
    return {"min": low, "max": high, "size": [high[i] - low[i] for i in range(3)]}

def local_size(o):
    return [max(c[i] for c in o.bound_box) - min(c[i] for c in o.bound_box) for i in range(3)]

def describe(collection):
    objects = {}
    for o in collection.objects:
        objects[o.name] = {"role": o.get("open3dforge_role"), "display": o.display_type, "hidden": o.hide_get(),
                           "hide_render": o.hide_render, "type": o.type,
                           "materials": [m.name for m in o.data.materials if m] if o.type == "MESH" else [],
                           "faces": len(o.data.polygons) if o.type == "MESH" else 0,
                           "box": world_box([o])}
    return objects

def fbx_nodes(path):
    """Model nodes of an FBX file: name -> Lcl Translation/Rotation/Scaling (absent = FBX default)."""
    from io_scene_fbx import parse_fbx
    root, _ = parse_fbx.parse(path)
    objects = next(e for e in root.elems if e.id == b"Objects")
    found = {}
    for model in (e for e in objects.elems if e.id == b"Model"):
        name = model.props[1].split(b"\x00")[0].decode()
        values = {}
        for group in (e for e in model.elems if e.id == b"Properties70"):
            for p in group.elems:
                key = p.props[0].decode()
                if key in ("Lcl Translation", "Lcl Rotation", "Lcl Scaling"):
                    values[key] = [float(v) for v in p.props[4:7]]
        found[name] = values
    return found

def read_back(path, kind):
    """Import an FBX into the scene, describe what came in, remove it again."""
    known = set(bpy.data.objects)
    if kind == "fbx":
        result = bpy.ops.import_scene.fbx(filepath=path)
    else:
        result = bpy.ops.import_scene.gltf(filepath=path)
    new = [o for o in bpy.data.objects if o not in known]
    info = {"result": sorted(result), "objects": {}}
    for o in new:
        base = o.name.rsplit(".", 1)[0] if o.name[-4:-3] == "." and o.name[-3:].isdigit() else o.name
        info["objects"][base] = {"type": o.type, "parent": o.parent.name.split(".")[0] if o.parent else None,
                                 "faces": len(o.data.polygons) if o.type == "MESH" else 0,
                                 "local_size": local_size(o) if o.type == "MESH" else None,
                                 "world": world_box([o]) if o.type == "MESH" else None,
                                 "materials": [m.name.split(".")[0] for m in o.data.materials if m] if o.type == "MESH" else []}
    meshes = [o.data for o in new if o.type == "MESH"]
    for o in new:
        bpy.data.objects.remove(o, do_unlink=True)
    for m in meshes:
        if m.users == 0:
            bpy.data.meshes.remove(m)
    return info

# --- install from the zip -----------------------------------------------------------------------------
repo = next(r for r in bpy.context.preferences.extensions.repos if r.module == "user_default")
started = time.perf_counter()
out["install"] = sorted(bpy.ops.extensions.package_install_files(filepath=args["zip"], repo="user_default",
                                                                  enable_on_install=True))
out["install_s"] = round(time.perf_counter() - started, 2)
out["enabled"] = PKG in bpy.context.preferences.addons
bpy.context.preferences.system.use_online_access = True
out["online_access"] = bpy.app.online_access
prefs = bpy.context.preferences.addons[PKG].preferences
prefs.server = args["url"]
prefs.output_folder = args["work"]
prefs.request_timeout = 60
ops = sys.modules[PKG + ".operators"]
import gradio_client
out["gradio_client_from"] = os.path.realpath(gradio_client.__file__)
save()

# --- forge the four house renders ---------------------------------------------------------------------
views = ["front", "left", "back", "right"]
started = time.perf_counter()
result = bpy.ops.open3dforge.forge(directory=args["views_dir"], files=[{"name": f"{v}.png"} for v in views],
                                   views=",".join(views), asset_name="House", preset="prop_UE5_standard",
                                   engine="ue5", options=json.dumps(args["options"]))
out["forge"] = {"result": sorted(result), "seconds": round(time.perf_counter() - started, 1),
                "asset_id": ops.STATE["asset_id"], "error": ops.STATE["error"]}
house = bpy.data.collections.get("House")
out["forge"]["collection"] = house is not None and house.name in bpy.context.scene.collection.children
if house is not None:
    out["forge"]["objects"] = describe(house)
    mat = bpy.data.materials.get("M_House")
    if mat is not None:
        nodes = mat.node_tree.nodes
        bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
        out["forge"]["material"] = {
            "images": {n.image.name: n.image.colorspace_settings.name for n in nodes if n.type == "TEX_IMAGE"},
            "links": {s: bsdf.inputs[s].links[0].from_node.bl_idname for s in ("Base Color", "Roughness", "Metallic", "Normal")
                      if bsdf.inputs[s].links}}
save()

# --- export UE5 and read the FBX back -----------------------------------------------------------------
export_dir = os.path.join(args["work"], "export")
result = bpy.ops.open3dforge.export(asset_name="House", engine="ue5", directory=export_dir)
ue5 = out["ue5"] = {"result": sorted(result), "zip": ops.STATE["last_zip"], "error": ops.STATE["error"]}
unzipped = os.path.join(args["work"], "ue5")
with zipfile.ZipFile(ue5["zip"]) as archive:
    ue5["names"] = sorted(archive.namelist())
    ue5["manifest"] = json.loads(archive.read("manifest.json"))
    archive.extractall(unzipped)
ue5["back"] = {f: read_back(os.path.join(unzipped, f), "fbx")
               for f in ("SM_House.fbx", "SM_House_LOD1.fbx", "SM_House_LOD2.fbx")}
save()

# --- export Unity (FBX written here) and Godot (the server's GLB package) ------------------------------
result = bpy.ops.open3dforge.export(asset_name="House", engine="unity", directory=export_dir)
unity = out["unity"] = {"result": sorted(result), "zip": ops.STATE["last_zip"], "error": ops.STATE["error"]}
unzipped = os.path.join(args["work"], "unity")
with zipfile.ZipFile(unity["zip"]) as archive:
    unity["names"] = sorted(archive.namelist())
    unity["manifest"] = json.loads(archive.read("manifest.json"))
    unity["sha_ok"] = all(__import__("hashlib").sha256(archive.read(f["name"])).hexdigest() == f["sha256"]
                          for f in unity["manifest"]["files"])
    archive.extractall(unzipped)
unity["nodes"] = fbx_nodes(os.path.join(unzipped, "House.fbx"))
unity["back"] = read_back(os.path.join(unzipped, "House.fbx"), "fbx")
result = bpy.ops.open3dforge.export(asset_name="House", engine="godot", directory=export_dir)
godot = out["godot"] = {"result": sorted(result), "zip": ops.STATE["last_zip"], "error": ops.STATE["error"]}
unzipped = os.path.join(args["work"], "godot")
with zipfile.ZipFile(godot["zip"]) as archive:
    godot["names"] = sorted(archive.namelist())
    godot["manifest"] = json.loads(archive.read("manifest.json"))
    archive.extractall(unzipped)
godot["back"] = read_back(os.path.join(unzipped, "House.glb"), "glb")
out["export_dir"] = sorted(os.listdir(export_dir))
out["house_after_exports"] = describe(house)
save()

# --- use selected object: a cylinder with a red material -------------------------------------------------
for o in bpy.context.view_layer.objects:
    o.select_set(False)
bpy.ops.mesh.primitive_cylinder_add(vertices=48, radius=0.3, depth=0.8, location=(3, 0, 0))
pillar = bpy.context.active_object
pillar.name = "Pillar"
red = bpy.data.materials.new("Red")
red.use_nodes = True
red.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.8, 0.1, 0.1, 1)
pillar.data.materials.append(red)
result = bpy.ops.open3dforge.forge(use_selection=True, asset_name="Pillar", engine="ue5",
                                   options=json.dumps(args["selection_options"]))
coll = bpy.data.collections.get("Pillar")
out["selection"] = {"result": sorted(result), "error": ops.STATE["error"],
                    "objects": describe(coll) if coll else {},
                    "active": bpy.context.view_layer.objects.active.name,
                    "pillar_materials": [m.name for m in pillar.data.materials]}
save()

# --- import the house again from the server's history ---------------------------------------------------
house_id = out["forge"]["asset_id"]
before = set(bpy.data.collections)
result = bpy.ops.open3dforge.import_asset(asset_id=house_id)
new = [c for c in bpy.data.collections if c not in before]
out["history"] = {"result": sorted(result), "error": ops.STATE["error"], "collections": [c.name for c in new],
                  "objects": describe(new[0]) if new else {},
                  "package_files": sorted(os.listdir(new[0]["open3dforge_package_dir"])) if new else []}
save()

# --- uninstall: nothing of ours remains ---------------------------------------------------------------
out["uninstall"] = sorted(bpy.ops.extensions.package_uninstall(repo_directory=repo.directory, pkg_id="open3dforge"))
out["after"] = {
    "ops": sorted(dir(bpy.ops.open3dforge)),
    "types": sorted(n for n in dir(bpy.types) if n.upper().startswith("OPEN3DFORGE")),
    "scene_prop": "open3dforge" in bpy.types.Scene.bl_rna.properties.keys(),
    "addons": [a for a in bpy.context.preferences.addons.keys() if "open3dforge" in a],
    "modules": sorted(m for m in sys.modules if m == PKG or m.startswith(PKG + ".")),
    "on_disk": os.path.exists(os.path.join(repo.directory, "open3dforge")),
}
out["done"] = True
save()
'''


def _bpy_dir() -> Path | None:
    spec = importlib.util.find_spec("bpy")  # locates bpy without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="module")
def run(house_views, tmp_path_factory) -> dict:
    bpy_dir = _bpy_dir()
    if bpy_dir is None:
        pytest.skip("bpy (Blender as a Python module, cp311 only) is not installed")
    build = subprocess.run([sys.executable, str(ROOT / "build_addon.py")], check=False, cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, f"build_addon.py failed:\n{build.stderr}"
    addon_zip = Path(build.stdout.strip().splitlines()[-1])
    assert addon_zip.is_file(), build.stdout

    work = tmp_path_factory.mktemp("installed_forge")
    bundled = work / "blender_site"  # bpy and Blender's bundled modules only: the rest must come from the wheels
    bundled.mkdir()
    for name in ("bpy", *BLENDER_BUNDLED):
        if (bpy_dir.parent / name).exists():
            (bundled / name).symlink_to(bpy_dir.parent / name)
    user = work / "user"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BLENDER_", "PYTHON", "HF_"))}
    env.update({
        "PYTHONPATH": str(bundled), "GRADIO_ANALYTICS_ENABLED": "False",
        "BLENDER_USER_RESOURCES": str(user), "BLENDER_USER_CONFIG": str(user / "config"),
        "BLENDER_USER_SCRIPTS": str(user / "scripts"), "BLENDER_USER_EXTENSIONS": str(user / "extensions"),
        "BLENDER_USER_DATAFILES": str(user / "datafiles"),
        "HF_HOME": str(work / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1",
    })
    script = work / "installed_forge.py"
    script.write_text(SCRIPT, encoding="utf-8")
    result_path = work / "result.json"
    views_dir = house_views["front"].parent
    assert all(house_views[v].parent == views_dir for v in ("left", "back", "right"))
    with running_server(work / "workspace") as url:
        args = {"zip": str(addon_zip), "url": url, "work": str(work / "out"), "views_dir": str(views_dir),
                "options": TINY, "selection_options": SELECTION, "result": str(result_path),
                "bundled": str(bundled), "pkg": PKG}
        proc = subprocess.run([sys.executable, "-S", str(script), json.dumps(args)], check=False, cwd=work,
                              env=env, capture_output=True, text=True, timeout=600)
    found = json.loads(result_path.read_text()) if result_path.is_file() else {}
    if proc.returncode != 0 or not found.get("done"):
        pytest.fail(f"the Blender script stopped (rc {proc.returncode}); findings so far: "
                    f"{json.dumps(found, default=str)[:3000]}\n{proc.stderr[-5000:]}\n{proc.stdout[-2000:]}")
    return found


def _roles(objects: dict) -> dict:
    return {info["role"]: name for name, info in objects.items() if info["role"] != "ucx"}


def _close(a: list, b: list, tolerance: float) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


def test_installed_from_the_zip_with_gradio_client_from_its_wheels(run):
    assert run["install"] == ["FINISHED"] and run["enabled"] and run["online_access"] is True
    assert "/extensions/.local/" in run["gradio_client_from"]


def test_forge_of_four_views_imports_one_inspectable_collection(run):
    forge = run["forge"]
    assert forge["result"] == ["FINISHED"], forge
    assert forge["collection"]
    objects = forge["objects"]
    assert _roles(objects) == {"lod0": "SM_House", "lod1": "SM_House_LOD1", "lod2": "SM_House_LOD2",
                               "high_poly": "House_high_poly"}
    hulls = {name: info for name, info in objects.items() if info["role"] == "ucx"}
    assert hulls and all(name.startswith("UCX_SM_House_") for name in hulls)
    assert all(info["display"] == "WIRE" and info["hide_render"] and not info["materials"] for info in hulls.values())
    assert objects["House_high_poly"]["hidden"] and objects["SM_House_LOD1"]["hidden"]
    assert objects["SM_House_LOD2"]["hidden"] and not objects["SM_House"]["hidden"]
    for name in ("SM_House", "SM_House_LOD1", "SM_House_LOD2"):
        assert objects[name]["materials"] == ["M_House"]
    faces = [objects[n]["faces"] for n in ("SM_House", "SM_House_LOD1", "SM_House_LOD2")]
    assert faces[0] > faces[1] > faces[2] > 0
    # metres, Z up, standing on the ground at the origin (pivot bottom centre)
    box = objects["SM_House"]["box"]
    assert 0.2 < box["size"][2] < 20.0 and abs(box["min"][2]) < 0.02
    assert forge["material"]["images"] == {"T_House_BC.png": "sRGB", "T_House_N.png": "Non-Color",
                                           "T_House_ORM.png": "Non-Color"}
    assert set(forge["material"]["links"]) == {"Base Color", "Roughness", "Metallic", "Normal"}


def test_forged_high_poly_is_placed_like_the_lods(run):
    objects = run["forge"]["objects"]
    high, lod0 = objects["House_high_poly"]["box"], objects["SM_House"]["box"]
    tolerance = 0.03 * max(lod0["size"])
    assert _close(high["min"], lod0["min"], tolerance) and _close(high["max"], lod0["max"], tolerance), (high, lod0)
    assert objects["House_high_poly"]["faces"] > objects["SM_House"]["faces"]


def test_selected_object_becomes_a_game_ready_asset(run):
    selection = run["selection"]
    assert selection["result"] == ["FINISHED"], selection
    objects = selection["objects"]
    assert _roles(objects) == {"lod0": "SM_Pillar", "lod1": "SM_Pillar_LOD1", "lod2": "SM_Pillar_LOD2",
                               "high_poly": "Pillar_high_poly"}
    assert any(info["role"] == "ucx" for info in objects.values())
    assert objects["SM_Pillar"]["materials"] == ["M_Pillar"]
    box = objects["SM_Pillar"]["box"]
    # The 0.6 x 0.8 m cylinder keeps its real size: a mesh from the scene is not rescaled to a preset height.
    assert abs(box["size"][0] - 0.6) < 0.02 and abs(box["size"][2] - 0.8) < 0.02
    assert selection["active"] == "Pillar" and selection["pillar_materials"] == ["Red"]  # the source is untouched
    # The hidden high poly is the server's placed one (export include_high_poly), not the uploaded mesh, which
    # sat at x = 3 m and 0.8 m tall: it overlays LOD0.
    high = objects["Pillar_high_poly"]["box"]
    assert objects["Pillar_high_poly"]["hidden"]
    assert _close(high["min"], box["min"], 0.02) and _close(high["max"], box["max"], 0.02), (high, box)


def test_import_from_history_brings_the_placed_hidden_high_poly(run):
    history = run["history"]
    assert history["result"] == ["FINISHED"], history
    assert len(history["collections"]) == 1
    objects = history["objects"]
    roles = {info["role"]: info for info in objects.values()}
    assert {"high_poly", "lod0", "lod1", "lod2", "ucx"} <= set(roles)
    assert roles["high_poly"]["hidden"] and roles["high_poly"]["hide_render"]
    assert "high_poly.glb" in history["package_files"]
    forged = run["forge"]["objects"]["House_high_poly"]["box"]
    tolerance = 1e-3 * max(forged["size"])
    assert _close(roles["high_poly"]["box"]["min"], forged["min"], tolerance)
    assert _close(roles["high_poly"]["box"]["max"], forged["max"], tolerance)


def test_ue5_zip_fbx_imports_back_with_ucx_in_metres_and_falling_lods(run):
    ue5 = run["ue5"]
    assert ue5["result"] == ["FINISHED"], ue5
    assert Path(ue5["zip"]).name == "House_UE5.zip"
    assert ue5["names"] == sorted(["SM_House.fbx", "SM_House_LOD1.fbx", "SM_House_LOD2.fbx", "T_House_BC.png",
                                   "T_House_N.png", "T_House_ORM.png", "import_House.py", "manifest.json",
                                   "preview.png"])
    assert ue5["manifest"]["mesh_format"] == "fbx"
    back = ue5["back"]
    lod0 = back["SM_House.fbx"]["objects"]
    hulls = [name for name in lod0 if name.startswith("UCX_SM_House_")]
    assert "SM_House" in lod0 and len(hulls) == ue5["manifest"]["collision_hulls"] > 0
    scene = run["forge"]["objects"]["SM_House"]["box"]["size"]
    assert _close(lod0["SM_House"]["world"]["size"], scene, 0.01 * max(scene))  # metres round trip
    triangles = [back[f]["objects"]["SM_House"]["faces"] for f in ("SM_House.fbx", "SM_House_LOD1.fbx",
                                                                    "SM_House_LOD2.fbx")]
    assert triangles[0] > triangles[1] > triangles[2] > 0
    assert triangles == [run["forge"]["objects"][n]["faces"] for n in ("SM_House", "SM_House_LOD1", "SM_House_LOD2")]


def test_unity_zip_holds_one_y_up_fbx_with_the_lod_names_and_the_servers_maps(run):
    unity = run["unity"]
    assert unity["result"] == ["FINISHED"], unity
    assert Path(unity["zip"]).name == "House_Unity.zip"
    assert unity["names"] == sorted(["House.fbx", "House_BaseMap.png", "House_Normal.png",
                                     "House_MetallicSmoothness.png", "House_MaskMap.png", "manifest.json",
                                     "preview.png"])
    manifest = unity["manifest"]
    assert manifest["engine"] == "Unity" and manifest["mesh_format"] == "fbx" and "fallback" not in manifest
    assert [lod["file"] for lod in manifest["lods"]] == ["House.fbx"] * 3
    assert [lod["node"] for lod in manifest["lods"]] == ["House_LOD0", "House_LOD1", "House_LOD2"]
    assert unity["sha_ok"] and {f["name"] for f in manifest["files"]} == set(unity["names"]) - {"manifest.json"}
    hulls = manifest["collision"]["nodes"]
    assert hulls and hulls == [f"House_Collider_{i:02d}" for i in range(len(hulls))]
    # Every node has an identity transform in the file (no -90 degree X rotation for Unity to show)
    nodes = unity["nodes"]
    assert set(nodes) == {"House_LOD0", "House_LOD1", "House_LOD2", *hulls}
    for name, values in nodes.items():
        assert _close(values.get("Lcl Rotation", [0, 0, 0]), [0, 0, 0], 1e-3), (name, values)
        assert _close(values.get("Lcl Translation", [0, 0, 0]), [0, 0, 0], 1e-4), (name, values)
        assert _close(values.get("Lcl Scaling", [1, 1, 1]), [1, 1, 1], 1e-4), (name, values)
    back = unity["back"]["objects"]
    scene = run["forge"]["objects"]
    for lod, source in enumerate(("SM_House", "SM_House_LOD1", "SM_House_LOD2")):
        item = back[f"House_LOD{lod}"]
        assert item["faces"] == scene[source]["faces"]
        size = scene[source]["box"]["size"]
        # the mesh itself is Y up (height along local Y), in metres; Blender's importer turns it back to Z up
        assert _close(item["local_size"], [size[0], size[2], size[1]], 0.01 * max(size)), (item, size)
        assert _close(item["world"]["size"], size, 0.01 * max(size))
    assert all(back[name]["parent"] == "House_LOD0" for name in hulls)
    # exporting added nothing to the scene and left the inspected collection as it was
    assert run["house_after_exports"] == run["forge"]["objects"]


def test_godot_zip_is_the_servers_glb_package(run):
    godot = run["godot"]
    assert godot["result"] == ["FINISHED"], godot
    assert Path(godot["zip"]).name == "House_Godot.zip"
    assert godot["names"] == ["House.glb", "manifest.json", "preview.png"]
    assert godot["manifest"]["engine"] == "Godot" and godot["manifest"]["mesh_format"] == "glb"
    back = godot["back"]["objects"]
    assert "House" in back and any(name.startswith("House_Hull_") and name.endswith("-convcolonly") for name in back)
    assert run["export_dir"] == ["House_Godot.zip", "House_UE5.zip", "House_Unity.zip"]  # no partial files


def test_uninstall_leaves_no_operator_panel_or_property(run):
    assert run["uninstall"] == ["FINISHED"]
    after = run["after"]
    assert after == {"ops": [], "types": [], "scene_prop": False, "addons": [], "modules": [], "on_disk": False}

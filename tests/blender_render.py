"""Render orthographic views of a mesh with Blender (bpy), for tests that need images of known truth.

Views follow /work/shared/CONVENTIONS.md "Input views" (Blender's view names, orthographic):

    front: camera on -Y looking +Y (image right = +X, up = +Z)
    back:  camera on +Y looking -Y (image right = -X, up = +Z)
    left:  camera on -X looking +X (image right = -Y, up = +Z)
    right: camera on +X looking -X (image right = +Y, up = +Z)
    top:   camera on +Z looking -Z (image right = +X, up = +Y)
    bottom: camera on -Z looking +Z (image right = +X, up = -Y)   (extra, not in the conventions)

Every view is aimed at the centre of the object's world bounding box and uses ONE ortho_scale,
computed from the largest bounding-box extent along any axis, so any subset of views renders at
the same scale (turnaround sheets share one scale) and the object fits every view with --margin.

Command line (needs a Python where ``import bpy`` works)::

    python tests/blender_render.py --mesh M.glb --out DIR --views front,left,back,right \
        [--size 384] [--background 0.85,0.85,0.85] [--samples 16] [--margin 0.1] [--light headlight]

Writes ``DIR/<view>.png`` for each view and ``DIR/views.json`` (ortho scale, image size, camera
placement). Without --background the PNGs are RGBA with a transparent film. With --background r,g,b
(sRGB display values 0..1) ``<view>.png`` is an opaque RGB image of the object composited over that
colour, and ``<view>_mask.png`` holds the object's alpha (8-bit, 255 = object).

Python use (bpy is imported only in a subprocess, never in the caller)::

    from tests.blender_render import render_views
    paths = render_views("tests/data/house.glb", tmp_dir, views=("front", "left"), size=384)

Rendering: Cycles on the CPU, few samples, no denoising, "Standard" view transform (no AgX/Filmic
tone mapping). Meshes with a colour attribute (glTF COLOR_0) and no image textures get a plain
Lambert (Diffuse BSDF) material whose colour is the colour attribute; other meshes keep their
imported materials. Lighting:

* ``headlight`` (default): uniform white world of strength 0.7 plus a sun from the camera's side,
  raised 25 degrees, whose strength makes a face turned square to the camera show its albedo
  (0.7 + S cos 25deg / pi = 1). So a flat wall facing the camera renders at its own colour (within
  a few percent) while faces turned away read darker, which shows the shape.
* ``flat``: uniform white world of strength 1 only. Every unoccluded Lambert face renders exactly at
  its albedo, whatever its orientation; only occlusion (concave corners) darkens.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

VIEW_NAMES = ("front", "back", "left", "right", "top", "bottom")

# direction from the bbox centre to the camera, the camera's image-right and image-up axes,
# and its Euler rotation (XYZ, degrees) for a Blender camera (which looks down its local -Z).
VIEW_DEFS = {
    "front": {"to_camera": (0, -1, 0), "right": (1, 0, 0), "up": (0, 0, 1), "euler": (90, 0, 0)},
    "back": {"to_camera": (0, 1, 0), "right": (-1, 0, 0), "up": (0, 0, 1), "euler": (90, 0, 180)},
    "left": {"to_camera": (-1, 0, 0), "right": (0, -1, 0), "up": (0, 0, 1), "euler": (90, 0, -90)},
    "right": {"to_camera": (1, 0, 0), "right": (0, 1, 0), "up": (0, 0, 1), "euler": (90, 0, 90)},
    "top": {"to_camera": (0, 0, 1), "right": (1, 0, 0), "up": (0, 1, 0), "euler": (0, 0, 0)},
    "bottom": {"to_camera": (0, 0, -1), "right": (1, 0, 0), "up": (0, -1, 0), "euler": (180, 0, 0)},
}

HEADLIGHT_WORLD = 0.7
HEADLIGHT_ELEVATION_DEG = 25.0


# --------------------------------------------------------------------------------------------
# caller side (no bpy)
# --------------------------------------------------------------------------------------------

def bpy_available() -> bool:
    """True if ``import bpy`` would work in this interpreter (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("bpy") is not None


def render_views(mesh_path, out_dir, views=("front", "left", "back", "right"), size=384,
                 background=None, samples=16, margin=0.1, light="headlight", timeout=600) -> dict:
    """Render ``views`` of ``mesh_path`` into ``out_dir`` in a subprocess; return {view: Path}.

    ``background``: None for transparent RGBA PNGs, or an (r, g, b) tuple / "r,g,b" string of sRGB
    values in 0..1 for opaque PNGs over that colour (then ``out_dir/<view>_mask.png`` holds the
    alpha). ``out_dir/views.json`` describes the cameras. Raises RuntimeError if Blender fails.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(views, str):
        views = [v for v in views.split(",") if v]
    views = list(views)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--mesh", str(mesh_path),
           "--out", str(out_dir), "--views", ",".join(views), "--size", str(int(size)),
           "--samples", str(int(samples)), "--margin", str(float(margin)), "--light", light]
    if background is not None:
        if not isinstance(background, str):
            background = ",".join(f"{float(c):g}" for c in background)
        cmd += ["--background", background]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stdout[-3000:] + "\n" + proc.stderr[-3000:]).strip()
        raise RuntimeError(f"blender_render failed (rc {proc.returncode}):\n{tail}")
    paths = {v: out_dir / f"{v}.png" for v in views}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise RuntimeError(f"blender_render wrote no {missing}")
    return paths


# --------------------------------------------------------------------------------------------
# Blender side
# --------------------------------------------------------------------------------------------

def _parse_rgb(text):
    vals = [float(x) for x in text.split(",")]
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3 or not all(0.0 <= v <= 1.0 for v in vals):
        raise argparse.ArgumentTypeError("--background wants r,g,b in 0..1")
    return tuple(vals)


def _srgb_to_linear(x):
    import numpy as np

    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x):
    import numpy as np

    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


def _import_mesh(bpy, path):
    ext = Path(path).suffix.lower()
    if ext in (".glb", ".gltf"):
        bpy.ops.import_scene.gltf(filepath=str(path))
    elif ext == ".obj":
        bpy.ops.wm.obj_import(filepath=str(path))
    elif ext == ".ply":
        bpy.ops.wm.ply_import(filepath=str(path))
    elif ext == ".stl":
        bpy.ops.wm.stl_import(filepath=str(path))
    elif ext == ".fbx":
        bpy.ops.import_scene.fbx(filepath=str(path))
    else:
        raise SystemExit(f"unsupported mesh format: {ext}")
    objs = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    if not objs:
        raise SystemExit(f"no mesh objects in {path}")
    return objs


def _world_bbox(bpy, objs):
    import numpy as np

    deps = bpy.context.evaluated_depsgraph_get()
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for o in objs:
        ev = o.evaluated_get(deps)
        me = ev.to_mesh()
        n = len(me.vertices)
        if n:
            co = np.empty(n * 3, dtype=np.float64)
            me.vertices.foreach_get("co", co)
            co = co.reshape(-1, 3)
            m = np.array(ev.matrix_world)
            w = co @ m[:3, :3].T + m[:3, 3]
            lo = np.minimum(lo, w.min(axis=0))
            hi = np.maximum(hi, w.max(axis=0))
        ev.to_mesh_clear()
    if not np.all(np.isfinite(lo)):
        raise SystemExit("mesh has no vertices")
    return lo, hi


def _uses_image_texture(mat):
    return bool(mat and mat.node_tree
                and any(n.type == "TEX_IMAGE" and n.image for n in mat.node_tree.nodes))


def _vertex_colour_material(bpy, attr_name):
    mat = bpy.data.materials.new(f"VertexColour_{attr_name}")
    if mat.node_tree is None:  # Blender < 5 creates materials without nodes
        mat.use_nodes = True
    nt = mat.node_tree
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    bsdf = nt.nodes.new("ShaderNodeBsdfDiffuse")
    bsdf.inputs["Roughness"].default_value = 0.0  # pure Lambert
    attr = nt.nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = attr_name
    nt.links.new(attr.outputs["Color"], bsdf.inputs["Color"])
    nt.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    return mat


def _setup_materials(bpy, objs):
    for o in objs:
        me = o.data
        if not len(me.color_attributes):
            continue
        if any(_uses_image_texture(m) for m in me.materials):
            continue
        ca = me.color_attributes
        name = (ca.active_color.name if ca.active_color is not None else ca[0].name)
        mat = _vertex_colour_material(bpy, name)
        me.materials.clear()
        me.materials.append(mat)
        for p in me.polygons:
            p.material_index = 0


def _setup_scene(bpy, size, samples, light):
    scene = bpy.context.scene
    r = scene.render
    r.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = int(samples)
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.use_preview_denoising = False
    scene.cycles.max_bounces = 3
    scene.cycles.diffuse_bounces = 2
    scene.cycles.glossy_bounces = 1
    scene.cycles.transmission_bounces = 2
    scene.cycles.transparent_max_bounces = 4
    scene.cycles.volume_bounces = 0
    scene.cycles.caustics_reflective = False
    scene.cycles.caustics_refractive = False
    scene.cycles.seed = 0
    r.resolution_x = int(size)
    r.resolution_y = int(size)
    r.resolution_percentage = 100
    r.pixel_aspect_x = r.pixel_aspect_y = 1.0
    r.film_transparent = True
    r.use_persistent_data = True
    img = r.image_settings
    img.file_format = "PNG"
    img.color_mode = "RGBA"
    img.color_depth = "8"
    img.compression = 15
    vs = scene.view_settings
    scene.display_settings.display_device = "sRGB"
    vs.view_transform = "Standard"
    vs.look = "None"
    vs.exposure = 0.0
    vs.gamma = 1.0
    vs.use_curve_mapping = False

    world = bpy.data.worlds.new("UniformWhite")
    if world.node_tree is None:  # Blender < 5
        world.use_nodes = True
    bg = world.node_tree.nodes.get("Background") or world.node_tree.nodes.new("ShaderNodeBackground")
    bg.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    bg.inputs["Strength"].default_value = 1.0 if light == "flat" else HEADLIGHT_WORLD
    out = world.node_tree.nodes.get("World Output") or world.node_tree.nodes.new("ShaderNodeOutputWorld")
    if not bg.outputs["Background"].links:
        world.node_tree.links.new(bg.outputs["Background"], out.inputs["Surface"])
    scene.world = world

    cam_data = bpy.data.cameras.new("OrthoCam")
    cam_data.type = "ORTHO"
    cam_data.sensor_fit = "AUTO"
    cam = bpy.data.objects.new("OrthoCam", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam

    sun = None
    if light == "headlight":
        sun_data = bpy.data.lights.new("Headlight", type="SUN")
        # Lambert radiance = albedo * (world + S cos(theta) / pi); make it 1 at the camera-facing face.
        sun_data.energy = (1.0 - HEADLIGHT_WORLD) * math.pi / math.cos(math.radians(HEADLIGHT_ELEVATION_DEG))
        sun_data.angle = math.radians(2.0)
        sun = bpy.data.objects.new("Headlight", sun_data)
        scene.collection.objects.link(sun)
    return scene, cam, sun


def _place(view, centre, ortho_scale, distance, cam, sun):
    from mathutils import Euler, Vector

    d = VIEW_DEFS[view]
    to_cam = Vector(d["to_camera"])
    cam.location = Vector(centre) + to_cam * distance
    cam.rotation_euler = Euler([math.radians(a) for a in d["euler"]], "XYZ")
    cam.data.ortho_scale = ortho_scale
    cam.data.clip_start = max(1e-4, distance * 1e-3)
    cam.data.clip_end = distance * 4.0
    if sun is not None:
        # light travels from the camera's side, raised towards image-up by the elevation angle
        e = math.radians(HEADLIGHT_ELEVATION_DEG)
        toward_light = to_cam * math.cos(e) + Vector(d["up"]) * math.sin(e)
        # a sun lamp shines along its local -Z
        sun.rotation_euler = toward_light.to_track_quat("Z", "Y").to_euler()
    return {
        "location": [round(float(x), 6) for x in cam.location],
        "rotation_euler_deg": list(d["euler"]),
        "look_direction": [0.0 - float(x) for x in d["to_camera"]],
        "image_right": list(d["right"]),
        "image_up": list(d["up"]),
    }


def _finish_image(path, background, mask_path):
    """Composite an RGBA render over a background colour (in linear light) and save the mask."""
    import numpy as np
    from PIL import Image

    im = np.asarray(Image.open(path).convert("RGBA"), dtype=np.float64) / 255.0
    a = im[..., 3:4]
    rgb_lin = _srgb_to_linear(im[..., :3])
    bg_lin = _srgb_to_linear(np.asarray(background, dtype=np.float64))[None, None, :]
    out = _linear_to_srgb(rgb_lin * a + bg_lin * (1.0 - a))
    Image.fromarray((out * 255.0 + 0.5).astype(np.uint8), "RGB").save(path, optimize=True)
    Image.fromarray((a[..., 0] * 255.0 + 0.5).astype(np.uint8), "L").save(mask_path, optimize=True)


def render_cli(argv=None):
    ap = argparse.ArgumentParser(description="Orthographic Blender views of a mesh (see module doc).")
    ap.add_argument("--mesh", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--views", default="front,left,back,right")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--background", type=_parse_rgb, default=None,
                    help="r,g,b sRGB in 0..1: opaque background plus <view>_mask.png")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--margin", type=float, default=0.1,
                    help="empty border on each side, as a fraction of the image (default 0.1)")
    ap.add_argument("--ortho-scale", type=float, default=None,
                    help="override the computed ortho_scale (world units across the image)")
    ap.add_argument("--light", choices=("headlight", "flat"), default="headlight")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all)")
    args = ap.parse_args(argv)

    views = [v.strip() for v in args.views.split(",") if v.strip()]
    bad = [v for v in views if v not in VIEW_DEFS]
    if bad or not views:
        ap.error(f"unknown views {bad}; choose from {', '.join(VIEW_NAMES)}")
    if not (0.0 <= args.margin < 0.5):
        ap.error("--margin must be in [0, 0.5)")

    import time

    import bpy

    t0 = time.time()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    objs = _import_mesh(bpy, Path(args.mesh).resolve())
    _setup_materials(bpy, objs)
    scene, cam, sun = _setup_scene(bpy, args.size, args.samples, args.light)
    if args.threads > 0:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = args.threads

    lo, hi = _world_bbox(bpy, objs)
    centre = (lo + hi) / 2.0
    extent = float(max(hi - lo))
    if extent <= 0:
        raise SystemExit("degenerate mesh bounding box")
    ortho_scale = args.ortho_scale or extent / (1.0 - 2.0 * args.margin)
    distance = 2.0 * extent + 1.0

    info = {
        "mesh": str(Path(args.mesh).resolve()),
        "conventions": "CONVENTIONS.md 'Input views': Blender view names, orthographic",
        "ortho_scale": ortho_scale,
        "image_size": [args.size, args.size],
        "pixels_per_unit": args.size / ortho_scale,
        "bbox_min": [float(x) for x in lo],
        "bbox_max": [float(x) for x in hi],
        "center": [float(x) for x in centre],
        "camera_distance": distance,
        "margin": args.margin,
        "samples": args.samples,
        "light": args.light,
        "background": list(args.background) if args.background else None,
        "engine": "CYCLES/CPU",
        "view_transform": "Standard",
        "blender": bpy.app.version_string,
        "views": {},
    }
    for view in views:
        t = time.time()
        cam_info = _place(view, centre, ortho_scale, distance, cam, sun)
        path = out_dir / f"{view}.png"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        entry = {"file": path.name, **cam_info}
        if args.background is not None:
            mask = out_dir / f"{view}_mask.png"
            _finish_image(path, args.background, mask)
            entry["mask"] = mask.name
        entry["render_seconds"] = round(time.time() - t, 3)
        info["views"][view] = entry
        print(f"blender_render: {view} -> {path} ({entry['render_seconds']:.2f} s)", flush=True)
    info["total_seconds"] = round(time.time() - t0, 3)
    (out_dir / "views.json").write_text(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(render_cli())

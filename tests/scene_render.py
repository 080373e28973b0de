"""Render a scene of primitives on a ground plane with Blender (bpy), for tests that need pictures of known truth.

The camera is the one server/scene/camera.py assumes, built here independently with Blender's own camera:
at (0, 0, camera_height_m) looking along +Y, pitched pitch_deg below the horizon, with a vertical field of
view of vfov_deg (sensor fit vertical). Objects stand on the ground z = 0; the ground is a plane that
renders in the backdrop's colour (an emission shader, so it takes no shadows), the world shows the same
colour: a plain studio backdrop, the picture the weight-free background remover expects.

Scene specification (JSON, or a dict for render_scene)::

    {"size": [448, 336], "samples": 16,
     "camera": {"vfov_deg": 50, "camera_height_m": 1.6, "pitch_deg": 15},
     "backdrop": [0.8, 0.8, 0.8],               # sRGB 0..1
     "objects": [{"name": "crate", "shape": "box" | "sphere" | "cylinder" | "cone" | "mesh",
                  "mesh": "path.glb",            # shape "mesh" only: scaled to "size" keeping proportions
                  "size": [w, d, h],              # metres along the object's own X, Y, Z
                  "at": [x, y],                   # bottom centre on the ground, metres
                  "yaw_deg": 0,                   # about +Z; "face_camera" turns its front (-Y) to the camera
                  "colour": [r, g, b]}]}          # sRGB 0..1 (meshes with vertex colours keep them)

Writes into the output folder ``image.png`` (opaque RGB), ``mask_<name>.png`` (each object's visible pixels,
255 = object, others occluding it: rendered with every other object as a holdout) and ``truth.json``: the
camera, and per object its world bounding box, bottom centre, size along its own axes, yaw and lowest point,
all measured from the evaluated mesh in Blender.

Python use (bpy only in the subprocess)::

    from tests.scene_render import render_scene, rendered
    truth = render_scene(spec, out_dir)   # the truth.json dict, with "image" and "masks" paths added
    truth = rendered("market", tmp_root)  # one of SCENES, rendered once per test session
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

SHAPES = ("box", "sphere", "cylinder", "cone", "mesh")
MASK_SAMPLES = 4
HOUSE = Path(__file__).resolve().parent / "data" / "house.glb"

# The scenes the tests render (camera: the defaults server/scene/camera.py assumes). MARKET: five objects,
# the ball just in front of the crate's edge, so the two touch in the picture at a neck; the house (a shipped
# mesh) far back with nothing in front of it. SINGLE: a scene of one.
MARKET = {
    "size": [448, 336], "samples": 16,
    "camera": {"vfov_deg": 50, "camera_height_m": 1.6, "pitch_deg": 15},
    "backdrop": [0.8, 0.8, 0.8],
    "objects": [
        {"name": "crate", "shape": "box", "size": [0.7, 0.7, 0.7], "at": [-1.2, 3.3], "yaw_deg": "face_camera",
         "colour": [0.75, 0.2, 0.15]},
        {"name": "ball", "shape": "sphere", "size": [0.55, 0.55, 0.55], "at": [-0.5, 2.95],
         "yaw_deg": "face_camera", "colour": [0.9, 0.6, 0.1]},
        {"name": "barrel", "shape": "cylinder", "size": [0.6, 0.6, 0.9], "at": [1.0, 4.0], "yaw_deg": "face_camera",
         "colour": [0.15, 0.3, 0.75]},
        {"name": "post", "shape": "cylinder", "size": [0.5, 0.5, 1.3], "at": [0.4, 5.0], "yaw_deg": "face_camera",
         "colour": [0.2, 0.6, 0.2]},
        {"name": "house", "shape": "mesh", "mesh": str(HOUSE), "size": [1.2, 1.2, 1.4], "at": [-0.9, 7.0],
         "yaw_deg": "face_camera"},
    ],
}
SINGLE = {
    "size": [320, 240], "samples": 8,
    "camera": {"vfov_deg": 40, "camera_height_m": 1.2, "pitch_deg": 20},
    "backdrop": [0.78, 0.8, 0.82],
    "objects": [
        {"name": "chest", "shape": "box", "size": [0.9, 0.5, 0.6], "at": [0.3, 3.2], "yaw_deg": "face_camera",
         "colour": [0.3, 0.55, 0.2]},
    ],
}
SCENES = {"market": MARKET, "single": SINGLE}
_RENDERED: dict = {}


# --------------------------------------------------------------------------------------------
# caller side (no bpy)
# --------------------------------------------------------------------------------------------

def render_scene(spec: dict, out_dir, *, timeout: float = 600) -> dict:
    """Render spec into out_dir in a Blender subprocess; return truth.json with image and mask paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path = out_dir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--spec", str(spec_path), "--out", str(out_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stdout[-3000:] + "\n" + proc.stderr[-3000:]).strip()
        raise RuntimeError(f"scene_render failed (rc {proc.returncode}):\n{tail}")
    truth = json.loads((out_dir / "truth.json").read_text())
    truth["image"] = str(out_dir / "image.png")
    truth["masks"] = {o["name"]: str(out_dir / f"mask_{o['name']}.png") for o in truth["objects"]}
    return truth


def rendered(name: str, out_root) -> dict:
    """SCENES[name] rendered once per process into out_root/name (later calls reuse it), as render_scene returns."""
    if name not in _RENDERED:
        _RENDERED[name] = render_scene(SCENES[name], Path(out_root) / name)
    return _RENDERED[name]


# --------------------------------------------------------------------------------------------
# Blender side
# --------------------------------------------------------------------------------------------

def _srgb_to_linear(c):
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _linear_rgba(rgb):
    return tuple(_srgb_to_linear(float(c)) for c in rgb) + (1.0,)


def _diffuse(bpy, name, rgb):
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # Blender < 5 creates materials without nodes
        mat.use_nodes = True
    nodes = mat.node_tree.nodes
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    bsdf = nodes.new("ShaderNodeBsdfDiffuse")
    bsdf.inputs["Color"].default_value = _linear_rgba(rgb)
    mat.node_tree.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    return mat


def _emission(bpy, name, rgb):
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:
        mat.use_nodes = True
    nodes = mat.node_tree.nodes
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    emit = nodes.new("ShaderNodeEmission")
    emit.inputs["Color"].default_value = _linear_rgba(rgb)
    emit.inputs["Strength"].default_value = 1.0
    mat.node_tree.links.new(emit.outputs["Emission"], out.inputs["Surface"])
    return mat


def _vertex_colour_material(bpy, attr_name):
    mat = bpy.data.materials.new(f"VertexColour_{attr_name}")
    if mat.node_tree is None:
        mat.use_nodes = True
    nodes = mat.node_tree.nodes
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    bsdf = nodes.new("ShaderNodeBsdfDiffuse")
    attr = nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = attr_name
    mat.node_tree.links.new(attr.outputs["Color"], bsdf.inputs["Color"])
    mat.node_tree.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    return mat


def _world_vertices(bpy, obj):
    import numpy as np

    deps = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(deps)
    me = ev.to_mesh()
    co = np.empty(len(me.vertices) * 3, dtype=np.float64)
    me.vertices.foreach_get("co", co)
    ev.to_mesh_clear()
    m = np.array(obj.matrix_world)
    return co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]


def _joined_mesh_object(bpy, path, name):
    """Import a mesh file and join its mesh parts into one object with transforms applied."""
    before = set(bpy.data.objects)
    suffix = Path(path).suffix.lower()
    if suffix in (".glb", ".gltf"):
        bpy.ops.import_scene.gltf(filepath=str(path))
    elif suffix == ".ply":
        bpy.ops.wm.ply_import(filepath=str(path))
    elif suffix == ".obj":
        bpy.ops.wm.obj_import(filepath=str(path))
    else:
        raise SystemExit(f"unsupported mesh format {suffix}")
    new = [o for o in bpy.data.objects if o not in before]
    meshes = [o for o in new if o.type == "MESH"]
    if not meshes:
        raise SystemExit(f"no mesh in {path}")
    bpy.ops.object.select_all(action="DESELECT")
    for o in meshes:
        o.select_set(True)
    bpy.context.view_layer.objects.active = meshes[0]
    if len(meshes) > 1:
        bpy.ops.object.join()
    obj = bpy.context.view_layer.objects.active
    bpy.ops.object.parent_clear(type="CLEAR_KEEP_TRANSFORM")
    bpy.ops.object.transform_apply(location=True, rotation=True, scale=True)
    for o in new:
        if o.name in bpy.data.objects and o is not obj:
            bpy.data.objects.remove(o, do_unlink=True)
    obj.name = name
    return obj


def _make_object(bpy, spec):
    """One object of unit-free primitive geometry, scaled so its own bounding box is size, bottom at z = 0."""
    import numpy as np

    shape = spec["shape"]
    if shape not in SHAPES:
        raise SystemExit(f"object {spec['name']}: shape {shape!r} is not one of {SHAPES}")
    w, d, h = (float(v) for v in spec["size"])
    if shape == "box":
        bpy.ops.mesh.primitive_cube_add(size=2.0)
    elif shape == "sphere":
        bpy.ops.mesh.primitive_uv_sphere_add(radius=1.0, segments=48, ring_count=24)
    elif shape == "cylinder":
        bpy.ops.mesh.primitive_cylinder_add(radius=1.0, depth=2.0, vertices=48)
    elif shape == "cone":
        bpy.ops.mesh.primitive_cone_add(radius1=1.0, radius2=0.0, depth=2.0, vertices=48)
    if shape == "mesh":
        obj = _joined_mesh_object(bpy, spec["mesh"], spec["name"])
        co = _world_vertices(bpy, obj)
        lo, hi = co.min(axis=0), co.max(axis=0)
        factor = min(w / (hi[0] - lo[0]), d / (hi[1] - lo[1]), h / (hi[2] - lo[2]))  # keep proportions
        centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
        obj.data.transform(_matrix(bpy, scale=(factor,) * 3) @ _matrix(bpy, translate=-centre))
        if len(obj.data.color_attributes) and not spec.get("colour"):
            ca = obj.data.color_attributes
            name = ca.active_color.name if ca.active_color is not None else ca[0].name
            material = _vertex_colour_material(bpy, name)
        else:
            material = _diffuse(bpy, f"M_{spec['name']}", spec.get("colour", (0.6, 0.6, 0.6)))
    else:
        obj = bpy.context.view_layer.objects.active
        obj.name = spec["name"]
        # primitives span -1..1: scale to the size, lift the bottom to z = 0
        obj.data.transform(_matrix(bpy, translate=(0.0, 0.0, h / 2)) @ _matrix(bpy, scale=(w / 2, d / 2, h / 2)))
        material = _diffuse(bpy, f"M_{spec['name']}", spec.get("colour", (0.6, 0.6, 0.6)))
    obj.data.materials.clear()
    obj.data.materials.append(material)
    for polygon in obj.data.polygons:
        polygon.material_index = 0
        polygon.use_smooth = shape in ("sphere", "cylinder", "cone")
    x, y = (float(v) for v in spec["at"])
    yaw = spec.get("yaw_deg", 0.0)
    if yaw == "face_camera":
        yaw = math.degrees(math.atan2(-x, y))  # its front (-Y) toward the camera at the origin
    obj.location = (x, y, 0.0)
    obj.rotation_euler = (0.0, 0.0, math.radians(float(yaw)))
    bpy.context.view_layer.update()
    return obj, float(yaw)


def _matrix(bpy, *, scale=None, translate=None):
    from mathutils import Matrix

    if scale is not None:
        return Matrix.Diagonal((*scale, 1.0))
    return Matrix.Translation(translate)


def _setup(bpy, spec):
    scene = bpy.context.scene
    r = scene.render
    r.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 3
    scene.cycles.seed = 0
    width, height = (int(v) for v in spec["size"])
    r.resolution_x, r.resolution_y, r.resolution_percentage = width, height, 100
    r.pixel_aspect_x = r.pixel_aspect_y = 1.0
    r.use_persistent_data = True
    r.image_settings.file_format = "PNG"
    r.image_settings.color_depth = "8"
    scene.display_settings.display_device = "sRGB"
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"

    backdrop = spec.get("backdrop", (0.8, 0.8, 0.8))
    world = bpy.data.worlds.new("Backdrop")
    if world.node_tree is None:
        world.use_nodes = True
    bg = world.node_tree.nodes.get("Background") or world.node_tree.nodes.new("ShaderNodeBackground")
    bg.inputs["Color"].default_value = _linear_rgba(backdrop)
    bg.inputs["Strength"].default_value = 1.0
    out = world.node_tree.nodes.get("World Output") or world.node_tree.nodes.new("ShaderNodeOutputWorld")
    if not bg.outputs["Background"].links:
        world.node_tree.links.new(bg.outputs["Background"], out.inputs["Surface"])
    scene.world = world

    bpy.ops.mesh.primitive_plane_add(size=400.0, location=(0.0, 0.0, 0.0))
    ground = bpy.context.view_layer.objects.active
    ground.name = "Ground"
    ground.data.materials.append(_emission(bpy, "M_Ground", spec.get("ground", backdrop)))

    sun_data = bpy.data.lights.new("Sun", type="SUN")
    sun_data.energy = 2.5
    if hasattr(sun_data, "use_shadow"):
        sun_data.use_shadow = False
    sun = bpy.data.objects.new("Sun", sun_data)
    sun.rotation_euler = (math.radians(40), math.radians(-25), math.radians(20))
    scene.collection.objects.link(sun)

    cam_cfg = spec.get("camera", {})
    vfov = float(cam_cfg.get("vfov_deg", 50.0))
    cam_height = float(cam_cfg.get("camera_height_m", 1.6))
    pitch = float(cam_cfg.get("pitch_deg", 15.0))
    cam_data = bpy.data.cameras.new("SceneCamera")
    cam_data.type = "PERSP"
    cam_data.sensor_fit = "VERTICAL"
    cam_data.angle_y = math.radians(vfov)
    cam_data.clip_start, cam_data.clip_end = 0.05, 500.0
    cam = bpy.data.objects.new("SceneCamera", cam_data)
    cam.location = (0.0, 0.0, cam_height)
    # a Blender camera looks down its local -Z: 90 degrees about X looks along +Y, less the pitch looks down
    cam.rotation_euler = (math.radians(90.0 - pitch), 0.0, 0.0)
    scene.collection.objects.link(cam)
    scene.camera = cam
    return scene, ground, {"vfov_deg": vfov, "camera_height_m": cam_height, "pitch_deg": pitch,
                           "angle_y_deg": math.degrees(cam_data.angle_y), "sensor_fit": cam_data.sensor_fit}


def _render(bpy, scene, path, samples, transparent):
    scene.cycles.samples = int(samples)
    scene.render.film_transparent = transparent
    scene.render.image_settings.color_mode = "RGBA" if transparent else "RGB"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def render_cli(argv=None):
    ap = argparse.ArgumentParser(description="Render a scene of primitives on a ground plane (see module doc).")
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    spec = json.loads(Path(args.spec).read_text())
    names = [o["name"] for o in spec["objects"]]
    if len(set(names)) != len(names):
        raise SystemExit(f"object names must be unique: {names}")

    import bpy
    import numpy as np
    from PIL import Image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene, ground, camera = _setup(bpy, spec)
    objects = []
    truth = {"camera": camera, "size": list(spec["size"]), "blender": bpy.app.version_string, "objects": []}
    for item in spec["objects"]:
        obj, yaw = _make_object(bpy, item)
        objects.append(obj)
        world = _world_vertices(bpy, obj)
        local = np.array([list(v.co) for v in obj.data.vertices])
        lo, hi = world.min(axis=0), world.max(axis=0)
        truth["objects"].append({
            "name": item["name"], "shape": item["shape"], "yaw_deg": yaw,
            "bottom_centre": [float(obj.location.x), float(obj.location.y), float(lo[2])],
            "bbox_min": lo.tolist(), "bbox_max": hi.tolist(),
            "centre": ((lo + hi) / 2).tolist(),
            "size": (local.max(axis=0) - local.min(axis=0)).tolist(),  # along its own axes
            "lowest_z": float(lo[2]),
        })

    _render(bpy, scene, out / "image.png", spec.get("samples", 16), transparent=False)
    # Each object's visible pixels: every other object (and the ground) held out, so they still occlude it.
    ground.is_holdout = True
    for obj in objects:
        for other in objects:
            other.is_holdout = other is not obj
        tmp = out / f"_alpha_{obj.name}.png"
        _render(bpy, scene, tmp, MASK_SAMPLES, transparent=True)
        alpha = np.asarray(Image.open(tmp).convert("RGBA"))[..., 3]
        Image.fromarray(np.where(alpha >= 128, 255, 0).astype(np.uint8), "L").save(out / f"mask_{obj.name}.png")
        tmp.unlink()
    (out / "truth.json").write_text(json.dumps(truth, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(render_cli())

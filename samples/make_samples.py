"""Make the bundled demo sample images (our own work, CC0-1.0).

Run:  python samples/make_samples.py   (needs a Python where ``import bpy`` works, plus numpy, pillow)

Writes, next to this script:

* ``barrel.png``: a stylised wooden barrel (lathed body with a bulge, 16 staves with dark grooves,
  four dark metal hoops) rendered with Blender Cycles on the CPU from the FRONT view of
  CONVENTIONS.md "Input views" (orthographic, camera on -Y looking +Y, Z up), 512 x 512 RGBA on a
  transparent background;
* ``barrel_grey.png``: the same image composited (in linear light) over plain light grey, RGB with
  no alpha: a "photo on a plain background" for the classical background remover.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIZE = 512
GREY_SRGB = (0.86, 0.86, 0.86)

HEIGHT = 1.0
R_END, R_MID = 0.34, 0.42
STAVES = 16
SEG_PER_STAVE = 4          # wide segments per stave, plus one narrow groove segment
GROOVE_FRAC = 0.06         # fraction of a stave's angle taken by its groove
GROOVE_DEPTH = 0.012
RINGS = 24
HOOPS = (0.07, 0.27, 0.73, 0.93)   # hoop centres as a fraction of the height
HOOP_H, HOOP_T = 0.055, 0.014

WOOD = [(0.55, 0.33, 0.16), (0.60, 0.37, 0.18), (0.50, 0.30, 0.14), (0.58, 0.35, 0.17)]
GROOVE = (0.22, 0.12, 0.06)
LID = (0.50, 0.31, 0.16)


def radius(z):
    t = (z - HEIGHT / 2) / (HEIGHT / 2)
    return R_END + (R_MID - R_END) * (1.0 - t * t)


def srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x):
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


def build_barrel_body():
    """Vertices, quads/ngons and per-face sRGB colours of the stave body and its two lids."""
    rng = random.Random(7)
    stave_cols = [tuple(min(1.0, c * rng.uniform(0.93, 1.07)) for c in WOOD[i % len(WOOD)])
                  for i in range(STAVES)]
    # angular samples: per stave SEG_PER_STAVE wide steps then one groove step
    angles, groove = [], []
    step = 2 * math.pi / STAVES
    for s in range(STAVES):
        a0 = s * step
        wide = step * (1 - GROOVE_FRAC) / SEG_PER_STAVE
        for k in range(SEG_PER_STAVE):
            angles.append(a0 + k * wide)
            groove.append(False)
        angles.append(a0 + step * (1 - GROOVE_FRAC))
        groove.append(True)
    n = len(angles)
    # the groove sits between its two bounding columns: push both columns of the groove inward
    inset = [groove[i] or groove[i - 1] for i in range(n)]
    verts = []
    for j in range(RINGS + 1):
        z = HEIGHT * j / RINGS
        r = radius(z)
        for i, a in enumerate(angles):
            rr = r - (GROOVE_DEPTH * 0.5 if inset[i] else 0.0)
            verts.append((rr * math.cos(a), rr * math.sin(a), z))
    faces, cols = [], []
    for j in range(RINGS):
        for i in range(n):
            i2 = (i + 1) % n
            faces.append((j * n + i, j * n + i2, (j + 1) * n + i2, (j + 1) * n + i))
            stave = i // (SEG_PER_STAVE + 1)
            cols.append(GROOVE if groove[i] else stave_cols[stave])
    # lids, slightly sunk into the body (chime), as one n-gon each
    base = len(verts)
    for z, zl in ((0.0, 0.03), (HEIGHT, HEIGHT - 0.03)):
        ring_start = len(verts)
        for a in angles:
            rr = radius(z) - GROOVE_DEPTH
            verts.append((rr * math.cos(a), rr * math.sin(a), zl))
        ring = list(range(ring_start, ring_start + n))
        faces.append(tuple(ring if z > 0 else ring[::-1]))
        cols.append(LID)
    del base
    return verts, faces, cols


def build_hoop(zc):
    """A closed rectangular-section ring hugging the bulged body at height zc."""
    seg = 96
    z0, z1 = zc - HOOP_H / 2, zc + HOOP_H / 2
    ri0, ri1 = radius(z0) - 0.004, radius(z1) - 0.004
    ro0, ro1 = radius(z0) + HOOP_T, radius(z1) + HOOP_T
    profile = [(ri0, z0), (ro0, z0), (ro1, z1), (ri1, z1)]  # inner-bottom, outer-bottom, outer-top, inner-top
    verts = []
    for i in range(seg):
        a = 2 * math.pi * i / seg
        for r, z in profile:
            verts.append((r * math.cos(a), r * math.sin(a), z))
    faces = []
    for i in range(seg):
        i2 = (i + 1) % seg
        for k in range(4):
            k2 = (k + 1) % 4
            faces.append((i * 4 + k, i2 * 4 + k, i2 * 4 + k2, i * 4 + k2))
    return verts, faces


def make_scene(bpy):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene

    # body with a per-face colour attribute
    verts, faces, cols = build_barrel_body()
    me = bpy.data.meshes.new("Barrel")
    me.from_pydata(verts, [], faces)
    me.validate()
    attr = me.color_attributes.new("Col", "FLOAT_COLOR", "CORNER")
    lin = srgb_to_linear(np.asarray(cols))
    corner = np.empty((len(me.loops), 4), dtype=np.float32)
    for p in me.polygons:
        c = lin[p.index]
        corner[p.loop_start:p.loop_start + p.loop_total] = (c[0], c[1], c[2], 1.0)
    attr.data.foreach_set("color", corner.reshape(-1))
    for p in me.polygons:
        p.use_smooth = True
    body = bpy.data.objects.new("Barrel", me)
    scene.collection.objects.link(body)

    wood = bpy.data.materials.new("Wood")
    if wood.node_tree is None:
        wood.use_nodes = True
    nt = wood.node_tree
    bsdf = next(n for n in nt.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = 0.7
    bsdf.inputs["Specular IOR Level"].default_value = 0.3
    a = nt.nodes.new("ShaderNodeAttribute")
    a.attribute_type = "GEOMETRY"
    a.attribute_name = "Col"
    nt.links.new(a.outputs["Color"], bsdf.inputs["Base Color"])
    me.materials.append(wood)

    metal = bpy.data.materials.new("Iron")
    if metal.node_tree is None:
        metal.use_nodes = True
    mb = next(n for n in metal.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    mb.inputs["Base Color"].default_value = (*srgb_to_linear([0.26, 0.26, 0.28]), 1.0)
    mb.inputs["Metallic"].default_value = 0.85
    mb.inputs["Roughness"].default_value = 0.45
    for k, zf in enumerate(HOOPS):
        hv, hf = build_hoop(zf * HEIGHT)
        hm = bpy.data.meshes.new(f"Hoop{k}")
        hm.from_pydata(hv, [], hf)
        hm.validate()
        for p in hm.polygons:
            p.use_smooth = True
        hm.set_sharp_from_angle(angle=math.radians(40))  # smooth around, sharp at the section corners
        hm.materials.append(metal)
        ob = bpy.data.objects.new(f"Hoop{k}", hm)
        scene.collection.objects.link(ob)

    # lighting: soft sky plus a warm key from front-left-above and a cool rim from behind-right
    world = bpy.data.worlds.new("Sky")
    if world.node_tree is None:
        world.use_nodes = True
    bg = world.node_tree.nodes["Background"]
    bg.inputs["Color"].default_value = (0.80, 0.86, 1.0, 1.0)
    bg.inputs["Strength"].default_value = 0.45
    scene.world = world

    def sun(name, energy, colour, toward_light, angle_deg):
        from mathutils import Vector

        ld = bpy.data.lights.new(name, type="SUN")
        ld.energy = energy
        ld.color = colour
        ld.angle = math.radians(angle_deg)
        ob = bpy.data.objects.new(name, ld)
        ob.rotation_euler = Vector(toward_light).normalized().to_track_quat("Z", "Y").to_euler()
        scene.collection.objects.link(ob)

    sun("Key", 3.2, (1.0, 0.95, 0.85), (-0.7, -1.0, 0.9), 8.0)
    sun("Rim", 2.0, (0.8, 0.88, 1.0), (1.0, 0.8, 0.5), 5.0)

    # camera: FRONT view (on -Y looking +Y, Z up), orthographic, 10 % margin
    cd = bpy.data.cameras.new("Front")
    cd.type = "ORTHO"
    extent = max(HEIGHT, 2 * (R_MID + HOOP_T))
    cd.ortho_scale = extent / 0.8
    cam = bpy.data.objects.new("Front", cd)
    cam.location = (0.0, -5.0, HEIGHT / 2)
    cam.rotation_euler = (math.radians(90), 0.0, 0.0)
    scene.collection.objects.link(cam)
    scene.camera = cam

    r = scene.render
    r.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 64
    scene.cycles.use_denoising = True
    try:
        scene.cycles.denoiser = "OPENIMAGEDENOISE"
    except TypeError:
        scene.cycles.use_denoising = False
    scene.cycles.seed = 1
    r.resolution_x = r.resolution_y = SIZE
    r.resolution_percentage = 100
    r.film_transparent = True
    r.image_settings.file_format = "PNG"
    r.image_settings.color_mode = "RGBA"
    r.image_settings.color_depth = "8"
    r.image_settings.compression = 100
    scene.display_settings.display_device = "sRGB"
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    return scene


def main():
    import bpy
    from PIL import Image

    scene = make_scene(bpy)
    out = HERE / "barrel.png"
    scene.render.filepath = str(out)
    bpy.ops.render.render(write_still=True)

    im = Image.open(out).convert("RGBA")
    im.save(out, optimize=True)
    a = np.asarray(im, dtype=np.float64) / 255.0
    alpha = a[..., 3:4]
    rgb = linear_to_srgb(srgb_to_linear(a[..., :3]) * alpha
                         + srgb_to_linear(np.asarray(GREY_SRGB))[None, None, :] * (1 - alpha))
    grey = HERE / "barrel_grey.png"
    Image.fromarray((rgb * 255 + 0.5).astype(np.uint8), "RGB").save(grey, optimize=True)
    for p in (out, grey):
        print(f"wrote {p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

"""Build tests/data/house.glb: a small closed, watertight, vertex-coloured "house".

Run:  python tests/data/make_house.py  [--out tests/data/house.glb]

Needs numpy and manifold3d (``pip install manifold3d``); trimesh only for the self-check.

Geometry, in Blender axes (Z up, front = -Y, metres), pivot at the bottom centre:

* body: a 1.0 (X) x 0.8 (Y) box, walls 0.7 tall, with gable ends: a pentagonal prism whose
  ridge runs along Y (peak z = 0.98), so the front and back views show the gable triangle;
* roof: a 0.06 thick chevron slab on the two slopes, ridge along Y, eaves overhanging to
  x = +-0.58 and y = +-0.46 (ridge top z ~ 1.04);
* chimney: a 0.14 x 0.14 box on the right (+X) slope towards the back, top at z = 1.20;
* door: a 0.24 x 0.42 slab standing 0.03 proud of the front wall (-Y), centred in X, on the ground.

The parts are unioned with manifold3d into ONE watertight solid. Each part carries its colour as a
vertex property through the booleans, so every triangle keeps the colour of the part it came from.
Vertices are split only where the colour or the (flat) face normal changes, so the GLB has sharp
colour borders and flat shading; welded by position (trimesh does this on load) it is watertight.

The glTF file is Y-up: a Blender point (x, y, z) is written as (x, z, -y), and Blender's glTF
importer brings it back Z-up with the door facing -Y.

COLOR_0 is written as float32 RGB in linear light, as the glTF spec says. The colours below are the
sRGB (display) values a flat, squarely lit, unshaded face should show in a render.
"""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

import numpy as np

# sRGB display colours of the parts (0..1).
COLOURS_SRGB = {
    "wall": (0.94, 0.88, 0.72),     # cream
    "roof": (0.60, 0.13, 0.10),     # dark red
    "chimney": (0.50, 0.50, 0.50),  # grey
    "door": (0.45, 0.28, 0.14),     # brown
}

# Key dimensions (Blender axes), exported for tests.
BODY_HALF_X, BODY_HALF_Y, WALL_H, GABLE_PEAK = 0.5, 0.4, 0.7, 0.98
ROOF_HALF_X, ROOF_HALF_Y, ROOF_T = 0.58, 0.46, 0.06
CHIMNEY = ((0.18, 0.32), (0.05, 0.19), (0.75, 1.20))   # x, y, z ranges
DOOR = ((-0.12, 0.12), (-0.43, -0.38), (0.0, 0.42))     # x, y, z ranges (front at y = -0.43)


def srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _prism_y(profile_xz, y0, y1):
    """Convex prism: a convex (x, z) profile extruded along Y from y0 to y1."""
    import manifold3d as m

    pts = [(x, y, z) for (x, z) in profile_xz for y in (y0, y1)]
    return m.Manifold.hull_points(np.asarray(pts, dtype=np.float64))


def _box(xr, yr, zr):
    import manifold3d as m

    pts = [(x, y, z) for x in xr for y in yr for z in zr]
    return m.Manifold.hull_points(np.asarray(pts, dtype=np.float64))


def _coloured(solid, name):
    lin = [float(v) for v in srgb_to_linear(COLOURS_SRGB[name])]
    return solid.set_properties(3, lambda pos, old: lin)


def build_house():
    """Return (positions Nx3, normals Nx3, colours_linear Nx3, triangles Mx3) in Blender axes."""
    slope = (GABLE_PEAK - WALL_H) / BODY_HALF_X  # dz per unit |x|
    body = _prism_y(
        [(-BODY_HALF_X, 0.0), (BODY_HALF_X, 0.0), (BODY_HALF_X, WALL_H), (0.0, GABLE_PEAK),
         (-BODY_HALF_X, WALL_H)],
        -BODY_HALF_Y, BODY_HALF_Y)

    # Roof: the region between an outer line (the body slope raised by the roof thickness measured
    # perpendicular to the slope) and an inner line 1 cm below the body slope (so it overlaps the body
    # and the union is clean), from x = -ROOF_HALF_X to +ROOF_HALF_X.
    lift = ROOF_T * np.sqrt(1.0 + slope * slope)
    z_out = lambda x: GABLE_PEAK + lift - slope * abs(x)  # noqa: E731
    z_in = lambda x: GABLE_PEAK - 0.01 - slope * abs(x)   # noqa: E731
    outer = _prism_y(
        [(-ROOF_HALF_X, z_out(ROOF_HALF_X)), (0.0, z_out(0.0)), (ROOF_HALF_X, z_out(ROOF_HALF_X)),
         (ROOF_HALF_X, 0.3), (-ROOF_HALF_X, 0.3)],
        -ROOF_HALF_Y, ROOF_HALF_Y)
    below = _prism_y(
        [(-1.0, z_in(1.0)), (0.0, z_in(0.0)), (1.0, z_in(1.0)), (1.0, -1.0), (-1.0, -1.0)],
        -1.0, 1.0)
    roof = outer - below

    chimney = _box(*CHIMNEY)
    door = _box(*DOOR)

    house = (_coloured(body, "wall") + _coloured(roof, "roof")
             + _coloured(chimney, "chimney") + _coloured(door, "door"))
    if house.status().name != "NoError":
        raise RuntimeError(f"manifold status {house.status()}")
    if house.genus() != 0:
        raise RuntimeError(f"expected a genus-0 solid, got genus {house.genus()}")

    mesh = house.to_mesh()
    props = np.asarray(mesh.vert_properties, dtype=np.float64)  # x y z r g b
    tris = np.asarray(mesh.tri_verts, dtype=np.int64)

    # Weld manifold's property-split vertices back to one id per position ...
    weld = np.arange(len(props))
    if len(mesh.merge_from_vert):
        weld[np.asarray(mesh.merge_from_vert)] = np.asarray(mesh.merge_to_vert)
    pos = props[:, :3]
    # ... then split again by (position, colour, flat face normal), per triangle corner.
    v0, v1, v2 = pos[tris[:, 0]], pos[tris[:, 1]], pos[tris[:, 2]]
    fn = np.cross(v1 - v0, v2 - v0)
    area2 = np.linalg.norm(fn, axis=1)
    keep = area2 > 1e-12                       # drop degenerate slivers, if any
    tris, fn, area2 = tris[keep], fn[keep], area2[keep]
    fn /= area2[:, None]
    # A triangle's colour: its corners all carry the part colour; take the first corner's.
    tri_col = props[tris[:, 0], 3:6]
    keys = {}
    out_pos, out_nrm, out_col, out_tri = [], [], [], []
    for t in range(len(tris)):
        nkey = tuple(np.round(fn[t], 4))
        ckey = tuple(np.round(tri_col[t], 5))
        tri = []
        for corner in tris[t]:
            k = (int(weld[corner]), ckey, nkey)
            idx = keys.get(k)
            if idx is None:
                idx = keys[k] = len(out_pos)
                out_pos.append(pos[weld[corner]])
                out_nrm.append(fn[t])
                out_col.append(tri_col[t])
            tri.append(idx)
        out_tri.append(tri)
    return (np.asarray(out_pos), np.asarray(out_nrm), np.asarray(out_col),
            np.asarray(out_tri, dtype=np.int64))


def blender_to_gltf(v):
    """Blender (x, y, z), Z up, front -Y  ->  glTF (x, z, -y), Y up, front +Z."""
    v = np.asarray(v)
    return np.stack([v[:, 0], v[:, 2], -v[:, 1]], axis=1)


def write_glb(path, positions, normals, colours, triangles, name="House"):
    """Write a minimal glTF 2.0 binary with POSITION, NORMAL, COLOR_0 (float, linear) and indices.

    The primitive has no material, so the glTF default material applies (white base colour times
    COLOR_0). This also makes trimesh load COLOR_0 as plain vertex colours.
    """
    pos = blender_to_gltf(positions).astype("<f4")
    nrm = blender_to_gltf(normals).astype("<f4")
    col = np.asarray(colours, dtype="<f4")
    idx_dtype, idx_ct = ("<u2", 5123) if len(pos) < 65536 else ("<u4", 5125)
    idx = np.asarray(triangles).astype(idx_dtype).reshape(-1)

    blobs, views, accessors = [], [], []
    offset = 0

    def add(arr, ctype, atype, target, minmax=False):
        nonlocal offset
        data = arr.tobytes()
        pad = (-len(data)) % 4
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data), "target": target})
        acc = {"bufferView": len(views) - 1, "componentType": ctype,
               "count": int(arr.shape[0]) if arr.ndim > 1 else int(arr.size), "type": atype}
        if minmax:
            acc["min"] = [float(x) for x in arr.min(axis=0)]
            acc["max"] = [float(x) for x in arr.max(axis=0)]
        accessors.append(acc)
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
        return len(accessors) - 1

    a_pos = add(pos, 5126, "VEC3", 34962, minmax=True)
    a_nrm = add(nrm, 5126, "VEC3", 34962)
    a_col = add(col, 5126, "VEC3", 34962)
    a_idx = add(idx, idx_ct, "SCALAR", 34963)
    binary = b"".join(blobs)

    gltf = {
        "asset": {"version": "2.0", "generator": "Open3DForge tests/data/make_house.py"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": name, "mesh": 0}],
        "meshes": [{"name": name, "primitives": [{
            "attributes": {"POSITION": a_pos, "NORMAL": a_nrm, "COLOR_0": a_col},
            "indices": a_idx, "mode": 4}]}],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": views,
        "accessors": accessors,
    }
    js = json.dumps(gltf, separators=(",", ":")).encode("utf-8")
    js += b" " * ((-len(js)) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    with open(path, "wb") as f:
        f.write(struct.pack("<4sII", b"glTF", 2, total))
        f.write(struct.pack("<I4s", len(js), b"JSON") + js)
        f.write(struct.pack("<I4s", len(binary), b"BIN\0") + binary)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("house.glb")))
    args = ap.parse_args(argv)
    positions, normals, colours, tris = build_house()
    write_glb(args.out, positions, normals, colours, tris)
    size = Path(args.out).stat().st_size
    msg = f"wrote {args.out}: {len(positions)} vertices, {len(tris)} triangles, {size} bytes"
    try:  # self-check with trimesh, if present
        import trimesh

        m = trimesh.load(args.out, force="mesh")
        m.merge_vertices(merge_tex=True, merge_norm=True)
        b = m.bounds
        msg += (f"; trimesh: watertight={m.is_watertight} winding={m.is_winding_consistent} "
                f"volume={m.volume:.4f} bounds(glTF)={np.round(b, 3).tolist()}")
        if not m.is_watertight:
            raise SystemExit("house is not watertight: " + msg)
    except ImportError:
        pass
    print(msg)


if __name__ == "__main__":
    main()

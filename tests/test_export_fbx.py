"""FBX files read back by Blender (bpy in a subprocess): names, collision, LODs, metres, UVs, custom normals,
and the axis/unit settings written into the files for Unreal and Unity."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from server.errors import ForgeError
from server.export.fbx import FbxFile, FbxObject, bpy_available, write_fbx_files
from server.export.package import export_package
from tests.measures import angles_deg
from tests.test_export_package import HEIGHT, barrel_radius, make_barrel, make_bundle

pytestmark = pytest.mark.skipif(not bpy_available(), reason="bpy (Blender as a module, cp311) is not installed")

# Runs in a subprocess with sys.executable: imports each FBX into an empty scene with Blender's importer
# (default settings) and prints JSON about every object, plus the raw FBX header/node values.
READER = r'''
import json, sys
import bpy
import numpy as np
from io_scene_fbx import parse_fbx

def raw(path):
    root, _ = parse_fbx.parse(path)
    out = {"models": {}, "global": {}}
    def props(elem):
        found = {}
        for p70 in elem.elems:
            if p70.id == b"Properties70":
                for p in p70.elems:
                    found[p.props[0].decode()] = [x for x in p.props[4:] if isinstance(x, (int, float))]
        return found
    for elem in root.elems:
        if elem.id == b"GlobalSettings":
            out["global"] = props(elem)
        if elem.id == b"Objects":
            for obj in elem.elems:
                if obj.id == b"Model":
                    out["models"][obj.props[1].split(b"\x00")[0].decode()] = props(obj)
    return out

result = {}
for path in sys.argv[1:]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=path)
    objects = {}
    for obj in bpy.context.scene.objects:
        mesh = obj.data
        n = len(mesh.vertices)
        co = np.empty(n * 3); mesh.vertices.foreach_get("co", co); co = co.reshape(-1, 3)
        m = np.array(obj.matrix_world)
        world = co @ m[:3, :3].T + m[:3, 3]
        loops = len(mesh.loops)
        corner = np.empty(loops * 3); mesh.corner_normals.foreach_get("vector", corner)
        corner = corner.reshape(-1, 3) @ np.linalg.inv(m[:3, :3])   # to world (rotation only here)
        corner /= np.linalg.norm(corner, axis=1, keepdims=True)
        lv = np.empty(loops, dtype=np.int64); mesh.loops.foreach_get("vertex_index", lv)
        sizes = np.empty(len(mesh.polygons), dtype=np.int64); mesh.polygons.foreach_get("loop_total", sizes)
        uv = None
        if mesh.uv_layers:
            flat = np.empty(loops * 2); mesh.uv_layers[0].data.foreach_get("uv", flat); uv = flat.reshape(-1, 2)
        objects[obj.name] = {
            "type": obj.type, "mesh": mesh.name, "parent": obj.parent.name if obj.parent else None,
            "polygons": len(mesh.polygons), "max_sides": int(sizes.max()), "vertices": world.tolist(),
            "loop_vertex": lv.tolist(), "corner_normals": corner.tolist(),
            "loop_uv": uv.tolist() if uv is not None else None,
            "uv_layers": [layer.name for layer in mesh.uv_layers],
            "has_custom_normals": bool(mesh.has_custom_normals),
            "materials": [mat.name for mat in mesh.materials if mat],
            "dimensions": list(obj.dimensions), "scale": list(obj.scale),
        }
    result[path] = {"objects": objects, "raw": raw(path)}
print("JSON" + json.dumps(result))
'''


def read_fbx(paths: list[Path]) -> dict:
    proc = subprocess.run([sys.executable, "-c", READER, *map(str, paths)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("JSON"))
    return json.loads(line[4:])


@pytest.fixture(scope="module")
def bundle():
    return make_bundle()


@pytest.fixture(scope="module")
def unpacked(bundle, tmp_path_factory):
    """UE5 and Unity zips unpacked, and Blender's reading of every FBX in them."""
    root = tmp_path_factory.mktemp("fbx")
    dirs = {}
    for engine in ("ue5", "unity"):
        path = export_package(bundle, engine, root / "zips", use_fbx=True)
        dirs[engine] = root / engine
        with zipfile.ZipFile(path) as archive:
            archive.extractall(dirs[engine])
    fbx = sorted(dirs["ue5"].glob("*.fbx")) + sorted(dirs["unity"].glob("*.fbx"))
    read = read_fbx(fbx)
    return {Path(k).relative_to(root).as_posix(): v for k, v in read.items()}


def check_surface(obj: dict, mesh) -> None:
    """Positions (metres, Blender axes), per-corner normals and UVs equal the mesh the bundle gave."""
    world = np.array(obj["vertices"])
    assert world.shape == mesh.vertices.shape
    assert np.allclose(world, mesh.vertices, atol=1e-5)  # same order, metres round-trip, axes undone
    loop_vertex = np.array(obj["loop_vertex"])
    corner = np.array(obj["corner_normals"])
    expected = mesh.normals[loop_vertex]
    assert angles_deg(corner, expected).max() < 0.5
    uv = np.array(obj["loop_uv"])
    assert np.allclose(uv, mesh.uv[loop_vertex], atol=1e-5)


def test_ue5_lod0_names_collision_material(unpacked, bundle):
    lod0 = unpacked["ue5/SM_Barrel.fbx"]["objects"]
    assert sorted(lod0) == ["SM_Barrel", "UCX_SM_Barrel_00", "UCX_SM_Barrel_01"]
    render = lod0["SM_Barrel"]
    assert render["mesh"] == "SM_Barrel" and render["materials"] == ["M_Barrel"]
    assert render["uv_layers"] and render["has_custom_normals"]
    assert render["max_sides"] == 3 and render["polygons"] == bundle.lods[0].face_count
    for i, hull in enumerate(bundle.hulls):
        obj = lod0[f"UCX_SM_Barrel_{i:02d}"]
        assert obj["polygons"] == hull.face_count and obj["materials"] == [] and obj["parent"] is None
        assert np.allclose(np.array(obj["vertices"]), hull.vertices, atol=1e-5)


def test_ue5_dimensions_in_metres(unpacked):
    dims = unpacked["ue5/SM_Barrel.fbx"]["objects"]["SM_Barrel"]["dimensions"]
    width = 2 * barrel_radius(HEIGHT / 2)  # widest at mid-height
    assert dims == pytest.approx([width, width, HEIGHT], rel=0.02)


def test_ue5_lods_fall_and_keep_their_surface(unpacked, bundle):
    counts = []
    for i, name in enumerate(["SM_Barrel.fbx", "SM_Barrel_LOD1.fbx", "SM_Barrel_LOD2.fbx"]):
        objects = unpacked[f"ue5/{name}"]["objects"]
        assert (sorted(objects) == ["SM_Barrel"]) == (i > 0)  # hulls only in LOD0
        obj = objects["SM_Barrel"]
        counts.append(obj["polygons"])
        check_surface(obj, bundle.lods[i])
    assert counts == [lod.face_count for lod in bundle.lods] and counts[0] > counts[1] > counts[2]


def test_custom_normals_are_not_the_flat_ones(unpacked, bundle):
    """The check above would pass with flat shading only if the face normals matched: they do not."""
    lod2 = bundle.lods[2]
    tri = lod2.vertices[lod2.faces]
    flat = np.repeat(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), 3, axis=0)
    assert angles_deg(flat, lod2.normals[lod2.faces.reshape(-1)]).max() > 5


def test_ue5_file_units_and_axes(unpacked):
    """What Unreal reads: 1 file unit = 100 cm, Y up / -Z forward declared, root nodes -90 degrees
    about X (Blender's Z-up scene in the file's Y-up system; Unreal's Convert Scene undoes it)."""
    raw = unpacked["ue5/SM_Barrel.fbx"]["raw"]
    glob = raw["global"]
    assert glob["UnitScaleFactor"] == [pytest.approx(100.0)]
    assert glob["UpAxis"] == [1] and glob["UpAxisSign"] == [1]
    assert glob["FrontAxis"] == [2] and glob["CoordAxis"] == [0]
    rotation = raw["models"]["SM_Barrel"]["Lcl Rotation"]
    assert rotation == pytest.approx([-90.0, 0.0, 0.0], abs=1e-3)
    assert raw["models"]["SM_Barrel"].get("Lcl Scaling", [1, 1, 1]) == pytest.approx([1, 1, 1])


def test_unity_file_lods_and_unrotated_nodes(unpacked, bundle):
    objects = unpacked["unity/Barrel.fbx"]["objects"]
    assert sorted(objects) == ["Barrel_Collider_00", "Barrel_Collider_01", "Barrel_LOD0", "Barrel_LOD1", "Barrel_LOD2"]
    for i in range(3):
        obj = objects[f"Barrel_LOD{i}"]
        assert obj["polygons"] == bundle.lods[i].face_count and obj["materials"] == ["M_Barrel"]
        check_surface(obj, bundle.lods[i])
    for i in range(2):
        assert objects[f"Barrel_Collider_{i:02d}"]["parent"] == "Barrel_LOD0"
        assert np.allclose(np.array(objects[f"Barrel_Collider_{i:02d}"]["vertices"]), bundle.hulls[i].vertices, atol=1e-5)
    raw = unpacked["unity/Barrel.fbx"]["raw"]
    assert raw["global"]["UnitScaleFactor"] == [pytest.approx(100.0)]
    for name in ("Barrel_LOD0", "Barrel_LOD1", "Barrel_LOD2", "Barrel_Collider_00"):
        # Unity shows these transforms as they are: no -90 degree X rotation, scale 1.
        assert raw["models"][name].get("Lcl Rotation", [0, 0, 0]) == pytest.approx([0, 0, 0], abs=1e-3)
        assert raw["models"][name].get("Lcl Scaling", [1, 1, 1]) == pytest.approx([1, 1, 1])


def test_blender_failure_surfaces_as_forge_error(tmp_path):
    """Two objects of one name: Blender would rename the second; the writer refuses and says why."""
    mesh = make_barrel(8, 4)
    spec = FbxFile(tmp_path / "x.fbx", [FbxObject("SM_X", mesh), FbxObject("SM_X", mesh)])
    with pytest.raises(ForgeError, match="not 'SM_X'"):
        write_fbx_files([spec])
    assert not (tmp_path / "x.fbx").exists()


def test_writer_timeout_is_a_forge_error(tmp_path):
    spec = FbxFile(tmp_path / "x.fbx", [FbxObject("SM_X", make_barrel(8, 4))])
    with pytest.raises(ForgeError, match="timed out"):
        write_fbx_files([spec], timeout=0.05)

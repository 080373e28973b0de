"""Engine packages: exact file lists, texture conventions, manifests and atomic failure, per engine preset.

The asset is a real one made here: a barrel (surface of revolution with flat caps, UV seams split, hard
edges at the cap rims) in three LODs, two convex hulls from trimesh, and maps made with numpy.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from server.errors import ForgeError, InputError
from server.export import naming
from server.export.fbx import bpy_available
from server.export.gltf import read_glb_json
from server.export.package import ExportBundle, export_package
from server.meshdata import MeshArrays

HEIGHT = 0.9
TEX = 128


def barrel_radius(z):
    return 0.3 + 0.06 * np.sin(np.pi * z / HEIGHT)


def barrel_slope(z):
    return 0.06 * np.pi / HEIGHT * np.cos(np.pi * z / HEIGHT)


def make_barrel(segments: int, rings: int) -> MeshArrays:
    """Side: (rings+1) x (segments+1) grid (the seam column doubled), analytic normals, u = angle,
    v in [0, 0.7]. Caps: their own vertices (hard rim edge), normals -Z / +Z, planar UVs above v = 0.72.
    Pivot at the bottom centre, metres, Z up."""
    theta = np.linspace(0, 2 * np.pi, segments + 1)
    z = np.linspace(0, HEIGHT, rings + 1)
    tt, zz = np.meshgrid(theta, z)
    r = barrel_radius(zz)
    side_v = np.stack([r * np.cos(tt), r * np.sin(tt), zz], axis=-1).reshape(-1, 3)
    side_n = np.stack([np.cos(tt), np.sin(tt), -barrel_slope(zz)], axis=-1).reshape(-1, 3)
    side_n /= np.linalg.norm(side_n, axis=1, keepdims=True)
    side_uv = np.stack([tt / (2 * np.pi), zz / HEIGHT * 0.7], axis=-1).reshape(-1, 2)
    idx = np.arange((rings + 1) * (segments + 1)).reshape(rings + 1, segments + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    side_f = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    verts, norms, uvs, faces = [side_v], [side_n], [side_uv], [side_f]
    offset = len(side_v)
    ring_t = theta[:-1]
    for height, sign, u0 in ((0.0, -1.0, 0.02), (HEIGHT, 1.0, 0.52)):
        rr = barrel_radius(height)
        ring = np.stack([rr * np.cos(ring_t), rr * np.sin(ring_t), np.full(segments, height)], axis=1)
        centre = np.array([[0.0, 0.0, height]])
        cap_v = np.concatenate([centre, ring])
        cap_n = np.tile([0.0, 0.0, sign], (segments + 1, 1))
        cap_uv = u0 + 0.23 * (cap_v[:, :2] / (2 * rr) + 0.5)
        cap_uv[:, 1] = 0.72 + 0.23 * (cap_v[:, 1] / (2 * rr) + 0.5)
        k = np.arange(segments)
        tri = np.stack([np.zeros(segments, int), 1 + k, 1 + (k + 1) % segments], axis=1)
        if sign < 0:
            tri = tri[:, [0, 2, 1]]  # bottom faces down
        verts.append(cap_v)
        norms.append(cap_n)
        uvs.append(cap_uv)
        faces.append(tri + offset)
        offset += len(cap_v)
    return MeshArrays(np.concatenate(verts), np.concatenate(faces), uv=np.concatenate(uvs),
                      normals=np.concatenate(norms))


def make_hulls(mesh: MeshArrays) -> list[MeshArrays]:
    """Two convex hulls: the lower and the upper half of the barrel."""
    hulls = []
    for keep in (mesh.vertices[:, 2] <= HEIGHT / 2 + 1e-9, mesh.vertices[:, 2] >= HEIGHT / 2 - 1e-9):
        hull = trimesh.convex.convex_hull(mesh.vertices[keep])
        hulls.append(MeshArrays(hull.vertices, hull.faces))
    return hulls


def make_textures(size: int = TEX) -> dict[str, np.ndarray]:
    """Distinct patterns per map, so a swapped or dropped channel shows."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    base = np.zeros((size, size, 4), np.uint8)
    base[..., 0] = np.round(200 * xx + 30)
    base[..., 1] = np.round(120 * yy + 20)
    base[..., 2] = 90
    base[..., 3] = 255
    normal = np.zeros((size, size, 3), np.uint8)
    normal[..., 0] = np.round(128 + 60 * np.sin(6 * xx))
    normal[..., 1] = np.round(128 + 90 * yy - 45)  # OpenGL green, varying
    normal[..., 2] = 230
    return {
        "base_color": base,
        "normal_gl": normal,
        "ao": (0.4 + 0.6 * xx).astype(np.float32),
        "roughness": (0.1 + 0.8 * yy).astype(np.float32),
        "metallic": ((xx + yy) / 2).astype(np.float32),
    }


def make_bundle(name: str = "Barrel", **overrides) -> ExportBundle:
    lods = [make_barrel(48, 24), make_barrel(24, 12), make_barrel(12, 6)]
    fields = dict(name=name, lods=lods, hulls=make_hulls(lods[0]), textures=make_textures(),
                  manifest={"checks": {"watertight": True}, "parameters": {"target_faces": 2304}})
    fields.update(overrides)
    return ExportBundle(**fields)


def zip_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_DEFLATED, info.filename
        return {name: archive.read(name) for name in archive.namelist()}


def png(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.load()
    return np.asarray(image)


def u8(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0, 1) * 255).astype(int)


def assert_close_u8(actual: np.ndarray, expected: np.ndarray, tol: int = 1):
    diff = np.abs(actual.astype(int) - expected.astype(int))
    assert diff.max() <= tol, f"max difference {diff.max()}"


def assert_manifest_files(files: dict[str, bytes], manifest: dict):
    listed = {entry["name"]: entry for entry in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json"}
    for name, entry in listed.items():
        assert entry["bytes"] == len(files[name])
        assert entry["sha256"] == hashlib.sha256(files[name]).hexdigest()


@pytest.fixture(scope="module")
def bundle():
    return make_bundle()


@pytest.fixture(scope="module")
def ue5_fbx_zip(bundle, tmp_path_factory):
    if not bpy_available():
        pytest.skip("bpy (Blender as a module, cp311) is not installed")
    return export_package(bundle, "UE5", tmp_path_factory.mktemp("ue5"), use_fbx=True)


@pytest.fixture(scope="module")
def unity_fbx_zip(bundle, tmp_path_factory):
    if not bpy_available():
        pytest.skip("bpy (Blender as a module, cp311) is not installed")
    return export_package(bundle, "unity", tmp_path_factory.mktemp("unity"), use_fbx=True)


def test_barrel_is_a_sound_asset(bundle):
    """The test asset itself: closed-looking LODs with falling triangle counts and seams split."""
    counts = [lod.face_count for lod in bundle.lods]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[2]
    for lod in bundle.lods:
        assert lod.uv.shape == (len(lod.vertices), 2) and lod.normals.shape == lod.vertices.shape
        assert np.allclose(np.linalg.norm(lod.normals, axis=1), 1)
    assert len(bundle.hulls) == 2 and all(trimesh.Trimesh(h.vertices, h.faces).is_convex for h in bundle.hulls)


def test_ue5_zip_exact_files_and_textures(ue5_fbx_zip, bundle):
    assert ue5_fbx_zip.name == "Barrel_UE5.zip"
    assert [p.name for p in ue5_fbx_zip.parent.iterdir()] == ["Barrel_UE5.zip"]  # no temporary left
    files = zip_files(ue5_fbx_zip)
    assert sorted(files) == sorted([
        "SM_Barrel.fbx", "SM_Barrel_LOD1.fbx", "SM_Barrel_LOD2.fbx", "T_Barrel_BC.png", "T_Barrel_N.png",
        "T_Barrel_ORM.png", "import_Barrel.py", "manifest.json", "preview.png"])
    tex = bundle.textures
    bc, n, orm = (png(files[f"T_Barrel_{s}.png"]) for s in ("BC", "N", "ORM"))
    for image in (bc, n, orm):
        h, w = image.shape[:2]
        assert h == w == TEX and h & (h - 1) == 0
    assert bc.shape == (TEX, TEX, 3) and np.array_equal(bc, tex["base_color"][..., :3])  # sRGB, no alpha
    assert n.shape == (TEX, TEX, 3)
    assert np.array_equal(n[..., [0, 2]], tex["normal_gl"][..., [0, 2]])
    assert_close_u8(n[..., 1], 255 - tex["normal_gl"][..., 1].astype(int))  # DirectX: green inverted
    assert orm.shape[2] in (3, 4)
    assert_close_u8(orm[..., 0], u8(tex["ao"]))
    assert_close_u8(orm[..., 1], u8(tex["roughness"]))
    assert_close_u8(orm[..., 2], u8(tex["metallic"]))
    compile(files["import_Barrel.py"].decode(), "import_Barrel.py", "exec")


def test_ue5_manifest(ue5_fbx_zip, bundle):
    files = zip_files(ue5_fbx_zip)
    manifest = json.loads(files["manifest.json"])
    assert manifest["engine"] == "UE5" and manifest["mesh_format"] == "fbx"
    assert manifest["units"]["engine"] == "cm"
    assert manifest["normal_map"]["convention"].startswith("DirectX")
    assert manifest["lod_triangles"] == [lod.face_count for lod in bundle.lods]
    assert [l["file"] for l in manifest["lods"]] == ["SM_Barrel.fbx", "SM_Barrel_LOD1.fbx", "SM_Barrel_LOD2.fbx"]
    assert manifest["collision_hulls"] == 2
    assert manifest["collision"]["nodes"] == ["UCX_SM_Barrel_00", "UCX_SM_Barrel_01"]
    spaces = {name: entry["color_space"] for name, entry in manifest["textures"].items()}
    assert spaces == {"T_Barrel_BC.png": "sRGB", "T_Barrel_N.png": "linear", "T_Barrel_ORM.png": "linear"}
    assert manifest["checks"] == {"watertight": True}  # the bundle's own content rides along
    assert manifest["parameters"]["target_faces"] == 2304
    assert manifest["nanite"] is False and manifest["skeletal"] is False
    assert_manifest_files(files, manifest)
    preview = png(files["preview.png"])
    assert preview.shape == (512, 512, 4) and preview[..., 3].any() and not preview[..., 3].all()


def test_unity_zip_conventions(unity_fbx_zip, bundle):
    assert unity_fbx_zip.name == "Barrel_Unity.zip"
    files = zip_files(unity_fbx_zip)
    assert sorted(files) == sorted([
        "Barrel.fbx", "Barrel_BaseMap.png", "Barrel_Normal.png", "Barrel_MetallicSmoothness.png",
        "Barrel_MaskMap.png", "manifest.json", "preview.png"])
    tex = bundle.textures
    assert np.array_equal(png(files["Barrel_Normal.png"]), tex["normal_gl"])  # OpenGL: not flipped
    assert np.array_equal(png(files["Barrel_BaseMap.png"])[..., :3], tex["base_color"][..., :3])
    ms = png(files["Barrel_MetallicSmoothness.png"])
    assert ms.shape == (TEX, TEX, 4)
    assert_close_u8(ms[..., 0], u8(tex["metallic"]))
    assert_close_u8(ms[..., 1], u8(tex["ao"]))  # URP: occlusion from G, so one texture fills both slots
    assert_close_u8(ms[..., 3], u8(1 - tex["roughness"]))  # smoothness = 1 - roughness
    mask = png(files["Barrel_MaskMap.png"])
    assert mask.shape == (TEX, TEX, 4)
    assert_close_u8(mask[..., 0], u8(tex["metallic"]))
    assert_close_u8(mask[..., 1], u8(tex["ao"]))
    assert (mask[..., 2] == 255).all()  # detail mask: everywhere
    assert_close_u8(mask[..., 3], u8(1 - tex["roughness"]))
    manifest = json.loads(files["manifest.json"])
    assert manifest["engine"] == "Unity" and manifest["units"]["engine"] == "m"
    assert [l["node"] for l in manifest["lods"]] == ["Barrel_LOD0", "Barrel_LOD1", "Barrel_LOD2"]
    assert manifest["normal_map"]["convention"].startswith("OpenGL")
    assert_manifest_files(files, manifest)


def test_godot_zip_glb_nodes_and_embedded_maps(bundle, tmp_path):
    path = export_package(bundle, "GODOT", tmp_path)
    assert path.name == "Barrel_Godot.zip"
    files = zip_files(path)
    assert sorted(files) == ["Barrel.glb", "manifest.json", "preview.png"]
    doc = read_glb_json(files["Barrel.glb"])
    names = [node["name"] for node in doc["nodes"]]
    assert names == ["Barrel", "Barrel_Hull_00-convcolonly", "Barrel_Hull_01-convcolonly"]
    (material,) = doc["materials"]
    pbr = material["pbrMetallicRoughness"]
    # One ORM image serves metallicRoughness (G, B) and occlusion (R).
    assert pbr["metallicRoughnessTexture"]["index"] == material["occlusionTexture"]["index"]
    assert len(doc["images"]) == 3 and all("bufferView" in image for image in doc["images"])
    # Hull nodes carry no material; the render mesh does.
    assert "material" in doc["meshes"][0]["primitives"][0]
    assert all("material" not in doc["meshes"][i]["primitives"][0] for i in (1, 2))
    # glTF axes: the barrel stands along +Y, its height 0.9 m.
    position = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    assert position["min"][1] == pytest.approx(0.0, abs=1e-6)
    assert position["max"][1] == pytest.approx(HEIGHT, abs=1e-6)
    manifest = json.loads(files["manifest.json"])
    assert manifest["engine"] == "Godot" and manifest["mesh_format"] == "glb"
    assert manifest["lod_triangles"][0] == bundle.lods[0].face_count
    assert_manifest_files(files, manifest)


def test_glb_fallback_keeps_the_base_names(bundle, tmp_path):
    """No bpy (the Space): the same base names with .glb, and the import script points at them."""
    files = zip_files(export_package(bundle, "ue5", tmp_path, use_fbx=False))
    assert sorted(files) == sorted([
        "SM_Barrel.glb", "SM_Barrel_LOD1.glb", "SM_Barrel_LOD2.glb", "T_Barrel_BC.png", "T_Barrel_N.png",
        "T_Barrel_ORM.png", "import_Barrel.py", "manifest.json", "preview.png"])
    doc = read_glb_json(files["SM_Barrel.glb"])
    assert [n["name"] for n in doc["nodes"]] == ["SM_Barrel", "UCX_SM_Barrel_00", "UCX_SM_Barrel_01"]
    assert doc["materials"][0]["name"] == "M_Barrel" and "images" not in doc  # maps ship as PNGs
    lod2 = read_glb_json(files["SM_Barrel_LOD2.glb"])
    assert [n["name"] for n in lod2["nodes"]] == ["SM_Barrel"]
    assert "SM_Barrel_LOD2.glb" in files["import_Barrel.py"].decode()
    unity = zip_files(export_package(bundle, "Unity", tmp_path, use_fbx=False))
    assert "Barrel.glb" in unity
    nodes = [n["name"] for n in read_glb_json(unity["Barrel.glb"])["nodes"]]
    assert nodes[:3] == ["Barrel_LOD0", "Barrel_LOD1", "Barrel_LOD2"]


def test_opacity_becomes_base_colour_alpha(tmp_path):
    textures = make_textures()
    textures["opacity"] = np.tile((np.arange(TEX) >= TEX // 2).astype(np.float32), (TEX, 1))
    files = zip_files(export_package(make_bundle(textures=textures), "ue5", tmp_path, use_fbx=False))
    bc = png(files["T_Barrel_BC.png"])
    assert bc.shape == (TEX, TEX, 4)
    assert (bc[:, : TEX // 2, 3] == 0).all() and (bc[:, TEX // 2 :, 3] == 255).all()
    assert "USE_OPACITY_MASK = True" in files["import_Barrel.py"].decode()


def test_skeletal_and_nanite_naming(tmp_path):
    files = zip_files(export_package(make_bundle(skeletal=True, nanite=True), "ue5", tmp_path, use_fbx=False))
    assert {"SK_Barrel.glb", "SK_Barrel_LOD1.glb", "SK_Barrel_LOD2.glb"} <= set(files)
    script = files["import_Barrel.py"].decode()
    assert "NANITE = True" in script and "SKELETAL = True" in script
    manifest = json.loads(files["manifest.json"])
    assert manifest["nanite"] is True and manifest["collision"]["nodes"][0] == "UCX_SK_Barrel_00"


def _assert_nothing_left(out_dir: Path):
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


@pytest.mark.parametrize("key, size", [("base_color", 96), ("roughness", 100), ("normal_gl", "rect")])
def test_non_power_of_two_texture_is_refused(tmp_path, key, size):
    textures = make_textures()
    if size == "rect":
        textures[key] = textures[key][:, : TEX // 2]
    else:
        textures[key] = textures[key][:size, :size]
    with pytest.raises(InputError) as info:
        export_package(make_bundle(textures=textures), "ue5", tmp_path / "out", use_fbx=False)
    assert key in info.value.argument
    _assert_nothing_left(tmp_path / "out")


@pytest.mark.parametrize("engine", ["unreal", "", None, "UE 5"])
def test_unknown_engine_is_refused(tmp_path, engine):
    with pytest.raises(InputError) as info:
        export_package(make_bundle(), engine, tmp_path / "out")
    assert info.value.argument == "engine"
    _assert_nothing_left(tmp_path / "out")


def test_bad_bundles_are_refused(tmp_path):
    out = tmp_path / "out"
    bad = [
        (make_bundle(lods=[]), "bundle.lods"),
        (make_bundle(name="My Barrel!"), "bundle.name"),
        (make_bundle(lods=[MeshArrays(make_barrel(8, 4).vertices, make_barrel(8, 4).faces)]), "bundle.lods[0].uv"),
        (make_bundle(textures={k: v for k, v in make_textures().items() if k != "metallic"}), "bundle.textures"),
    ]
    textures = make_textures()
    textures["ao"] = textures["ao"] * 3
    bad.append((make_bundle(textures=textures), "bundle.textures['ao']"))
    for bundle, argument in bad:
        with pytest.raises(InputError) as info:
            export_package(bundle, "godot", out)
        assert info.value.argument == argument
    _assert_nothing_left(out)


def test_a_failing_writer_leaves_no_zip_and_no_temporary(tmp_path, monkeypatch):
    from server.export import package

    out = tmp_path / "out"
    calls = []

    def broken_png(path, image):
        calls.append(Path(path).name)
        if Path(path).name == "preview.png":
            raise ForgeError("disk full")
        Image.fromarray(image).save(path)

    monkeypatch.setattr(package, "_png", broken_png)
    with pytest.raises(ForgeError, match="disk full"):
        export_package(make_bundle(), "ue5", out, use_fbx=False)
    assert "preview.png" in calls
    _assert_nothing_left(out)


def test_a_failing_zip_write_removes_its_temporary(tmp_path, monkeypatch):
    out = tmp_path / "out"
    original = zipfile.ZipFile.write

    def failing_write(self, filename, arcname=None, *args, **kwargs):
        if arcname == "preview.png":
            raise OSError("no space left on device")
        return original(self, filename, arcname, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "write", failing_write)
    with pytest.raises(OSError):
        export_package(make_bundle(), "godot", out)
    assert out.is_dir() and list(out.iterdir()) == []


def test_an_existing_zip_is_replaced_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "Barrel_Godot.zip").write_bytes(b"old")
    path = export_package(make_bundle(), "godot", out)
    assert zipfile.is_zipfile(path) and sorted(p.name for p in out.iterdir()) == ["Barrel_Godot.zip"]


def test_names_module():
    assert naming.sanitize_name("my barrel (v2)!") == "my_barrel_v2"
    assert naming.sanitize_name("3d crate") == "A_3d_crate"
    assert naming.sanitize_name("!!!") == "Asset"
    assert naming.engine_key(" Unity ") == "unity"
    names = naming.engine_names("Crate", "ue5", 3)
    assert names.file_list() == ["SM_Crate.fbx", "SM_Crate_LOD1.fbx", "SM_Crate_LOD2.fbx", "T_Crate_BC.png",
                                 "T_Crate_N.png", "T_Crate_ORM.png", "import_Crate.py", "manifest.json",
                                 "preview.png"]
    assert names.hull_nodes(2) == ["UCX_SM_Crate_00", "UCX_SM_Crate_01"]
    with pytest.raises(InputError):
        naming.check_name("x" * (naming.MAX_NAME_LENGTH + 1))


def test_use_fbx_none_follows_bpy(tmp_path, monkeypatch):
    from server.export import package

    monkeypatch.setattr(package, "bpy_available", lambda: False)
    files = zip_files(export_package(make_bundle(), "ue5", tmp_path))
    assert "SM_Barrel.glb" in files and json.loads(files["manifest.json"])["mesh_format"] == "glb"


@pytest.mark.parametrize("channels", [None, 3, 4])
def test_png_writer_keeps_every_pixel(tmp_path, channels):
    from server.export.package import _png

    shape = (37, 53) if channels is None else (37, 53, channels)
    image = np.random.default_rng(channels or 1).integers(0, 256, shape, dtype=np.uint8)
    image[:10] = 7  # a flat run, as the padding of a baked map
    _png(tmp_path / "map.png", image)
    assert np.array_equal(png((tmp_path / "map.png").read_bytes()), image)
    with pytest.raises(ForgeError, match="8-bit"):
        _png(tmp_path / "float.png", image.astype(np.float32))
    assert not (tmp_path / "float.png").exists()


@pytest.mark.parametrize("failing", ["T_Barrel_N.png", "the mesh writer"])
def test_a_failure_beside_the_image_workers_leaves_nothing(tmp_path, monkeypatch, failing):
    """The maps and the preview are written by worker threads while the meshes are written: a failure on
    either side stops the export, and the staging folder is removed only once no worker writes into it."""
    import shutil
    import tempfile
    import threading

    from server.export import package

    staging = tmp_path / "staging"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    failed, removed = threading.Event(), threading.Event()
    events = []
    write_png, write_meshes, remove_tree = package._png, package.write_glb, shutil.rmtree

    def png_after_the_failure(path, image):
        if Path(path).name == failing:
            failed.set()
            raise ForgeError("disk full")
        failed.wait(timeout=5)
        removed.wait(timeout=0.5)  # a staging folder removed under a running worker shows here
        write_png(path, image)
        events.append("image written")

    def failing_meshes(*args, **kwargs):
        if failing == "the mesh writer":
            failed.set()
            raise ForgeError("disk full")
        return write_meshes(*args, **kwargs)

    def logged_rmtree(path, *args, **kwargs):
        remove_tree(path, *args, **kwargs)
        if Path(path).parent == staging:
            events.append("staging removed")
            removed.set()

    monkeypatch.setattr(package, "_png", png_after_the_failure)
    monkeypatch.setattr(package, "write_glb", failing_meshes)
    monkeypatch.setattr(shutil, "rmtree", logged_rmtree)
    out = tmp_path / "out"
    with pytest.raises(ForgeError, match="disk full"):
        export_package(make_bundle(), "ue5", out, use_fbx=False)
    _assert_nothing_left(out)
    assert list(staging.iterdir()) == []
    assert "image written" in events and events[-1] == "staging removed", events

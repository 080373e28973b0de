"""Mesh uploads: GLB with a texture, OBJ zip with MTL and texture, PLY colours, and hostile files."""

import json
import zipfile

import numpy as np
import pytest
import trimesh
from PIL import Image

from server.api import ForgeApi
from server.config import load_settings
from server.errors import InputError
from server.meshfile import gltf_to_blender, load_mesh_upload, read_glb
from tests.test_silhouette import load_glb

LIMITS = {"argument": "mesh", "up_axis": "auto", "max_faces": 100_000, "max_bytes": 50 * 2**20}


def checker_texture(size=64):
    tile = (np.indices((size, size)).sum(axis=0) // 8) % 2
    rgb = np.where(tile[..., None] == 1, [220, 40, 40], [30, 30, 200]).astype(np.uint8)
    return Image.fromarray(rgb)


def textured_box():
    box = trimesh.creation.box((1.0, 2.0, 0.5))
    uv = (box.vertices[:, :2] - box.vertices[:, :2].min(0)) / np.ptp(box.vertices[:, :2], axis=0)
    material = trimesh.visual.material.SimpleMaterial(image=checker_texture())
    box.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return box


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("O3F_WORKSPACE", str(tmp_path / "ws"))
    return ForgeApi(load_settings())


def test_glb_keeps_its_texture_and_axes(api, tmp_path):
    path = tmp_path / "box.glb"
    textured_box().export(path)
    record, glb = api.import_mesh(str(path), "Box")
    loaded = load_glb(glb)
    image = loaded.visual.material.baseColorTexture
    assert image is not None and image.size == (64, 64)
    assert loaded.visual.uv.shape == (len(loaded.vertices), 2)
    assert np.allclose(loaded.extents, [1.0, 2.0, 0.5], atol=1e-6)  # glTF in, glTF out
    assert json.loads(record)["mesh"]["visual"] == "texture"


def test_obj_zip_with_mtl_and_texture(api, tmp_path):
    folder = tmp_path / "obj"
    folder.mkdir()
    box = textured_box()
    box.export(folder / "crate.obj")  # writes crate.obj, material.mtl and the texture beside it
    archive = tmp_path / "crate.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for file in folder.iterdir():
            bundle.write(file, f"crate/{file.name}")
    record, glb = api.import_mesh(str(archive), "Crate")
    loaded = load_glb(glb)
    texture = np.asarray(loaded.visual.material.baseColorTexture.convert("RGB"))
    assert texture.shape[:2] == (64, 64) and texture[..., 0].max() > 200 and texture[..., 2].max() > 150
    assert len(loaded.faces) == 12


def test_ply_vertex_colours_survive(api, tmp_path):
    sphere = trimesh.creation.icosphere(2)
    sphere.visual.vertex_colors = np.tile([250, 120, 0, 255], (len(sphere.vertices), 1)).astype(np.uint8)
    path = tmp_path / "ball.ply"
    sphere.export(path)
    _, glb = api.import_mesh(str(path), "Ball")
    colors = read_glb(glb).visual.vertex_colors.astype(int)
    assert np.abs(colors[:, :3] - [250, 120, 0]).max() <= 2


def zip_with(tmp_path, entries, name="evil.zip"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for entry, data in entries.items():
            bundle.writestr(entry, data)
    return path


@pytest.mark.parametrize("entries,message", [
    ({"../../escape.obj": "v 0 0 0\n"}, "relative paths"),
    ({"/abs/thing.obj": "v 0 0 0\n"}, "relative paths"),
    ({"a.obj": "v 0 0 0\n", "b.obj": "v 0 0 0\n"}, "exactly one .obj"),
    ({"readme.txt": "hi"}, "exactly one .obj"),
])
def test_hostile_zips_are_refused(tmp_path, entries, message):
    with pytest.raises(InputError, match=message):
        load_mesh_upload(zip_with(tmp_path, entries), **LIMITS)
    assert not (tmp_path.parent / "escape.obj").exists()


def test_zip_bomb_is_refused_by_its_declared_size(tmp_path):
    path = zip_with(tmp_path, {"big.obj": "v 0 0 0\n" * 200_000})
    with pytest.raises(InputError, match="unpacks to at most"):
        load_mesh_upload(path, **{**LIMITS, "max_bytes": 100_000})


def test_empty_nan_and_oversized_meshes_are_refused(tmp_path):
    (tmp_path / "empty.ply").write_text("ply\nformat ascii 1.0\nelement vertex 0\nelement face 0\n"
                                        "property list uchar int vertex_indices\nend_header\n")
    with pytest.raises(InputError, match="mesh"):
        load_mesh_upload(tmp_path / "empty.ply", **LIMITS)
    nan = trimesh.creation.box()
    nan.vertices[0] = [np.nan, 0, 0]
    trimesh.Trimesh(nan.vertices, nan.faces, process=False).export(tmp_path / "nan.ply")
    with pytest.raises(InputError, match="NaN"):
        load_mesh_upload(tmp_path / "nan.ply", **LIMITS)
    trimesh.creation.icosphere(4).export(tmp_path / "dense.glb")  # 5120 faces
    with pytest.raises(InputError, match="at most 1000 triangles"):
        load_mesh_upload(tmp_path / "dense.glb", **{**LIMITS, "max_faces": 1000})
    (tmp_path / "garbage.glb").write_bytes(b"glTF" + b"\x00" * 40)
    with pytest.raises(InputError, match="readable mesh"):
        load_mesh_upload(tmp_path / "garbage.glb", **LIMITS)
    (tmp_path / "model.fbx").write_bytes(b"Kaydara FBX Binary")
    with pytest.raises(InputError, match=".glb, .gltf, .ply"):
        load_mesh_upload(tmp_path / "model.fbx", **LIMITS)


def test_upload_limit_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("O3F_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("O3F_MAX_UPLOAD_FACES", "100")
    api = ForgeApi(load_settings())
    trimesh.creation.icosphere(3).export(tmp_path / "ball.glb")
    with pytest.raises(InputError, match="at most 100 triangles"):
        api.import_mesh(str(tmp_path / "ball.glb"), "Ball")
    assert json.loads(api.assets()) == []  # nothing half-made


def test_z_up_ply_is_turned_into_blender_axes(tmp_path):
    tall = trimesh.creation.box((0.2, 0.3, 2.0))
    tall.export(tmp_path / "tall.ply")
    mesh = load_mesh_upload(tmp_path / "tall.ply", **LIMITS)
    assert mesh.extents[2] == pytest.approx(2.0)
    as_y_up = load_mesh_upload(tmp_path / "tall.ply", **{**LIMITS, "up_axis": "Y"})
    assert np.allclose(as_y_up.vertices, gltf_to_blender(tall.vertices))


def _obj_text(mesh: trimesh.Trimesh, quads: int = 0) -> str:
    lines = [f"v {x} {y} {z}" for x, y, z in mesh.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in mesh.faces]
    lines += ["f 1 2 3 4"] * quads  # each quad is two triangles
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".glb", ".gltf"])
def test_triangles_are_counted_from_the_file_before_parsing(tmp_path, suffix):
    from server.meshcount import count_triangles

    mesh = trimesh.creation.icosphere(subdivisions=2)
    path = tmp_path / f"sphere{suffix}"
    if suffix == ".obj":
        path.write_text(_obj_text(mesh, quads=3))
        expected = len(mesh.faces) + 6
    elif suffix == ".gltf":
        files = trimesh.Scene(mesh).export(file_type="gltf")
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
        path = tmp_path / "model.gltf"
        expected = len(mesh.faces)
    else:
        mesh.export(path)
        expected = len(mesh.faces)
    assert count_triangles(path) == expected
    garbage = tmp_path / f"garbage{suffix}"
    garbage.write_bytes(b"\x00\x01 not a mesh at all")
    assert count_triangles(garbage) in (None, 0)


def test_a_small_zip_holding_a_huge_obj_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    # The limit is shrunk instead of building a real 180 MB OBJ: the same path refuses both.
    mesh = trimesh.creation.icosphere(subdivisions=3)
    bundle = tmp_path / "huge.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("huge.obj", _obj_text(mesh))

    def parsed(*args, **kwargs):
        raise AssertionError("the OBJ was parsed before its triangle count was checked")

    monkeypatch.setattr(trimesh, "load", parsed)
    with pytest.raises(InputError, match=r"huge.zip \(1280 triangles\)': expected a mesh of at most 1000"):
        load_mesh_upload(bundle, argument="mesh", up_axis="auto", max_faces=1000, max_bytes=10**8)

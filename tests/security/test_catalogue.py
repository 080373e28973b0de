"""The catalogue of bad input, through the API of `python -m server` as a client sees it.

Every case is refused by name (the argument, its value, what was expected) or gives its documented result; after
each one the server still serves, a refused call leaves no asset behind, and the workspace holds nothing
half-written. Limits are shrunk through the environment (trimesh's tests/test_expansion.py does the same with
monkeypatch) instead of building real bombs: the code path that refuses a small case refuses a large one.
"""

from __future__ import annotations

import io
import json
import re
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from server.local import running_server  # noqa: E402

LIMITS = {"O3F_MAX_IMAGE_PIXELS": str(640 * 640), "O3F_MAX_IMAGE_BYTES": str(3 * 1024 * 1024),
          "O3F_MAX_UPLOAD_FACES": "5000", "O3F_MAX_UPLOAD_BYTES": str(4 * 1024 * 1024)}
TINY_GENERATE = {"resolution": 64, "target_faces": 5000}
TINY_POST = {"target_triangles": 800, "texture_size": 256, "max_hulls": 2}
UNKNOWN_ID = "20991231T235959-0badf00d"
NOT_AN_ASSET = "expected the id of an existing asset of yours (see assets())"
BAD_ID = "expected an id like 20261122T004512-1a2b3c4d as returned by generate"
# What a message must never show: an object's address, or a path on the server.
LEAKS = re.compile(r" at 0x[0-9a-fA-F]+|/tmp/|/root/|/home/|/work/|/data/|site-packages|Traceback")


# -- files made for the cases ---------------------------------------------------------------------------------
def _png(draw=True, size=(160, 160), mode="RGBA") -> bytes:
    image = Image.new(mode, size, (0, 0, 0, 0) if mode == "RGBA" else 0)
    if draw:
        ImageDraw.Draw(image).rounded_rectangle([size[0] // 4, size[1] // 5, 3 * size[0] // 4, 9 * size[1] // 10],
                                               radius=8, fill=(170, 110, 60, 255) if mode == "RGBA" else 40000)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _image_bytes(kind: str) -> bytes:
    if kind == "good":
        return _png()
    if kind == "truncated":
        return _png()[:300]
    if kind == "text":
        return b"this is a text file, not a picture\n"
    if kind == "empty":
        return b""
    if kind == "tiny":
        return _png(size=(8, 8))
    if kind == "too_many_pixels":
        return _png(size=(900, 900))
    if kind == "blank":
        buffer = io.BytesIO()
        Image.new("RGB", (128, 128), (128, 128, 128)).save(buffer, format="PNG")
        return buffer.getvalue()
    if kind == "gray16":
        image = Image.new("I;16", (160, 160), 60000)
        ImageDraw.Draw(image).rectangle([40, 30, 120, 140], fill=9000)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    if kind == "cmyk":
        image = Image.new("CMYK", (160, 160), (0, 0, 0, 0))
        ImageDraw.Draw(image).rectangle([40, 30, 120, 140], fill=(0, 90, 200, 60))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG")
        return buffer.getvalue()
    if kind == "animated":
        frames = [Image.new("RGBA", (160, 160), (0, 0, 0, 0)) for _ in range(3)]
        for i, frame in enumerate(frames):
            ImageDraw.Draw(frame).ellipse([30 + 10 * i, 30, 130, 140], fill=(40, 120, 200, 255))
        buffer = io.BytesIO()
        frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, disposal=2)
        return buffer.getvalue()
    if kind == "lying_png":  # a valid PNG header that promises a picture far over the pixel limit, and no pixels
        fields = b"IHDR" + struct.pack(">IIBBBBB", 50000, 50000, 8, 6, 0, 0, 0)
        data = zlib.compress(b"\0" * 64)

        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", fields[4:]) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    raise ValueError(kind)


def _sphere(subdivisions=2) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=subdivisions, radius=0.5)


def _mesh_bytes(kind: str) -> tuple[str, bytes]:
    """(file name, content) of an upload for import_mesh."""
    if kind == "good_glb":
        return "ball.glb", _sphere().export(file_type="glb")
    if kind == "truncated_glb":
        return "ball.glb", _sphere().export(file_type="glb")[:200]
    if kind == "lying_glb":  # its JSON chunk claims more bytes than the file has
        data = bytearray(_sphere().export(file_type="glb"))
        data[12:16] = struct.pack("<I", 10**8)
        return "ball.glb", bytes(data)
    if kind == "too_many_faces_glb":
        return "big.glb", _sphere(subdivisions=5).export(file_type="glb")
    if kind == "nan_ply":
        mesh = _sphere()
        mesh.vertices[3] = np.nan
        return "nan.ply", mesh.export(file_type="ply")
    if kind == "empty_ply":
        return "empty.ply", trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), int)).export(file_type="ply")
    if kind == "soup_ply":  # unconnected random triangles: accepted, repair is post-processing's job
        rng = np.random.default_rng(3)
        vertices = rng.random((300, 3))
        return "soup.ply", trimesh.Trimesh(vertices, np.arange(300).reshape(-1, 3), process=False).export(
            file_type="ply")
    if kind == "flat_ply":
        return "flat.ply", trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]]).export(file_type="ply")
    if kind == "exe":
        return "tool.exe", b"MZ\x90\x00" + b"\0" * 100
    if kind == "bare_obj":
        return "model.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
    obj = "".join(f"v {x} {y} {z}\n" for x, y, z in _sphere().vertices) + \
        "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in _sphere().faces)
    big_obj = "".join(f"v {x} {y} {z}\n" for x, y, z in _sphere(5).vertices) + \
        "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in _sphere(5).faces)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if kind == "zip_slip":
            archive.writestr("../../outside.obj", obj)
        elif kind == "zip_absolute":
            archive.writestr("/etc/evil.obj", obj)
        elif kind == "zip_symlink":
            info = zipfile.ZipInfo("link.obj")
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, "/etc/passwd")
        elif kind == "zip_bomb":
            archive.writestr("bomb.obj", "v 0 0 0\n" * 700_000)  # about 5.6 MB unpacked, a few KB packed
        elif kind == "zip_huge_obj":
            archive.writestr("huge.obj", big_obj)
        elif kind == "zip_two_objs":
            archive.writestr("a.obj", obj)
            archive.writestr("b.obj", obj)
        elif kind == "zip_no_obj":
            archive.writestr("readme.txt", "nothing here")
        elif kind == "zip_mtl_outside":
            archive.writestr("model.obj", "mtllib model.mtl\nusemtl m\n" + obj)
            archive.writestr("model.mtl", "newmtl m\nmap_Kd ../../../../etc/passwd\n")
        elif kind == "good_zip":
            archive.writestr("model.obj", obj)
        elif kind != "corrupt_zip":
            raise ValueError(kind)
    if kind == "corrupt_zip":
        return "model.zip", b"PK\x03\x04 this is not really a zip"
    return "model.zip", buffer.getvalue()


def _gltf_with_uri(uri: str) -> tuple[str, bytes]:
    document = {"asset": {"version": "2.0"}, "buffers": [{"byteLength": 36, "uri": uri}],
                "bufferViews": [{"buffer": 0, "byteLength": 36}],
                "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                               "min": [0, 0, 0], "max": [1, 1, 0]}],
                "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}], "nodes": [{"mesh": 0}],
                "scenes": [{"nodes": [0]}], "scene": 0}
    return "scene.gltf", json.dumps(document).encode()


# -- the server ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("catalogue") / "workspace"
    workspace.mkdir()
    with running_server(workspace, LIMITS) as url:
        yield url, workspace


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False, download_files=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalogue_files")

    def write(name: str, data: bytes) -> str:
        path = folder / name
        path.write_bytes(data)
        return str(path)

    return write


def _upload(path: str) -> dict:
    from gradio_client import handle_file

    return handle_file(path)


@pytest.fixture(scope="module")
def made(client, files):
    """One asset made and post-processed (not baked), for the cases that act on an asset."""
    record, _ = client.predict([_upload(files("made.png", _png()))], "Made", "auto", "front", "", 0,
                               json.dumps(TINY_GENERATE), api_name="/generate")
    asset_id = json.loads(record)["asset_id"]
    client.predict(asset_id, json.dumps(TINY_POST), api_name="/postprocess")
    return asset_id


def _assets(workspace: Path) -> set[str]:
    return {p.name for p in workspace.iterdir() if p.is_dir() and re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{8}", p.name)}


def _half_written(workspace: Path) -> list[str]:
    leftovers = [str(p.relative_to(workspace)) for p in workspace.rglob(".*.tmp")]
    leftovers += [p.name for p in workspace.iterdir() if p.name.startswith(".discarded-")]
    for name in _assets(workspace):
        record = json.loads((workspace / name / "asset.json").read_text())
        if record["status"] in ("running", "created"):
            leftovers.append(f"{name} is {record['status']}")
    return leftovers


def _refused(client, server, expected: str, *args, api_name: str, leaves_asset=False) -> str:
    """Call an endpoint that must refuse; check the message, the workspace and that the server still serves."""
    from gradio_client.exceptions import AppError

    workspace = server[1]
    before = _assets(workspace)
    with pytest.raises((AppError, ValueError, httpx.HTTPError)) as refused:
        client.predict(*args, api_name=api_name)
    message = str(refused.value)
    assert expected in message, message
    assert not LEAKS.search(message), message
    assert "internal error" not in message, message
    assert _half_written(workspace) == []
    if not leaves_asset:
        assert _assets(workspace) == before, "a refused call left an asset behind"
    assert json.loads(client.predict(api_name="/health"))["status"] == "ok"
    return message


# -- images ------------------------------------------------------------------------------------------------------
IMAGE_CASES = [
    ("truncated", "expected a complete, readable image"),
    ("text", "text.png': expected a PNG, JPEG or WebP image (the file is none of them)"),
    ("empty", "expected an image file, but it is empty"),
    ("tiny", "(8x8)': expected an image at least 32 pixels on each side"),
    ("too_many_pixels", "(900x900)': expected an image of at most 409600 pixels"),
    ("lying_png", "lying_png.png': expected an image of at most 409600 pixels"),
    ("blank", "images[0]"),
]


@pytest.mark.parametrize("kind,expected", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_bad_images_are_refused(client, server, files, kind, expected):
    path = files(f"{kind}.png", _image_bytes(kind))
    message = _refused(client, server, expected, [_upload(path)], "Bad", "auto", "front", "", 0,
                       json.dumps(TINY_GENERATE), api_name="/generate")
    assert f"{kind}.png" in message or "images[0]" in message


@pytest.mark.parametrize("kind", ["gray16", "cmyk", "animated"])
def test_unusual_but_valid_images_make_an_asset(client, server, files, kind):
    suffix = {"cmyk": ".jpg", "animated": ".gif"}.get(kind, ".png")
    record, _ = client.predict([_upload(files(f"{kind}{suffix}", _image_bytes(kind)))], kind, "auto", "front", "",
                               0, json.dumps(TINY_GENERATE), api_name="/generate")
    record = json.loads(record)
    assert record["status"] == "ready" and record["mesh"]["faces"] > 100
    cut = record["stages"][0]["parameters"]["method_front"]
    assert cut in ("alpha", "classical", "rembg")
    assert _half_written(server[1]) == []


# -- generate's other arguments ------------------------------------------------------------------------------------
GENERATE_CASES = [
    ("no_images", None, {}, "images=None: expected 1 to 4 image files"),
    ("five_images", 5, {}, "images='5 files': expected 1 to 4 images"),
    ("views_unknown", 1, {"views": "sideways"}, "views='sideways': expected one of front, left, back, right, top"),
    ("views_count", 2, {"views": "front"}, "views='front': expected one label per image (2 images)"),
    ("views_twice", 2, {"views": "front,front"}, "views='front,front': expected each label at most once"),
    ("views_single_not_front", 1, {"views": "left"}, "views='left': expected 'front' for a single image"),
    ("views_top_only", 2, {"views": "front,top"}, None),  # allowed: front is a side view
    ("seed_negative", 1, {"seed": -1}, "seed=-1: expected a whole number from 0 to 2147483647"),
    ("seed_huge", 1, {"seed": 2**31}, "seed=2147483648: expected a whole number from 0 to 2147483647"),
    ("generator_unknown", 1, {"generator": "dreamfusion"}, "generator='dreamfusion'"),
    ("preset_unknown", 1, {"preset": "ultra"}, "preset='ultra'"),
    ("options_not_json", 1, {"options": "{resolution: 5"}, "options='{resolution: 5': expected a JSON object"),
    ("options_array", 1, {"options": "[1, 2]"}, "options=[1, 2]: expected a JSON object"),
    ("options_unknown_key", 1, {"options": '{"colour": "red"}'}, "options='colour': expected one of the keys"),
    ("options_deep", 1, {"options": "[" * 100_000 + "]" * 100_000}, "options='200000 characters'"),
    ("options_nested", 1, {"options": '{"kind": ' + "[" * 5000 + "]" * 5000 + "}"},
     "expected a JSON object nested at most a few levels"),
    ("resolution_small", 1, {"options": '{"resolution": 4}'}, "options.resolution=4"),
    ("resolution_nan", 1, {"options": '{"resolution": NaN}'}, "options.resolution=nan"),
    ("resolution_inf", 1, {"options": '{"resolution": Infinity}'}, "options.resolution=inf"),
    ("target_faces_text", 1, {"options": '{"target_faces": "many"}'}, "options.target_faces='many'"),
    ("kind_unknown", 1, {"options": '{"kind": "vehicle"}'}, "options.kind='vehicle': expected one of prop"),
    ("background_unknown", 1, {"options": '{"background": "magic"}'}, "options.background='magic'"),
    # This server has rembg's package but not its model (nothing is downloaded): found before any asset exists.
    ("background_rembg_unavailable", 1, {"options": '{"background": "rembg"}'},
     "options.background='rembg': expected a method this server can run (rembg's model u2net.onnx is not in"),
    ("must_stand_text", 1, {"options": '{"must_stand": "yes"}'}, "options.must_stand='yes': expected true or false"),
    ("quality_unknown", 1, {"options": '{"quality": "ultra"}'}, "options.quality='ultra'"),
    ("asset_id_path", 1, {"options": '{"asset_id": "../../etc"}'}, f"asset_id='../../etc': {BAD_ID}"),
    ("asset_id_newline", 1, {"options": json.dumps({"asset_id": "20261206T000000-deadbeef\n"})}, BAD_ID),
]


@pytest.mark.parametrize("case,count,changes,expected", GENERATE_CASES, ids=[c[0] for c in GENERATE_CASES])
def test_generate_arguments(client, server, files, case, count, changes, expected):
    if case == "background_rembg_unavailable":
        from server.stages.background import rembg_status

        if rembg_status()[0]:
            pytest.skip("rembg and its model are installed here, so background=rembg is not refused")
    good = _upload(files("good.png", _png()))
    args = {"images": None if count is None else [good] * count, "name": "Thing", "generator": "silhouette",
            "views": "front" if count == 1 else "", "preset": "", "seed": 0, "options": json.dumps(TINY_GENERATE)}
    if count and count > 1 and "views" not in changes:
        args["views"] = ",".join(["front", "left", "back", "right", "top"][:count])
    args.update(changes)
    ordered = [args[k] for k in ("images", "name", "generator", "views", "preset", "seed", "options")]
    if expected is None:
        record, _ = client.predict(*ordered, api_name="/generate")
        assert json.loads(record)["status"] == "ready"
        return
    _refused(client, server, expected, *ordered, api_name="/generate")


def test_names_are_made_engine_safe(client, files):
    record, _ = client.predict([_upload(files("named.png", _png()))], "../../My Crate!\n<script>", "silhouette",
                               "front", "", 0, json.dumps(TINY_GENERATE), api_name="/generate")
    assert json.loads(record)["name"] == "My_Crate_script"


# -- asset ids on every endpoint that takes one -------------------------------------------------------------------
ID_ENDPOINTS = {"/asset": (), "/cancel": (), "/postprocess": ("",), "/bake": ("",), "/export": ("ue5", ""),
                "/decimate_preview": (1000,)}
IDS = [("unknown", UNKNOWN_ID, NOT_AN_ASSET), ("empty", "", BAD_ID), ("path", "../../etc/passwd", BAD_ID),
       ("newline", UNKNOWN_ID + "\n", BAD_ID), ("number", 12345, BAD_ID), ("none", None, BAD_ID)]


@pytest.mark.parametrize("endpoint", list(ID_ENDPOINTS))
@pytest.mark.parametrize("label,asset_id,expected", IDS, ids=[i[0] for i in IDS])
def test_asset_ids_are_matched_in_full(client, server, endpoint, label, asset_id, expected):
    _refused(client, server, expected, asset_id, *ID_ENDPOINTS[endpoint], api_name=endpoint)


# -- options of the stages that act on an asset --------------------------------------------------------------------
STAGE_CASES = [
    ("/postprocess", {"texture_size": 300}, "options.texture_size=300"),
    ("/postprocess", {"texture_size": 16384}, "options.texture_size=16384"),
    ("/postprocess", {"target_triangles": 0}, "options.target_triangles=0"),
    ("/postprocess", {"target_triangles": 1e12}, "options.target_triangles="),
    ("/postprocess", {"target_triangles": 1.5}, "options.target_triangles=1.5"),
    ("/postprocess", {"lod_ratios": [1, 2]}, "options.lod_ratios"),
    ("/postprocess", {"lod_ratios": "half"}, "options.lod_ratios"),
    ("/postprocess", {"symmetry": "z"}, "options.symmetry='z'"),
    ("/postprocess", {"repair": "maybe"}, "options.repair='maybe'"),
    ("/postprocess", {"pivot": "custom"}, "options.pivot_point"),
    ("/postprocess", {"pivot": "custom", "pivot_point": [0, "x", 0]}, "options.pivot_point"),
    ("/postprocess", {"height": "giant"}, "options.height='giant'"),
    ("/postprocess", {"texel_density": -3}, "options.texel_density=-3"),
    ("/postprocess", {"max_hulls": 0}, "options.max_hulls=0"),
    ("/postprocess", {"max_hull_vertices": 1000}, "options.max_hull_vertices=1000"),
    ("/postprocess", {"collision": "yes"}, "options.collision='yes': expected true or false"),
    ("/postprocess", {"shiny": True}, "options='shiny': expected one of the keys"),
    ("/bake", {"texture_size": 100}, "options.texture_size=100"),
    ("/bake", {"ao_samples": 0}, "options.ao_samples=0"),
    ("/bake", {"ao_distance": -1}, "options.ao_distance=-1"),
    ("/bake", {"engine": "cuda"}, "options.engine='cuda'"),
    ("/bake", {"engine": "quantum"}, "options.engine='quantum'"),
    ("/export", {"nanite": "yes"}, "options.nanite='yes': expected true or false"),
    ("/export", {"format": "obj"}, "options='format': expected one of the keys"),
]


@pytest.mark.parametrize("endpoint,options,expected", STAGE_CASES,
                         ids=[f"{e[1:]}-{'-'.join(map(str, o))}" for e, o, _ in STAGE_CASES])
def test_stage_options_are_refused_before_work_and_leave_no_lock(client, server, made, endpoint, options, expected):
    args = (made, "ue5", json.dumps(options)) if endpoint == "/export" else (made, json.dumps(options))
    before = json.loads(client.predict(made, api_name="/asset"))
    _refused(client, server, expected, *args, api_name=endpoint)
    after = json.loads(client.predict(made, api_name="/asset"))
    assert after["stages"] == before["stages"], "a refused option ran a stage"
    # The refusal held no claim: a valid request on the same asset goes through at once.
    assert json.loads(client.predict(made, api_name="/cancel"))["cancel_requested"] is False


def test_export_before_any_bake_is_refused(client, server, made):
    _refused(client, server, "bake", made, "ue5", "", api_name="/export")


def test_an_unknown_engine_is_refused(client, server, made):
    _refused(client, server, "engine='unreal': expected one of ue5, unity, godot", made, "unreal", "",
             api_name="/export")


def test_decimation_preview_limits(client, server, made):
    # The slider's own range is the endpoint's: Gradio refuses a number outside it before the call.
    for target, expected in ((10, "Value 10 is less than minimum value 100"),
                             (10**7, "Value 10000000 is greater than maximum value 500000")):
        _refused(client, server, expected, made, target, api_name="/decimate_preview")


# -- forge -------------------------------------------------------------------------------------------------------
FORGE_CASES = [
    ({"postprocess": "fast"}, "options.postprocess='fast': expected a JSON object"),
    ({"bake": {"texture_size": 3}}, "options.texture_size=3"),
    ({"export": {"nanite": 1}}, "options.nanite=1"),
    ({"engine": "cryengine"}, "engine='cryengine'"),
    ({"rendering": {}}, "options='rendering': expected one of the keys"),
    ({"postprocess": {"pivot": "custom"}}, "options.pivot_point"),
    ({"postprocess": {"texel_density": 0}}, "options.texel_density=0"),
]


@pytest.mark.parametrize("options,expected", FORGE_CASES, ids=[next(iter(o)) + str(i) for i, (o, _) in
                                                               enumerate(FORGE_CASES)])
def test_forge_checks_every_section_before_generating(client, server, files, options, expected):
    _refused(client, server, expected, [_upload(files("forge.png", _png()))], "Forged", "front", "",
             json.dumps(options), api_name="/forge")


# -- meshes --------------------------------------------------------------------------------------------------------
MESH_CASES = [
    ("truncated_glb", "expected a readable mesh file"),
    ("lying_glb", "expected a readable mesh file"),
    ("too_many_faces_glb", "triangles)': expected a mesh of at most 5000 triangles"),
    ("nan_ply", "expected finite vertex coordinates, but some are NaN or infinite"),
    ("empty_ply", "mesh"),
    ("flat_ply", None),  # a single triangle is a mesh; it has no volume, which post-processing deals with
    # Gradio's file component refuses other kinds of file before the endpoint, listing the kinds it takes.
    ("exe", "Invalid file type. Please upload a file that is one of these formats: ['.glb', '.gltf', '.ply', '.zip']"),
    ("bare_obj", "Invalid file type. Please upload a file that is one of these formats"),
    ("zip_slip", "mesh='../../outside.obj': expected zip entries with relative paths inside the zip"),
    ("zip_absolute", "mesh='/etc/evil.obj': expected zip entries with relative paths inside the zip"),
    ("zip_symlink", "mesh='link.obj': expected regular files in the zip, not links"),
    ("zip_bomb", "mesh='zip_bomb-model.zip': expected a zip that unpacks to at most 4 MB"),
    ("zip_huge_obj", "triangles)': expected a mesh of at most 5000 triangles"),
    ("zip_two_objs", "expected a zip holding exactly one .obj file, found 2"),
    ("zip_no_obj", "expected a zip holding exactly one .obj file, found 0"),
    ("corrupt_zip", "mesh='corrupt_zip-model.zip': expected a zip holding an OBJ with its MTL and textures"),
    ("zip_mtl_outside", None),  # the texture outside the zip is not read: the mesh comes in untextured
    ("soup_ply", None),
    ("good_zip", None),
    ("good_glb", None),
]


@pytest.mark.parametrize("kind,expected", MESH_CASES, ids=[c[0] for c in MESH_CASES])
def test_mesh_uploads(client, server, files, kind, expected):
    name, data = _mesh_bytes(kind)
    path = files(f"{kind}-{name}", data)
    if expected is None:
        record, _ = client.predict(_upload(path), kind, "", api_name="/import_mesh")
        record = json.loads(record)
        assert record["status"] == "ready" and record["mesh"]["faces"] >= 1
        assert _half_written(server[1]) == []
        return
    _refused(client, server, expected, _upload(path), kind, "", api_name="/import_mesh")


GLTF_URIS = [("parent", "../../../../etc/passwd", "expected a mesh whose buffers and images lie inside the upload"),
             ("absolute", "/etc/passwd", "expected a mesh whose buffers and images lie inside the upload"),
             ("file_scheme", "file:///etc/passwd", "expected a readable mesh file"),
             ("http", "http://169.254.169.254/latest/meta-data", "expected a readable mesh file")]


@pytest.mark.parametrize("label,uri,expected", GLTF_URIS, ids=[u[0] for u in GLTF_URIS])
def test_gltf_buffers_pointing_outside_the_upload_are_refused(client, server, files, label, uri, expected):
    name, data = _gltf_with_uri(uri)
    path = files(f"uri-{label}-{name}", data)
    _refused(client, server, expected, _upload(path), "Outside", "", api_name="/import_mesh")


def test_mesh_options(client, server, files):
    path = files("opts-ball.glb", _mesh_bytes("good_glb")[1])
    _refused(client, server, "options.up_axis='X'", _upload(path), "Ball", '{"up_axis": "X"}', api_name="/import_mesh")
    _refused(client, server, "options='scale'", _upload(path), "Ball", '{"scale": 2}', api_name="/import_mesh")


# -- routes and uploads --------------------------------------------------------------------------------------------
def test_the_file_route_serves_no_workspace_or_system_file(server, made):
    url, workspace = server
    for target in (workspace / made / "asset.json", workspace / made / "high_poly.glb", Path("/etc/passwd"),
                   workspace / ".." / "server-0.log"):
        assert httpx.get(f"{url}gradio_api/file={target}").status_code in (403, 404), target


def test_an_upload_over_the_size_limit_is_refused_by_the_server(server, files):
    url, workspace = server
    before = _assets(workspace)
    big = files("big.glb", b"glTF" + b"\0" * (5 * 1024 * 1024))
    with open(big, "rb") as handle:
        answer = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.glb", handle)}, timeout=60)
    assert answer.status_code == 413, answer.status_code
    assert _assets(workspace) == before


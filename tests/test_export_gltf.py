"""GLB writer: the Khronos glTF-Validator finds zero errors; axes, UVs, normals and the shared ORM image.

The validator is the npm package gltf-validator (package.json at the repo root; install with `npm ci`).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh

from server.errors import InputError
from server.export.gltf import GltfMaterial, GltfNode, blender_to_gltf, build_glb, read_glb_json
from server.export.package import export_package
from server.meshdata import MeshArrays
from tests.test_export_package import make_barrel, make_bundle, make_textures

REPO = Path(__file__).resolve().parents[1]
VALIDATE_JS = r"""
const validator = require('gltf-validator');
const fs = require('fs');
(async () => {
  const out = {};
  for (const file of process.argv.slice(1)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), {maxIssues: 200});
    out[file] = report.issues;
  }
  process.stdout.write(JSON.stringify(out));
})().catch((err) => { console.error(String(err)); process.exit(2); });
"""


def validator_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    if not (REPO / "node_modules" / "gltf-validator" / "package.json").is_file():
        return "the npm package gltf-validator is not installed: run `npm ci` in the repository root"
    return None


def validate(paths: list[Path]) -> dict:
    reason = validator_missing()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run(["node", "-e", VALIDATE_JS, *map(str, paths)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def glb_accessor(data: bytes, doc: dict, index: int) -> np.ndarray:
    """Read one accessor's values from a GLB (FLOAT or an unsigned integer type, tightly packed)."""
    (json_len,) = struct.unpack_from("<I", data, 12)
    bin_start = 20 + json_len + 8
    accessor = doc["accessors"][index]
    view = doc["bufferViews"][accessor["bufferView"]]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[accessor["type"]]
    dtype = {5126: "<f4", 5125: "<u4", 5123: "<u2", 5121: "<u1"}[accessor["componentType"]]
    start = bin_start + view["byteOffset"] + accessor.get("byteOffset", 0)
    values = np.frombuffer(data, dtype=dtype, count=accessor["count"] * width, offset=start)
    return values.reshape(accessor["count"], width)


@pytest.fixture(scope="module")
def glbs(tmp_path_factory):
    """Every GLB the presets write: Godot (embedded maps, hulls), the UE5 and Unity fallbacks, opacity."""
    root = tmp_path_factory.mktemp("glb")
    bundle = make_bundle()
    textures = make_textures()
    textures["opacity"] = np.ones((128, 128), np.float32)
    masked = make_bundle(name="Leaf", textures=textures)
    zips = [export_package(bundle, "godot", root / "z"), export_package(bundle, "ue5", root / "z", use_fbx=False),
            export_package(bundle, "unity", root / "z", use_fbx=False), export_package(masked, "godot", root / "z")]
    paths = []
    for path in zips:
        target = root / path.stem
        with zipfile.ZipFile(path) as archive:
            archive.extractall(target)
        paths += sorted(target.glob("*.glb"))
    assert len(paths) == 6
    return paths


def test_khronos_validator_finds_no_errors(glbs):
    reports = validate(glbs)
    assert len(reports) == len(glbs)
    for path, issues in reports.items():
        errors = [m for m in issues["messages"] if m["severity"] == 0]
        assert issues["numErrors"] == 0, (path, errors)
        # The only warning allowed: tangents are left to the reader (MikkTSpace), on purpose.
        others = {m["code"] for m in issues["messages"] if m["severity"] == 1} - {"MESH_PRIMITIVE_GENERATED_TANGENT_SPACE"}
        assert not others, (path, others)


def test_validator_would_catch_a_broken_file(glbs, tmp_path):
    """The validation above is not vacuous: a GLB with an index past the vertices fails it."""
    data = bytearray(glbs[0].read_bytes())
    doc = read_glb_json(bytes(data))
    (json_len,) = struct.unpack_from("<I", data, 12)
    accessor = doc["accessors"][doc["meshes"][0]["primitives"][0]["indices"]]
    view = doc["bufferViews"][accessor["bufferView"]]
    struct.pack_into("<I", data, 20 + json_len + 8 + view["byteOffset"], 10_000_000)
    broken = tmp_path / "broken.glb"
    broken.write_bytes(bytes(data))
    assert validate([broken])[str(broken)]["numErrors"] > 0


def test_axes_uvs_and_normals_follow_gltf():
    mesh = make_barrel(12, 6)
    data = build_glb([GltfNode("Barrel", mesh)], GltfMaterial("M_Barrel", base_color=make_textures(8)["base_color"]))
    doc = read_glb_json(data)
    attributes = doc["meshes"][0]["primitives"][0]["attributes"]
    position = glb_accessor(data, doc, attributes["POSITION"])
    assert np.allclose(position, np.stack([mesh.vertices[:, 0], mesh.vertices[:, 2], -mesh.vertices[:, 1]], 1), atol=1e-6)
    normal = glb_accessor(data, doc, attributes["NORMAL"])
    assert np.allclose(normal, blender_to_gltf(mesh.normals), atol=1e-6)
    uv = glb_accessor(data, doc, attributes["TEXCOORD_0"])
    assert np.allclose(uv[:, 0], mesh.uv[:, 0], atol=1e-6) and np.allclose(uv[:, 1], 1 - mesh.uv[:, 1], atol=1e-6)
    assert np.array_equal(glb_accessor(data, doc, doc["meshes"][0]["primitives"][0]["indices"]).reshape(-1, 3), mesh.faces)
    # A proper rotation: the barrel's outward normals stay outward (winding kept) in trimesh's reading.
    loaded = trimesh.load(trimesh.util.wrap_as_stream(data), file_type="glb", force="mesh")
    assert loaded.extents[1] == pytest.approx(mesh.vertices[:, 2].max(), abs=1e-6)
    assert loaded.volume > 0


def test_bad_meshes_are_refused():
    mesh = make_barrel(8, 4)
    broken = MeshArrays(mesh.vertices, mesh.faces + len(mesh.vertices))
    with pytest.raises(InputError):
        build_glb([GltfNode("X", broken, material=False)], None)

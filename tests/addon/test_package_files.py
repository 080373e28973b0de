"""The add-on's package logic without Blender (addon/package_files.py), on packages the server really writes."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest

from addon.package_files import (ExportProblem, fbx_manifest, non_mesh_files, output_folder, rewrite_script,
                                 server_package_members, write_zip_atomically)
from server.export.package import export_package
from tests.test_export_package import make_bundle


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("server_packages")
    return {engine: export_package(make_bundle("Crate"), engine, folder / engine, use_fbx=False)
            for engine in ("ue5", "godot")}


def _unzipped(path, folder):
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    return folder, json.loads((folder / "manifest.json").read_text())


def test_a_servers_package_is_read_and_checked_against_its_manifest(packages):
    members, manifest = server_package_members(packages["godot"], "Crate", "godot")
    assert "Crate.glb" in members and "manifest.json" not in members
    assert {entry["name"] for entry in manifest["files"]} <= set(members)


@pytest.mark.parametrize("asset, engine, expected", [
    ("Barrel", "godot", "expected 'Barrel' / 'Godot'"),
    ("Crate", "ue5", "expected 'Crate' / 'UE5'"),
])
def test_a_package_for_another_asset_or_engine_is_refused(packages, asset, engine, expected):
    with pytest.raises(ExportProblem, match=expected):
        server_package_members(packages["godot"], asset, engine)


def test_a_damaged_member_and_a_non_zip_are_refused(packages, tmp_path):
    damaged = tmp_path / "Crate_Godot.zip"
    with zipfile.ZipFile(packages["godot"]) as source, zipfile.ZipFile(damaged, "w") as copy:
        for item in source.infolist():
            data = source.read(item)
            copy.writestr(item, data + b"!" if item.filename == "Crate.glb" else data)
    with pytest.raises(ExportProblem, match="damaged: Crate.glb"):
        server_package_members(damaged, "Crate", "godot")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ExportProblem, match="is not a zip file"):
        server_package_members(tmp_path / "junk.zip", "Crate", "godot")


def test_the_ue5_import_script_and_manifest_point_at_the_fbx_files(packages, tmp_path):
    package_dir, manifest = _unzipped(packages["ue5"], tmp_path / "ue5")
    mesh_files = ["SM_Crate.fbx", "SM_Crate_LOD1.fbx", "SM_Crate_LOD2.fbx"]
    payload = non_mesh_files(package_dir, manifest, manifest["import_script"], mesh_files)
    assert not any(name.endswith((".glb", ".gltf")) for name in payload)
    assert f"MESH_FILES = {mesh_files!r}" in payload[manifest["import_script"]].decode()
    payload.update({name: name.encode() * 3 for name in mesh_files})  # stand-ins for Blender's FBX bytes
    before = json.dumps(manifest, sort_keys=True)
    written = json.loads(fbx_manifest(manifest, mesh_files, ["UCX_SM_Crate_00"], payload, "Blender test"))
    assert json.dumps(manifest, sort_keys=True) == before  # the package's own manifest is left as it was
    assert written["mesh_format"] == "fbx" and written["fbx_writer"] == "Blender test"
    assert [lod["file"] for lod in written["lods"]] == mesh_files[:len(written["lods"])]
    assert written["collision_hulls"] == 1
    assert {entry["name"]: entry["sha256"] for entry in written["files"]} == {
        name: hashlib.sha256(data).hexdigest() for name, data in payload.items()}


def test_a_script_without_its_settings_line_is_refused():
    assert rewrite_script("X = 1\nMESH_FILES = ['a.glb']  # note\n", ["a.fbx"]) == \
        "X = 1\nMESH_FILES = ['a.fbx']  # note\n"
    with pytest.raises(ExportProblem, match="no 'MESH_FILES"):
        rewrite_script("print('hello')\n", ["a.fbx"])


def test_a_zip_is_written_whole_or_not_at_all(tmp_path):
    target = tmp_path / "Crate_UE5.zip"
    write_zip_atomically(target, {"a.txt": b"first"})
    with pytest.raises(TypeError):
        write_zip_atomically(target, {"a.txt": b"second", "b.txt": None})  # fails half way through
    with zipfile.ZipFile(target) as archive:
        assert archive.read("a.txt") == b"first"  # the earlier zip is intact
    assert [p.name for p in tmp_path.iterdir()] == ["Crate_UE5.zip"]  # and no partial file is left


def test_an_output_folder_that_cannot_hold_the_zip_is_named(tmp_path):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(ExportProblem, match="is a file, not a folder"):
        output_folder(tmp_path / "taken" / "zips")
    assert output_folder(tmp_path / "new" / "zips").is_dir()

"""server/scene/package.py and options.py: the scene zip built from real per-object UE5 packages
(server/export/package.py, GLB meshes as on a server without Blender), unzipped and placed by its
import_scene.py against the recording stand-in of the editor API (tests/unreal_standin.py extended with the
actor API in tests/test_scene_script.py); Godot's zip carries the layout without a script; options refused by
name."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from server.errors import InputError
from server.export.package import export_package
from server.scene import SceneCamera, scene_layout, scene_settings, write_scene_zip
from tests.test_export_package import make_bundle
from tests.test_scene_layout import objects
from tests.test_scene_script import with_actor_api
from tests.unreal_standin import build_unreal, run_script


def packages(tmp_path, engine):
    placed = objects()
    zips = {p.name: export_package(make_bundle(p.name), engine, tmp_path / "objects", use_fbx=False) for p in placed}
    return placed, zips


def test_the_ue5_scene_zip_places_every_object(tmp_path, monkeypatch):
    placed, zips = packages(tmp_path, "ue5")
    layout = scene_layout("Yard", placed, SceneCamera(320, 240), use_fbx=False)
    path = write_scene_zip(tmp_path / "out", layout, placed, zips, "ue5")
    assert path.name == "Yard_Scene_UE5.zip"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "unzipped")
    assert {"scene.json", "scene.glb", "import_scene.py"} <= names
    for item in placed:
        assert {f"{item.name}/SM_{item.name}.glb", f"{item.name}/import_{item.name}.py",
                f"{item.name}/manifest.json"} <= names
    assert json.loads((tmp_path / "unzipped" / "scene.json").read_text()) == layout
    manifests = {p.name: json.loads((tmp_path / "unzipped" / p.name / "manifest.json").read_text()) for p in placed}
    triangles = {}
    for name, manifest in manifests.items():
        stems = [f"SM_{name}", f"SM_{name}_LOD1", f"SM_{name}_LOD2"]
        triangles.update(zip(stems, manifest["lod_triangles"]))
    hulls = {m["collision_hulls"] for m in manifests.values()}
    assert len(hulls) == 1
    unreal = with_actor_api(build_unreal("5.6", ucx_hulls=hulls.pop(), triangles=triangles))
    report = run_script(tmp_path / "unzipped" / "import_scene.py", unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    actors = {actor.get_actor_label(): actor for actor in unreal.level}
    assert sorted(actors) == sorted(p.name for p in placed)
    for entry in layout["objects"]:
        location = actors[entry["name"]].get_actor_location()
        assert [location.x, location.y, location.z] == pytest.approx(entry["ue5"]["location_cm"])


def test_the_godot_scene_zip_has_the_layout_and_no_script(tmp_path):
    placed, zips = packages(tmp_path, "godot")
    layout = scene_layout("Yard", placed, SceneCamera(320, 240))
    path = write_scene_zip(tmp_path / "out", layout, placed, zips, "godot")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert path.name == "Yard_Scene_Godot.zip" and "import_scene.py" not in names
    assert {f"{p.name}/{p.name}.glb" for p in placed} <= names and "scene.glb" in names


def test_packages_must_match_the_layout(tmp_path):
    placed, zips = packages(tmp_path, "ue5")
    layout = scene_layout("Yard", placed, SceneCamera(320, 240))
    with pytest.raises(InputError, match="object_zips"):
        write_scene_zip(tmp_path / "out", layout, placed, dict(list(zips.items())[:2]), "ue5")
    godot_zip = export_package(make_bundle("Prop_01"), "godot", tmp_path / "godot", use_fbx=False)
    with pytest.raises(InputError, match=r"a UE5 package holding import_Prop_01.py"):
        write_scene_zip(tmp_path / "out", layout, placed, {**zips, "Prop_01": godot_zip}, "ue5")
    assert not list((tmp_path / "out").glob("*.zip"))  # nothing half-written


def test_scene_settings():
    settings = scene_settings({"vfov_deg": 60, "max_objects": 4, "target_triangles": 5000})
    assert (settings.vfov_deg, settings.max_objects, settings.pitch_deg, settings.fit) == (60, 4, 15.0, "outline")
    assert scene_settings({}, fit_default="bounds").fit == "bounds"
    camera = settings.camera(np.zeros((240, 320, 3)).shape)
    assert (camera.width, camera.height, camera.vfov_deg) == (320, 240, 60)
    for options, argument in (({"vfov_deg": 500}, "vfov_deg"), ({"pitch_deg": -5}, "pitch_deg"),
                              ({"camera_height_m": 0}, "camera_height_m"), ({"max_objects": 0}, "max_objects"),
                              ({"fit": "magic"}, "fit"), ({"background": "paint"}, "background")):
        with pytest.raises(InputError) as caught:
            scene_settings(options)
        assert caught.value.argument == argument

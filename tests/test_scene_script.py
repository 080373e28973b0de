"""import_scene.py against a recording stand-in of the Unreal editor's Python API: tests/unreal_standin.py (per
engine version 5.3-5.8: the asset imports each object's own import_<Name>.py makes) extended here with the
level-editing API the scene script uses, as the UE Python API pages describe it: EditorActorSubsystem
.spawn_actor_from_object(object_to_use, location, rotation, transient) -> Actor, get_all_level_actors,
destroy_actor (the deprecated EditorLevelLibrary has the same functions), unreal.Vector(x, y, z),
unreal.Rotator(roll, pitch, yaw), Actor.set_actor_scale3d / set_actor_label / set_folder_path and their getters,
get_actor_location / get_actor_rotation / get_actor_scale3d, StaticMeshActor.static_mesh_component.static_mesh,
and UnrealEditorSubsystem.get_editor_world. It is a stand-in, not the editor: it records what the script asks
for and refuses what the API would refuse (wrong argument types, unknown attributes)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from server.errors import InputError
from server.export.naming import engine_names
from server.export.scene_script import import_scene_script
from server.export.ue5_script import import_script
from server.scene.camera import SceneCamera
from server.scene.layout import scene_layout
from tests.test_scene_layout import objects
from tests.unreal_standin import VERSIONS, build_unreal, run_script


def with_actor_api(unreal, *, subsystem=True, library=True, level_open=True):
    """Add the level-editing API to a stand-in from build_unreal; unreal.level holds the actors in the level."""
    calls = unreal.calls
    level = []
    unreal.level = level

    class Vector:
        def __init__(self, x=0.0, y=0.0, z=0.0):
            self.x, self.y, self.z = float(x), float(y), float(z)

    class Rotator:
        def __init__(self, roll=0.0, pitch=0.0, yaw=0.0):
            self.roll, self.pitch, self.yaw = float(roll), float(pitch), float(yaw)

    class Strict:
        properties: dict = {}

        def get_editor_property(self, name):
            if name not in self.properties:
                raise AttributeError(f"{type(self).__name__}: failed to find property {name!r}")
            return self.properties[name]

    class StaticMeshComponent(Strict):
        def __init__(self, mesh):
            self.properties = {"static_mesh": mesh}

    class StaticMeshActor(Strict):
        def __init__(self, mesh, location, rotation):
            self.properties = {"static_mesh_component": StaticMeshComponent(mesh), "tags": []}
            self._location, self._rotation, self._scale = location, rotation, Vector(1, 1, 1)
            self._label, self._folder = "StaticMeshActor", ""

        def set_actor_scale3d(self, new_scale3d):
            if not isinstance(new_scale3d, Vector):
                raise TypeError("set_actor_scale3d takes a Vector")
            self._scale = new_scale3d

        def set_actor_label(self, new_actor_label, mark_dirty=True):
            self._label = str(new_actor_label)

        def get_actor_label(self):
            return self._label

        def set_folder_path(self, new_folder_path):
            self._folder = str(new_folder_path)

        def get_folder_path(self):
            return self._folder

        def get_actor_location(self):
            return self._location

        def get_actor_rotation(self):
            return self._rotation

        def get_actor_scale3d(self):
            return self._scale

    def spawn(kind, object_to_use, location, rotation=None, transient=False):
        if not isinstance(location, Vector) or not isinstance(rotation if rotation is not None else Rotator(), Rotator):
            raise TypeError("spawn_actor_from_object(object_to_use, Vector location, Rotator rotation)")
        if not level_open:
            return None
        if not isinstance(object_to_use, unreal.StaticMesh):
            raise TypeError("this stand-in spawns static meshes only")
        actor = StaticMeshActor(object_to_use, location, rotation or Rotator())
        level.append(actor)
        calls.append(("spawn", kind, object_to_use.name))
        return actor

    def destroy(actor):
        level.remove(actor)
        calls.append(("destroy", actor.get_actor_label()))
        return True

    class EditorActorSubsystem:
        def spawn_actor_from_object(self, object_to_use, location, rotation=None, transient=False):
            return spawn("subsystem", object_to_use, location, rotation, transient)

        def get_all_level_actors(self):
            return list(level)

        def destroy_actor(self, actor_to_destroy):
            return destroy(actor_to_destroy)

    class EditorLevelLibrary:  # deprecated Editor Scripting Utilities
        @staticmethod
        def spawn_actor_from_object(object_to_use, location, rotation=None, transient=False):
            return spawn("library", object_to_use, location, rotation, transient)

        @staticmethod
        def get_all_level_actors():
            return list(level)

        @staticmethod
        def destroy_actor(actor_to_destroy):
            return destroy(actor_to_destroy)

    class UnrealEditorSubsystem:
        def get_editor_world(self):
            return types.SimpleNamespace(name="Untitled") if level_open else None

    unreal.Vector, unreal.Rotator = Vector, Rotator
    unreal.StaticMeshActor, unreal.UnrealEditorSubsystem = StaticMeshActor, UnrealEditorSubsystem
    if subsystem:
        unreal.EditorActorSubsystem = EditorActorSubsystem
    if library:
        unreal.EditorLevelLibrary = EditorLevelLibrary
    return unreal


def write_scene(root: Path, skip=()) -> tuple[Path, dict]:
    """The scene folder: import_scene.py, and per object its package (placeholder files, its import script)."""
    layout = scene_layout("Yard", objects(), SceneCamera(320, 240))
    for entry in layout["objects"]:
        name = entry["name"]
        if name in skip:
            continue
        names = engine_names(name, "ue5", 3)
        folder = root / entry["asset"]["folder"]
        folder.mkdir(parents=True)
        for filename in list(names.mesh_files) + list(names.textures.values()):
            (folder / filename).write_bytes(b"placeholder")
        (folder / names.import_script).write_text(import_script(
            name, list(names.mesh_files), names.mesh_nodes[0], names.textures, names.material, hull_count=2,
            lod_triangles=[1000, 500, 250]))
    path = root / "import_scene.py"
    path.write_text(import_scene_script(layout))
    return path, layout


def actors_by_label(unreal):
    return {actor.get_actor_label(): actor for actor in unreal.level}


def test_script_compiles_with_its_settings_on_top(tmp_path):
    path, layout = write_scene(tmp_path)
    text = path.read_text()
    compile(text, "import_scene.py", "exec")
    assert text.index("OBJECTS = [") < text.index("import unreal")
    assert "OUTLINER_FOLDER = 'Open3DForge/Yard'" in text
    assert text.count("'import_script': ") == len(layout["objects"]) == 3


@pytest.mark.parametrize("version", VERSIONS)
def test_every_actor_is_placed(version, tmp_path, monkeypatch):
    unreal = with_actor_api(build_unreal(version))
    path, layout = write_scene(tmp_path)
    report = run_script(path, unreal, monkeypatch)
    assert report["failed"] == [] and report["mismatch"] == []
    actors = actors_by_label(unreal)
    assert sorted(actors) == sorted(o["name"] for o in layout["objects"])
    for entry in layout["objects"]:
        name, ue5 = entry["name"], entry["ue5"]
        actor = actors[name]
        mesh = actor.get_editor_property("static_mesh_component").get_editor_property("static_mesh")
        assert mesh is unreal.assets[f"/Game/Open3DForge/{name}/SM_{name}"]  # the asset its own script imported
        assert mesh.lods == [1000, 500, 250] and mesh.hulls == 2
        loc, rot, scale = actor.get_actor_location(), actor.get_actor_rotation(), actor.get_actor_scale3d()
        assert [loc.x, loc.y, loc.z] == pytest.approx(ue5["location_cm"])
        assert [rot.roll, rot.pitch, rot.yaw] == pytest.approx([0.0, 0.0, ue5["rotation_deg"]["yaw"]])
        assert [scale.x, scale.y, scale.z] == pytest.approx(ue5["scale"])
        assert actor.get_folder_path() == "Open3DForge/Yard"
    spawns = [c for c in unreal.calls if c[0] == "spawn"]
    assert [c[1] for c in spawns] == ["subsystem"] * 3
    assert len([c for c in report["checked"] if "location" in c]) == 3
    assert [i["file"] for i in unreal.imports if "_LOD" not in i["file"]] == [f"SM_{o['name']}.fbx"
                                                                              for o in layout["objects"]]


def test_a_second_run_replaces_its_actors(tmp_path, monkeypatch):
    unreal = with_actor_api(build_unreal("5.5"))
    path, layout = write_scene(tmp_path)
    run_script(path, unreal, monkeypatch)
    report = run_script(path, unreal, monkeypatch)
    assert len(unreal.level) == 3 and report["failed"] == []
    assert len([c for c in unreal.calls if c[0] == "destroy"]) == 3


def test_the_deprecated_library_is_used_without_the_subsystem(tmp_path, monkeypatch):
    unreal = with_actor_api(build_unreal("5.4"), subsystem=False)
    path, _ = write_scene(tmp_path)
    report = run_script(path, unreal, monkeypatch)
    assert report["failed"] == [] and len(unreal.level) == 3
    assert {c[1] for c in unreal.calls if c[0] == "spawn"} == {"library"}


def test_an_editor_that_cannot_spawn_says_so(tmp_path, monkeypatch):
    unreal = with_actor_api(build_unreal("5.6"), subsystem=False, library=False)
    path, _ = write_scene(tmp_path)
    report = run_script(path, unreal, monkeypatch)
    assert unreal.level == [] and any("spawn_actor_from_object" in m for m in report["failed"])


def test_no_open_level_is_reported(tmp_path, monkeypatch):
    unreal = with_actor_api(build_unreal("5.7"), level_open=False)
    path, _ = write_scene(tmp_path)
    report = run_script(path, unreal, monkeypatch)
    assert unreal.level == [] and any("no level is open" in m for m in report["failed"])


def test_a_missing_object_fails_alone(tmp_path, monkeypatch):
    unreal = with_actor_api(build_unreal("5.8"))
    path, layout = write_scene(tmp_path, skip=("Prop_02",))
    report = run_script(path, unreal, monkeypatch)
    assert sorted(actors_by_label(unreal)) == ["Prop_01", "Prop_03"]
    assert any(m.startswith("Prop_02: no import script") for m in report["failed"])


def test_bad_layout_is_refused():
    with pytest.raises(InputError, match="layout.objects"):
        import_scene_script({"name": "Yard", "objects": []})
    with pytest.raises(InputError, match=r"layout.objects\[0\]"):
        import_scene_script({"name": "Yard", "objects": [{"name": "Prop_01"}]})
    with pytest.raises(InputError, match="bundle.name"):
        import_scene_script({"name": "bad name", "objects": [{}]})

"""The rig endpoint and forge for characters, in-process through ForgeApi: a humanoid made in the test is imported,
post-processed and rigged; bad requests are refused by name and leave the asset as it was."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from server.api import ForgeApi
from server.config import load_settings
from server.errors import ForgeError, InputError, RefusedInput
from server.meshfile import blender_to_gltf
from server.rigging import RigResult
from tests.humanoids import Body, make_humanoid

POST = {"target_triangles": 6000, "texture_size": 256, "max_hulls": 2, "height": "keep"}
MANNEQUIN = {"root", "pelvis", "spine_01", "spine_05", "neck_01", "head", "clavicle_l", "upperarm_l", "lowerarm_l",
             "hand_l", "thigh_r", "calf_r", "foot_r", "ball_r", "ik_foot_root", "ik_hand_gun"}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    import os

    os.environ["O3F_WORKSPACE"] = str(tmp_path_factory.mktemp("rig_api") / "workspace")
    try:
        return ForgeApi(load_settings())
    finally:
        del os.environ["O3F_WORKSPACE"]


def _upload(mesh, folder, name) -> str:
    path = folder / f"{name}.glb"
    trimesh.Trimesh(blender_to_gltf(mesh.vertices), mesh.faces, process=False).export(path)
    return str(path)


@pytest.fixture(scope="module")
def person(api, tmp_path_factory):
    human = make_humanoid(Body(height=1.75, cells=70))
    record, _ = api.import_mesh(_upload(human.mesh, tmp_path_factory.mktemp("person"), "Person"), "Person",
                                {"kind": "character"})
    asset_id = json.loads(record)["asset_id"]
    api.postprocess(asset_id, POST)
    return asset_id, human


def test_a_humanoid_is_rigged_with_the_mannequins_bones(api, person):
    asset_id, human = person
    record = json.loads(api.rig(asset_id, {"max_influences": 4}))
    stage = record["stages"][-1]
    assert stage["stage"] == "rig" and stage["status"] == "ok" and stage["outputs"]["rig"] == "rig.npz"
    rig = RigResult.load(api.ctx.store.open(asset_id).folder / "rig.npz")
    assert MANNEQUIN <= set(rig.bone_names)
    from server.runners.stored import load_game_mesh

    lod0 = load_game_mesh(api.ctx.store.open(asset_id))[0][0]
    assert rig.influence_weights.shape[0] == len(lod0.vertices)
    assert np.allclose(rig.influence_weights.sum(axis=1), 1.0) and rig.influence_weights.shape[1] <= 4
    # The hand joint lies near the true wrist of the body made in the test (placed as post-processing placed it).
    state = json.loads((api.ctx.store.open(asset_id).folder / "game" / "postprocess.json").read_text())
    placed_wrist = np.asarray(human.joints["hand_l"]) * state["transform"]["scale"] + state["transform"]["translation"]
    assert np.linalg.norm(rig.joints["hand_l"] - placed_wrist) < 0.06 * human.height


@pytest.mark.parametrize("options, expected", [
    ({"method": "rigify"}, "options.method='rigify': expected one of auto, template, make_it_animatable, unirig"),
    ({"method": "unirig"}, "options.method='unirig': expected an available rig method; unirig is not"),
    ({"max_influences": 0}, "options.max_influences=0"),
    ({"fingers": "yes"}, "options.fingers='yes'"),
    ({"skeleton": "horse"}, "options.skeleton='horse'"),
    ({"bones": 3}, "options='bones': expected one of the keys"),
])
def test_bad_rig_options_are_refused_and_change_nothing(api, person, options, expected):
    asset_id, _ = person
    before = api.ctx.store.open(asset_id).read()["stages"]
    with pytest.raises(InputError) as refused:
        api.rig(asset_id, options)
    assert expected in str(refused.value)
    assert api.ctx.store.open(asset_id).read()["stages"] == before


def test_a_box_is_refused_as_no_humanoid_and_keeps_no_rig(api, tmp_path):
    box = trimesh.creation.box(extents=(0.6, 0.4, 1.0))
    record, _ = api.import_mesh(_upload(box, tmp_path, "Box"), "Box", {"kind": "character"})
    asset_id = json.loads(record)["asset_id"]
    api.postprocess(asset_id, {**POST, "target_triangles": 500})
    with pytest.raises(RefusedInput):
        api.rig(asset_id)
    folder = api.ctx.store.open(asset_id).folder
    assert not (folder / "rig.npz").exists()
    assert api.ctx.store.open(asset_id).read()["stages"][-1]["status"] == "error"


def test_rig_needs_a_post_processed_asset(api, tmp_path):
    box = trimesh.creation.box(extents=(0.6, 0.4, 1.0))
    record, _ = api.import_mesh(_upload(box, tmp_path, "Raw"), "Raw", {})
    with pytest.raises(ForgeError, match="not post-processed yet: run postprocess first"):
        api.rig(json.loads(record)["asset_id"])


def test_health_lists_the_rig_methods_with_reasons(api):
    rows = {row["name"]: row for row in json.loads(api.health())["rig_methods"]}
    assert rows["template"]["available"] is True
    assert rows["auto"]["reason"].startswith("uses template here")  # no model can run on this machine
    for model in ("make_it_animatable", "unirig"):
        assert rows[model]["available"] is False and rows[model]["reason"]


def test_a_rigged_character_exports_as_a_skeletal_mesh_and_a_new_postprocess_makes_the_rig_stale(api, person):
    import zipfile

    asset_id, _ = person
    api.rig(asset_id)
    api.bake(asset_id, {"ao_samples": 2})
    _, package = api.export(asset_id, "ue5", {"use_fbx": False})
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    assert "SK_Person.glb" in names and not any(name.startswith("SM_") or "UCX" in name for name in names)
    assert manifest["skeleton"]["skeleton"] == "ue5_mannequin" and manifest["skeleton"]["bone_count"] >= 30
    api.postprocess(asset_id, {**POST, "target_triangles": 5000})
    api.bake(asset_id, {"ao_samples": 2})
    with pytest.raises(InputError, match="rigged before the last postprocess: run rig again"):
        api.export(asset_id, "ue5", {"use_fbx": False})


def test_forge_finishes_an_imported_humanoid_into_a_ue5_skeletal_mesh(api, tmp_path):
    import zipfile

    human = make_humanoid(Body(height=1.6, arm_drop_deg=40, cells=60))
    record, _ = api.import_mesh(_upload(human.mesh, tmp_path, "Runner"), "Runner", {"kind": "character"})
    asset_id = json.loads(record)["asset_id"]
    record_json, package = api.forge(None, options={"asset_id": asset_id, "postprocess": POST,
                                                    "bake": {"ao_samples": 2}, "rig": {"max_influences": 4}})
    stages = [(s["stage"], s["status"]) for s in json.loads(record_json)["stages"]]
    assert stages[-4:] == [("postprocess", "ok"), ("rig", "ok"), ("bake", "ok"), ("export", "ok")]
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
    assert {"SK_Runner.fbx", "T_Runner_BC.png", "import_Runner.py", "manifest.json"} <= names
    assert not any(name.startswith("SM_") for name in names)


def test_a_character_that_cannot_be_rigged_still_exports_and_says_why(api, tmp_path):
    import zipfile

    box = trimesh.creation.box(extents=(0.5, 0.3, 1.7))
    record, _ = api.import_mesh(_upload(box, tmp_path, "Crate"), "Crate", {"kind": "character"})
    asset_id = json.loads(record)["asset_id"]
    _, package = api.forge(None, options={"asset_id": asset_id, "postprocess": {**POST, "target_triangles": 500},
                                          "bake": {"ao_samples": 2}, "export": {"use_fbx": False}})
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert "SM_Crate.glb" in archive.namelist()
    assert manifest["rig"]["rigged"] is False and "touch the ground" in manifest["rig"]["why"]

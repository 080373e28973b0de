"""The rig endpoint with a model method (UniRig's recording stand-ins from test_rig_models): the method is checked
before any work, the run is recorded with its GPU time, and a generic skeleton exports as its own skeleton."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from humanoids import make_quadruped
from server.api import ForgeApi
from server.config import load_settings
from server.errors import InputError
from server.runners.stored import load_game_mesh
from server.rigging import RigResult
from server.rigging import methods
from test_rig_endpoint import POST, _upload
from test_rig_models import UniRigLog, fake_unirig, quadruped_skeleton  # noqa: F401 (the fixture)

pytest.importorskip("torch", reason="PyTorch is not installed (the test extra installs it on 3.11)")


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("O3F_WORKSPACE", str(tmp_path / "workspace"))
    return ForgeApi(load_settings())


@pytest.fixture
def dog(api, tmp_path, fake_unirig):
    record, _ = api.import_mesh(_upload(make_quadruped(cells=30), tmp_path, "Dog"), "Dog", {"kind": "character"})
    asset_id = json.loads(record)["asset_id"]
    api.postprocess(asset_id, {**POST, "target_triangles": 3000})
    lod0 = load_game_mesh(api.ctx.store.open(asset_id))[0][0]
    # The stand-in answers in the frame of the mesh it is told about: the LOD0 the rig stage will read.
    heads, tails, parents = quadruped_skeleton()
    ends = np.vstack([heads, tails])
    low, high = lod0.vertices.min(axis=0), lod0.vertices.max(axis=0)
    scale = (high - low) / np.ptp(ends, axis=0).clip(1e-9)
    place = lambda p: (p - ends.min(axis=0)) * scale + low  # noqa: E731 (the skeleton's box on LOD0's)
    UniRigLog.mesh, UniRigLog.skeleton = lod0, (place(heads), place(tails), parents)
    return asset_id


def test_unirig_rigs_through_the_endpoint_and_exports_its_own_skeleton(api, dog, tmp_path):
    record = json.loads(api.rig(dog, {"method": "unirig", "max_influences": 3, "seed": 7}))
    stage = record["stages"][-1]
    assert stage["stage"] == "rig" and stage["status"] == "ok"
    assert stage["parameters"]["method"] == "unirig" and stage["parameters"]["seed"] == 7
    assert stage["parameters"]["report"]["skeleton"] == "generic"
    assert stage["gpu_seconds"] > 0  # the UniRig stand-in ran
    rig = RigResult.load(api.ctx.store.open(dog).folder / "rig.npz")
    assert np.allclose(rig.heads, UniRigLog.skeleton[0], atol=1e-3)  # where the model put them, in LOD0's frame
    assert rig.influence_bones.shape[1] == 3

    api.bake(dog, {"ao_samples": 2})
    _, path = api.export(dog, "ue5", {"use_fbx": False})
    with zipfile.ZipFile(path) as package:
        manifest = json.loads(package.read("manifest.json"))
        script = package.read("import_Dog.py").decode()
    assert manifest["skeleton"]["skeleton"] == "generic" and manifest["skeleton"]["bones"][0] == "bone_0"
    assert "MANNEQUIN_SKELETONS = []" in script  # a generic skeleton never lands on the Mannequin's
    assert "new skeleton" in manifest["skeleton"]["import"]
    _, path = api.export(dog, "unity", {"use_fbx": False})
    with zipfile.ZipFile(path) as package:
        manifest = json.loads(package.read("manifest.json"))
    assert manifest["humanoid"] is None and manifest["animation_type"].startswith("Generic")


@pytest.mark.parametrize("options, expected", [
    ({"method": "template", "seed": 3}, "options.seed=3: expected no seed with the template method"),
    ({"method": "template", "skeleton": "generic"}, "options.skeleton='generic'"),
    ({"method": "unirig", "skeleton": "ue5_mannequin"}, "options.skeleton='ue5_mannequin'"),
    ({"method": "unirig", "fingers": "yes"}, "options.fingers='yes'"),
])
def test_a_method_and_options_that_do_not_go_together_are_refused_first(api, dog, options, expected):
    before = api.ctx.store.open(dog).read()["stages"]
    with pytest.raises(InputError) as refused:
        api.rig(dog, options)
    assert expected in str(refused.value)
    assert api.ctx.store.open(dog).read()["stages"] == before


def test_auto_takes_unirig_for_a_generic_skeleton_and_health_says_what_auto_uses(fake_unirig):
    assert methods.resolve("auto", {"skeleton": "generic"}) == "unirig"
    rows = {row["name"]: row for row in methods.report()}
    assert rows["unirig"]["available"] is True and rows["unirig"]["skeletons"] == ["generic"]
    assert "unirig for skeleton 'generic'" in rows["auto"]["reason"]

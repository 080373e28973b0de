"""Claiming an asset through ForgeApi: refusals leave it usable, one job at a time, exports match their maps."""

import json
import threading
import zipfile
from dataclasses import replace

import pytest
from PIL import Image

from server.api import ForgeApi
from server.bake.gpu_runtime import cuda_engine_status
from server.config import load_settings
from server.errors import Cancelled, ForgeError, InputError
from server.jobs import CancelFlags
from tests.test_silhouette import l_shape

GENERATE = {"resolution": 96, "target_faces": 20000}
POST = {"target_triangles": 1500, "texture_size": 256, "max_hulls": 4}
BAKE = {"ao_samples": 4, "texture_size": 256}
BUSY = "an asset that no other job is working on right now"
IDLE_ID = "20261122T000000-c1a1m001"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("claims") / "ws"
    return ForgeApi(replace(load_settings(), workspace=workspace))


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("claims_images") / "l_shape.png"
    Image.fromarray(l_shape()).save(path)
    return path


@pytest.fixture
def asset_id(api, image):
    record_json, _ = api.generate([str(image)], "Claimed", "silhouette", options=GENERATE)
    return json.loads(record_json)["asset_id"]


def last_stage(api, asset_id):
    return json.loads(api.asset(asset_id))["stages"][-1]


def stage_count(api, asset_id):
    return len(json.loads(api.asset(asset_id))["stages"])


def baked(api, asset_id, post=POST):
    api.postprocess(asset_id, post)
    api.bake(asset_id, BAKE)


def refused_bake_option():
    """An option bake_settings refuses on this machine: the CUDA engine where it cannot run, else a bad size."""
    available, _ = cuda_engine_status()
    if available:
        return {"texture_size": 300}, "options.texture_size=300"
    return {"engine": "cuda"}, "options.engine='cuda'"


def test_a_refused_postprocess_option_leaves_the_asset_usable(api, asset_id):
    with pytest.raises(InputError, match="options.texture_size=300"):
        api.postprocess(asset_id, {**POST, "texture_size": 300})
    assert not api.ctx.flags.active(asset_id)
    api.postprocess(asset_id, POST)
    assert last_stage(api, asset_id)["stage"] == "postprocess" and last_stage(api, asset_id)["status"] == "ok"


def test_a_refused_bake_option_leaves_the_asset_usable(api, asset_id):
    api.postprocess(asset_id, POST)
    options, message = refused_bake_option()
    with pytest.raises(InputError, match=message):
        api.bake(asset_id, {**BAKE, **options})
    assert not api.ctx.flags.active(asset_id)
    api.bake(asset_id, BAKE)
    assert last_stage(api, asset_id)["stage"] == "bake" and last_stage(api, asset_id)["status"] == "ok"


def test_a_refused_export_option_is_refused_before_the_claim_and_a_valid_export_follows(api, asset_id):
    api.postprocess(asset_id, POST)
    with pytest.raises(ForgeError, match="run bake first"):  # refused inside the claim: released all the same
        api.export(asset_id, "ue5", {"use_fbx": False})
    api.bake(asset_id, BAKE)
    stages = stage_count(api, asset_id)
    with api.ctx.flags.claim(asset_id):  # another job holds it: the option is still what gets named
        with pytest.raises(InputError, match="options.nanite='yes'"):
            api.export(asset_id, "ue5", {"nanite": "yes"})
    assert stage_count(api, asset_id) == stages and not api.ctx.flags.active(asset_id)
    _, package = api.export(asset_id, "ue5", {"use_fbx": False})
    assert last_stage(api, asset_id)["stage"] == "export" and last_stage(api, asset_id)["status"] == "ok"
    with zipfile.ZipFile(package) as bundle:
        assert "T_Claimed_BC.png" in bundle.namelist()


def test_decimate_preview_is_refused_while_another_job_holds_the_asset(api, asset_id):
    holding, done = threading.Event(), threading.Event()

    def other_job():  # another request's thread holds the asset
        with api.ctx.flags.claim(asset_id):
            holding.set()
            done.wait(30)

    holder = threading.Thread(target=other_job)
    holder.start()
    try:
        assert holding.wait(30)
        with pytest.raises(InputError, match=BUSY):
            api.decimate_preview(asset_id, 2000)
    finally:
        done.set()
        holder.join()
    summary, path = api.decimate_preview(asset_id, 2000)
    assert json.loads(summary)["triangles"] == pytest.approx(2000, rel=0.05) and path.endswith(".glb")


def test_two_claims_on_one_asset_at_once_give_it_to_exactly_one():
    flags = CancelFlags()
    start = threading.Barrier(2, timeout=30)
    attempted = threading.Barrier(2, timeout=30)  # the winner holds its claim until both have tried
    outcomes = []

    def contender():
        start.wait()
        try:
            with flags.claim(IDLE_ID):
                attempted.wait()
                outcomes.append("won")
        except InputError as exc:
            attempted.wait()
            outcomes.append(str(exc))

    threads = [threading.Thread(target=contender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 2 and outcomes.count("won") == 1
    (refusal,) = [outcome for outcome in outcomes if outcome != "won"]
    assert BUSY in refusal
    with flags.claim(IDLE_ID):  # released: the next job gets it
        assert flags.active(IDLE_ID)
    assert not flags.active(IDLE_ID)


def test_cancel_stops_the_holder_and_never_holds_an_idle_asset():
    flags = CancelFlags()
    assert flags.cancel(IDLE_ID) is False and not flags.active(IDLE_ID)
    with pytest.raises(Cancelled):
        with flags.claim(IDLE_ID) as check:
            check()
            assert flags.cancel(IDLE_ID) is True
            check()
    assert not flags.active(IDLE_ID)
    with flags.claim(IDLE_ID) as check:  # a new claim starts without the old cancel request
        check()


def test_export_refuses_maps_baked_for_an_earlier_lod0_until_baked_again(api, asset_id):
    baked(api, asset_id)
    api.postprocess(asset_id, {**POST, "target_triangles": 1000})
    stages = stage_count(api, asset_id)
    with pytest.raises(InputError, match=rf"asset_id='{asset_id}'.*baked for an earlier LOD0.*run bake again"):
        api.export(asset_id, "ue5", {"use_fbx": False})
    assert stage_count(api, asset_id) == stages and not api.ctx.flags.active(asset_id)
    api.bake(asset_id, BAKE)
    api.export(asset_id, "ue5", {"use_fbx": False})
    record = json.loads(api.asset(asset_id))
    post, bake, export = (next(s for s in reversed(record["stages"]) if s["stage"] == name)
                          for name in ("postprocess", "bake", "export"))
    assert post["made"]["lod0"] == bake["made_from"]["lod0"] == export["made_from"]["lod0"]
    api.postprocess(asset_id, {**POST, "target_triangles": 1000})  # the same LOD0 again keeps its maps
    api.export(asset_id, "ue5", {"use_fbx": False})
    assert last_stage(api, asset_id)["stage"] == "export" and last_stage(api, asset_id)["status"] == "ok"


def test_a_cancel_between_forges_stages_stops_the_next_one(api, image):
    asset_id = "20261204T010101-f0e9e1a5"
    seen = {"cancelled": None}

    def progress(fraction, message):
        # The first report of the post-processing part: generation has finished, no stage holds the asset now.
        if fraction >= 0.35 and seen["cancelled"] is None:
            seen["cancelled"] = json.loads(api.cancel(asset_id))["cancel_requested"]

    options = {"generator": "silhouette", "generate": {**GENERATE, "asset_id": asset_id}, "postprocess": POST,
               "bake": BAKE}
    with pytest.raises(Cancelled):
        api.forge([str(image)], "Between", "front", "", json.dumps(options), progress=progress)
    assert seen["cancelled"] is True, "the chain holds the asset between its stages"
    record = json.loads(api.asset(asset_id))
    assert record["status"] == "cancelled"
    assert [s["stage"] for s in record["stages"] if s["status"] == "ok"][-1] in ("background", "generate")
    assert not any(s["stage"] in ("bake", "export") for s in record["stages"])
    with api.ctx.flags.claim(asset_id):  # released: a new job may take it
        pass


def test_the_thread_that_holds_an_asset_may_claim_it_again_but_no_other_may():
    flags = CancelFlags()
    with flags.claim(IDLE_ID) as outer:
        with flags.claim(IDLE_ID) as inner:
            assert flags.active(IDLE_ID)
        assert flags.active(IDLE_ID), "an inner claim does not release the outer one"
        errors = []
        other = threading.Thread(target=lambda: _try_claim(flags, errors))
        other.start()
        other.join()
        assert errors and BUSY in errors[0]
        flags.cancel(IDLE_ID)
        with pytest.raises(Cancelled):
            inner()
        with pytest.raises(Cancelled):
            outer()
    assert not flags.active(IDLE_ID)


def _try_claim(flags, errors):
    try:
        with flags.claim(IDLE_ID):
            pass
    except InputError as exc:
        errors.append(str(exc))

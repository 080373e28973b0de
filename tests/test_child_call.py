"""A stage function in a child process: the same answer as in this one, its failures and cancels reach the caller,
and post-processing measures a large mesh's decimation error there."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from server import child_call, gameready
from server.cache import StageCache
from server.errors import Cancelled, ForgeError
from server.gameready import PostSettings, postprocess
from server.meshdata import MeshArrays
from server.stages.decimate import decimate, surface_deviation
from server.stages.regions import reduce_region


@pytest.fixture(scope="module")
def sphere_pair():
    shape = trimesh.creation.icosphere(subdivisions=5)
    high = MeshArrays(shape.vertices, shape.faces)
    return high, decimate(high, 500)


def test_the_child_measures_what_this_process_measures(sphere_pair):
    high, low = sphere_pair
    here = surface_deviation(high, low, samples=5000)
    there = child_call.start("server.stages.decimate:surface_deviation", {"reference": high, "candidate": low},
                             "measuring", samples=5000).result()
    assert set(there) == {"max", "mean", "rms"}
    # Every vertex is measured on both sides (the max); the face samples are drawn at random.
    assert there["max"] == pytest.approx(here["max"], rel=0.05)
    assert there["mean"] == pytest.approx(here["mean"], rel=0.05)
    assert 0 < there["mean"] <= there["rms"] <= there["max"]


def test_arrays_go_to_the_child_and_come_back():
    shape = trimesh.creation.icosphere(subdivisions=4)
    cap = shape.submesh([shape.triangles_center[:, 2] > 0.2], append=True)  # open: its rim is the border
    region = MeshArrays(cap.vertices, cap.faces)
    border = np.unique(cap.edges[trimesh.grouping.group_rows(cap.edges_sorted, require_count=1)])
    here = reduce_region(region, border, 300, [4])
    there = child_call.start("server.stages.regions:reduce_region", {"region": region}, "reducing a region",
                             arrays={"border": border}, faces=300, aggressiveness=[4]).result()
    assert set(there) == {"vertices", "faces", "border_at"}
    for name in there:
        assert np.array_equal(there[name], here[name])  # the same deterministic passes, arrays back intact
    assert np.array_equal(there["vertices"][there["border_at"]], region.vertices[border])


def test_only_listed_functions_are_called():
    with pytest.raises(ValueError, match="is not one of"):
        child_call.start("os:system", {}, "a call")


def test_the_childs_error_reaches_the_caller(sphere_pair):
    high, low = sphere_pair
    call = child_call.start("server.stages.decimate:surface_deviation", {"reference": high, "candidate": low},
                            "measuring the error", samples=5)
    with pytest.raises(ForgeError, match="measuring the error failed in its process .*samples"):
        call.result()


def test_a_cancel_kills_the_child(sphere_pair):
    high, low = sphere_pair
    call = child_call.start("server.stages.decimate:surface_deviation", {"reference": high, "candidate": low},
                            "measuring", samples=5000)

    def cancelled():
        raise Cancelled("the job was cancelled")

    with pytest.raises(Cancelled):
        call.result(cancelled)
    assert call._proc.returncode is not None and call._proc.returncode < 0


def test_postprocess_measures_a_large_reference_in_a_child(tmp_path, monkeypatch, sphere_pair):
    high, _ = sphere_pair
    settings = PostSettings(target_triangles=400, texture_size=256, height_cm=None, collision=False)
    here = postprocess(high, "sphere", settings, StageCache(tmp_path / "a"), lambda *_: None, lambda: None)
    monkeypatch.setattr(gameready, "DEVIATION_APART_FACES", 1000)
    apart = postprocess(high, "sphere", settings, StageCache(tmp_path / "b"), lambda *_: None, lambda: None)
    assert here.report["deviation_in_own_process"] is False and apart.report["deviation_in_own_process"] is True
    assert apart.deviation["max"] == pytest.approx(here.deviation["max"], rel=0.05)
    assert apart.deviation["mean"] == pytest.approx(here.deviation["mean"], rel=0.05)
    assert apart.deviation["reference_triangles"] == high.face_count


def test_with_cores_to_spare_a_smaller_reference_is_measured_apart(tmp_path, monkeypatch, sphere_pair):
    from server.stages import regions

    high, _ = sphere_pair
    settings = PostSettings(target_triangles=400, texture_size=256, height_cm=None, collision=False)
    monkeypatch.setattr(gameready, "DEVIATION_APART_FACES_MANY_CORES", 1000)
    monkeypatch.setattr(regions, "usable_cores", lambda: 2)
    few = postprocess(high, "sphere", settings, StageCache(tmp_path / "a"), lambda *_: None, lambda: None)
    monkeypatch.setattr(regions, "usable_cores", lambda: 16)
    many = postprocess(high, "sphere", settings, StageCache(tmp_path / "b"), lambda *_: None, lambda: None)
    assert few.report["deviation_in_own_process"] is False and many.report["deviation_in_own_process"] is True
    assert many.deviation["max"] == pytest.approx(few.deviation["max"], rel=0.05)

"""Post-processing runs CoACD beside the unwrap: its hulls arrive, and a failure beside it stops it."""

import threading

import pytest
import trimesh

from server import gameready
from server.cache import StageCache
from server.gameready import PostSettings, postprocess
from server.meshdata import MeshArrays
from server.stages import collision


def _sphere() -> MeshArrays:
    shape = trimesh.creation.icosphere(subdivisions=3)
    return MeshArrays(shape.vertices, shape.faces)


def _settings() -> PostSettings:
    return PostSettings(target_triangles=400, texture_size=256, height_cm=None)


def test_hulls_made_beside_the_unwrap_arrive_with_the_report(tmp_path):
    game = postprocess(_sphere(), "sphere", _settings(), StageCache(tmp_path), lambda *_: None, lambda: None)
    assert game.hulls and all(h.info["method"] in ("coacd", "convex_hull_fallback") for h in game.hulls)
    timings = game.report["timings_s"]
    assert {"collision", "collision_wait", "unwrap", "deviation"} <= set(timings)
    assert game.report["repair"]["ran"] is False and "closed and manifold" in game.report["repair"]["reason"]


def test_a_failure_beside_coacd_kills_it(tmp_path, monkeypatch):
    started = []
    real_popen = collision.subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    def broken_unwrap(*args, **kwargs):
        raise RuntimeError("the unwrap broke")

    monkeypatch.setattr(collision, "_WORKER", "import time; time.sleep(60)")  # a CoACD that would run on
    monkeypatch.setattr(collision.subprocess, "Popen", popen)
    monkeypatch.setattr(gameready.uv_stage, "unwrap", broken_unwrap)
    with pytest.raises(RuntimeError, match="the unwrap broke"):
        postprocess(_sphere(), "sphere", _settings(), StageCache(tmp_path), lambda *_: None, lambda: None)
    for thread in [t for t in threading.enumerate() if t.name == "o3f-collision"]:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert started and all(proc.returncode is not None and proc.returncode < 0 for proc in started)


def test_coacd_is_running_before_the_unwrap_takes_pythons_lock(tmp_path, monkeypatch):
    started, seen_by_unwrap = [], []
    real_popen, real_unwrap = collision.subprocess.Popen, gameready.uv_stage.unwrap

    def popen(command, *args, **kwargs):
        proc = real_popen(command, *args, **kwargs)
        if "coacd" in " ".join(map(str, command)):  # other libraries may start processes of their own
            started.append(proc)
        return proc

    def unwrap(*args, **kwargs):
        seen_by_unwrap.append(len(started))
        return real_unwrap(*args, **kwargs)

    monkeypatch.setattr(collision.subprocess, "Popen", popen)
    monkeypatch.setattr(gameready.uv_stage, "unwrap", unwrap)
    game = postprocess(_sphere(), "sphere", _settings(), StageCache(tmp_path), lambda *_: None, lambda: None)
    assert seen_by_unwrap == [1] and game.hulls[0].info["method"] == "coacd"


def test_a_cached_collision_starts_nothing_and_does_not_hold_the_unwrap(tmp_path, monkeypatch):
    cache = StageCache(tmp_path)
    postprocess(_sphere(), "sphere", _settings(), cache, lambda *_: None, lambda: None)
    monkeypatch.setattr(collision.subprocess, "Popen", None)  # any CoACD run would fail
    game = postprocess(_sphere(), "sphere", _settings(), cache, lambda *_: None, lambda: None)
    assert game.report["cached"]["collision"] is True and game.hulls

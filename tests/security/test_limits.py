"""Limits that hold before any work: one shared slot count for every heavy job."""

from __future__ import annotations

from server.api import ForgeApi
from server.app import build_app
from server.config import load_settings

HEAVY = {"generate", "generate_text", "import_mesh", "forge", "postprocess", "decimate_preview", "bake", "export", "rig",
         "scene"}
LIGHT = {"health", "quota", "assets", "asset", "cancel", "presets"}


def _functions(app):
    return {fn.api_name: fn for fn in (app.fns.values() if isinstance(app.fns, dict) else app.fns)}


def test_heavy_jobs_share_one_limit_and_light_calls_never_wait_behind_them(tmp_path, monkeypatch):
    monkeypatch.setenv("O3F_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("O3F_CONCURRENCY", "3")
    functions = _functions(build_app(ForgeApi(load_settings())))
    assert HEAVY | LIGHT <= set(functions)
    assert {(functions[name].concurrency_id, functions[name].concurrency_limit) for name in HEAVY} == {("heavy", 3)}
    assert not {functions[name].concurrency_id for name in LIGHT} & {"heavy"}


def test_by_default_one_heavy_job_runs_at_a_time(tmp_path, monkeypatch):
    # Two threads in pymeshlab at once crash the server (two forges at once did, with a segmentation fault).
    monkeypatch.setenv("O3F_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("O3F_CONCURRENCY", raising=False)
    assert load_settings().heavy_jobs == 1
    monkeypatch.setenv("O3F_CONCURRENCY", "0")
    assert load_settings().heavy_jobs == 1

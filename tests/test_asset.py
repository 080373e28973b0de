"""Asset store: ids, confinement to the workspace, history order, atomic writes under a kill."""

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import pytest

from server import asset as asset_module
from server.asset import AssetStore, atomic_write_json, validate_asset_id
from server.errors import Cancelled, ForgeError, InputError


def make(store, name="Crate"):
    return store.create(name=name, kind="prop", generator="silhouette", seed=1, parameters={"a": 1})


def test_create_open_and_record_fields(tmp_path):
    store = AssetStore(tmp_path)
    asset = make(store)
    record = store.open(asset.asset_id).read()
    assert record["asset_id"] == asset.asset_id
    assert record["name"] == "Crate" and record["kind"] == "prop" and record["seed"] == 1
    assert record["stages"] == [] and record["status"] == "created"
    validate_asset_id(asset.asset_id)


@pytest.mark.parametrize("bad", ["../etc", "20261122T004512-1a2b3c4d/../x", "", None, 5,
                                 "20261122T004512-1A2B3C4D", "/tmp/20261122T004512-1a2b3c4d"])
def test_bad_asset_ids_are_refused(tmp_path, bad):
    with pytest.raises(InputError, match="asset_id"):
        AssetStore(tmp_path).open(bad)


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(InputError, match="kind"):
        AssetStore(tmp_path).create(name="x", kind="vehicle", generator="g", seed=0, parameters={})


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "a/../../b", "a//b", ".hidden/../x"])
def test_file_names_cannot_leave_the_asset_folder(tmp_path, name):
    asset = make(AssetStore(tmp_path / "ws"))
    with pytest.raises(InputError):
        asset.write_bytes(name, b"x")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "abs.txt").exists()


def test_history_is_newest_first_and_lists_damaged_records(tmp_path):
    store = AssetStore(tmp_path)
    first = make(store, "First")
    time.sleep(0.01)
    second = make(store, "Second")
    (first.folder / "asset.json").write_text("{not json")
    rows = store.history()
    assert rows[0]["asset_id"] == second.asset_id
    damaged = [row for row in rows if row["asset_id"] == first.asset_id][0]
    assert damaged["status"] == "unreadable"


def test_stage_records_ok_error_and_cancel(tmp_path, monkeypatch):
    readings = itertools.count(step=0.5)  # each stage reads the clock as it starts and as it ends
    monkeypatch.setattr(asset_module, "time", types.SimpleNamespace(perf_counter=lambda: next(readings)))
    asset = make(AssetStore(tmp_path))
    with asset.stage("generate", {"x": 1}) as run:
        run["outputs"]["high_poly"] = "high_poly.glb"
    with pytest.raises(ForgeError):
        with asset.stage("background", {}):
            raise ForgeError("no object")
    with pytest.raises(Cancelled):
        with asset.stage("generate", {}):
            raise Cancelled("stop")
    record = asset.read()
    assert [s["status"] for s in record["stages"]] == ["ok", "error", "cancelled"]
    assert record["stages"][1]["error"] == "no object"
    assert [s["wall_seconds"] for s in record["stages"]] == [0.5, 0.5, 0.5]  # failed stages are timed too
    assert [s["gpu_seconds"] for s in record["stages"]] == [0.0, 0.0, 0.0]  # none of them said it used a GPU
    assert record["outputs"] == {"high_poly": "high_poly.glb"}
    assert record["status"] == "cancelled"


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from server.asset import atomic_write_json
    path = Path(sys.argv[1])
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        atomic_write_json(path, {"version": i, "payload": "x" * 2_000_000})
""")


def test_a_process_killed_mid_write_leaves_a_readable_record(tmp_path):
    path = tmp_path / "asset.json"
    atomic_write_json(path, {"version": 0, "payload": ""})
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    for delay in (0.05, 0.13, 0.31):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env, stdout=subprocess.PIPE)
        assert writer.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        record = json.loads(path.read_text())  # must parse: old or new, never half
        assert record["payload"] == ("" if record["version"] == 0 else "x" * 2_000_000)  # one write, whole
    leftovers = [p for p in tmp_path.iterdir() if p.name != "asset.json"]
    # A killed writer may leave its temporary file; it never replaces the record half-written.
    assert all(p.name.startswith(".asset.json.") for p in leftovers)


def test_jobs_cut_off_by_a_killed_server_are_marked_interrupted(tmp_path):
    store = AssetStore(tmp_path)
    finished = make(store, "Done")
    with finished.stage("generate", {}) as run:
        run["outputs"]["high_poly"] = "high_poly.glb"
    cut_off = make(store, "CutOff")
    cut_off.update(lambda r: r.update(status="running", stages=[{"stage": "postprocess", "status": "running"}]))
    assert AssetStore(tmp_path).mark_interrupted() == [cut_off.asset_id]
    record = cut_off.read()
    assert record["status"] == "interrupted" and record["stages"][0]["status"] == "interrupted"
    assert "run it again" in record["stages"][0]["error"]
    assert finished.read()["status"] == "ready" and finished.read()["outputs"] == {"high_poly": "high_poly.glb"}


@pytest.mark.parametrize("bad", ["20261122T004512-1a2b3c4d\n", "20261122T004512-1a2b3c4d\r\n"])
def test_an_id_with_a_trailing_newline_is_refused(bad):
    from server.asset import validate_asset_id
    from server.errors import InputError

    with pytest.raises(InputError, match="asset_id"):
        validate_asset_id(bad)


def test_a_file_name_part_with_a_trailing_newline_is_refused():
    from server.asset import validate_file_name
    from server.errors import InputError

    with pytest.raises(InputError, match="file name"):
        validate_file_name("textures/T_A_BC.png\n")

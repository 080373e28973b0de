"""addon/jobs.py without Blender: a real local server, progress events, non-blocking poll, cancel, errors."""

from __future__ import annotations

import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from addon import jobs  # noqa: E402
from addon.client import ForgeClient  # noqa: E402
from server.local import free_port, running_server  # noqa: E402

TINY = {"generate": {"resolution": 96, "target_faces": 20000},
        "postprocess": {"target_triangles": 1500, "texture_size": 256, "max_hulls": 4},
        "bake": {"ao_samples": 4, "texture_size": 256}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("jobs_workspace")) as url:
        yield url


@pytest.fixture(scope="module")
def front_png(tmp_path_factory) -> Path:
    from PIL import Image, ImageDraw

    path = tmp_path_factory.mktemp("jobs_images") / "front.png"
    image = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle([30, 20, 98, 110], fill=(170, 95, 40, 255))
    image.save(path)
    return path


def connection(url, tmp_path, **kw) -> jobs.Connection:
    return jobs.Connection(server=url, request_timeout=kw.pop("request_timeout", 30.0),
                           job_timeout=kw.pop("job_timeout", 300.0), download_dir=str(tmp_path / "downloads"))


def run_polling(job: jobs.Job, limit: float = 240.0):
    """Poll like a timer would; returns the events."""
    job.start()
    events, end = [], time.monotonic() + limit
    while job.final is None:
        assert time.monotonic() < end, "job did not finish in time"
        events.extend(job.poll())
        time.sleep(0.02)
    return events


def test_poll_never_waits_for_the_worker():
    """poll() while the worker is stuck inside a call returns what has come so far, without waiting for more."""
    import threading

    release, inside = threading.Event(), threading.Event()

    def plan(worker):
        worker.stage("waiting", 0.0, 1.0)
        inside.set()
        release.wait(30)  # a server call that takes long
        return "finished"

    job = jobs.Job(plan, jobs.Connection(server="http://127.0.0.1:9/")).start()
    assert inside.wait(30)
    first = job.poll()  # would hang here (and the test with it) if poll() waited for the worker
    assert [e.stage for e in first] == ["waiting"] and job.final is None
    assert job.poll() == []
    release.set()
    assert jobs.pump(job, timeout=30).result == "finished"


def test_forge_job_reports_progress_and_returns_the_package(server, front_png, tmp_path):
    asset_id = jobs.new_asset_id()
    plan = jobs.forge_plan([front_png], name="Crate", views=["front"], preset="prop_UE5_standard", options=TINY)
    job = jobs.Job(plan, connection(server, tmp_path), asset_id=asset_id, title="forge")
    events = run_polling(job)
    final = events[-1]
    assert final.kind == jobs.DONE, final
    progress = [e for e in events if e.kind == jobs.PROGRESS and e.fraction is not None]
    fractions = [e.fraction for e in progress]
    assert len(set(fractions)) >= 5, fractions
    assert fractions == sorted(fractions), "fractions must never go back"
    assert 0.0 <= fractions[0] < 0.2 and fractions[-1] > 0.85
    # One call to the server's forge; its own progress text tells what runs (polled, so some steps pass unseen).
    assert {e.stage for e in progress} == {"forging"}
    said = {e.message for e in progress} - {"forging"}
    assert len(said) >= 4 and any("package" in text for text in said), said

    result = final.result
    assert result["asset_id"] == asset_id
    names = set(zipfile.ZipFile(result["package"]).namelist())
    assert {"SM_Crate.glb", "SM_Crate_LOD1.glb", "SM_Crate_LOD2.glb", "T_Crate_BC.png", "T_Crate_N.png",
            "T_Crate_ORM.png", "import_Crate.py", "manifest.json", "preview.png"} <= names


def test_cancel_mid_job_marks_the_asset_cancelled(server, front_png, tmp_path):
    asset_id = jobs.new_asset_id()
    options = {**TINY, "generate": {"resolution": 256, "target_faces": 200000}}
    plan = jobs.forge_plan([front_png], name="Crate", views=["front"], options=options)
    job = jobs.Job(plan, connection(server, tmp_path), asset_id=asset_id, title="forge").start()
    end = time.monotonic() + 60
    events = []
    while not any(e.kind == jobs.PROGRESS and (e.fraction or 0) > 0 for e in events):
        assert job.final is None and time.monotonic() < end, events
        events.extend(job.poll())
        time.sleep(0.01)
    job.cancel()  # sets a flag: the worker does the talking to the server
    assert job.cancel_requested and job.final is None
    while job.final is None:
        assert time.monotonic() < end + 30, "cancel did not end the job"
        job.poll()
        time.sleep(0.02)
    assert job.final.kind == jobs.CANCELLED, job.final
    record = ForgeClient(server).asset(asset_id)
    assert record["status"] == "cancelled", record["status"]
    assert any(stage["status"] == "cancelled" for stage in record["stages"])


def test_bad_input_reaches_the_error_event_verbatim(server, front_png, tmp_path):
    plan = jobs.forge_plan([front_png], name="Crate", views=["sideways"], options=TINY)
    job = jobs.Job(plan, connection(server, tmp_path), asset_id=jobs.new_asset_id())
    final = jobs.pump(job, timeout=60)
    assert final.kind == jobs.ERROR
    assert final.message == "views='sideways': expected one of front, left, back, right, top"


def test_unreachable_server_gives_a_clear_error_quickly(front_png, tmp_path):
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    job = jobs.Job(jobs.forge_plan([front_png], options=TINY), connection(url, tmp_path, request_timeout=5.0),
                   asset_id=jobs.new_asset_id())
    final = jobs.pump(job, timeout=30)
    assert final.kind == jobs.ERROR
    assert final.message.startswith(f"cannot reach {url}"), final.message


def test_sleeping_space_is_retried_with_waking_up_events(tmp_path, monkeypatch):
    calls = {"n": 0}

    def plan(worker):
        def flaky():
            calls["n"] += 1
            if calls["n"] < 3:
                raise jobs.ServerError("503 Service Unavailable: the Space is sleeping")
            return "awake"
        return worker._with_wake_retry(flaky)

    monkeypatch.setattr(jobs.Worker, "sleep", lambda self, seconds: None)
    job = jobs.Job(plan, jobs.Connection(server="http://127.0.0.1:9/"))
    seen = []
    final = jobs.pump(job, timeout=10, on_event=seen.append)
    assert final.kind == jobs.DONE and final.result == "awake"
    assert calls["n"] == 3
    waking = [e for e in seen if e.kind == jobs.PROGRESS and e.message.startswith("waking up the Space")]
    assert len(waking) == 2 and "Space is sleeping" in waking[0].message


def test_quota_error_passes_through_verbatim(tmp_path):
    def plan(worker):
        raise jobs.ServerError("ZeroGPU quota exceeded: You have exceeded your GPU quota (60s left)")

    final = jobs.pump(jobs.Job(plan, jobs.Connection(server="http://127.0.0.1:9/")), timeout=10)
    assert final.kind == jobs.ERROR
    assert final.message == "ZeroGPU quota exceeded: You have exceeded your GPU quota (60s left)"


def test_asset_ids_match_the_server_pattern():
    assert jobs.ASSET_ID_PATTERN.match(jobs.new_asset_id())
    with pytest.raises(ValueError, match="asset_id"):
        jobs.Job(lambda w: None, jobs.Connection(server="x"), asset_id="nope")

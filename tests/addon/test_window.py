"""The add-on as a Blender window runs it: modal operators, ESC, cancel(), panels, on strict RNA stand-ins.

tests/addon/window_scenarios.py runs inside Blender (the bpy module, in a subprocess) against a real local server;
the stand-ins in tests/addon/window.py are built from Blender's own RNA definitions, so anything a real window
lacks fails here. The background-mode tests (test_blender_addon.py) cover the blocking path.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from server.local import running_server  # noqa: E402

SCENARIOS = Path(__file__).with_name("window_scenarios.py")
TINY = {"generate": {"resolution": 96, "target_faces": 20000},
        "postprocess": {"target_triangles": 1500, "texture_size": 256, "max_hulls": 4},
        "bake": {"ao_samples": 4}}
NETWORK_JOBS = ("connect", "forge", "esc", "cancel_button", "blender_cancel", "server_error", "import_crash",
                "import", "scene", "export_unity", "export_godot", "postprocess", "file_load")


def _images(folder: Path) -> Path:
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle([30, 24, 98, 112], fill=(160, 100, 45, 255))
    image.save(folder / "front.png")
    scene = Image.new("RGB", (240, 180), (204, 206, 210))  # two objects on a plain backdrop
    ImageDraw.Draw(scene).rectangle([30, 80, 90, 150], fill=(170, 60, 40))
    ImageDraw.Draw(scene).ellipse([140, 70, 200, 140], fill=(40, 80, 170))
    scene.save(folder / "scene.png")
    return folder


def _run(work: Path, url: str, mode: str = "") -> tuple[subprocess.CompletedProcess, dict]:
    result = work / f"result{mode}.json"
    args = {"root": str(ROOT), "url": url, "work": str(work / "out"), "images": str(_images(work / "images")),
            "options": TINY, "result": str(result), "mode": mode}
    proc = subprocess.run([sys.executable, str(SCENARIOS), json.dumps(args)], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    return proc, (json.loads(result.read_text()) if result.is_file() else {})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("bpy (Blender as a Python module) is not installed")
    with running_server(tmp_path_factory.mktemp("window_workspace")) as url:
        yield url


@pytest.fixture(scope="module")
def window(server, tmp_path_factory):
    proc, found = _run(tmp_path_factory.mktemp("window"), server)
    if proc.returncode != 0 or not found.get("complete"):
        pytest.fail(f"window scenarios failed (rc {proc.returncode}); findings so far: {list(found)}\n"
                    f"{proc.stderr[-4000:]}\n{proc.stdout[-2000:]}")
    return found


def _texts(drawn: list) -> list[str]:
    return [str(entry[1]) for entry in drawn if entry[0] == "label"]


def _operators(drawn: list) -> list[str]:
    return [entry[1] for entry in drawn if entry[0] == "operator"]


@pytest.mark.parametrize("name", NETWORK_JOBS)
def test_every_modal_job_adds_and_removes_exactly_one_timer(window, name):
    record = window[name]
    assert record["raised"] is None, record.get("traceback")
    assert record["ended_by"] in ("modal", "cancel()"), record
    assert record["timers_added"] == 1 and record["timers_removed"] == 1, record
    assert record["live_timers"] == 0
    assert record["handlers"] == 1
    after = record["after"]
    assert after["running"] is False and after["job"] is False and after["timer"] is False, after


def test_connect_and_forge_run_to_finished(window):
    assert window["connect"]["result"] == ["FINISHED"], window["connect"]
    assert window["connected"]["health"]
    forge = window["forge"]
    assert forge["result"] == ["FINISHED"] and forge["collection"]
    assert forge["ticks"] > 3  # it really was polled from events, not pumped
    assert forge["after"]["percent"] == 100.0 and forge["after"]["error"] == ""
    assert any(kind == ["INFO"] and "imported Crate" in text for kind, text in forge["reports"])


def test_the_three_ways_to_stop_a_job_cancel_it_on_the_server(window):
    for name in ("esc", "cancel_button", "blender_cancel"):
        record = window[name]
        assert record["result"] == ["CANCELLED"], (name, record)
        assert record["server"] == "cancelled", (name, record["server"])
    assert window["esc"]["collection"] is False
    assert window["cancel_button_result"] == ["FINISHED"]
    assert window["blender_cancel"]["ended_by"] == "cancel()"


def test_a_scene_runs_to_finished_and_arrives_as_one_collection_per_object(window):
    assert window["scene"]["result"] == ["FINISHED"] and window["scene"]["children"] == ["Yard_01", "Yard_02"]
    assert window["scene"]["ticks"] > 3


def test_server_error_is_reported_verbatim_and_shown_in_the_panel(window):
    expected = "views='sideways': expected one of front, left, back, right, top"
    record = window["server_error"]
    assert record["result"] == ["CANCELLED"]
    assert (["ERROR"], expected) in [tuple(r) for r in record["reports"]]
    assert record["after"]["error"] == expected
    main = _texts(window["error_drawn"]["OPEN3DFORGE_PT_main"])
    assert "Last error:" in main and " ".join(main).count("sideways") == 1


def test_an_unexpected_error_while_importing_still_ends_the_job_with_a_message(window):
    record = window["import_crash"]
    assert record["result"] == ["CANCELLED"]
    assert record["reports"] == [[["ERROR"], "KeyError: 'lod0'"]]
    assert record["after"]["status"] == "failed" and record["after"]["error"] == "KeyError: 'lod0'"
    assert window["import"]["result"] == ["FINISHED"]


def test_exports_for_the_three_engines(window):
    for engine in ("ue5", "unity", "godot"):
        record = window[f"export_{engine}"]
        assert record["result"] == ["FINISHED"], (engine, record)
        assert record["zip_exists"] and Path(record["zip"]).name.startswith("Crate_")
    assert window["export_ue5"]["ended_by"] == "execute"  # UE5 is written here, with no server call


def test_export_into_a_folder_under_a_file_says_so(window):
    for name in ("export_bad_ue5", "export_bad_unity"):
        record = window[name]
        assert record["raised"] is None, record.get("traceback")
        assert record["result"] == ["CANCELLED"], record
        (kind, message), = record["reports"]
        assert kind == ["ERROR"] and "is a file, not a folder" in message and "a_file" in message, message
        assert record["after"]["status"] != "done"
    assert "is a file" in window["export_bad_unity"]["state_error"]


def test_a_successful_ue5_export_clears_the_last_error(window):
    assert window["export_bad_unity"]["after"]["error"]
    assert window["export_ue5"]["after"]["error"] == ""


def test_postprocess_uses_the_panels_options_field(window):
    record = window["postprocess"]
    assert record["result"] == ["FINISHED"], record
    assert record["texture_sizes"] == [256]


def test_panels_draw_in_every_state(window):
    offline = window["offline"]
    assert offline["poll_forge"] is False
    assert any("Online access is off" in t for t in _texts(offline["drawn"]["OPEN3DFORGE_PT_main"]))
    assert "Not connected yet" in _texts(window["no_server"]["drawn"]["OPEN3DFORGE_PT_connection"])
    connected = _texts(window["connected"]["drawn"]["OPEN3DFORGE_PT_connection"])
    assert any(t.startswith("Server ") for t in connected) and "silhouette" in connected
    running = window["running_drawn"]["OPEN3DFORGE_PT_main"]
    assert window["running_state"]["running"] and "open3dforge.cancel" in _operators(running)
    assert any(entry[0] == "progress" for entry in running)
    assert "open3dforge.cancel" not in _operators(window["finished"]["drawn"]["OPEN3DFORGE_PT_main"])
    assert any("quota exceeded" in t for t in _texts(window["quota_drawn"]["OPEN3DFORGE_PT_connection"]))
    for state in ("offline", "no_server", "connected", "finished"):
        assert window[state]["drawn"]["preferences"], state


def test_long_history_draws_fifteen_rows_and_skips_unnamed_ones(window):
    history = window["history_drawn"]
    assert len(_operators(history)) == 15
    assert "... and 27 older" in _texts(history)


def test_opening_another_file_ends_the_job_before_cancel_is_called(window):
    after = window["after_load"]
    assert after["live_timers"] == 0 and after["state"]["running"] is False and after["state"]["job"] is False
    assert "another file was opened" in after["state"]["status"]
    assert window["file_load"]["server"] == "cancelled"


def test_disabling_the_addon_mid_job_leaves_no_ghost(window):
    after = window["after_disable"]
    assert after["live_timers"] == 0 and after["job"] is False and after["state"]["running"] is False
    assert "_on_load_pre" not in after["load_handlers"]
    assert window["disable"]["server"] == "cancelled"
    again = window["reenabled"]
    assert again["poll_forge"] is True
    assert "open3dforge.cancel" not in _operators(again["main"]) and not any(e[0] == "progress" for e in again["main"])


def test_quitting_blender_mid_job_cancels_it_on_the_server(server, tmp_path):
    from addon.client import ForgeClient

    proc, found = _run(tmp_path, server, mode="quit")
    assert proc.returncode == 0, proc.stderr[-3000:]
    asset_id = found["quit_asset_id"]
    client = ForgeClient(server, owner_key=found["owner_key"])
    import time

    end = time.monotonic() + 90
    while client.asset(asset_id)["status"] == "running" and time.monotonic() < end:
        time.sleep(0.5)
    assert client.asset(asset_id)["status"] == "cancelled"

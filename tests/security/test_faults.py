"""kill -9 of the server during each stage (generate, postprocess, bake, export), then a restart: every finished
asset is byte for byte intact, the cut-off one says which stage was interrupted, and running that stage again works.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from server.local import server_process  # noqa: E402

TINY = {"generate": {"resolution": 64, "target_faces": 5000},
        "postprocess": {"target_triangles": 800, "texture_size": 256, "max_hulls": 2},
        "bake": {"ao_samples": 4, "texture_size": 256}}
# Options slow enough that the stage is still running when the server is killed.
SLOW = {"generate": {"resolution": 320, "target_faces": 300000},
        "postprocess": {"target_triangles": 60000, "texture_size": 4096, "max_hulls": 16},
        "bake": {"ao_samples": 256, "texture_size": 4096}}


def _picture(folder: Path) -> str:
    image = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(image).rounded_rectangle([40, 24, 120, 144], radius=10, fill=(150, 100, 50, 255))
    path = folder / "front.png"
    image.save(path)
    return str(path)


def _fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _wait_running(record_path: Path, stage: str, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            stages = json.loads(record_path.read_text()).get("stages", [])
        except (FileNotFoundError, json.JSONDecodeError):
            stages = []
        if stages and stages[-1]["stage"] == stage and stages[-1]["status"] == "running":
            return
        time.sleep(0.02)
    raise AssertionError(f"{stage} never started running")


def _client(url: str, folder: Path):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=str(folder))


def _generate(client, picture: str, name: str, options: dict, asset_id: str | None = None, submit=False):
    from gradio_client import handle_file

    options = dict(options, **({"asset_id": asset_id} if asset_id else {}))
    call = client.submit if submit else client.predict
    result = call([handle_file(picture)], name, "silhouette", "front", "", 0, json.dumps(options),
                  api_name="/generate")
    return result if submit else json.loads(result[0])["asset_id"]


@pytest.mark.slow
def test_kill_9_in_every_stage_loses_nothing_finished(tmp_path):
    workspace = tmp_path / "workspace"
    downloads = tmp_path / "downloads"
    picture = _picture(tmp_path)
    victims = {stage: f"20261206T0000{i:02d}-dead000{i}" for i, stage in
               enumerate(("generate", "postprocess", "bake", "export"))}

    with server_process(workspace) as (url, process):
        client = _client(url, downloads)
        kept_record, _ = client.predict([{"path": picture, "meta": {"_type": "gradio.FileData"}}], "Kept", "front",
                                        "", json.dumps(TINY), api_name="/forge")
        kept = json.loads(kept_record)["asset_id"]
        # Each victim is made up to the stage before the one the kill will cut.
        for stage in ("postprocess", "bake", "export"):
            asset_id = _generate(client, picture, stage.title(), TINY["generate"], victims[stage])
            if stage in ("bake", "export"):
                client.predict(asset_id, json.dumps(TINY["postprocess"]), api_name="/postprocess")
            if stage == "export":
                client.predict(asset_id, json.dumps(TINY["bake"]), api_name="/bake")
        finished = {asset_id: _fingerprint(workspace / asset_id) for asset_id in [kept, *list(victims.values())[1:]]}
        _generate(client, picture, "Generate", SLOW["generate"], victims["generate"], submit=True)
        _wait_running(workspace / victims["generate"] / "asset.json", "generate")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    cut_off = "generate"
    for next_stage in ("postprocess", "bake", "export", None):
        with server_process(workspace) as (url, process):
            client = _client(url, downloads)
            assert json.loads(client.predict(api_name="/health"))["status"] == "ok"
            victim = victims[cut_off]
            record = json.loads(client.predict(victim, api_name="/asset"))
            assert record["status"] == "interrupted", (cut_off, record["status"])
            assert record["stages"][-1]["stage"] == cut_off and record["stages"][-1]["status"] == "interrupted"
            assert not list((workspace / victim).rglob(".*.tmp")), "a killed write's temporary file was left"
            for asset_id, files in finished.items():
                if asset_id != victim:
                    assert _fingerprint(workspace / asset_id) == files, f"{asset_id} changed after killing {cut_off}"
            # The cut-off stage runs again (generate: a new asset; the interrupted one stays listed as such).
            if cut_off == "generate":
                again = _generate(client, picture, "Again", TINY["generate"])
                assert json.loads(client.predict(again, api_name="/asset"))["status"] == "ready"
            elif cut_off == "export":
                again, _ = client.predict(victim, "ue5", "{}", api_name="/export")
                assert json.loads(again)["stages"][-1]["status"] == "ok"
            else:
                again = json.loads(client.predict(victim, json.dumps(TINY[cut_off]), api_name=f"/{cut_off}"))
                assert again["status"] == "ready" and again["stages"][-1]["status"] == "ok"
            if next_stage is None:
                break
            victim = victims[next_stage]
            finished.pop(victim)
            if next_stage == "export":
                client.submit(victim, "ue5", json.dumps({"include_high_poly": True}), api_name="/export")
            else:
                client.submit(victim, json.dumps(SLOW[next_stage]), api_name=f"/{next_stage}")
            _wait_running(workspace / victim / "asset.json", next_stage)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            cut_off = next_stage

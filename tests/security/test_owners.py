"""Owners: a client sees, changes, cancels and downloads only its own owner's assets, through the API and every
HTTP route; how a request's owner is found (signed-in user, owner key, a Space visitor's session, local)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from addon import client as addon_client  # noqa: E402
from addon import jobs  # noqa: E402
from server import owners  # noqa: E402
from server.errors import InputError  # noqa: E402
from server.local import running_server  # noqa: E402

KEY_A = "owner-key-a-0123456789abcdef"
KEY_B = "owner-key-b-0123456789abcdef"
TINY = {"generate": {"resolution": 96, "target_faces": 20000},
        "postprocess": {"target_triangles": 1200, "texture_size": 256, "max_hulls": 2},
        "bake": {"ao_samples": 4, "texture_size": 256}}
NOT_YOURS = "expected the id of an existing asset of yours (see assets())"


def _request(username=None, headers=None, session_hash=None, oauth=None):
    raw = SimpleNamespace(session={"oauth_info": {"userinfo": {"preferred_username": oauth}}} if oauth else {})
    return SimpleNamespace(username=username, headers=headers or {}, session_hash=session_hash, request=raw)


def test_the_owner_of_a_request():
    assert owners.owner_of(None) == owners.LOCAL
    assert owners.owner_of(_request(), space=False) == owners.LOCAL
    assert owners.owner_of(_request(username="ann"), space=False) == "user:ann"
    assert owners.owner_of(_request(oauth="bob", headers={"x-o3f-owner": KEY_A}), space=True) == "user:bob"
    by_key = owners.owner_of(_request(headers={"X-O3F-Owner": KEY_A}), space=True)
    assert by_key.startswith("key:") and KEY_A not in by_key
    assert by_key == owners.key_owner(KEY_A) != owners.key_owner(KEY_B)
    assert owners.owner_of(_request(session_hash="abc123"), space=True) == "session:abc123"
    assert owners.owner_of(_request(session_hash="abc123"), space=False) == owners.LOCAL
    for bad in ("short", "x" * 129, "has space in it 0123456789", "ünïcode-0123456789abc"):
        with pytest.raises(InputError, match="x-o3f-owner header='\\(hidden\\)': expected 16 to 128"):
            owners.key_owner(bad)


def test_the_addon_sends_the_header_the_server_reads():
    assert addon_client.OWNER_HEADER == owners.OWNER_HEADER


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("owners_workspace")
    with running_server(workspace) as url:
        yield url, workspace


def _image(folder: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle([24, 14, 72, 88], fill=(170, 110, 60, 255))
    path = folder / "front.png"
    image.save(path)
    return path


@pytest.fixture(scope="module")
def made_by_a(server, tmp_path_factory):
    url, _ = server
    folder = tmp_path_factory.mktemp("owner_a")
    client = addon_client.ForgeClient(url, owner_key=KEY_A, download_dir=folder / "downloads")
    result = client.forge([_image(folder)], name="Mine", views=["front"], options=TINY)
    return client, result


def test_another_owner_cannot_see_or_touch_the_asset(server, made_by_a, tmp_path):
    url, _ = server
    client_a, result = made_by_a
    asset_id = result.asset_id
    assert result.record["owner"] == owners.key_owner(KEY_A) and result.file.is_file()
    assert [row["asset_id"] for row in client_a.assets()] == [asset_id]

    client_b = addon_client.ForgeClient(url, owner_key=KEY_B, download_dir=tmp_path)
    local = addon_client.ForgeClient(url, download_dir=tmp_path)
    for other in (client_b, local):
        assert other.assets() == []
        unknown = "20990101T000000-0badf00d"
        for call in (lambda: other.asset(asset_id), lambda: other.cancel(asset_id),
                     lambda: other.postprocess(asset_id, TINY["postprocess"]), lambda: other.bake(asset_id),
                     lambda: other.export(asset_id, "godot")):
            with pytest.raises(addon_client.ServerError) as refused:
                call()
            assert f"asset_id='{asset_id}': {NOT_YOURS}" in str(refused.value)
        # Refused exactly as an id that does not exist: the answer does not tell that the asset is there.
        with pytest.raises(addon_client.ServerError) as missing:
            other.asset(unknown)
        assert str(missing.value).replace(unknown, asset_id) == str(refused.value)
    # Nothing was changed by the refused calls, and the owner still has it all.
    record = client_a.asset(asset_id)
    assert record["status"] == "ready" and [s["stage"] for s in record["stages"]].count("export") == 1


def test_no_route_serves_the_workspace(server, made_by_a):
    url, workspace = server
    _, result = made_by_a
    folder = workspace / result.asset_id
    for name in ("asset.json", "high_poly.glb", "inputs/0_front.png"):
        assert (folder / name).is_file()
        for route in ("gradio_api/file=", "file="):
            answer = httpx.get(f"{url}{route}{folder / name}")
            assert answer.status_code in (403, 404), (route, name, answer.status_code)
    zips = list(folder.glob("**/*.zip"))
    assert zips and httpx.get(f"{url}gradio_api/file={zips[0]}").status_code == 403


def test_the_addon_worker_sends_its_owner_key(server, made_by_a, tmp_path):
    url, _ = server
    _, result = made_by_a
    for key, expected in ((KEY_A, [result.asset_id]), (KEY_B, [])):
        job = jobs.Job(jobs.health_plan(), jobs.Connection(server=url, owner_key=key, download_dir=str(tmp_path)))
        final = jobs.pump(job, timeout=60)
        assert final.kind == jobs.DONE, final.message
        assert [row["asset_id"] for row in final.result["assets"]] == expected
    assert KEY_A not in repr(jobs.Connection(server=url, owner_key=KEY_A))


def test_a_bad_owner_key_is_refused_by_name(server, tmp_path):
    url, _ = server
    client = addon_client.ForgeClient(url, owner_key="too-short", download_dir=tmp_path)
    with pytest.raises(addon_client.ServerError, match="x-o3f-owner header='\\(hidden\\)': expected 16 to 128"):
        client.assets()
    assert json.loads(httpx.get(f"{url}gradio_api/info").text)  # and the server still serves

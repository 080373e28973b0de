"""A self-hosted server with O3F_TOKEN: every route (API, UI, file downloads, websockets) needs the token, the
add-on's worker sends it, and listening beyond loopback without one is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from addon import jobs  # noqa: E402
from server.auth import AuthSetupError, check_exposure, load_token  # noqa: E402
from server.local import running_server  # noqa: E402

TOKEN = "test-token-0123456789abcdef"
TINY = {"generate": {"resolution": 96, "target_faces": 20000},
        "postprocess": {"target_triangles": 1200, "texture_size": 256, "max_hulls": 2},
        "bake": {"ao_samples": 4, "texture_size": 256}}


def test_token_settings_are_checked(tmp_path):
    assert load_token({}) is None
    with pytest.raises(AuthSetupError, match="at least 16 characters"):
        load_token({"O3F_TOKEN": "short"})
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert load_token({"O3F_TOKEN_FILE": str(path)}) == TOKEN
    with pytest.raises(AuthSetupError, match="O3F_TOKEN_FILE=.*cannot read it"):
        load_token({"O3F_TOKEN_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_listening_beyond_loopback_needs_a_token_or_a_trusted_network(host):
    with pytest.raises(AuthSetupError, match=f"--host {host}: .*O3F_TOKEN"):
        check_exposure(host, None, trusted_network=False)
    check_exposure(host, TOKEN, trusted_network=False)
    check_exposure(host, None, trusted_network=True)
    for loopback in ("127.0.0.1", "localhost", "::1"):
        check_exposure(loopback, None, trusted_network=False)


def test_the_documented_command_refuses_to_expose_itself_without_a_token(tmp_path):
    env = {"O3F_WORKSPACE": str(tmp_path), "PATH": "/usr/bin:/bin", "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run([sys.executable, "-m", "server", "--host", "0.0.0.0", "--port", "1"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "--host 0.0.0.0: the server would be reachable by others without a token" in done.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("auth_workspace")
    with running_server(workspace, {"O3F_TOKEN": TOKEN}) as url:
        yield url, workspace


def _image(folder: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse([20, 10, 76, 90], fill=(90, 140, 200, 255))
    path = folder / "front.png"
    image.save(path)
    return path


def test_every_route_needs_the_token(server, tmp_path):
    url, workspace = server
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    assert httpx.get(url, headers=bearer).status_code == 200
    assert httpx.get(f"{url}gradio_api/info").status_code == 401
    assert httpx.get(f"{url}config").status_code == 401

    from gradio_client import Client

    with pytest.raises(Exception, match="credentials"):
        Client(url, verbose=False)
    client = Client(url, token=TOKEN, verbose=False, download_files=False)
    record, package = client.predict([{"path": str(_image(tmp_path)), "meta": {"_type": "gradio.FileData"}}],
                                     "Guarded", "front", "", json.dumps(TINY), api_name="/forge")
    asset_id = json.loads(record)["asset_id"]
    # The zip comes back as Gradio's cached copy; the workspace itself is served to nobody.
    assert httpx.get(package["url"]).status_code == 401, "files are served only with the token"
    download = httpx.get(package["url"], headers=bearer)
    assert download.status_code == 200 and download.content[:2] == b"PK"
    zip_path = next(workspace.glob(f"{asset_id}/**/*.zip"))
    assert httpx.get(f"{url}gradio_api/file={zip_path}", headers=bearer).status_code == 403
    # A browser comes once with ?o3f_token=, then its cookie carries it.
    browser = httpx.Client()
    first = browser.get(f"{url}?o3f_token={TOKEN}")
    assert first.status_code == 200 and "o3f_token" in first.headers.get("set-cookie", "")
    assert "HttpOnly" in first.headers["set-cookie"]
    assert browser.get(f"{url}gradio_api/info").status_code == 200
    log = "".join(p.read_text() for p in workspace.glob("server-*.log"))
    assert TOKEN not in log


def test_the_addon_worker_sends_its_token(server, tmp_path):
    url, _ = server
    good = jobs.Job(jobs.health_plan(), jobs.Connection(server=url, token=TOKEN, download_dir=str(tmp_path)))
    final = jobs.pump(good, timeout=60)
    assert final.kind == jobs.DONE and final.result["health"]["status"] == "ok"
    bad = jobs.Job(jobs.health_plan(), jobs.Connection(server=url, download_dir=str(tmp_path)))
    final = jobs.pump(bad, timeout=60)
    assert final.kind == jobs.ERROR and "credentials" in final.message


def test_an_upload_over_the_limit_is_refused_before_any_work(tmp_path):
    from gradio_client import Client

    workspace = tmp_path / "workspace"
    big = tmp_path / "big.glb"
    big.write_bytes(b"glTF" + b"\0" * 300_000)
    with running_server(workspace, {"O3F_MAX_UPLOAD_BYTES": "100000"}) as url:
        client = Client(url, verbose=False)
        with pytest.raises(Exception, match="(?i)file size|too large|exceed"):
            client.predict({"path": str(big), "meta": {"_type": "gradio.FileData"}}, "Big", "{}",
                           api_name="/import_mesh")
        assert json.loads(client.predict(api_name="/assets")) == [], "nothing was made from the refused upload"
        assert json.loads(client.predict(api_name="/health"))["status"] == "ok"

"""The API as a new user calls it: every argument but the inputs has a default visible in view_api, and the
README's Python example runs as written (its server address and pictures swapped for the test's)."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from server.local import running_server

ROOT = Path(__file__).resolve().parent.parent
INPUTS = {"images", "image", "mesh", "prompt"}  # the inputs themselves: no default


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("defaults") / "workspace") as url:
        yield url


def _picture(path: Path, box) -> Path:
    image = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle(box, fill=(170, 100, 50, 255))
    image.save(path)
    return path


def test_every_argument_but_the_inputs_has_a_default(server):
    from gradio_client import Client

    endpoints = Client(server, verbose=False).view_api(return_format="dict", print_info=False)["named_endpoints"]
    missing = [(name, p["parameter_name"]) for name, endpoint in endpoints.items() for p in endpoint["parameters"]
               if p["parameter_name"] not in INPUTS and not p.get("parameter_has_default")]
    assert missing == []
    assert {"/generate", "/generate_text", "/import_mesh", "/scene", "/postprocess", "/rig", "/bake", "/export",
            "/forge", "/assets", "/asset", "/cancel", "/presets", "/quota", "/health"} <= set(endpoints)


def test_the_readme_example_runs_as_written(server, tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The API"):]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    monkeypatch.chdir(tmp_path)
    _picture(tmp_path / "front.png", [32, 20, 96, 110])
    _picture(tmp_path / "left.png", [44, 20, 84, 110])
    code = code.replace('"http://127.0.0.1:7860/"', repr(server))
    scope: dict = {"json": json}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102  (the project's own README)
    with zipfile.ZipFile(scope["godot_zip"]) as archive:
        assert "Crate_01.glb" in archive.namelist()
    with zipfile.ZipFile(scope["package"]) as archive:
        assert "SM_front.fbx" in archive.namelist() or "SM_front.glb" in archive.namelist()
    record = json.loads(scope["record"])
    bake = [s for s in record["stages"] if s["stage"] == "bake"][-1]
    assert bake["parameters"]["size"] == 512  # the bake followed the texture size post-processing laid out for

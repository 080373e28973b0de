"""The Hugging Face Space bundle: tools/make_space.py's layout and checks, space/app.py without bpy, and
the vendor manifests."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.space_bundle import make_space_bundle

ROOT = Path(__file__).resolve().parent.parent
SDK_VERSION = "6.31.0"
HEX40 = re.compile(r"^[0-9a-f]{40}$")


def _front_matter(readme: Path) -> dict:
    match = re.match(r"\A---\s*\n(.*?)\n---\s*\n", readme.read_text(encoding="utf-8"), re.DOTALL)
    assert match, f"{readme} has no front matter"
    return yaml.safe_load(match.group(1))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    # No model sources and no wheels here: tests/test_space_stack.py covers both.
    return make_space_bundle(tmp_path_factory.mktemp("space") / "space")


def test_bundle_layout(bundle):
    top = {path.name for path in bundle.iterdir()}
    assert top == {"server", "vendor", "app.py", "install_wheels.py", "README.md", "requirements.txt"}
    assert (bundle / "server" / "__init__.py").is_file()
    assert (bundle / "server" / "app.py").is_file()
    assert list((bundle / "server" / "presets").glob("*.json")), "preset JSON files travel with the package"
    assert not [p for p in bundle.rglob("__pycache__")]
    assert not [p for p in bundle.rglob("*.pyc")]
    assert not [p for p in bundle.rglob("tests")]
    assert {p.name for p in (bundle / "vendor").glob("*.toml")} >= {"trellis2.toml", "trellis.toml",
                                                                     "hunyuan3d2.toml", "unirig.toml"}
    assert (bundle / "app.py").read_bytes() == (ROOT / "space" / "app.py").read_bytes()
    assert all(p.stat().st_size <= 10 * 1024 * 1024 for p in bundle.rglob("*") if p.is_file())


def test_front_matter(bundle):
    meta = _front_matter(bundle / "README.md")
    assert meta["sdk"] == "gradio"
    assert str(meta["sdk_version"]) == SDK_VERSION
    assert str(meta["python_version"]) == "3.12"
    assert meta["app_file"] == "app.py" and (bundle / meta["app_file"]).is_file()
    assert meta["suggested_hardware"] == "zero-a10g"  # the Hub's flavour name for ZeroGPU
    assert meta["title"] and meta["emoji"] and meta["colorFrom"] and meta["colorTo"] and meta["license"]
    assert len(meta["short_description"]) <= 60
    assert "HF_TOKEN" in (bundle / "README.md").read_text(encoding="utf-8")


def test_requirements(bundle):
    text = (bundle / "requirements.txt").read_text(encoding="utf-8")
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    names = {re.split(r"[\s<>=!~;\[@]", line, maxsplit=1)[0].lower() for line in lines if line}
    # oauth: the Space's Hugging Face sign-in (hf_oauth); mcp: the endpoints as MCP tools
    assert f"gradio[oauth,mcp]=={SDK_VERSION}" in lines
    assert "bpy" not in names
    assert {"spaces", "torch", "trimesh", "pymeshlab", "numpy"} <= names
    torch_pin = next(line for line in lines if line.startswith("torch=="))
    major, minor = (int(part) for part in torch_pin.split("==")[1].split(".")[:2])
    assert (major, minor) >= (2, 8) and (major, minor) <= (2, 11), torch_pin
    assert "--extra-index-url https://download.pytorch.org/whl/cu130" in lines


def test_make_space_refuses_bpy_and_secrets(bundle, tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_space
    finally:
        sys.path.remove(str(ROOT / "tools"))
    assert make_space.check(bundle) == []
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    (copy / "requirements.txt").write_text((copy / "requirements.txt").read_text() + "bpy==5.0.1\n")
    (copy / ".env").write_text("HF_TOKEN=x\n")
    problems = make_space.check(copy)
    assert any("bpy" in problem for problem in problems)
    assert any(".env" in problem for problem in problems)


APP_PROBE = r"""
import json, sys
sys.modules["bpy"] = None  # importing bpy now raises ImportError, as on the Space
import runpy
module = runpy.run_path(sys.argv[1], run_name="space_app")
import gradio as gr
demo = module["demo"]
names = [dep.get("api_name") for dep in demo.config["dependencies"]]
print(json.dumps({"blocks": isinstance(demo, gr.Blocks), "names": names,
                  "queue_size": demo._queue.max_size, "running": bool(getattr(demo, "is_running", False)),
                  "server_name": getattr(demo, "server_name", None),
                  "bpy_loaded": sys.modules.get("bpy") is not None}))
"""


def test_space_app_builds_without_bpy(bundle, tmp_path):
    workspace = tmp_path / "workspace"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("O3F_", "SPACES_", "GRADIO_"))}
    env.update(O3F_WORKSPACE=str(workspace), PYTHONDONTWRITEBYTECODE="1")
    apps = (bundle / "app.py", ROOT / "space" / "app.py")  # the pushed layout and the repository layout
    probes = [subprocess.Popen([sys.executable, "-c", APP_PROBE, str(app)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path) for app in apps]
    for probe in probes:  # both run at once to keep the test short
        stdout, stderr = probe.communicate(timeout=120)
        assert probe.returncode == 0, stderr[-3000:]
        report = json.loads(stdout.strip().splitlines()[-1])
        assert report["blocks"]
        assert {"generate", "forge", "health"} <= set(report["names"])
        assert report["queue_size"] == 16
        assert not report["running"] and report["server_name"] is None, "importing app.py must not launch"
        assert not report["bpy_loaded"]
    assert workspace.is_dir(), "the app used the workspace it was given"


def _manifests() -> list[Path]:
    """The model manifests (vendor/wheels.toml is the stack's wheel list, checked by its own tests)."""
    return sorted(p for p in (ROOT / "vendor").glob("*.toml") if p.name != "wheels.toml")


def test_vendor_manifests_exist():
    assert {p.stem for p in _manifests()} >= {"trellis2", "trellis", "hunyuan3d2", "unirig"}
    assert (ROOT / "vendor" / "README.md").is_file()


@pytest.mark.parametrize("path", _manifests(), ids=lambda p: p.stem)
def test_vendor_manifest(path):
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["schema"] == 1 and data["name"] == path.stem
    assert isinstance(data["generators"], list) and data["module"]
    upstream = data["upstream"]
    assert upstream["url"].startswith("https://")
    assert upstream["pin"] == "pin-at-deploy-time" or HEX40.match(upstream["pin"]) or "==" in upstream["pin"]
    if upstream["pin"] == "pin-at-deploy-time":
        assert upstream["pin_rule"]
    assert data["weights"], "at least one weight repository"
    for weights in data["weights"]:
        assert re.match(r"^[\w.-]+/[\w.-]+$", weights["repo"]), weights["repo"]
        assert weights["revision"] == "pin-at-deploy-time" or HEX40.match(weights["revision"])
        assert isinstance(weights["gated"], bool) and weights["role"]
    assert data["license"]["summary"] and isinstance(data["license"]["restricted_regions"], list)
    assert data["install"]["method"] in {"pypi", "wheels", "unavailable"}
    assert isinstance(data["install"]["space"], list)
    assert isinstance(data["verification"]["verified"], list) and data["verification"]["not_verified"]


def test_manifest_facts():
    load = lambda name: tomllib.loads((ROOT / "vendor" / f"{name}.toml").read_text(encoding="utf-8"))
    from server.generators.registry import GENERATORS

    for name in ("trellis2", "trellis", "hunyuan3d2"):
        manifest = load(name)
        for generator in manifest["generators"]:
            assert GENERATORS[generator].module == manifest["module"]
    dso = load("trellis")["dso"]
    assert (dso["r"], dso["lora_alpha"]) == (64, 128)
    assert dso["target_modules"] == ["to_q", "to_kv", "to_out", "to_qkv"]
    assert {"JeffreyXiang/TRELLIS-image-large", "rayli/DSO-finetuned-TRELLIS"} <= {
        w["repo"] for w in load("trellis")["weights"]}
    hunyuan = load("hunyuan3d2")
    assert set(hunyuan["license"]["restricted_regions"]) == {"EU", "GB", "KR"}
    assert {"tencent/Hunyuan3D-2", "tencent/Hunyuan3D-2mv"} <= {w["repo"] for w in hunyuan["weights"]}
    trellis2 = load("trellis2")
    assert trellis2["weights"][0]["repo"] == "microsoft/TRELLIS.2-4B"
    assert trellis2["license"]["requires_hf_token"] and "HF_TOKEN" in trellis2["gated"][0]["needs"]
    assert load("unirig")["weights"][0]["repo"] == "VAST-AI/UniRig"

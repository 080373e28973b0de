"""The Space bundle serves its API on Python 3.12 without torch.

tools/make_space.py builds the bundle (no model sources, no wheels); a Python 3.12 virtual environment gets
space/requirements.txt less the model stack (torch and what needs it); the bundle's app.py runs there as the
Space runs it (`python app.py`, Gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choosing the address); and
gradio_client, from this interpreter, checks /health and forges a picture through /forge into a UE5 zip.

The environment is kept in .venv312/ at the repository root (it holds a .gitignore of '*', so git never
sees it), keyed by a hash of the filtered requirements and the interpreter's version: the first run installs
(about half a minute from a warm pip cache), later runs reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from server.local import free_port
from tests.space_bundle import make_space_bundle

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv312"
STAMP = VENV / ".o3f-requirements.sha256"
PIP_TIMEOUT_S = 900
START_TIMEOUT_S = 120
FORGE_TIMEOUT_S = 300

# The model stack: torch, what is built for it or imports it, and the CUDA-only packages.
MODEL_STACK = {"torch", "torchvision", "hy3dgen", "diffusers", "transformers", "accelerate", "peft", "xformers",
               "spconv-cu126", "cupy-cuda13x", "open3d", "kornia", "timm", "utils3d"}
# Modules that must not import in the environment (the premise of the test).
ABSENT_MODULES = ("torch", "torchvision", "hy3dgen", "diffusers", "transformers", "cupy", "xformers", "spconv")
# What pip prints when it cannot reach an index (then the test is skipped, not failed).
OFFLINE_MARKERS = ("NewConnectionError", "Failed to establish a new connection", "Max retries exceeded",
                   "Temporary failure in name resolution", "Name or service not known", "Network is unreachable",
                   "ProxyError", "ConnectTimeoutError", "ReadTimeoutError")

TINY = {"generate": {"resolution": 96, "target_faces": 20000},
        "postprocess": {"target_triangles": 1500, "texture_size": 256, "max_hulls": 4},
        "bake": {"ao_samples": 4, "texture_size": 256}}

# The reasons health gives for the models (server/generators/*.py availability()), as they read in a bundle
# without model sources, on an environment without torch or hy3dgen.
TRELLIS2_REASON = "library TRELLIS.2 is not installed (trellis2.pipelines not found; see vendor/trellis2.toml)"
TRELLIS_REASON = ("library TRELLIS is not installed (trellis.pipelines not found; see vendor/trellis.toml; "
                  "PyPI's 'trellis' is another project)")
HUNYUAN_REASON = "hy3dgen is not installed (pip install hy3dgen==2.0.2)"
CUDA_BAKE_REASON = "PyTorch is not installed"


def _requirement_name(line: str) -> str:
    return re.split(r"[\s<>=!~;\[@]", line, maxsplit=1)[0].lower().replace("_", "-")


def filtered_requirements(requirements: Path) -> list[str]:
    """The bundle's requirements without the model stack and without pip options (--extra-index-url)."""
    kept = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-") and _requirement_name(line) not in MODEL_STACK:
            kept.append(line)
    return kept


def _runs_312(candidate: str) -> str | None:
    """The interpreter's full version when `candidate` is a working Python 3.12 with venv, else None."""
    try:
        result = subprocess.run([candidate, "-c", "import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 12);"
                                 " print('%d.%d.%d' % sys.version_info[:3])"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_python312() -> tuple[str, str] | None:
    """(path, version) of a Python 3.12: on PATH, else pyenv's (its shim only works when 3.12 is selected)."""
    candidates = [shutil.which("python3.12")]
    roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))]
    if shutil.which("pyenv"):
        try:
            roots.insert(0, Path(subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                                                timeout=30).stdout.strip()))
        except (OSError, subprocess.TimeoutExpired):
            pass
    for root in roots:
        candidates += [str(path) for path in sorted((root / "versions").glob("3.12*/bin/python3.12"), reverse=True)]
    for candidate in candidates:
        if candidate:
            version = _runs_312(candidate)
            if version:
                return candidate, version
    return None


def _offline(pip_output: str) -> str | None:
    """pip's first line saying that it could not connect, if any."""
    return next((line.strip() for line in pip_output.splitlines()
                 if any(marker in line for marker in OFFLINE_MARKERS)), None)


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv(requirements: list[str]) -> Path:
    """The 3.12 environment with `requirements`, made or remade when their hash (or the interpreter) changed."""
    found = find_python312()
    if found is None:
        pytest.skip("no Python 3.12 interpreter found (python3.12 on PATH or pyenv's versions/3.12*)")
    python, version = found
    text = "\n".join(requirements) + "\n"
    key = hashlib.sha256(f"python {version}\n{text}".encode()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == key and _runs_312(str(_venv_python())) == version:
        return _venv_python()
    shutil.rmtree(VENV, ignore_errors=True)
    made = subprocess.run([python, "-m", "venv", str(VENV)], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, f"python3.12 -m venv failed: {made.stderr[-3000:]}"
    (VENV / ".gitignore").write_text("# made by tests/test_space_py312.py\n*\n")
    (VENV / "requirements.txt").write_text(text)
    try:
        pip = subprocess.run([str(_venv_python()), "-m", "pip", "install", "-r", str(VENV / "requirements.txt")],
                             capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        output = "".join(part.decode(errors="replace") if isinstance(part, bytes) else part or ""
                         for part in (exc.stdout, exc.stderr))  # bytes on timeout, whatever text= says
        if _offline(output):
            pytest.skip(f"pip cannot reach a package index (ran past {PIP_TIMEOUT_S} s): {_offline(output)}")
        raise AssertionError(f"pip install ran past {PIP_TIMEOUT_S} s: {output[-3000:]}") from exc
    output = pip.stdout + pip.stderr
    if pip.returncode != 0:
        if _offline(output):
            pytest.skip(f"pip cannot reach a package index: {_offline(output)}")
        raise AssertionError(f"pip install of the Space's API stack failed on Python 3.12:\n{output[-4000:]}")
    STAMP.write_text(key + "\n")
    return _venv_python()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_space_bundle(tmp_path_factory.mktemp("space312") / "space")


@pytest.fixture(scope="module")
def python312(bundle) -> Path:
    requirements = filtered_requirements(bundle / "requirements.txt")
    names = {_requirement_name(line) for line in requirements}
    assert {"gradio", "spaces", "numpy", "trimesh", "pymeshlab", "embreex", "xatlas", "coacd"} <= names
    assert not names & MODEL_STACK
    python = ensure_venv(requirements)
    probe = subprocess.run([str(python), "-c", "import importlib.util, json, sys; print(json.dumps("
                            "[name for name in sys.argv[1:] if importlib.util.find_spec(name)]))", *ABSENT_MODULES],
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == [], "the API stack pulled in part of the model stack"
    return python


def _sample_image(folder: Path) -> Path:
    """A crate-like RGBA shape (a rounded box with a lid) on a transparent background."""
    image = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle([40, 40, 120, 140], radius=12, fill=(170, 110, 60, 255))
    draw.rectangle([34, 28, 126, 44], fill=(120, 80, 40, 255))
    path = folder / "crate.png"
    image.save(path)
    return path


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.mark.slow
def test_space_bundle_serves_the_api_on_python_312_without_torch(bundle, python312, tmp_path):
    from gradio_client import Client, handle_file

    workspace = tmp_path / "workspace"
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("O3F_", "SPACES_", "GRADIO_", "PYTHON", "HF_TOKEN")) and key != "VIRTUAL_ENV"}
    # As on the Space: Gradio takes the address from these; app.py's own __main__ block launches.
    env.update(O3F_WORKSPACE=str(workspace), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    log_path = tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(python312), "app.py"], cwd=bundle, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"the app exited with {process.returncode}: {log_path.read_text()[-3000:]}")
                try:
                    if httpx.get(url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"the app did not answer in {START_TIMEOUT_S} s: "
                                         f"{log_path.read_text()[-3000:]}")
                time.sleep(0.5)

            client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
            health = json.loads(client.predict(api_name="/health"))
            assert health["status"] == "ok"
            assert health["python"].startswith("3.12"), health["python"]
            assert health["device"] == "cpu"
            generators = {row["name"]: row for row in health["generators"]}
            assert set(generators) == {"silhouette", "trellis2", "trellis", "hunyuan3d-2"}
            assert generators["silhouette"]["available"] is True
            assert [(name, generators[name]["available"], generators[name]["reason"])
                    for name in ("trellis2", "trellis", "hunyuan3d-2")] == [
                ("trellis2", False, TRELLIS2_REASON), ("trellis", False, TRELLIS_REASON),
                ("hunyuan3d-2", False, HUNYUAN_REASON)]
            engines = {row["name"]: row for row in health["bake_engines"]}
            assert engines["cpu"]["available"] is True
            assert (engines["cuda"]["available"], engines["cuda"]["reason"]) == (False, CUDA_BAKE_REASON)
            assert engines["auto"]["reason"] == "uses cpu here"

            job = client.submit([handle_file(str(_sample_image(tmp_path)))], "Crate", "front", "",
                                json.dumps(TINY), api_name="/forge")
            record_json, package = job.result(timeout=FORGE_TIMEOUT_S)
        finally:
            _stop(process)

    record = json.loads(record_json)
    assert record["name"] == "Crate" and record["status"] == "ready" and record["generator"] == "silhouette"
    assert [stage["stage"] for stage in record["stages"]][:2] == ["background", "generate"]
    assert {"postprocess", "bake", "export"} <= {stage["stage"] for stage in record["stages"]}
    assert all(stage["status"] == "ok" for stage in record["stages"]), record["stages"]

    package = Path(package)
    assert package.is_file() and package.suffix == ".zip", package
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        assert {"SM_Crate.glb", "SM_Crate_LOD1.glb", "SM_Crate_LOD2.glb", "T_Crate_BC.png", "T_Crate_N.png",
                "T_Crate_ORM.png", "manifest.json"} <= names, sorted(names)
        assert not [name for name in names if name.endswith(".fbx")], "no bpy on 3.12: the meshes are GLB"
        manifest = json.loads(archive.read("manifest.json"))
        for entry in manifest["files"]:
            assert hashlib.sha256(archive.read(entry["name"])).hexdigest() == entry["sha256"], entry["name"]
        for texture in ("T_Crate_BC.png", "T_Crate_N.png", "T_Crate_ORM.png"):
            with archive.open(texture) as handle:
                assert Image.open(handle).size == (256, 256), texture
    assert manifest["mesh_format"] == "glb" and manifest["engine"] == "UE5"
    assert [lod["file"] for lod in manifest["lods"]] == ["SM_Crate.glb", "SM_Crate_LOD1.glb", "SM_Crate_LOD2.glb"]
    triangles = [lod["triangles"] for lod in manifest["lods"]]
    assert triangles[0] <= TINY["postprocess"]["target_triangles"] and triangles[0] > triangles[1] > triangles[2] > 0
    assert 1 <= manifest["collision_hulls"] <= TINY["postprocess"]["max_hulls"]
    assert manifest["checks"]["ok"] is True
    log = log_path.read_text()
    assert "Traceback" not in log, log[-3000:]

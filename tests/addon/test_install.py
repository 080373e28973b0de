"""The built extension zip: its contents, Blender's own validator, and install -> use -> uninstall in real bpy.

bpy is never imported by pytest. The install test runs a script in a fresh `python -S` that sees only bpy
and the modules Blender itself bundles (requests, urllib3, certifi, idna, charset_normalizer, numpy,
zstandard), with Blender's user folders in a temporary directory, so the zip's wheels must carry everything
else gradio_client needs, as they must in a user's Blender.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = "bl_ext.user_default.open3dforge"
TOKEN = "hf_o3fTestTokenNeverLogged0123456789"
# What Blender's own Python ships besides bpy (its bundled site-packages); the extension must bring the rest.
BLENDER_BUNDLED = ("numpy", "numpy.libs", "requests", "urllib3", "certifi", "idna", "charset_normalizer",
                   "zstandard")


def _bpy_dir() -> Path | None:
    spec = importlib.util.find_spec("bpy")  # locates bpy without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _require_bpy() -> Path:
    bpy_dir = _bpy_dir()
    if bpy_dir is None:
        pytest.skip("bpy (Blender as a Python module, cp311 only) is not installed")
    return bpy_dir


def _blender_scripts(bpy_dir: Path) -> Path:
    found = sorted(bpy_dir.glob("*/scripts/addons_core/bl_pkg"))
    assert found, f"no scripts/addons_core/bl_pkg under {bpy_dir}"
    return found[-1].parents[1]


@pytest.fixture(scope="session")
def addon_zip() -> Path:
    """dist/open3dforge-<version>.zip, built once per session (wheels cached in build/wheels)."""
    result = subprocess.run([sys.executable, str(ROOT / "build_addon.py")], check=False, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"build_addon.py failed:\n{result.stderr}"
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == ROOT / "dist", result.stdout
    return path


def _manifest() -> dict:
    return tomllib.loads((ROOT / "addon" / "blender_manifest.toml").read_text(encoding="utf-8"))


# --- the zip, without Blender -------------------------------------------------------------------------


def test_zip_holds_the_addon_at_its_root_and_every_listed_wheel(addon_zip):
    manifest = _manifest()
    assert addon_zip.name == f"open3dforge-{manifest['version']}.zip"
    with zipfile.ZipFile(addon_zip) as archive:
        names = set(archive.namelist())
        zipped_manifest = tomllib.loads(archive.read("blender_manifest.toml").decode("utf-8"))
    assert zipped_manifest == manifest
    assert {"blender_manifest.toml", "__init__.py", "preferences.py", "client.py"} <= names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    wheels = {name for name in names if name.startswith("wheels/")}
    assert wheels == {path.removeprefix("./") for path in manifest["wheels"]}
    assert any(name.startswith("wheels/gradio_client-") for name in wheels)
    # Every platform the manifest claims gets a PyYAML wheel for Blender 4.2-5.0's Python 3.11.
    tags = {"windows-x64": "win_amd64", "macos-arm64": "macosx_11_0_arm64", "macos-x64": "macosx_10_13_x86_64",
            "linux-x64": "manylinux"}
    for platform in manifest["platforms"]:
        assert any(name.startswith("wheels/pyyaml-") and "-cp311-cp311-" in name and tags[platform] in name
                   for name in wheels), f"no cp311 PyYAML wheel for {platform}"


def test_second_build_is_offline_and_byte_identical(addon_zip):
    before = addon_zip.read_bytes()
    result = subprocess.run([sys.executable, str(ROOT / "build_addon.py"), "--offline"], check=False, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip().splitlines()[-1]) == addon_zip
    assert addon_zip.read_bytes() == before


def test_zip_check_names_what_is_wrong(addon_zip, tmp_path):
    sys.path.insert(0, str(ROOT))
    try:
        import build_addon
    finally:
        sys.path.remove(str(ROOT))
    version = _manifest()["version"]
    assert build_addon.check_zip(addon_zip, version) == []

    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(addon_zip) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            if not item.filename.startswith("wheels/gradio_client-"):
                target.writestr(item, source.read(item))
        target.writestr("__pycache__/client.cpython-311.pyc", b"")
        target.writestr("wheels/stray-1.0-py3-none-any.whl", b"")
    problems = "\n".join(build_addon.check_zip(broken, "9.9.9"))
    assert "gradio_client" in problems and "the zip lacks it" in problems
    assert "stray-1.0-py3-none-any.whl is in the zip but not in the manifest" in problems
    assert "__pycache__/client.cpython-311.pyc" in problems
    assert "'9.9.9'" in problems


def test_addon_package_imports_without_bpy():
    code = ("import sys; sys.modules['bpy'] = None\n"
            "import addon.client, addon\n"
            "assert callable(addon.register) and callable(addon.unregister)\n"
            "assert 'bpy' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_blenders_own_validator_accepts_the_zip(addon_zip):
    scripts = _blender_scripts(_require_bpy())
    validator = scripts / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    tags = scripts / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    # blender_ext.py is Blender's standalone extension CLI; it does not import bpy.
    result = subprocess.run([sys.executable, str(validator), "validate", "--valid-tags", str(tags), str(addon_zip)],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


# --- install, use and uninstall in a clean Blender ----------------------------------------------------

BLENDER_SCRIPT = r'''
import importlib, json, os, site, socket, sys, time

zip_path, report_path, work_dir, bundled, token = sys.argv[1:6]
# Blender puts the extensions' site-packages before its own; make bpy see `bundled` as "its own".
site.getsitepackages = lambda prefixes=None: [bundled]

report = {"network_attempts": {}}
def save():
    with open(report_path, "w") as stream:
        json.dump(report, stream, indent=1)

real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo
def guard(step):
    attempts = report["network_attempts"].setdefault(step, [])
    def connect(self, address):
        attempts.append(repr(address)); raise OSError("network use during " + step)
    def getaddrinfo(host, *args, **kwargs):
        attempts.append(repr(host)); raise OSError("network use during " + step)
    socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
def unguard():
    socket.socket.connect, socket.getaddrinfo = real_connect, real_getaddrinfo

import bpy, addon_utils

PKG = "bl_ext.user_default.open3dforge"
WATCHED = ("Scene", "Object", "Collection", "Material", "WindowManager", "Preferences")

def struct_classes(prefix=""):
    seen, found, stack = set(), [], [bpy.types.bpy_struct]
    while stack:
        for cls in stack.pop().__subclasses__():
            if cls not in seen:
                seen.add(cls); stack.append(cls)
                if cls.__module__.startswith(prefix):
                    found.append(cls)
    return found

def snapshot():
    return {
        "types": sorted(dir(bpy.types)),
        "registered": sorted(f"{c.__module__}.{c.__qualname__}" for c in struct_classes()
                             if getattr(c, "is_registered", False)),
        "ops": sorted(dir(bpy.ops.open3dforge)),
        "rna": {name: sorted(getattr(bpy.types, name).bl_rna.properties.keys()) for name in WATCHED},
        "addons": sorted(bpy.context.preferences.addons.keys()),
    }

report["blender"] = bpy.app.version_string
report["python"] = "%d.%d" % sys.version_info[:2]
report["online_access"] = bpy.app.online_access
repo = next(r for r in bpy.context.preferences.extensions.repos if r.module == "user_default")
report["repo_directory"] = repo.directory
before = snapshot()
save()

# Install from the zip; enabling registers the add-on. No network at any point of this.
guard("install")
started = time.perf_counter()
report["install_result"] = sorted(bpy.ops.extensions.package_install_files(
    filepath=zip_path, repo="user_default", enable_on_install=True))
report["install_seconds"] = round(time.perf_counter() - started, 2)
unguard()
report["installed_files"] = sorted(os.listdir(os.path.join(repo.directory, "open3dforge")))
report["enabled"] = PKG in bpy.context.preferences.addons
report["addon_check"] = list(addon_utils.check(PKG))
report["our_classes"] = sorted(f"{c.__qualname__}:{c.is_registered}" for c in struct_classes(PKG))
save()

prefs = bpy.context.preferences.addons[PKG].preferences
props = prefs.bl_rna.properties
report["prefs_type"] = type(prefs).__qualname__
report["prefs_bl_idname"] = type(prefs).bl_idname
report["props"] = {name: {"type": props[name].type, "subtype": props[name].subtype}
                   for name in props.keys() if name not in ("rna_type", "bl_idname")}
report["defaults"] = {"server": prefs.server, "token": prefs.token, "default_engine": prefs.default_engine,
                      "engines": [item.identifier for item in props["default_engine"].enum_items],
                      "request_timeout": prefs.request_timeout, "job_timeout": prefs.job_timeout}

# draw() with a recording layout: every prop it shows exists, every icon is one of Blender's.
class Layout:
    def __init__(self, log): self.log = log
    def __getattr__(self, name): return lambda *args, **kwargs: self
    def label(self, text="", icon="NONE", **kwargs): self.log.append(("label", text, icon))
    def prop(self, data, name, text=None, icon="NONE", **kwargs): self.log.append(("prop", name, icon))
class Self:
    def __init__(self, layout): self.__dict__["layout"] = layout
    def __getattr__(self, name): return getattr(prefs, name)
draws = {}
for label, value in (("without_token", ""), ("with_token", token)):
    prefs.token = value
    log = []
    type(prefs).draw(Self(Layout(log)), bpy.context)
    draws[label] = log
icons = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())
report["draw"] = draws
report["draw_bad_props"] = sorted({e[1] for d in draws.values() for e in d if e[0] == "prop"} - set(props.keys()))
report["draw_bad_icons"] = sorted({e[2] for d in draws.values() for e in d} - icons)

prefs_module = sys.modules[PKG + ".preferences"]
prefs.server = "  someone/some-space "
prefs.token = token
settings = prefs_module.connection_settings()
report["settings"] = {"repr": repr(settings), "server": settings.server, "token_ok": settings.token == token,
                      "request_timeout": settings.request_timeout, "job_timeout": settings.job_timeout}
report["server_problems"] = {value: prefs_module.server_problem(value) for value in (
    "user/space", "https://user-space.hf.space", "http://127.0.0.1:7860/", "", "ftp://x", "not a server", "http://")}
report["output_directory"] = prefs_module.output_directory()
report["tempdir"] = __import__("tempfile").gettempdir()
report["work_dir"] = work_dir

# The token lives in the preferences only: a saved .blend does not hold it.
blend = os.path.join(work_dir, "scene.blend")
bpy.ops.mesh.primitive_cube_add()
report["save_result"] = sorted(bpy.ops.wm.save_as_mainfile(filepath=blend, compress=False))
with open(blend, "rb") as stream:
    data = stream.read()
report["blend_bytes"] = len(data)
report["token_in_blend"] = token.encode() in data
report["output_directory_saved"] = prefs_module.output_directory()
save()

# The wheels are usable: gradio_client and what it needs come from the extension's site-packages.
local = os.path.join(bpy.utils.user_resource("EXTENSIONS"), ".local")
report["imports"] = {}
for name in ("gradio_client", "huggingface_hub", "httpx", "httpx2", "yaml", "idna", "typing_extensions",
             "requests", "numpy"):
    module = importlib.import_module(name)
    report["imports"][name] = {"from_extension": os.path.realpath(module.__file__).startswith(os.path.realpath(local)),
                               "version": getattr(module, "__version__", None)}
client = importlib.import_module(PKG + ".client")
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
try:
    client.ForgeClient("http://127.0.0.1:%d/" % port)
    report["closed_port"] = "no error"
except client.ServerError as exc:
    report["closed_port"] = "ServerError: " + str(exc)
save()

# Uninstall: nothing of ours stays registered, imported or on disk.
guard("uninstall")
report["uninstall_result"] = sorted(bpy.ops.extensions.package_uninstall(
    repo_directory=repo.directory, pkg_id="open3dforge"))
unguard()
after = snapshot()
report["left_registered"] = sorted(c.__qualname__ for c in struct_classes(PKG) if getattr(c, "is_registered", False))
report["snapshot_diff"] = {key: [before[key], after[key]] for key in before if before[key] != after[key]}
report["left_modules"] = sorted(m for m in sys.modules if m == PKG or m.startswith(PKG + "."))
report["left_on_disk"] = os.path.exists(os.path.join(repo.directory, "open3dforge"))
site_packages = os.path.join(local, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
# Blender removes each wheel's files but not the bytecode Python wrote for top-level modules (__pycache__).
report["left_wheels"] = sorted(name for name in (os.listdir(site_packages) if os.path.isdir(site_packages) else [])
                               if name != "__pycache__")
report["done"] = True
save()
'''


def _blender_site(bpy_dir: Path, target: Path) -> Path:
    """A folder that holds bpy and Blender's bundled modules only (links into this environment)."""
    site_packages = bpy_dir.parent
    target.mkdir()
    for name in ("bpy", *BLENDER_BUNDLED):
        if (site_packages / name).exists():
            (target / name).symlink_to(site_packages / name)
    return target


@pytest.fixture(scope="session")
def installed(addon_zip, tmp_path_factory) -> dict:
    """Runs BLENDER_SCRIPT once: install the zip, inspect, save a .blend, use the wheels, uninstall."""
    bpy_dir = _require_bpy()
    work = tmp_path_factory.mktemp("blender_install")
    bundled = _blender_site(bpy_dir, work / "blender_site")
    user = work / "user"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BLENDER_", "PYTHON", "HF_"))}
    env.update({
        "PYTHONPATH": str(bundled),
        "BLENDER_USER_RESOURCES": str(user),
        "BLENDER_USER_CONFIG": str(user / "config"),
        "BLENDER_USER_SCRIPTS": str(user / "scripts"),
        "BLENDER_USER_EXTENSIONS": str(user / "extensions"),
        "BLENDER_USER_DATAFILES": str(user / "datafiles"),
        "HF_HOME": str(work / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    })
    script = work / "install_check.py"
    script.write_text(BLENDER_SCRIPT, encoding="utf-8")
    report_path = work / "report.json"
    result = subprocess.run(
        [sys.executable, "-S", str(script), str(addon_zip), str(report_path), str(work), str(bundled), TOKEN],
        check=False, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    report["_output"] = result.stdout + result.stderr
    report["_returncode"] = result.returncode
    assert result.returncode == 0 and report.get("done"), (
        f"the Blender script stopped (rc {result.returncode}):\n{report['_output'][-6000:]}\n"
        f"report so far: {json.dumps(report, indent=1)[:4000]}")
    shutil.rmtree(user / "extensions" / ".cache", ignore_errors=True)
    return report


def test_installs_from_the_zip_and_enables_without_network(installed):
    assert installed["python"] == "3.11"
    assert installed["install_result"] == ["FINISHED"]
    assert installed["enabled"] and installed["addon_check"] == [True, True]
    assert "blender_manifest.toml" in installed["installed_files"]
    classes = dict(entry.split(":") for entry in installed["our_classes"])
    assert set(classes.values()) == {"True"}
    assert "Open3DForgePreferences" in classes
    for operator in ("forge", "generate", "postprocess", "export", "cancel", "import_asset"):
        assert f"OPEN3DFORGE_OT_{operator}" in classes
    assert "OPEN3DFORGE_PT_main" in classes
    assert installed["network_attempts"]["install"] == []


def test_preferences_are_registered_with_a_password_token(installed):
    assert installed["prefs_type"] == "Open3DForgePreferences"
    assert installed["prefs_bl_idname"] == "bl_ext.user_default.open3dforge"
    props = installed["props"]
    assert props["token"] == props["owner_key"] == {"type": "STRING", "subtype": "PASSWORD"}
    assert props["server"]["type"] == "STRING"
    assert props["output_folder"] == {"type": "STRING", "subtype": "DIR_PATH"}
    assert props["default_engine"]["type"] == "ENUM"
    assert props["request_timeout"]["type"] == props["job_timeout"]["type"] == "INT"
    defaults = installed["defaults"]
    assert defaults["server"] == "http://127.0.0.1:7860/" and defaults["token"] == ""
    assert defaults["default_engine"] == "ue5" and defaults["engines"] == ["ue5", "unity", "godot"]
    assert defaults["request_timeout"] == 30 and defaults["job_timeout"] == 30


def test_preferences_draw_only_real_properties_and_icons(installed):
    assert installed["draw_bad_props"] == [] and installed["draw_bad_icons"] == []
    for log in installed["draw"].values():
        shown = [entry[1] for entry in log if entry[0] == "prop"]
        assert shown == ["server", "token", "owner_key", "default_engine", "output_folder", "request_timeout",
                         "job_timeout"]
    assert any(entry[0] == "label" and "HF_TOKEN" in entry[1] for entry in installed["draw"]["without_token"])
    assert not any("HF_TOKEN" in entry[1] for entry in installed["draw"]["with_token"])
    assert not installed["online_access"]  # bpy as a module starts offline: the panel says so
    assert any(entry[0] == "label" and "Online access is off" in entry[1] for entry in installed["draw"]["with_token"])


def test_connection_settings_copy_the_preferences_and_hide_the_token(installed):
    settings = installed["settings"]
    assert settings["server"] == "someone/some-space" and settings["token_ok"]
    assert settings["request_timeout"] == 30.0 and settings["job_timeout"] == 1800.0
    assert TOKEN not in settings["repr"] and "someone/some-space" in settings["repr"]
    problems = installed["server_problems"]
    assert problems["user/space"] is None and problems["https://user-space.hf.space"] is None
    assert problems["http://127.0.0.1:7860/"] is None
    assert all(problems[value] for value in ("", "ftp://x", "not a server", "http://"))


def test_output_directory_defaults_next_to_the_blend(installed):
    assert installed["output_directory"] == os.path.join(installed["tempdir"], "Open3DForge")  # unsaved file
    assert installed["output_directory_saved"] == os.path.join(installed["work_dir"], "Open3DForge")


def test_token_is_never_saved_in_a_blend_nor_printed(installed):
    assert installed["save_result"] == ["FINISHED"] and installed["blend_bytes"] > 0
    assert installed["token_in_blend"] is False
    assert TOKEN not in installed["_output"]


def test_wheels_give_blender_a_working_gradio_client(installed):
    imports = installed["imports"]
    for name in ("gradio_client", "huggingface_hub", "httpx", "httpx2", "yaml", "typing_extensions"):
        assert imports[name]["from_extension"], f"{name} did not come from the extension's wheels"
    # Not asserted for idna: Blender 5.0.1 *appends* the extensions' site-packages to sys.path when an install
    # first creates it, so until Blender restarts, Blender's own idna wins over the wheel's.
    for name in ("requests", "numpy"):  # Blender's own
        assert not imports[name]["from_extension"]
    # The whole stack runs: a closed local port is a clean ServerError, not an ImportError.
    assert installed["closed_port"].startswith("ServerError: cannot reach http://127.0.0.1:")


def test_uninstall_leaves_nothing_behind(installed):
    assert installed["uninstall_result"] == ["FINISHED"]
    assert installed["left_registered"] == []
    assert installed["snapshot_diff"] == {}  # same types, classes, operators, RNA properties and add-ons
    assert installed["left_modules"] == []
    assert installed["left_on_disk"] is False
    assert installed["left_wheels"] == []
    assert installed["network_attempts"]["uninstall"] == []

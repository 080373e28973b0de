"""The Space's compiled wheels: their expected names from vendor/wheels.toml, tag checks, the bundle's lock file.

A wheel is accepted only when its file name, its WHEEL tags and its METADATA agree with the stack: cp312, the
platform, and the local version `+torch<torch>.cu<cuda>` (e.g. `+torch2.11.0.cu130`). Accepted wheels are copied
to <bundle>/wheels/ and listed with their SHA-256 in <bundle>/wheels/lock.json; the Space's app installs them
from there at start-up (space/install_wheels.py) after checking each hash.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tomllib
import zipfile
from pathlib import Path

LOCK_NAME = "lock.json"


def load(vendor_dir: Path) -> tuple[dict, list[dict]]:
    """(stack, wheels) from vendor/wheels.toml."""
    data = tomllib.loads((vendor_dir / "wheels.toml").read_text(encoding="utf-8"))
    return data["stack"], list(data.get("wheel", []))


def python_tag(stack: dict) -> str:
    return "cp" + stack["python"].replace(".", "")


def local_version(stack: dict) -> str:
    """What follows '+' in every wheel's version: torch<version>.cu<cuda without the dot>."""
    return f"torch{stack['torch']}.cu{stack['cuda'].replace('.', '')}"


def expected_file(wheel: dict, stack: dict) -> str:
    tag = python_tag(stack)
    return f"{wheel['name']}-{wheel['version']}+{local_version(stack)}-{tag}-{tag}-{stack['platform']}.whl"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_wheel(path: Path) -> dict:
    """Name, version and tags as the wheel's own .dist-info says them."""
    with zipfile.ZipFile(path) as archive:
        info = {}
        for member in archive.namelist():
            top = member.split("/", 1)[0]
            if top.endswith(".dist-info") and member.endswith("/WHEEL"):
                info["tags"] = [line.split(":", 1)[1].strip() for line in archive.read(member).decode().splitlines()
                                if line.startswith("Tag:")]
            elif top.endswith(".dist-info") and member.endswith("/METADATA"):
                fields = dict(line.split(": ", 1) for line in archive.read(member).decode().splitlines()
                              if ": " in line and not line.startswith(" "))
                info["name"], info["version"] = fields.get("Name", ""), fields.get("Version", "")
    return info


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def wheel_problems(path: Path, wheel: dict, stack: dict) -> list[str]:
    """Why `path` is not the wheel `wheel` for `stack` (empty when it is)."""
    try:
        info = read_wheel(path)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, ValueError) as exc:
        return [f"{path.name}: not a readable wheel ({exc})"]
    tag = f"{python_tag(stack)}-{python_tag(stack)}-{stack['platform']}"
    version = f"{wheel['version']}+{local_version(stack)}"
    problems = []
    if info.get("tags") != [tag]:
        problems.append(f"{path.name}: tags {info.get('tags')}, expected [{tag!r}]")
    if _normal(info.get("name", "")) != _normal(wheel["name"]) or info.get("version") != version:
        problems.append(f"{path.name}: METADATA says {info.get('name')} {info.get('version')}, expected "
                        f"{wheel['name']} {version}")
    return problems


def place_wheels(bundle: Path, wheels_dir: Path | None, vendor_dir: Path) -> tuple[list[dict], list[str], list[str]]:
    """Copy the stack's wheels found in `wheels_dir` into <bundle>/wheels and write the lock.

    Returns (locked entries, names of wheels not found, problems with wheels that were found).
    """
    stack, wheels = load(vendor_dir)
    locked, missing, problems = [], [], []
    for wheel in wheels:
        source = (wheels_dir / expected_file(wheel, stack)) if wheels_dir else None
        if source is None or not source.is_file():
            missing.append(wheel["name"])
            continue
        found = wheel_problems(source, wheel, stack)
        if found:
            problems.extend(found)
            continue
        target = bundle / "wheels" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        locked.append({"name": wheel["name"], "version": wheel["version"], "file": source.name,
                       "sha256": sha256(target), "repo": wheel["repo"], "commit": wheel["commit"],
                       "needed_by": wheel.get("needed_by", [])})
    if locked:
        lock = {"stack": stack, "wheels": locked}
        (bundle / "wheels" / LOCK_NAME).write_text(json.dumps(lock, indent=1) + "\n", encoding="utf-8")
    return locked, missing, problems


def bundle_problems(bundle: Path, meta: dict, requirements_text: str) -> list[str]:
    """Front matter, requirements, wheel tags and lock file agree with vendor/wheels.toml (inside the bundle)."""
    stack, wheels = load(bundle / "vendor")
    problems = []
    if str(meta.get("python_version")) != stack["python"]:
        problems.append(f"README.md python_version is {meta.get('python_version')!r}, the stack's is {stack['python']}")
    lines = [line.split("#", 1)[0].strip() for line in requirements_text.splitlines()]
    for package in ("torch", "torchvision"):
        if f"{package}=={stack[package]}" not in lines:
            problems.append(f"requirements.txt does not pin {package}=={stack[package]} (the stack's)")
    if f"--extra-index-url {stack['torch_index']}" not in lines:
        problems.append(f"requirements.txt lacks '--extra-index-url {stack['torch_index']}' (torch on CUDA "
                        f"{stack['cuda']})")
    folder = bundle / "wheels"
    on_disk = sorted(p.name for p in folder.glob("*.whl")) if folder.is_dir() else []
    lock_path = folder / LOCK_NAME
    if not lock_path.is_file():
        return problems + ([f"wheels/ holds {on_disk} but no {LOCK_NAME}"] if on_disk else [])
    lock = json.loads(lock_path.read_text(encoding="utf-8"))
    if lock.get("stack") != stack:
        problems.append(f"wheels/{LOCK_NAME} was made for another stack: {lock.get('stack')}")
    by_name = {wheel["name"]: wheel for wheel in wheels}
    for entry in lock.get("wheels", []):
        path = folder / entry["file"]
        wheel = by_name.get(entry["name"])
        if wheel is None:
            problems.append(f"wheels/{LOCK_NAME} lists {entry['name']}, which vendor/wheels.toml does not")
        elif not path.is_file():
            problems.append(f"wheels/{LOCK_NAME} lists {entry['file']}, which is not in wheels/")
        elif sha256(path) != entry["sha256"]:
            problems.append(f"wheels/{entry['file']}: SHA-256 differs from wheels/{LOCK_NAME}")
        else:
            problems.extend(wheel_problems(path, wheel, stack))
    unlisted = set(on_disk) - {entry["file"] for entry in lock.get("wheels", [])}
    if unlisted:
        problems.append(f"wheels/ holds {sorted(unlisted)}, which wheels/{LOCK_NAME} does not list")
    return problems


def relabel(wheel_path: Path, out_dir: Path, stack: dict) -> Path:
    """A copy of a freshly built wheel whose version carries the stack's local label (+torch2.11.0.cu130).

    setuptools builds `name-1.0-cp312-cp312-linux_x86_64.whl`; the Space needs the torch and CUDA it was built
    against in the version, so that pip and the lock can tell wheels for different stacks apart.
    """
    import base64

    info = read_wheel(wheel_path)
    base_version = info["version"].split("+", 1)[0]
    version = f"{base_version}+{local_version(stack)}"
    old_info = f"{_normal(info['name'])}-{info['version']}.dist-info"
    new_info = f"{_normal(info['name'])}-{version}.dist-info"
    tag = f"{python_tag(stack)}-{python_tag(stack)}-{stack['platform']}"
    target = out_dir / f"{_normal(info['name'])}-{version}-{tag}.whl"
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    partial = target.with_suffix(".part")
    with zipfile.ZipFile(wheel_path) as source, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as dest:
        for item in source.infolist():
            name = item.filename
            top, _, rest = name.partition("/")
            if top.lower() == old_info.lower():
                name = f"{new_info}/{rest}"
            if name == f"{new_info}/RECORD":
                continue
            data = source.read(item)
            if name == f"{new_info}/METADATA":
                data = re.sub(rb"(?m)^Version: .*$", f"Version: {version}".encode(), data, count=1)
            dest.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{name},sha256={digest},{len(data)}")
        records.append(f"{new_info}/RECORD,,")
        dest.writestr(f"{new_info}/RECORD", "\n".join(records) + "\n")
    partial.replace(target)
    return target


def _plan(vendor_dir: Path) -> None:
    """One line per wheel for tools/build_space_wheels.sh: name repo commit subdir [path=repo@commit ...]."""
    _, wheels = load(vendor_dir)
    for wheel in wheels:
        subs = " ".join(f"{s['path']}={s['repo']}@{s['commit']}" for s in wheel.get("submodules", []))
        print(f"{wheel['name']} {wheel['repo']} {wheel['commit']} {wheel.get('subdir', '.')} {subs}".rstrip())


def _check_builder(stack: dict) -> list[str]:
    """What this machine lacks to build wheels for the stack (Python, torch and its CUDA, nvcc)."""
    import shutil as _shutil
    import sys

    problems = []
    if f"{sys.version_info.major}.{sys.version_info.minor}" != stack["python"]:
        problems.append(f"Python {sys.version.split()[0]}, the stack needs {stack['python']}")
    try:
        import torch
    except ImportError:
        return problems + [f"torch is not installed (the stack needs torch=={stack['torch']} on CUDA {stack['cuda']})"]
    if torch.__version__.split("+", 1)[0] != stack["torch"] or (torch.version.cuda or "") != stack["cuda"]:
        problems.append(f"torch {torch.__version__} on CUDA {torch.version.cuda}, the stack needs "
                        f"{stack['torch']} on CUDA {stack['cuda']}")
    if _shutil.which("nvcc") is None:
        problems.append("nvcc is not on PATH")
    return problems


if __name__ == "__main__":
    import sys

    vendor = Path(__file__).resolve().parent.parent / "vendor"
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    stack_now = load(vendor)[0]
    if command == "plan":
        _plan(vendor)
    elif command == "arch":
        print(stack_now["arch_list"])
    elif command == "check-builder":
        found = _check_builder(stack_now)
        print("\n".join(found) or "ok")
        sys.exit(1 if found else 0)
    elif command == "relabel" and len(sys.argv) == 4:
        print(relabel(Path(sys.argv[2]), Path(sys.argv[3]), stack_now))
    else:
        sys.exit("usage: space_wheels.py plan | arch | check-builder | relabel WHEEL OUT_DIR")

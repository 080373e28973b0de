"""Install the Space's own compiled wheels (wheels/ beside app.py) at start-up, each checked against lock.json.

The Space's build container has no CUDA toolkit, so the compiled extensions travel as wheels in the Space repo
(built by tools/build_space_wheels.sh, locked by `make space`). A wheel already installed at its locked version is
skipped; one whose SHA-256 differs from the lock is refused. Nothing here raises: the report says what happened,
and the generators that need a missing wheel say so in `health`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def install_wheels(folder: Path) -> dict:
    """{name: 'installed' | 'present' | 'refused: ...' | 'failed: ...'} for every wheel in folder/lock.json."""
    lock_path = folder / "lock.json"
    if not lock_path.is_file():
        return {}
    lock = json.loads(lock_path.read_text(encoding="utf-8"))
    local = f"torch{lock['stack']['torch']}.cu{lock['stack']['cuda'].replace('.', '')}"
    report = {}
    for entry in lock["wheels"]:
        name, path = entry["name"], folder / entry["file"]
        if _installed_version(name) == f"{entry['version']}+{local}":
            report[name] = "present"
        elif not path.is_file():
            report[name] = f"refused: {entry['file']} is missing"
        elif _sha256(path) != entry["sha256"]:
            report[name] = f"refused: {entry['file']} does not match its SHA-256 in lock.json"
        else:
            done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                                   str(path)], capture_output=True, text=True)
            report[name] = "installed" if done.returncode == 0 else f"failed: {done.stderr.strip()[-300:]}"
        print(f"Open3DForge wheels: {name}: {report[name]}", flush=True)
    return report

"""The add-on's package files without Blender: checking the server's zip, pointing the import script and the
manifest at the FBX files the add-on writes, and writing zips atomically."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

ENGINES = ("ue5", "unity", "godot")
ENGINE_LABELS = {"ue5": "UE5", "unity": "Unity", "godot": "Godot"}
_MESH_FILES_LINE = re.compile(r"^MESH_FILES = \[.*?\](.*)$", re.MULTILINE)


class ExportProblem(Exception):
    """The zip cannot be written; the message says why."""


def rewrite_script(text: str, mesh_files: list[str]) -> str:
    """The import script's settings line MESH_FILES = [...] with new file names."""
    new, count = _MESH_FILES_LINE.subn(lambda m: f"MESH_FILES = {mesh_files!r}{m.group(1)}", text, count=1)
    if count != 1:
        raise ExportProblem("the import script has no 'MESH_FILES = [...]' settings line to rewrite")
    return new


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def replace_atomically(target: Path, write) -> None:
    """Call write(handle) on a temporary file beside target, then rename it over target."""
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except BaseException:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
        raise


def write_zip_atomically(target: Path, payload: dict[str, bytes]) -> None:
    def write(handle) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member, data in payload.items():
                archive.writestr(member, data)

    replace_atomically(target, write)


def server_package_members(path, name: str, engine: str) -> tuple[dict[str, bytes], dict]:
    """The members and manifest of the server's <Name>_<Engine>.zip, checked against the asset and engine."""
    label = ENGINE_LABELS[engine]
    if not path or not Path(path).is_file():
        raise ExportProblem(f"the {label} package from the server is missing ({path!r})")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {item.filename: archive.read(item) for item in archive.infolist() if not item.is_dir()}
    except zipfile.BadZipFile as exc:
        raise ExportProblem(f"the server's {label} package {Path(path).name} is not a zip file ({exc})") from exc
    if "manifest.json" not in members:
        raise ExportProblem(f"the server's {label} package {Path(path).name} has no manifest.json")
    manifest = json.loads(members.pop("manifest.json").decode("utf-8"))
    if manifest.get("engine") != label or manifest.get("asset") != name:
        raise ExportProblem(f"the server sent a package for {manifest.get('asset')!r} / {manifest.get('engine')!r}, "
                            f"expected {name!r} / {label!r}")
    for entry in manifest.get("files", []):
        data = members.get(entry["name"])
        if data is None or sha256(data) != entry.get("sha256"):
            raise ExportProblem(f"the server's {label} package is damaged: {entry['name']} is missing or differs "
                                "from its manifest entry")
    return members, manifest


def output_folder(folder: str | Path) -> Path:
    """`folder` created if needed; ExportProblem names it when it cannot hold the zip (a file in the way, no rights)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        why = f"{str(blocker)!r} is a file, not a folder" if blocker is not None else (exc.strerror or str(exc))
        raise ExportProblem(f"directory={str(folder)!r}: cannot write the zip there ({why})") from exc
    if not os.access(folder, os.W_OK):
        raise ExportProblem(f"directory={str(folder)!r}: this folder is not writable")
    return folder

def non_mesh_files(package_dir: Path, manifest: dict, script_name: str, mesh_files: list[str]) -> dict[str, bytes]:
    """Every file of the server's package but its meshes, the import script pointed at the new mesh files."""
    payload = {}
    for entry in manifest.get("files", []):
        member = entry["name"]
        if member.endswith((".glb", ".gltf", ".fbx")):
            continue
        data = (package_dir / member).read_bytes()
        if member == script_name:
            data = rewrite_script(data.decode("utf-8"), mesh_files).encode("utf-8")
        payload[member] = data
    return payload


def fbx_manifest(manifest: dict, mesh_files: list[str], hull_nodes: list[str], payload: dict[str, bytes],
                 writer: str) -> bytes:
    """The server's manifest.json for the package as the add-on writes it: FBX meshes, their file names, the
    hulls' nodes, the writer, and every member's size and checksum."""
    manifest = json.loads(json.dumps(manifest))
    manifest["mesh_format"] = "fbx"
    for lod in manifest.get("lods", []):
        index = int(lod.get("lod", 0))
        if index < len(mesh_files):
            lod["file"] = mesh_files[index]
    if isinstance(manifest.get("collision"), dict):
        manifest["collision"]["file"] = mesh_files[0]
        manifest["collision"]["nodes"] = list(hull_nodes)
    manifest["collision_hulls"] = len(hull_nodes)
    manifest.pop("fallback", None)
    manifest["fbx_writer"] = writer
    manifest["files"] = [{"name": member, "bytes": len(data), "sha256": sha256(data)}
                         for member, data in sorted(payload.items())]
    return json.dumps(manifest, indent=2).encode("utf-8")

"""The scene zip: each object's own engine package in its folder, scene.json, scene.glb and (UE5) import_scene.py."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import InputError
from ..export import naming
from ..export.scene_script import import_scene_script
from .layout import scene_glb
from .place import PlacedObject


def scene_zip_name(name: str, engine) -> str:
    return f"{name}_Scene_{naming.engine_label(engine)}.zip"


def write_scene_zip(out_dir, layout: dict, placed: list[PlacedObject], object_zips: dict, engine="ue5") -> Path:
    """Write <out_dir>/<Name>_Scene_<Engine>.zip and return its path.

    layout: scene.json's content (scene_layout); placed: the same objects, for scene.glb; object_zips: object
    name -> that object's engine package (server/export/package.py's zip for the same engine), unpacked into
    the folder scene.json names for it. The zip is written to a temporary file and moved into place.
    """
    key = naming.engine_key(engine)
    name = naming.check_name(layout.get("name") if isinstance(layout, dict) else None)
    entries = layout.get("objects") or []
    wanted = [entry["name"] for entry in entries]
    if sorted(wanted) != sorted(object_zips) or sorted(p.name for p in placed) != sorted(wanted):
        raise InputError("object_zips", sorted(object_zips),
                         f"one package per object of the layout and of placed: {sorted(wanted)}")
    script = import_scene_script(layout) if key == "ue5" else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / scene_zip_name(name, key)
    handle, temporary = tempfile.mkstemp(prefix=".scene_", suffix=".zip", dir=out_dir)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for entry in entries:
                _copy_package(archive, Path(object_zips[entry["name"]]), entry, key)
            archive.writestr("scene.json", json.dumps(layout, indent=2))
            archive.writestr("scene.glb", scene_glb(placed))
            if script is not None:
                archive.writestr("import_scene.py", script)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


def _copy_package(archive: zipfile.ZipFile, package: Path, entry: dict, engine: str) -> None:
    folder = entry["asset"]["folder"]
    if not zipfile.is_zipfile(package):
        raise InputError(f"object_zips[{entry['name']}]", str(package), "the object's engine package (a zip file)")
    with zipfile.ZipFile(package) as source:
        members = [info for info in source.infolist() if not info.is_dir()]
        for info in members:
            path = PurePosixPath(info.filename)
            if path.is_absolute() or ".." in path.parts:
                raise InputError(f"object_zips[{entry['name']}]", info.filename, "files inside the package")
            archive.writestr(f"{folder}/{path}", source.read(info))
        if engine == "ue5":
            script = entry["asset"]["ue5"]["import_script"]
            if script not in {info.filename for info in members}:
                raise InputError(f"object_zips[{entry['name']}]", str(package), f"a UE5 package holding {script}")

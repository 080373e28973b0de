"""Stage results cached by their inputs and parameters, so changing one setting repeats only what depends on it."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Callable

import numpy as np

from .asset import atomic_write_bytes
from .meshdata import MeshArrays

FIELDS = ("vertices", "faces", "colors", "uv", "normals")


def digest(*parts) -> str:
    """A stable hash of JSON-able parts (dicts, lists, numbers, strings, other digests)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()[:24]


def meshes_to_bytes(meshes: list[MeshArrays]) -> bytes:
    arrays = {"count": np.array(len(meshes))}
    for index, mesh in enumerate(meshes):
        for name in FIELDS:
            value = getattr(mesh, name)
            if value is not None:
                arrays[f"{index}_{name}"] = value
        arrays[f"{index}_info"] = np.array(json.dumps(mesh.info, default=str))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def meshes_from_file(path: Path) -> list[MeshArrays]:
    with np.load(path, allow_pickle=False) as data:
        meshes = []
        for index in range(int(data["count"])):
            values = {name: data[f"{index}_{name}"] if f"{index}_{name}" in data.files else None for name in FIELDS}
            info = json.loads(str(data[f"{index}_info"]))
            meshes.append(MeshArrays(values["vertices"], values["faces"], colors=values["colors"],
                                     uv=values["uv"], normals=values["normals"], info=info))
        return meshes


class StageCache:
    """Mesh results under <asset>/cache/<stage>-<key>.npz; a corrupt entry is recomputed, not trusted."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def meshes(self, stage: str, key: str, compute: Callable[[], list[MeshArrays]]) -> tuple[list[MeshArrays], bool]:
        """(result, True when it came from the cache)."""
        path = self.folder / f"{stage}-{key}.npz"
        if path.is_file():
            try:
                return meshes_from_file(path), True
            except (OSError, ValueError, KeyError, json.JSONDecodeError):
                path.unlink(missing_ok=True)
        result = compute()
        atomic_write_bytes(path, meshes_to_bytes(result))
        return result, False

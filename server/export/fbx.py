"""Server side of the FBX writer: meshes go to Blender's own exporter in a subprocess (never bpy here)."""

from __future__ import annotations

import importlib.util
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ForgeError
from ..meshdata import MeshArrays
from .blender_job import run_blender_job

DEFAULT_TIMEOUT_S = 300.0


def bpy_available() -> bool:
    """Whether `import bpy` would work in this interpreter, found without importing it."""
    try:
        return importlib.util.find_spec("bpy") is not None
    except (ImportError, ValueError):
        return False


@dataclass
class FbxObject:
    """One object of an FBX file: its node/mesh name, its mesh, its material slot, its parent."""

    name: str
    mesh: MeshArrays
    material: str | None = None
    parent: str | None = None


@dataclass
class FbxFile:
    """One FBX file to write: preset 'ue5' (Z-up scene as it is) or 'unity' (nodes written unrotated)."""

    path: Path
    objects: list[FbxObject]
    preset: str = "ue5"
    skeletal: bool = False
    info: dict = field(default_factory=dict)


def write_fbx_files(files: list[FbxFile], *, timeout: float = DEFAULT_TIMEOUT_S) -> dict:
    """Write every FBX file in one Blender subprocess; returns the subprocess's report.

    Raises ForgeError with the tail of Blender's stderr when it fails, times out, or leaves a file out.
    """
    if not files:
        return {"ok": True, "files": []}
    with tempfile.TemporaryDirectory(prefix="o3f_fbx_") as work:
        work = Path(work)
        arrays: dict[str, np.ndarray] = {}
        job_files = []
        counter = 0
        for spec in files:
            objects = []
            for obj in spec.objects:
                key = f"m{counter}"
                counter += 1
                mesh = obj.mesh
                arrays[f"{key}_vertices"] = np.asarray(mesh.vertices, dtype=np.float64)
                arrays[f"{key}_faces"] = np.asarray(mesh.faces, dtype=np.int64)
                if mesh.uv is not None:
                    arrays[f"{key}_uv"] = np.asarray(mesh.uv, dtype=np.float32)
                if mesh.normals is not None:
                    arrays[f"{key}_normals"] = np.asarray(mesh.normals, dtype=np.float32)
                objects.append({"name": obj.name, "mesh": key, "material": obj.material, "parent": obj.parent})
            job_files.append({"path": str(Path(spec.path).resolve()), "preset": spec.preset,
                              "skeletal": bool(spec.skeletal), "objects": objects})
        npz = work / "meshes.npz"
        np.savez(npz, **arrays)
        job = work / "job.json"
        job.write_text(json.dumps({"npz": str(npz), "files": job_files}))
        report = run_blender_job("server.export.blender_fbx", job, "FBX export", timeout)
        missing = [spec["path"] for spec in job_files if not Path(spec["path"]).is_file()]
        if missing:
            raise ForgeError(f"FBX export left out {missing}")
        return report

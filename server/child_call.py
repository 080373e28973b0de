"""A stage function run in a child Python process, for work inside extensions that hold Python's lock (pymeshlab).

A thread cannot run beside such a call, a child process can: `start` writes the meshes (and any plain arrays)
into a temporary .npz, starts `python -m server.child_call` on it and returns at once; `ChildCall.result` waits
(looking at a cancel check meanwhile) and returns what the function returned: JSON, or a dict of arrays. Only
FUNCTIONS can be called.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .child_env import REPO_ROOT, child_env
from .errors import ForgeError
from .meshdata import MeshArrays

FUNCTIONS = ("server.stages.decimate:surface_deviation", "server.stages.regions:reduce_region")
WAIT_S = 0.01


class ChildCall:
    """One running call; result() waits for it, abandon() stops it."""

    def __init__(self, proc: subprocess.Popen, folder: tempfile.TemporaryDirectory, what: str):
        self._proc, self._folder, self._what = proc, folder, what

    def result(self, check: Callable[[], None] | None = None):
        try:
            while self._proc.poll() is None:
                if check is not None:
                    check()
                time.sleep(WAIT_S)
            folder = Path(self._folder.name)
            answer, arrays = folder / "answer.json", folder / "answer.npz"
            if self._proc.returncode != 0 or not (answer.is_file() or arrays.is_file()):
                said = (folder / "errors.txt").read_text(errors="replace").strip().splitlines()
                raise ForgeError(f"{self._what} failed in its process (exit {self._proc.returncode}): "
                                 f"{said[-1] if said else 'no message'}")
            if arrays.is_file():
                with np.load(arrays, allow_pickle=False) as data:
                    return {key: data[key] for key in data.files}
            return json.loads(answer.read_text())
        finally:
            self.abandon()

    def abandon(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._folder.cleanup()


def start(function: str, meshes: dict[str, MeshArrays], what: str, arrays: dict[str, np.ndarray] | None = None,
          **options) -> ChildCall:
    """Call `function` (one of FUNCTIONS) with `meshes` (geometry only), `arrays` and `options` as keyword arguments."""
    if function not in FUNCTIONS:
        raise ValueError(f"{function!r} is not one of {FUNCTIONS}")
    folder = tempfile.TemporaryDirectory(prefix="o3f_call_")
    stored = {name: np.asarray(array) for name, array in (arrays or {}).items()}
    for name, mesh in meshes.items():
        stored[f"{name}.vertices"], stored[f"{name}.faces"] = mesh.vertices, mesh.faces
    np.savez(Path(folder.name) / "meshes.npz", **stored)
    (Path(folder.name) / "call.json").write_text(json.dumps({"function": function, "options": options}))
    with open(Path(folder.name) / "errors.txt", "wb") as errors:
        proc = subprocess.Popen([sys.executable, "-m", "server.child_call", folder.name], cwd=str(REPO_ROOT),
                                env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
    return ChildCall(proc, folder, what)


def _main(folder: Path) -> int:
    call = json.loads((folder / "call.json").read_text())
    if call["function"] not in FUNCTIONS:
        raise ValueError(f"{call['function']!r} is not one of {FUNCTIONS}")
    module, name = call["function"].split(":")
    arguments = {}
    with np.load(folder / "meshes.npz", allow_pickle=False) as data:
        for key in data.files:
            if "." not in key:  # a plain array; a mesh is stored as "<name>.vertices" and "<name>.faces"
                arguments[key] = data[key]
                continue
            mesh_name = key.rsplit(".", 1)[0]
            if mesh_name not in arguments:
                arguments[mesh_name] = MeshArrays(data[f"{mesh_name}.vertices"], data[f"{mesh_name}.faces"])
    answer = getattr(importlib.import_module(module), name)(**arguments, **call["options"])
    if isinstance(answer, dict) and answer and all(isinstance(value, np.ndarray) for value in answer.values()):
        partial = folder / "answer.part.npz"
        with open(partial, "wb") as stream:
            np.savez(stream, **answer)
        partial.replace(folder / "answer.npz")
        return 0
    partial = folder / "answer.json.part"
    partial.write_text(json.dumps(answer))
    partial.replace(folder / "answer.json")
    return 0


if __name__ == "__main__":
    sys.exit(_main(Path(sys.argv[1])))

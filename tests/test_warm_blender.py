"""The warm Blender process: exports share it, a failure or timeout replaces it, a busy one is passed by, and it
ends with the server that started it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from server.errors import ForgeError
from server.export import blender_job
from server.export.fbx import FbxFile, FbxObject, bpy_available, write_fbx_files
from server.export.warm_blender import WarmBlender
from server.meshdata import MeshArrays

pytestmark = pytest.mark.skipif(not bpy_available(), reason="bpy (Blender as a module, cp311) is not installed")


@pytest.fixture
def warm(monkeypatch):
    process = WarmBlender()
    monkeypatch.setattr(blender_job, "WARM", process)
    yield process
    process.stop()


def _box_file(path: Path) -> FbxFile:
    box = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    return FbxFile(path, [FbxObject("SM_Box", MeshArrays(box.vertices, box.faces), material="M_Box")])


def _fbx_header_ok(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:20] == b"Kaydara FBX Binary  "


def test_exports_one_after_another_share_one_blender_process(warm, tmp_path):
    warm.start()
    first_pid = warm.pid()
    first = write_fbx_files([_box_file(tmp_path / "a" / "SM_Box.fbx")])
    second = write_fbx_files([_box_file(tmp_path / "b" / "SM_Box.fbx")])
    assert first_pid is not None and warm.pid() == first_pid
    assert first["ok"] and second["ok"] and second["files"][0]["triangles"] == {"SM_Box": 12}
    assert _fbx_header_ok(tmp_path / "a" / "SM_Box.fbx") and _fbx_header_ok(tmp_path / "b" / "SM_Box.fbx")


def test_a_failed_job_says_why_and_the_next_export_gets_a_new_process(warm, tmp_path):
    job = tmp_path / "job.json"
    job.write_text('{"npz": "' + str(tmp_path / "missing.npz") + '", "files": []}')
    with pytest.raises(ForgeError, match="FBX export failed in Blender: FileNotFoundError: .*missing.npz"):
        blender_job.run_blender_job("server.export.blender_fbx", job, "FBX export", 120)
    assert warm.pid() is None
    report = write_fbx_files([_box_file(tmp_path / "SM_Box.fbx")])
    assert report["ok"] and warm.pid() is not None and _fbx_header_ok(tmp_path / "SM_Box.fbx")


def test_a_job_past_its_time_is_stopped_with_the_process(warm, tmp_path):
    with pytest.raises(ForgeError, match="FBX export timed out after 0 s"):
        write_fbx_files([_box_file(tmp_path / "SM_Box.fbx")], timeout=0.001)
    assert warm.pid() is None


def test_a_busy_process_is_passed_by_for_a_process_of_the_jobs_own(warm, tmp_path):
    warm.start()
    pid = warm.pid()
    with warm._lock:  # as while another export runs in it
        report = write_fbx_files([_box_file(tmp_path / "SM_Box.fbx")])
    assert report["ok"] and _fbx_header_ok(tmp_path / "SM_Box.fbx")
    assert warm._jobs == 0 and warm.pid() == pid


def test_only_the_export_modules_run_in_it(warm, tmp_path):
    job = tmp_path / "job.json"
    job.write_text("{}")
    with pytest.raises(ForgeError, match="is not one of"):
        warm.run("os", job, "a job", 120)


SERVER_STAND_IN = r"""
import sys
sys.path.insert(0, sys.argv[1])
from server.export.warm_blender import WARM
WARM.start()
print(WARM.pid(), flush=True)
sys.stdin.read()  # lives until killed
"""


def test_the_process_ends_when_the_server_that_started_it_is_killed(tmp_path):
    server = subprocess.Popen([sys.executable, "-c", SERVER_STAND_IN, str(Path(__file__).resolve().parents[1])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(server.stdout.readline())
        os.kill(pid, 0)  # running
        server.kill()  # no clean shutdown: the warm process only sees its input close
        server.wait()
        for _ in range(600):  # it notices at once; the loop only bounds a broken case
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if _zombie(pid):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the warm Blender process {pid} outlived its server")
    finally:
        if server.poll() is None:
            server.kill()


def _zombie(pid: int) -> bool:
    """An exited child not yet reaped by its (dead) parent's reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_a_warm_export_writes_the_same_file_as_a_process_of_its_own(warm, tmp_path):
    box = _box_file(tmp_path / "warm" / "SM_Box.fbx")
    write_fbx_files([box])
    warm.enabled = False
    write_fbx_files([_box_file(tmp_path / "own" / "SM_Box.fbx")])
    warm_bytes = (tmp_path / "warm" / "SM_Box.fbx").read_bytes()
    own_bytes = (tmp_path / "own" / "SM_Box.fbx").read_bytes()
    # Same size and the same bytes but for the time stamps and file ids Blender writes into every file.
    assert len(warm_bytes) == len(own_bytes)
    differing = np.flatnonzero(np.frombuffer(warm_bytes, np.uint8) != np.frombuffer(own_bytes, np.uint8))
    assert len(differing) < 64

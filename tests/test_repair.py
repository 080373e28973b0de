"""MeshFix repair: holes closed, colours carried over, components, a hung or crashed worker stopped."""

import os
import sys

import numpy as np
import pytest
import trimesh

from server.errors import ForgeError, InputError
from server.meshdata import MeshArrays
from server.stages import repair as repair_module
from server.stages.repair import repair

RED = (255, 0, 0, 255)
BLUE = (0, 0, 255, 255)


def close_to(colors, expected):
    # pymeshlab interpolates in 8 bits and truncates: a pure colour can come back one level lower
    return len(colors) > 0 and bool((np.abs(colors.astype(int) - expected) <= 2).all())


def punched_sphere(holes=25, seed=0):
    """Unit icosphere coloured red above the equator and blue below, with faces deleted in both halves."""
    sphere = trimesh.creation.icosphere(subdivisions=4)
    colors = np.where(sphere.vertices[:, 2:3] > 0, RED, BLUE).astype(np.uint8)
    rng = np.random.default_rng(seed)
    keep = np.ones(len(sphere.faces), bool)
    keep[rng.choice(len(sphere.faces), holes, replace=False)] = False
    # and one bigger hole: a whole cap around +X
    centres = sphere.vertices[sphere.faces].mean(axis=1)
    keep[centres[:, 0] > 0.97] = False
    uv = sphere.vertices[:, :2] * 0.5 + 0.5
    return MeshArrays(sphere.vertices, sphere.faces[keep], colors=colors, uv=uv)


def test_punched_sphere_becomes_watertight_with_its_colours():
    mesh = punched_sphere()
    assert not mesh.to_trimesh().is_watertight
    fixed = repair(mesh)
    surface = fixed.to_trimesh()
    assert surface.is_watertight and surface.is_winding_consistent
    assert surface.volume == pytest.approx(4 / 3 * np.pi, rel=0.02)
    record = fixed.info["repair"]
    assert record["holes_found"] >= 20 and record["holes_filled"] == record["holes_found"]
    assert record["faces_before"] == mesh.face_count < record["faces_after"] == fixed.face_count
    assert record["watertight"] and record["colors_transferred"] and record["uv_dropped"]
    assert fixed.uv is None and fixed.normals is None

    z = fixed.vertices[:, 2]
    assert fixed.colors.shape == (len(fixed.vertices), 4) and fixed.colors.dtype == np.uint8
    assert close_to(fixed.colors[z > 0.1], RED) and close_to(fixed.colors[z < -0.1], BLUE)
    # the filled cap around +X straddles the equator; its new vertices take the colour of their side
    cap = fixed.vertices[:, 0] > 0.97
    assert cap.any() and close_to(fixed.colors[cap & (z > 0.1)], RED)
    assert close_to(fixed.colors[cap & (z < -0.1)], BLUE)


def test_seam_split_vertices_are_welded_not_torn_apart():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    vertices, faces = sphere.vertices, sphere.faces.copy()
    # faces on +X use their own copies of their vertices, as exporters do along UV seams
    plus = vertices[faces].mean(axis=1)[:, 0] > 0
    copied, inverse = np.unique(faces[plus], return_inverse=True)
    faces[plus] = len(vertices) + inverse.reshape(-1, 3)
    fixed = repair(MeshArrays(np.vstack([vertices, vertices[copied]]), faces))
    assert fixed.info["repair"]["coincident_vertices_welded"] == len(copied)
    assert fixed.info["repair"]["components_dropped"] == 0
    assert fixed.face_count == len(sphere.faces)
    assert fixed.to_trimesh().volume == pytest.approx(sphere.volume, rel=1e-3)


def test_largest_component_is_kept_and_the_drop_recorded():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    speck = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    speck.apply_translation((3.0, 0, 0))
    both = MeshArrays(np.vstack([sphere.vertices, speck.vertices]),
                      np.vstack([sphere.faces, speck.faces + len(sphere.vertices)]))
    fixed = repair(both)
    assert fixed.info["repair"]["components_dropped"] == 1
    assert fixed.info["repair"]["faces_dropped_with_components"] == len(speck.faces)
    assert fixed.vertices[:, 0].max() < 1.01

    kept = repair(both, largest_only=False)
    assert kept.info["repair"]["components_dropped"] == 0
    assert kept.vertices[:, 0].max() > 3.0 and kept.to_trimesh().is_watertight


def test_face_ceiling_is_enforced():
    with pytest.raises(ForgeError, match="limit 1000"):
        repair(punched_sphere(), max_faces=1000)


def test_real_repair_is_stopped_at_a_tiny_timeout():
    with pytest.raises(ForgeError, match="timed out after 0.01 s"):
        repair(punched_sphere(), timeout_s=0.01)


def test_hanging_worker_is_killed_after_the_timeout(monkeypatch, tmp_path):
    pid_file = tmp_path / "pid"
    hang = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    monkeypatch.setattr(repair_module, "_worker_command", lambda in_path, out_path: [sys.executable, "-c", hang])
    with pytest.raises(ForgeError, match="timed out after 1.5 s"):
        repair(punched_sphere(), timeout_s=1.5)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, not left running in the background


def test_crashing_worker_becomes_a_forge_error(monkeypatch):
    crash = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    monkeypatch.setattr(repair_module, "_worker_command", lambda in_path, out_path: [sys.executable, "-c", crash])
    with pytest.raises(ForgeError, match="crashed"):
        repair(punched_sphere())


def test_empty_and_broken_inputs_are_refused():
    with pytest.raises(ForgeError, match="at least one triangle"):
        repair(MeshArrays(np.zeros((0, 3)), np.zeros((0, 3), np.int64)))
    sphere = trimesh.creation.icosphere(subdivisions=1)
    with pytest.raises(InputError, match="mesh.faces"):
        repair(MeshArrays(sphere.vertices, sphere.faces + 1000))
    with pytest.raises(InputError, match="timeout_s"):
        repair(MeshArrays(sphere.vertices, sphere.faces), timeout_s=0)

"""Convex collision: CoACD hulls of a concave U, the hull vertex limit, the fallbacks and UCX names."""

import numpy as np
import pytest
import trimesh

from server.errors import ForgeError, InputError
from server.meshdata import MeshArrays
from server.stages import collision
from server.stages.collision import convex_collision, simplified_hull, ucx_names


def u_shape() -> trimesh.Trimesh:
    """A closed U (two uprights on a base), 6 x 2 x 4 voxels of 1 m, as a marching-cubes surface."""
    voxels = np.zeros((6, 2, 4), bool)
    voxels[:, :, 0] = True
    voxels[0, :, :] = True
    voxels[-1, :, :] = True
    mesh = trimesh.voxel.ops.matrix_to_marching_cubes(voxels)
    assert mesh.is_volume
    return mesh


def outside_distance(hull: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """How far each point lies outside a convex hull (0 or less inside): the largest plane distance."""
    offsets = np.einsum("ij,ij->i", hull.face_normals, hull.triangles[:, 0])
    return (points @ hull.face_normals.T - offsets).max(axis=1)


@pytest.fixture(scope="module")
def u_hulls():
    mesh = u_shape()
    return mesh, convex_collision(MeshArrays(mesh.vertices, mesh.faces), max_hulls=4, max_hull_vertices=32)


def test_coacd_splits_a_concave_u_into_small_closed_convex_hulls(u_hulls):
    mesh, hulls = u_hulls
    assert all(h.info["method"] == "coacd" and h.info["reason"] is None for h in hulls)
    assert 2 <= len(hulls) <= 4
    for hull in hulls:
        shape = trimesh.Trimesh(hull.vertices, hull.faces, process=False)
        assert shape.is_watertight and shape.is_winding_consistent and shape.is_convex
        assert shape.volume > 0
        assert len(hull.vertices) <= 32


def test_hulls_follow_the_concavity_and_cover_the_surface(u_hulls):
    mesh, hulls = u_hulls
    shapes = [trimesh.Trimesh(h.vertices, h.faces) for h in hulls]
    total = sum(s.volume for s in shapes)
    assert abs(total / mesh.volume - 1) < 0.3
    # One hull of the whole U would also fill the gap between the uprights.
    assert total < 0.8 * mesh.convex_hull.volume
    points, _ = trimesh.sample.sample_surface(mesh, 2000, seed=3)
    gap = np.min([outside_distance(s, points) for s in shapes], axis=0)
    diagonal = np.linalg.norm(mesh.extents)
    assert gap.max() < 0.02 * diagonal


def test_simplified_hull_respects_the_vertex_limit_and_keeps_the_shape():
    sphere = trimesh.creation.icosphere(subdivisions=3)  # 642 vertices on the hull
    hull = simplified_hull(sphere.vertices, 24)
    assert len(hull.vertices) <= 24
    assert hull.is_watertight and hull.is_convex
    assert hull.volume > 0.85 * sphere.volume


def test_timeout_falls_back_to_one_convex_hull_of_the_mesh():
    mesh = u_shape()
    hulls = convex_collision(MeshArrays(mesh.vertices, mesh.faces), timeout_s=0.01)
    assert len(hulls) == 1
    info = hulls[0].info
    assert info["method"] == "convex_hull_fallback" and "timeout_s=0.01" in info["reason"]
    hull = trimesh.Trimesh(hulls[0].vertices, hulls[0].faces)
    assert hull.is_watertight and hull.is_convex
    assert outside_distance(hull, mesh.vertices).max() < 1e-6
    assert hull.volume == pytest.approx(mesh.convex_hull.volume, rel=1e-6)


def test_fallback_hull_is_simplified_to_the_vertex_limit(monkeypatch):
    monkeypatch.setattr(collision, "_WORKER", "import sys; sys.exit('no coacd here')")
    sphere = trimesh.creation.icosphere(subdivisions=3)
    hulls = convex_collision(MeshArrays(sphere.vertices, sphere.faces), max_hull_vertices=16)
    assert len(hulls) == 1 and hulls[0].info["method"] == "convex_hull_fallback"
    assert "no coacd here" in hulls[0].info["reason"] and "exit code 1" in hulls[0].info["reason"]
    assert len(hulls[0].vertices) <= 16
    hull = trimesh.Trimesh(hulls[0].vertices, hulls[0].faces)
    assert hull.is_watertight and hull.is_convex and hull.volume > 0.7 * sphere.volume


def test_flat_mesh_has_no_collision(monkeypatch):
    monkeypatch.setattr(collision, "_WORKER", "import sys; sys.exit(1)")
    quad = MeshArrays(np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]), np.array([[0, 1, 2], [0, 2, 3]]))
    with pytest.raises(ForgeError, match="flat"):
        convex_collision(quad)


def test_arguments_are_checked_before_any_work():
    box = trimesh.creation.box()
    mesh = MeshArrays(box.vertices, box.faces)
    with pytest.raises(InputError) as error:
        convex_collision(mesh, max_hull_vertices=300)
    assert error.value.argument == "max_hull_vertices"
    with pytest.raises(InputError) as error:
        convex_collision(mesh, threshold=0)
    assert error.value.argument == "threshold"
    with pytest.raises(InputError) as error:
        convex_collision(MeshArrays(np.zeros((0, 3)), np.zeros((0, 3))))
    assert error.value.argument == "mesh"


def test_ucx_names_follow_the_ue_convention():
    assert ucx_names("SM_Crate", 3) == ["UCX_SM_Crate_00", "UCX_SM_Crate_01", "UCX_SM_Crate_02"]
    assert ucx_names("SM_Crate", 0) == []
    with pytest.raises(InputError) as error:
        ucx_names("SM Crate!", 2)
    assert error.value.argument == "render_mesh_name"
    with pytest.raises(InputError):
        ucx_names("SM_Crate", -1)


def test_a_cancel_stops_coacd_at_its_next_poll_and_kills_it(monkeypatch):
    from server.errors import Cancelled

    torus = trimesh.creation.torus(1.0, 0.3, major_sections=64, minor_sections=32)  # CoACD takes seconds on it
    started = []
    real_popen = collision.subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    def cancelled():
        raise Cancelled("asset x was cancelled")

    monkeypatch.setattr(collision.subprocess, "Popen", popen)
    with pytest.raises(Cancelled, match="was cancelled"):
        convex_collision(MeshArrays(torus.vertices, torus.faces), max_hulls=8, check=cancelled)
    (proc,) = started
    assert proc.returncode is not None and proc.returncode < 0, "the CoACD process was killed, not left running"



def test_hulls_grow_over_what_the_proxy_cut_off_but_not_across_gaps():
    box = trimesh.convex.convex_hull(trimesh.creation.box(extents=(1, 1, 1)).vertices)
    near = np.array([[0.51, 0.0, 0.0], [0.0, 0.0, 0.515]])  # just outside two faces
    far = np.array([[2.0, 0.0, 0.0]])  # across a gap: left out
    (grown,), taken = collision.cover_points([box], np.vstack([near, far, box.vertices]), 32, reach=0.05)
    assert taken == 2
    assert outside_distance(grown, near).max() < 1e-9
    assert outside_distance(grown, far)[0] > 1.0


def test_every_vertex_of_a_torus_lies_in_or_near_its_hulls():
    torus = trimesh.creation.torus(1.0, 0.3, major_sections=48, minor_sections=16)
    hulls = convex_collision(MeshArrays(torus.vertices, torus.faces), max_hulls=12, max_hull_vertices=32)
    assert all(h.info["method"] == "coacd" for h in hulls) and 4 <= len(hulls) <= 12
    shapes = [trimesh.Trimesh(h.vertices, h.faces) for h in hulls]
    gap = np.min([outside_distance(s, torus.vertices) for s in shapes], axis=0)
    assert gap.max() < 0.01 * np.linalg.norm(torus.extents)
    # the hole stays open: the centre of the torus is in no hull
    assert np.min([outside_distance(s, np.zeros((1, 3))) for s in shapes]) > 0.3


# A stand-in for CoACD: the fine run (threshold 0.05) answers after a while with one part, the coarse run
# (threshold 0.1) at once with `count` parts; each part is a small tetrahedron.
SLOW_FINE_WORKER = r"""
import json, sys, time
import numpy as np
params = json.loads(sys.argv[1])
coarse = params["threshold"] >= 0.1
if not coarse:
    time.sleep(1.5)
count = {count} if coarse else 1
tetra = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
out = {{}}
for i in range(count):
    out[f"v{{i}}"], out[f"f{{i}}"] = tetra + 2 * i, np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
np.savez(sys.argv[3], **out)
"""


@pytest.mark.parametrize("coarse_parts, expected", [(4, 4), (2, 1)])
def test_a_slow_run_gives_way_to_a_coarse_one_only_when_that_fills_the_hull_budget(monkeypatch, coarse_parts,
                                                                                    expected):
    monkeypatch.setattr(collision, "_WORKER", SLOW_FINE_WORKER.format(count=coarse_parts))
    monkeypatch.setattr(collision, "RACE_AFTER_S", 0.2)
    tetra = trimesh.creation.box()
    parts = collision._run_coacd(tetra.vertices, tetra.faces, 30, None, coarse={"threshold": 0.1},
                                 threshold=0.05, max_convex_hull=4)
    assert len(parts) == expected


def box_points(low, high) -> np.ndarray:
    return trimesh.creation.box(bounds=np.array([low, high], float)).vertices


def test_merging_joins_the_pieces_of_one_box_before_bridging_a_gap():
    # Two halves of one box side by side, and a third box 5 m away: merged to two, the halves join.
    parts = [box_points([0, 0, 0], [1, 1, 1]), box_points([1, 0, 0], [2, 1, 1]), box_points([7, 0, 0], [8, 1, 1])]
    merged = collision.merge_hulls(parts, 2)
    assert len(merged) == 2
    extents = sorted(float(np.ptp(m[:, 0])) for m in merged)
    assert extents == pytest.approx([1.0, 2.0])
    volumes = sorted(trimesh.convex.convex_hull(m).volume for m in merged)
    assert volumes == pytest.approx([1.0, 2.0])


def test_merging_pairs_separate_islands_when_no_neighbours_are_left():
    # Five unit cubes in a row with 3 m gaps: no two are neighbours, yet the count must come down to three.
    parts = [box_points([4 * i, 0, 0], [4 * i + 1, 1, 1]) for i in range(5)]
    merged = collision.merge_hulls(parts, 3)
    assert len(merged) == 3
    # every input point is kept inside some merged hull
    hulls = [trimesh.convex.convex_hull(m) for m in merged]
    everything = np.vstack(parts)
    assert np.min([outside_distance(h, everything) for h in hulls], axis=0).max() < 1e-9


def test_merging_leaves_few_enough_parts_alone_and_survives_flat_ones():
    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)  # no volume
    parts = [box_points([0, 0, 0], [1, 1, 1]), square + [0, 0, 1.0], box_points([0, 0, 2], [1, 1, 3])]
    assert len(collision.merge_hulls(parts, 3)) == 3
    merged = collision.merge_hulls(parts, 2)
    assert len(merged) == 2
    # the flat square touching the first cube's top costs no volume to take in
    assert any(np.isclose(np.ptp(m[:, 2]), 1.0) and len(m) == 8 and m[:, 2].min() == 0 for m in merged)


def test_a_proxy_that_comes_out_open_is_made_again_at_another_size(monkeypatch):
    real_decimate, asked, runs = collision.decimate, [], []

    def decimate(vertices, faces, target):
        asked.append(target)
        v, f = real_decimate(vertices, faces, target)
        return (v, f[1:]) if len(asked) == 1 else (v, f)  # the first proxy has a hole

    def run_coacd(vertices, faces, timeout_s, check, coarse=None, on_start=None, **params):
        runs.append(params["preprocess_mode"])
        return [(vertices, faces)]

    monkeypatch.setattr(collision, "decimate", decimate)
    monkeypatch.setattr(collision, "_run_coacd", run_coacd)
    mesh = u_shape()
    hulls = convex_collision(MeshArrays(mesh.vertices, mesh.faces), decimate_to=100)
    assert asked[:2] == [100, 120] and runs == ["off"] and hulls[0].info["method"] == "coacd"

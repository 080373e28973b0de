"""Decimation: preview and final reach the budget, deviation is measured right and grows with the cut."""

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from server.errors import InputError
from server.meshdata import MeshArrays
from server.stages.decimate import decimate, decimate_preview, surface_deviation, target_from_preset

PRESETS = Path(__file__).resolve().parents[1] / "server" / "presets"
RED = (255, 0, 0, 255)
BLUE = (0, 0, 255, 255)


@pytest.fixture(scope="module")
def sphere():
    """Unit sphere of 20480 triangles with a little radial noise, red above the equator, blue below."""
    shape = trimesh.creation.icosphere(subdivisions=5)
    rng = np.random.default_rng(1)
    vertices = shape.vertices * (1 + 0.001 * rng.standard_normal((len(shape.vertices), 1)))
    colors = np.where(vertices[:, 2:3] > 0, RED, BLUE).astype(np.uint8)
    return MeshArrays(vertices, shape.faces, colors=colors, uv=vertices[:, :2] * 0.5 + 0.5)


@pytest.mark.parametrize("simplify", [decimate, decimate_preview])
def test_face_count_reaches_the_target(sphere, simplify):
    for target in (2000, 500):
        low = simplify(sphere, target)
        assert abs(low.face_count - target) <= 0.03 * target
        assert low.to_trimesh().is_watertight
        assert low.uv is None and low.normals is None
    record = low.info["decimate_preview" if simplify is decimate_preview else "decimate"]
    assert record["faces_before"] == sphere.face_count and record["faces_after"] == low.face_count


def test_boundary_is_kept_when_asked():
    sphere = trimesh.creation.icosphere(subdivisions=4)
    bowl = sphere.faces[sphere.vertices[sphere.faces].mean(axis=1)[:, 2] > 0]
    mesh = MeshArrays(sphere.vertices, bowl)
    edges = trimesh.Trimesh(sphere.vertices, bowl, process=False).edges_sorted
    rim = sphere.vertices[np.unique(edges[trimesh.grouping.group_rows(edges, require_count=1)])]
    kept = decimate(mesh, 40)
    assert not kept.info["decimate"]["reached_target"] and kept.face_count > 40
    # every vertex of the rim survives where it was
    assert len(rim) > 50 and cKDTree(kept.vertices).query(rim)[0].max() < 1e-9
    free = decimate(mesh, 40, preserve_boundary=False)
    assert free.info["decimate"]["reached_target"] and free.face_count <= 42


def test_final_decimation_keeps_colours_and_the_preview_does_not(sphere):
    final = decimate(sphere, 2000)
    z = final.vertices[:, 2]
    # a surviving vertex keeps its own colour but may move by about one collapsed edge (~0.1 here)
    assert (final.colors[z > 0.2] == RED).all() and (final.colors[z < -0.2] == BLUE).all()
    assert (final.colors[z > 0] == RED).all(axis=1).mean() > 0.95
    assert final.info["decimate"]["uv_dropped"]
    assert decimate_preview(sphere, 2000).colors is None


def test_deviation_is_small_and_grows_with_the_cut(sphere):
    gentle = surface_deviation(sphere, decimate(sphere, 2000), samples=20000)
    harsh = surface_deviation(sphere, decimate(sphere, 200), samples=20000)
    preview = surface_deviation(sphere, decimate_preview(sphere, 2000), samples=20000)
    assert set(gentle) == {"max", "mean", "rms"}
    # a 2000-triangle unit sphere sags about 1 cm between vertices at most
    assert 0 < gentle["mean"] <= gentle["rms"] <= gentle["max"] < 0.015
    assert preview["max"] < 0.015
    assert harsh["max"] > 3 * gentle["max"] and harsh["mean"] > 3 * gentle["mean"]


def test_deviation_of_known_offsets():
    inner = trimesh.creation.icosphere(subdivisions=4)
    outer = trimesh.creation.icosphere(subdivisions=4, radius=1.05)
    inner, outer = MeshArrays(inner.vertices, inner.faces), MeshArrays(outer.vertices, outer.faces)
    apart = surface_deviation(inner, outer, samples=5000)
    assert apart["max"] == pytest.approx(0.05, abs=1e-3)
    assert apart["mean"] == pytest.approx(0.05, abs=1e-3)
    same = surface_deviation(inner, inner, samples=5000)
    assert same["max"] < 1e-9


def test_target_at_or_above_the_face_count_returns_an_unchanged_copy(sphere):
    for simplify in (decimate, decimate_preview):
        same = simplify(sphere, sphere.face_count + 10)
        assert same is not sphere and same.vertices is not sphere.vertices
        assert np.array_equal(same.vertices, sphere.vertices) and np.array_equal(same.faces, sphere.faces)
        assert np.array_equal(same.colors, sphere.colors)


@pytest.mark.parametrize("target", [3, 0, -100, 2.5, "1000", True, None])
def test_bad_targets_are_refused(sphere, target):
    for simplify in (decimate, decimate_preview):
        with pytest.raises(InputError, match="target_faces"):
            simplify(sphere, target)


def test_target_from_a_real_preset():
    postprocess = json.loads((PRESETS / "prop_UE5_standard.json").read_text())["postprocess"]
    budget = postprocess["target_triangles"]
    assert target_from_preset(postprocess, 327680) == budget
    assert target_from_preset(postprocess, budget // 2) == budget // 2
    with pytest.raises(InputError, match="target_triangles"):
        target_from_preset({}, 1000)


def test_prefer_fast_keeps_a_closed_mesh_closed_with_no_more_error(sphere):
    target = max(200, sphere.face_count // 40)
    careful = decimate(sphere, target)
    quick = decimate(sphere, target, prefer_fast=True)
    assert quick.info["decimate"]["method"].startswith("fast-simplification")
    assert quick.face_count == pytest.approx(target, rel=0.05)
    assert trimesh.Trimesh(quick.vertices, quick.faces, process=False).is_watertight
    careful_error = surface_deviation(sphere, careful, samples=20000)
    quick_error = surface_deviation(sphere, quick, samples=20000)
    assert quick_error["mean"] < 1.2 * careful_error["mean"]


def test_prefer_fast_leaves_open_meshes_to_pymeshlab():
    bowl = trimesh.creation.icosphere(4)
    bowl.update_faces(bowl.triangles_center[:, 2] < 0.3)
    bowl.remove_unreferenced_vertices()
    result = decimate(MeshArrays(bowl.vertices, bowl.faces), 300, prefer_fast=True)
    assert result.info["decimate"]["method"].startswith("pymeshlab")


def thin_legged_table() -> MeshArrays:
    """A closed marching-cubes table: a slab on four legs 6 % of its height thick (about 60k triangles)."""
    from skimage import measure

    axis = np.linspace(-0.6, 0.6, 121)
    x, y, z = np.meshgrid(axis, axis, np.linspace(-0.1, 1.1, 121), indexing="ij")
    slab = np.maximum(np.maximum(np.abs(x) - 0.5, np.abs(y) - 0.5), np.abs(z - 0.95) - 0.05)
    legs = np.min([np.hypot(x - sx, y - sy) - 0.03 for sx in (-0.4, 0.4) for sy in (-0.4, 0.4)], axis=0)
    legs = np.maximum(legs, np.abs(z - 0.46) - 0.46)
    # The offset keeps the surface off the grid points, where marching cubes would leave degenerate triangles.
    vertices, faces, _, _ = measure.marching_cubes(np.minimum(slab, legs) + 1e-3, 0.0, spacing=(0.01, 0.01, 0.01))
    mesh = trimesh.Trimesh(vertices, faces)
    mesh.merge_vertices()
    assert mesh.is_watertight
    return MeshArrays(mesh.vertices, mesh.faces)


def test_the_careful_finish_has_less_error_than_quick_passes_alone():
    import fast_simplification

    table = thin_legged_table()
    target = 2000
    ours = decimate(table, target, prefer_fast=True)
    assert ours.info["decimate"]["method"] == "fast-simplification, then pymeshlab quadric collapse"
    assert trimesh.Trimesh(ours.vertices, ours.faces, process=False).is_watertight
    vertices, faces = fast_simplification.simplify(table.vertices, table.faces.astype(np.int32),
                                                   target_count=target)
    alone = MeshArrays(vertices, faces)
    assert abs(ours.face_count - alone.face_count) <= 0.05 * target
    ours_error = surface_deviation(table, ours, samples=20000)
    alone_error = surface_deviation(table, alone, samples=20000)
    assert ours_error["mean"] < 0.8 * alone_error["mean"] and ours_error["max"] < alone_error["max"]


def test_a_huge_mesh_is_reduced_early_and_stays_closed():
    from server.stages import decimate as decimate_module

    sphere = trimesh.creation.icosphere(subdivisions=6)  # 81920 triangles stand in for a huge mesh
    mesh = MeshArrays(sphere.vertices, sphere.faces)
    one_pass = decimate_module.Reduction(20000, 1, (decimate_module.REDUCE_AGGRESSIVENESS,))
    reduced = decimate_module.reduce_early(mesh, one_pass)
    assert reduced.face_count <= 20000 and reduced.info["reduce_early"]["faces_before"] == mesh.face_count
    assert reduced.info["reduce_early"]["method"] == "fast-simplification, one pass"
    assert trimesh.Trimesh(reduced.vertices, reduced.faces, process=False).is_watertight
    assert surface_deviation(mesh, reduced, samples=5000)["max"] < 0.01
    assert decimate_module.reduce_early(mesh, decimate_module.Reduction(100000, 1, (4,))) is mesh  # nothing to do


def test_the_reduction_is_careful_where_there_are_cores_for_it():
    from server.stages import decimate as decimate_module

    many = decimate_module.reduction_plan(1_500_000, cores=16)
    assert many.regions == 15 and many.faces == decimate_module.REDUCED_FACES
    assert many.aggressiveness == decimate_module.FAST_AGGRESSIVENESS
    few = decimate_module.reduction_plan(1_500_000, cores=2)
    assert few.regions == 1 and few.faces == decimate_module.REDUCED_FACES_FEW_CORES
    assert few.aggressiveness == (decimate_module.REDUCE_AGGRESSIVENESS,)
    assert decimate_module.reduction_plan(1_500_000, cores=1).regions == 1
    assert decimate_module.reduction_plan(16_000_000, cores=16).faces == 1_000_000  # a sixteenth of the input

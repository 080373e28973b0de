"""A huge mesh reduced in regions side by side: the cut, the kept borders, the stitched result, failures and cancels."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from server import child_call
from server.errors import Cancelled, ForgeError
from server.meshdata import MeshArrays
from server.stages import decimate as decimate_module
from server.stages import regions
from server.stages.decimate import surface_deviation
from server.stages.faces import closed_manifold


@pytest.fixture(scope="module")
def bumpy_torus() -> MeshArrays:
    """A closed genus-one surface of about 200k triangles with bumps of several sizes (something to keep)."""
    shape = trimesh.creation.torus(major_radius=0.4, minor_radius=0.15, major_sections=400, minor_sections=250)
    vertices = np.asarray(shape.vertices, np.float64)
    angle = np.arctan2(vertices[:, 1], vertices[:, 0])
    ring = np.stack([np.cos(angle), np.sin(angle), np.zeros_like(angle)], axis=1) * 0.4
    outward = vertices - ring
    outward /= np.linalg.norm(outward, axis=1, keepdims=True)
    bumps = 0.012 * np.sin(7 * angle) * np.cos(5 * np.arctan2(outward[:, 2], np.sum(outward * ring, axis=1)))
    bumps += 0.003 * np.sin(40 * vertices[:, 0]) * np.sin(37 * vertices[:, 1])
    return MeshArrays(vertices + outward * bumps[:, None], np.asarray(shape.faces, np.int64))


def test_the_split_is_balanced_and_covers_every_face_once():
    points = np.random.default_rng(3).normal(size=(10_001, 3)) * [5.0, 1.0, 0.2]
    parts = regions.split_faces(points, 6)
    assert len(parts) == 6
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(points)))
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 2  # any count, not only powers of two
    # The first cut is across the longest side (x): the two halves' x ranges barely overlap.
    low, high = sorted(regions.split_faces(points, 2), key=lambda half: points[half, 0].mean())
    assert points[low, 0].max() <= points[high, 0].min()


def test_the_cut_shares_exactly_the_vertices_on_two_regions(bumpy_torus):
    cut = regions._cut(bumpy_torus, 5)
    seen = {}
    for number, (indices, region, border) in enumerate(cut):
        assert np.allclose(region.vertices, bumpy_torus.vertices[indices])
        for vertex in indices:
            seen.setdefault(int(vertex), set()).add(number)
    truly_shared = {vertex for vertex, owners in seen.items() if len(owners) > 1}
    for indices, _, border in cut:
        assert {int(v) for v in indices[border]} == truly_shared & {int(v) for v in indices}
    assert sum(region.face_count for _, region, _ in cut) == bumpy_torus.face_count


def test_a_region_keeps_its_border_vertices_exactly(bumpy_torus):
    indices, region, border = regions._cut(bumpy_torus, 4)[0]
    answer = regions.reduce_region(region, border, region.face_count // 8, list(decimate_module.FAST_AGGRESSIVENESS))
    assert len(answer["faces"]) <= region.face_count // 8 * 1.05
    assert np.array_equal(answer["vertices"][answer["border_at"]], region.vertices[border])
    assert len(np.unique(answer["border_at"])) == len(border)


def test_the_regions_make_one_closed_mesh_as_near_as_one_pass(bumpy_torus):
    plan = decimate_module.Reduction(30_000, 4, decimate_module.FAST_AGGRESSIVENESS)
    reduced = decimate_module.reduce_early(bumpy_torus, plan)
    record = reduced.info["reduce_early"]
    assert record["method"].startswith("fast-simplification in 4 regions") and record["regions"] == 4
    assert "regions_failed" not in record and record["shared_vertices"] > 0
    assert abs(reduced.face_count - 30_000) <= 0.05 * 30_000
    assert closed_manifold(reduced.faces)
    torus = trimesh.Trimesh(reduced.vertices, reduced.faces, process=False)
    assert torus.is_watertight and torus.euler_number == 0  # still one ring: no hole closed, none opened
    one_pass = decimate_module.reduce_early(bumpy_torus, decimate_module.Reduction(30_000, 1, (4,)))
    ours, theirs = (surface_deviation(bumpy_torus, mesh, samples=20_000) for mesh in (reduced, one_pass))
    assert ours["mean"] <= 1.1 * theirs["mean"] and ours["max"] <= 1.5 * theirs["max"]


def test_a_failed_region_falls_back_to_one_pass(bumpy_torus, monkeypatch):
    def broken(*args, **kwargs):
        raise ForgeError("reducing a region failed in its process (exit 1): out of memory")

    monkeypatch.setattr(regions, "reduce_in_regions", broken)
    reduced = decimate_module.reduce_early(bumpy_torus, decimate_module.Reduction(30_000, 4, (2, 3, 5, 7)))
    record = reduced.info["reduce_early"]
    assert record["method"] == "fast-simplification, one pass" and "out of memory" in record["regions_failed"]
    assert closed_manifold(reduced.faces) and reduced.face_count <= 30_000


def test_a_cancel_stops_every_regions_process(bumpy_torus, monkeypatch):
    started = []
    real_start = child_call.start

    def recording_start(*args, **kwargs):
        started.append(real_start(*args, **kwargs))
        return started[-1]

    def cancelled():
        raise Cancelled("the job was cancelled")

    monkeypatch.setattr(child_call, "start", recording_start)
    with pytest.raises(Cancelled):
        decimate_module.reduce_early(bumpy_torus, decimate_module.Reduction(30_000, 3, (4,)), check=cancelled)
    assert len(started) == 3
    assert all(call._proc.returncode is not None for call in started)


def test_the_region_count_follows_the_cores_and_the_size():
    assert regions.region_count(1_500_000, cores=16) == 15
    assert regions.region_count(3_000_000, cores=64) == regions.MAX_REGIONS
    assert regions.region_count(1_500_000, cores=2) == 2
    assert regions.region_count(150_000, cores=16) == 1
    assert regions.usable_cores() >= 1


def test_a_closed_region_cannot_pass_off_moved_vertices_as_kept():
    sphere = trimesh.creation.icosphere(subdivisions=4)  # no open edge: nothing is a border to the passes
    with pytest.raises(ValueError, match="border vertex"):
        regions.reduce_region(MeshArrays(sphere.vertices, sphere.faces), np.arange(0, 2562, 5), 500, [4])


def test_post_processing_reduces_a_huge_mesh_in_regions(bumpy_torus, tmp_path, monkeypatch):
    from server.cache import StageCache
    from server.gameready import PostSettings, postprocess

    monkeypatch.setattr(decimate_module, "REDUCE_ABOVE", 100_000)
    monkeypatch.setattr(decimate_module, "REDUCED_FACES", 40_000)
    monkeypatch.setattr(regions, "REGION_MIN_FACES", 20_000)
    monkeypatch.setattr(regions, "usable_cores", lambda: 4)
    checked = []
    real_check = decimate_module.closed_manifold
    monkeypatch.setattr(decimate_module, "closed_manifold",
                        lambda faces: checked.append(len(faces)) or real_check(faces))
    settings = PostSettings(target_triangles=3000, texture_size=256, height_cm=None, collision=False)
    result = postprocess(bumpy_torus, "torus", settings, StageCache(tmp_path), lambda *_: None, lambda: None)
    reduced = result.report["reduction"]["faces_after"]
    assert checked.count(reduced) == 1  # checked once by the reduction, not again by the decimation
    assert "reduce" in result.report["timings_s"] and result.report["reduction"]["regions"] == 4
    assert result.deviation["reference_triangles"] == pytest.approx(40_000, rel=0.05)
    lod0 = result.lods[0]
    assert lod0.face_count <= 3000 * 1.05
    assert trimesh.Trimesh(lod0.vertices, lod0.faces).is_watertight
    assert result.deviation["mean"] < 0.001  # 1 mm on a 1.1 m ring, against the reduced reference

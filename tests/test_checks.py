"""Game-ready checklist: each check passes on a clean asset and catches the defect it is named after."""

import json

import numpy as np
import pytest
import trimesh

from server.errors import InputError
from server.meshdata import MeshArrays
from server.stages.checks import game_ready_checks, uv_overlap_fraction


def per_face_atlas(mesh: trimesh.Trimesh) -> MeshArrays:
    """Every triangle gets its own cell of a grid atlas (vertices split per face), so no UVs overlap."""
    faces = np.asarray(mesh.faces)
    side = int(np.ceil(np.sqrt(len(faces))))
    cell = np.arange(len(faces))
    corner = np.stack([cell % side, cell // side], axis=1) / side
    shape = np.array([[0.1, 0.1], [0.9, 0.1], [0.1, 0.9]]) / side
    uv = (corner[:, None, :] + shape[None]).reshape(-1, 2)
    return MeshArrays(mesh.vertices[faces].reshape(-1, 3), np.arange(faces.size).reshape(-1, 3), uv=uv)


def sphere_lods(subdivisions=(4, 3, 2)) -> list[MeshArrays]:
    lods = []
    for level in subdivisions:
        sphere = trimesh.creation.icosphere(subdivisions=level, radius=0.5)
        sphere.apply_translation((0, 0, 0.5))
        lods.append(per_face_atlas(sphere))
    return lods


def by_name(report: dict) -> dict:
    return {c["name"]: c for c in report["checks"]}


def test_clean_asset_passes_every_check_and_is_json_safe():
    lods = sphere_lods()
    hull = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
    report = game_ready_checks(lods, textures={"BC": (2048, 2048), "N": (2048, 2048)},
                               hulls=[MeshArrays(hull.vertices, hull.faces)])
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    checks = by_name(report)
    assert checks["triangles_per_lod"]["value"] == [5120, 1280, 320]
    assert checks["bounds_cm"]["value"] == pytest.approx([100, 100, 100], rel=0.01)
    assert checks["hull_count"]["value"] == 1 and checks["hull_max_vertices"]["value"] == 42
    assert {"watertight", "manifold", "flipped_faces", "uv_overlap", "uv_in_unit_square", "texture_sizes",
            "texel_density_px_per_cm", "pivot_bottom_centre", "hulls_closed_convex"} <= set(checks)
    assert json.loads(json.dumps(report)) == report
    assert all(set(c) == {"name", "ok", "value", "expected"} for c in report["checks"])


def test_flipped_face_region_on_a_closed_mesh_is_counted_exactly():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    faces = np.array(sphere.faces)
    cap = sphere.triangles_center[:, 2] > 0.6
    faces[cap] = faces[cap][:, ::-1]
    assert 0 < cap.sum() < len(faces) / 2
    report = game_ready_checks([MeshArrays(sphere.vertices, faces)], textures=None)
    check = by_name(report)["flipped_faces"]
    assert not check["ok"] and check["value"] == [int(cap.sum())]
    # The same region still counts when it is most of the mesh: the enclosed volume decides, not the vote.
    inside_out = np.array(sphere.faces)[:, ::-1]
    inside_out[cap] = sphere.faces[cap]
    check = by_name(game_ready_checks([MeshArrays(sphere.vertices, inside_out)], textures=None))["flipped_faces"]
    assert check["value"] == [len(faces) - int(cap.sum())]


def test_flipped_region_on_an_open_surface_is_the_minority():
    grid = trimesh.creation.box((1, 1, 0.01))
    plane = trimesh.Trimesh(*trimesh.remesh.subdivide_to_size(grid.vertices, grid.faces, 0.1))
    top = plane.face_normals[:, 2] > 0.9
    sheet = plane.submesh([np.nonzero(top)[0]], append=True)
    faces = np.array(sheet.faces)
    corner = (sheet.triangles_center[:, 0] > 0.3) & (sheet.triangles_center[:, 1] > 0.3)
    faces[corner] = faces[corner][:, ::-1]
    check = by_name(game_ready_checks([MeshArrays(sheet.vertices, faces)], textures=None))["flipped_faces"]
    assert 0 < corner.sum() < len(faces) / 2
    assert check["value"] == [int(corner.sum())]
    watertight = by_name(game_ready_checks([MeshArrays(sheet.vertices, faces)], textures=None))["watertight"]
    assert watertight["value"] == [False]


def test_non_manifold_edges_and_vertices():
    # Three triangles on one edge.
    fin = MeshArrays(np.array([[0, 0, 0], [1, 0, 0], [0.5, 1, 0], [0.5, -1, 0], [0.5, 0, 1.0]]),
                     np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4]]))
    value = by_name(game_ready_checks([fin], textures=None))["manifold"]["value"][0]
    assert value["non_manifold_edges"] == 1
    # Two closed tetrahedra touching at one vertex: watertight edges, one pinched vertex.
    a = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    b = a.copy()
    b.vertices = -b.vertices
    b.invert()
    bowtie = trimesh.util.concatenate([a, b])
    report = game_ready_checks([MeshArrays(bowtie.vertices, bowtie.faces)], textures=None)
    assert by_name(report)["manifold"]["value"][0] == {"non_manifold_edges": 0, "non_manifold_vertices": 1}
    assert by_name(report)["watertight"]["ok"] and not report["ok"]
    assert by_name(report)["flipped_faces"]["value"] == [0]


def test_overlapping_uvs_are_measured_and_shared_edges_are_not_overlap():
    lods = sphere_lods((3,))
    mesh = lods[0]
    assert uv_overlap_fraction(mesh.uv, mesh.faces) == 0.0
    # Two triangles sharing an edge, filling the square: no overlap.
    quad = np.array([[0, 0], [1, 0], [1, 1], [0, 1.0]])
    assert uv_overlap_fraction(quad, np.array([[0, 1, 2], [0, 2, 3]])) == 0.0
    # The second quarter of the faces stacked onto the first quarter's cells: a third of the covered
    # texels are covered twice.
    uv = mesh.uv.copy()
    quarter = len(mesh.faces) // 4
    uv[mesh.faces[quarter:2 * quarter]] = uv[mesh.faces[:quarter]]
    fraction = uv_overlap_fraction(uv, mesh.faces)
    assert 0.3 < fraction < 0.37
    check = by_name(game_ready_checks([MeshArrays(mesh.vertices, mesh.faces, uv=uv)], textures=None))["uv_overlap"]
    assert not check["ok"] and check["value"][0] == pytest.approx(fraction, abs=1e-5)


def test_uvs_outside_the_unit_square_fail():
    mesh = sphere_lods((2,))[0]
    mesh.uv[:10] += 1.5
    check = by_name(game_ready_checks([mesh], textures=None))["uv_in_unit_square"]
    assert not check["ok"] and check["value"][0] > 0


def test_texture_sizes_must_be_power_of_two_squares():
    lods = sphere_lods((2,))
    for textures, ok in (({"BC": (1024, 1024)}, True), ({"BC": (1000, 1000)}, False),
                         ({"BC": (2048, 1024)}, False), ({"BC": (2048, 2048), "ORM": (1536, 1536)}, False)):
        assert by_name(game_ready_checks(lods, textures=textures))["texture_sizes"]["ok"] is ok


def test_texel_density_of_a_one_metre_quad():
    quad = MeshArrays(np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]]) - [0.5, 0.5, 0],
                      np.array([[0, 1, 2], [0, 2, 3]]), uv=np.array([[0, 0], [1, 0], [1, 1], [0, 1.0]]))
    # 1024 px over 100 cm
    report = game_ready_checks([quad], textures={"BC": (1024, 1024)}, texel_density_target=10.24)
    check = by_name(report)["texel_density_px_per_cm"]
    assert check["ok"] and check["value"] == pytest.approx(10.24)
    check = by_name(game_ready_checks([quad], textures={"BC": (1024, 1024)}, texel_density_target=20))
    assert not check["texel_density_px_per_cm"]["ok"]


def test_lod_order_pivot_and_hull_limits_fail_when_wrong():
    lods = sphere_lods((2, 3))
    checks = by_name(game_ready_checks(lods, textures=None))
    assert not checks["triangles_per_lod"]["ok"]
    floating = sphere_lods((2,))[0]
    floating.vertices += [0.3, 0, 0.2]
    checks = by_name(game_ready_checks([floating], textures=None))
    assert not checks["pivot_bottom_centre"]["ok"]
    assert checks["pivot_bottom_centre"]["value"] == pytest.approx(
        {"centre_x_cm": 30.0, "centre_y_cm": 0.0, "min_z_cm": 20.0}, abs=1e-6)
    big = trimesh.creation.icosphere(subdivisions=2)  # 162 vertices
    checks = by_name(game_ready_checks(sphere_lods((2,)), textures=None, hulls=[MeshArrays(big.vertices, big.faces)]))
    assert not checks["hull_max_vertices"]["ok"] and checks["hull_max_vertices"]["value"] == 162
    concave = trimesh.creation.icosphere(subdivisions=1)
    concave.vertices[0] *= 0.5  # a dent
    checks = by_name(game_ready_checks(sphere_lods((2,)), textures=None,
                                       hulls=[MeshArrays(concave.vertices, concave.faces)]))
    assert not checks["hulls_closed_convex"]["ok"]


def test_arguments_are_checked():
    with pytest.raises(InputError) as error:
        game_ready_checks([], textures=None)
    assert error.value.argument == "lods"
    with pytest.raises(InputError) as error:
        game_ready_checks(sphere_lods((1,)), textures={"BC": (0, 1024)})
    assert error.value.argument == "textures['BC']"


def test_a_30k_triangle_lod0_with_two_atlas_bands_has_no_uv_overlap():
    # Wall time is not asserted here (a busy machine stretches it); this checks the measure at LOD0 scale.
    big = per_face_atlas(trimesh.creation.icosphere(subdivisions=5, radius=0.5))  # 20480 faces
    small = per_face_atlas(trimesh.creation.icosphere(subdivisions=4, radius=0.2))  # 5120 more
    faces = np.concatenate([big.faces, small.faces + len(big.vertices)])
    uv = np.concatenate([big.uv * [1, 0.66], small.uv * [1, 0.33] + [0, 0.67]])
    lod0 = MeshArrays(np.concatenate([big.vertices, small.vertices]), faces, uv=uv)
    assert lod0.face_count > 25000
    report = game_ready_checks([lod0], textures={"BC": (2048, 2048)})
    assert by_name(report)["uv_overlap"]["value"] == [0.0]


def texel_hits_one_by_one(uv, faces, resolution):
    """The overlap check's definition, texel by texel: e = A x + B y + C > 1e-6 on all three edges of a
    triangle (A, B, C from its UV corners, signed so that inside is positive) at every texel centre."""
    hits = np.zeros((resolution, resolution), int)
    centres = np.arange(resolution) + 0.5
    x, y = centres[None, :], centres[:, None]
    for corners in np.asarray(uv, np.float64)[faces] * resolution:
        (x0, y0), (x1, y1), (x2, y2) = corners
        sign = np.sign((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0))
        if abs((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)) <= 1e-12:
            continue
        inside = np.ones((resolution, resolution), bool)
        for (sx, sy), (ex, ey) in zip(corners, np.roll(corners, -1, axis=0)):
            a, b, c = (sy - ey) * sign, (ex - sx) * sign, ((ey - sy) * sx - (ex - sx) * sy) * sign
            inside &= a * x + b * y + c > 1e-6
        hits += inside
    return hits


@pytest.mark.parametrize("layout", ["random", "corners on texel centres", "corners on texel corners",
                                    "nearly flat edges", "reaching outside the square"])
def test_texel_hits_solved_per_row_equal_the_texel_by_texel_test(layout):
    from server.stages.checks import uv_texel_hits

    resolution = 48
    rng = np.random.default_rng(len(layout))
    uv = (rng.random((200, 1, 2)) + rng.normal(0, 0.08, (200, 3, 2))).reshape(-1, 2)  # small, scattered
    if layout == "corners on texel centres":
        uv = (np.floor(uv * resolution) + 0.5) / resolution
    elif layout == "corners on texel corners":
        uv = np.round(uv * 2 * resolution) / (2 * resolution)
    elif layout == "nearly flat edges":
        uv[1::3, 1] = uv[0::3, 1] + rng.normal(0, 1e-13, 200)
        uv[2::6, 0] = uv[0::6, 0] + rng.normal(0, 1e-13, 100)
    elif layout == "reaching outside the square":
        uv = uv * 1.6 - 0.3
    faces = np.concatenate([np.arange(600).reshape(-1, 3), rng.integers(0, 600, (10, 3))])
    hits = uv_texel_hits(uv, faces, resolution)
    expected = texel_hits_one_by_one(uv, faces, resolution)
    assert (expected > 1).any() and (expected == 1).any()  # the layouts overlap, so every count is exercised
    assert np.array_equal(hits, expected)


def test_texel_centres_a_hair_beside_an_edge_get_the_texel_by_texel_answer():
    # Right triangles whose legs pass about 1e-6 texel (the edge tolerance) beside texel centres: there the
    # solved run of a row and the direct test can round apart, so such rows must be tested texel by texel.
    from server.stages.checks import uv_texel_hits

    resolution, count = 48, 2000
    rng = np.random.default_rng(0)
    hair = rng.choice([0.5e-6, 1e-6, 2e-6], (count, 2)) * (1 + rng.integers(-50, 50, (count, 2)) * 1e-10)
    corner = rng.integers(8, resolution - 8, (count, 2)) + 0.5 - hair
    legs = rng.integers(1, 7, (count, 2)) * rng.choice([1.0, -1.0], (count, 2))
    uv = np.stack([corner, corner + legs * [1, 0], corner + legs * [0, 1]], axis=1).reshape(-1, 2) / resolution
    faces = np.arange(3 * count).reshape(-1, 3)
    assert np.array_equal(uv_texel_hits(uv, faces, resolution), texel_hits_one_by_one(uv, faces, resolution))

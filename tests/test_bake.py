"""CPU bake engine against Blender: MikkTSpace tangents, Cycles normal and AO bakes, and colour fidelity."""

import importlib.util
import json
import zipfile

import numpy as np
import pymeshlab
import pytest
import trimesh
from scipy import ndimage

from server.bake import tangents
from server.bake.engine import BakeSettings, bake
from server.bake.sources import SurfaceSource, sample_texture
from server.bake.tangents import vertex_tangents
from server.errors import InputError
from server.meshdata import MeshArrays
from server.stages.uv import unwrap
from tests.bake_cases import bumpy_sphere, high_poly
from tests.blender_bake import run_blender_job
from tests.measures import angles_deg

needs_bpy = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="bpy (Blender module) not installed")


def decimated(mesh, faces):
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(mesh.vertices, mesh.faces))
    meshes.meshing_decimation_quadric_edge_collapse(targetfacenum=faces, preservenormal=True, qualitythr=0.5)
    result = meshes.current_mesh()
    return MeshArrays(result.vertex_matrix(), result.face_matrix())


@pytest.fixture(scope="module")
def pair():
    high = bumpy_sphere(amplitude=0.04)
    low = unwrap(decimated(high, 600), texture_size=512)
    return high, low


@needs_bpy
def test_tangents_match_blender_mikktspace(pair, tmp_path):
    _, low = pair
    ours = vertex_tangents(low.vertices, low.faces, low.normals, low.uv)
    blender = run_blender_job("tangents", tmp_path, vertices=low.vertices, faces=low.faces, uv=low.uv,
                              normals=low.normals)
    per_loop = ours[blender["vertex"]]
    difference = angles_deg(per_loop[:, :3], blender["tangent"])
    mean, p99 = difference.mean(), np.percentile(difference, 99)
    assert mean < 0.01 and p99 < 0.1, (mean, p99)  # measured here: 0.0018 and 0.016 deg (RESULTS.md: 0.002 mean)
    assert np.mean(np.sign(per_loop[:, 3]) == np.sign(blender["sign"])) > 0.99


@needs_bpy
def test_normal_and_ao_match_cycles_selected_to_active(pair, tmp_path):
    high, low = pair
    settings = BakeSettings(size=512, max_distance=0.08, ao_samples=32, ao_distance=0.3)
    ours = bake(high_poly(high), low, settings)
    cycles = run_blender_job(
        "bake", tmp_path, high_vertices=high.vertices, high_faces=high.faces, vertices=low.vertices,
        faces=low.faces, uv=low.uv, normals=low.normals, size=np.array(512), cage=np.array(0.08),
        max_ray=np.array(0.16), margin=np.array(16), ao_samples=np.array(32), ao_distance=np.array(0.3),
        threads=np.array(2))
    # Compare inside the charts, away from their borders where the two rasterizers' edge rules differ.
    inside = ndimage.binary_erosion(ours.covered, iterations=2)
    theirs = cycles["normal"] * 2 - 1
    difference = angles_deg(ours.normal[inside], theirs[inside])
    assert difference.mean() < 0.05, difference.mean()  # measured here: 0.0067 deg (bench/RESULTS.md: 0.007 deg)
    # The bumps are really there: the maps are far from flat, so agreement is not trivial.
    assert np.percentile(angles_deg(theirs[inside], np.array([0, 0, 1.0])), 90) > 4.0
    ao_difference = np.abs(ours.ao[inside] - cycles["ao"][inside]).mean()
    assert ao_difference < 0.001, ao_difference  # measured here: 0.0002 (bench/RESULTS.md: the same)


def test_colour_fidelity_of_a_textured_mesh(tmp_path):
    """Colours sampled on a textured high poly reappear where its points land on the baked low poly."""
    high = trimesh.creation.icosphere(5)
    v = high.vertices
    uv = np.column_stack([0.5 + np.arctan2(v[:, 1], v[:, 0]) / (2 * np.pi), 0.5 + np.arcsin(np.clip(v[:, 2], -1, 1)) / np.pi])
    yy, xx = np.mgrid[0:256, 0:256] / 255.0
    texture = np.stack([xx, 0.3 + 0.4 * yy, 1 - xx * yy, np.ones_like(xx)], axis=-1)
    # Keep clear of the longitude seam, where a per-vertex UV wraps around.
    source = SurfaceSource(high.faces, uv=uv, base_texture=texture)
    low = unwrap(decimated(high, 1500), texture_size=1024)
    maps = bake(high_poly(high, source), low, BakeSettings(size=1024, max_distance=0.03, maps=("base_color",)))
    points, face = trimesh.sample.sample_surface(high, 4000, seed=3)
    keep = np.abs(np.arctan2(points[:, 1], points[:, 0])) < 2.8
    points, face = points[keep], face[keep]
    bary = trimesh.triangles.points_to_barycentric(high.triangles[face], points)
    truth = source.sample(face, bary, points)["base_color"][:, :3]
    low_mesh = trimesh.Trimesh(low.vertices, low.faces, process=False)
    closest, _, low_face = trimesh.proximity.closest_point(low_mesh, points)
    low_bary = trimesh.triangles.points_to_barycentric(low_mesh.triangles[low_face], closest)
    low_uv = np.einsum("kj,kjc->kc", low_bary, low.uv[low.faces[low_face]])
    baked = sample_texture(maps.base_color, low_uv)[:, :3]
    difference = np.abs(baked - truth).max(axis=1) * 255
    assert np.median(difference) < 0.01, np.median(difference)  # of 255 levels; measured here: 0.002


def test_ao_darkens_a_crevice():
    # Two boxes side by side with a narrow gap: the faces inside the gap see little sky.
    left = trimesh.creation.box((0.4, 1, 1), trimesh.transformations.translation_matrix((-0.25, 0, 0)))
    right = trimesh.creation.box((0.4, 1, 1), trimesh.transformations.translation_matrix((0.25, 0, 0)))
    both = trimesh.util.concatenate([left, right])
    low = unwrap(MeshArrays(both.vertices, both.faces), texture_size=256)
    maps = bake(high_poly(both), low, BakeSettings(size=256, max_distance=0.01, ao_samples=64, ao_distance=0.5))
    from server.bake.uvraster import rasterize_uv

    coverage = rasterize_uv(low.uv, low.faces, 256)
    points = coverage.interpolate(low.vertices, low.faces)
    ao = maps.ao[coverage.rows, coverage.cols]
    in_gap = (np.abs(points[:, 0]) < 0.06) & (np.abs(points[:, 1]) < 0.3) & (np.abs(points[:, 2]) < 0.3)
    outer = np.abs(points[:, 0]) > 0.44
    assert in_gap.sum() > 50 and outer.sum() > 50
    assert ao[in_gap].mean() < 0.5 < 0.9 < ao[outer].mean()


def test_bad_settings_are_refused(pair):
    high, low = pair
    with pytest.raises(InputError, match="texture_size=1000"):
        bake(high_poly(high), low, BakeSettings(size=1000))
    with pytest.raises(InputError, match="low poly"):
        bake(high_poly(high), MeshArrays(low.vertices, low.faces), BakeSettings(size=256))


def test_a_cancel_stops_the_cpu_bake_between_ray_batches(pair):
    from server.errors import Cancelled

    high, low = pair
    settings = dict(size=256, max_distance=0.03, ao_samples=8, ao_distance=0.3)
    calls = []
    bake(high_poly(high), low, BakeSettings(**settings), "cpu", lambda: calls.append(1))
    # Asked before each step and each ray batch: at least once per AO direction, so never a whole bake late.
    assert len(calls) >= settings["ao_samples"] + 3
    asked = []

    def cancel_on_the_fifth_call():
        asked.append(1)
        if len(asked) == 5:
            raise Cancelled("asset x was cancelled")

    with pytest.raises(Cancelled):
        bake(high_poly(high), low, BakeSettings(**settings), "cpu", cancel_on_the_fifth_call)
    assert len(asked) == 5


def test_sampling_in_float32_keeps_the_8_bit_values():
    """Sources blend in float32: against the same blend in float64 a value moves by at most one level of 255,
    and only where it lay within float32's rounding of a half level."""
    from tests.bake_cases import painted_source

    mesh = bumpy_sphere(subdivisions=5, amplitude=0.04)
    faces = np.asarray(mesh.faces)
    rng = np.random.default_rng(5)
    painted = painted_source(mesh)
    uv = rng.random((len(mesh.vertices), 2))
    textured = SurfaceSource(faces, uv=uv, base_texture=rng.random((64, 64, 4)), mr_texture=rng.random((32, 32, 4)),
                             base_factor=(0.9, 0.8, 0.7, 1.0), metallic_factor=0.9, roughness_factor=0.7)
    count = 300_000
    face = rng.integers(0, len(faces), count)
    bary = rng.random((count, 3))
    bary /= bary.sum(axis=1, keepdims=True)

    def blend(per_vertex):
        return np.einsum("kj,kj...->k...", bary, np.asarray(per_vertex, np.float64)[faces[face]])

    at_uv = blend(uv)
    packed = sample_texture(textured.mr_texture, at_uv)
    expected = [
        (painted, {"base_color": blend(painted.colors), "metallic": blend(painted.metallic_vertex),
                   "roughness": blend(painted.roughness_vertex)}),
        (textured, {"base_color": np.array(textured.base_factor) * sample_texture(textured.base_texture, at_uv),
                    "metallic": 0.9 * packed[:, 2], "roughness": 0.7 * packed[:, 1]}),
    ]
    for source, reference in expected:
        sampled = source.sample(face, bary, np.zeros((count, 3)))
        for name, values in reference.items():
            assert sampled[name].dtype == np.float32, name
            levels = np.abs(np.rint(sampled[name] * 255.0) - np.rint(np.clip(values, 0, 1) * 255.0))
            assert levels.max() <= 1 and np.mean(levels > 0) < 1e-4, (name, levels.max(), np.mean(levels > 0))


@pytest.fixture
def baked_asset(tmp_path, monkeypatch):
    """A small vertex-coloured mesh imported, post-processed and baked through the API: (api, asset)."""
    from server.api import ForgeApi
    from server.config import load_settings
    from server.owners import LOCAL

    monkeypatch.setenv("O3F_WORKSPACE", str(tmp_path / "ws"))
    api = ForgeApi(load_settings())
    mesh = bumpy_sphere(subdivisions=4, amplitude=0.1)
    mesh.visual.vertex_colors = np.column_stack([np.rint(127 + 120 * np.sin(3 * mesh.vertices)),
                                                 np.full(len(mesh.vertices), 255)]).astype(np.uint8)
    mesh.export(tmp_path / "ball.ply")
    asset_id = json.loads(api.import_mesh(str(tmp_path / "ball.ply"), "Ball", {"up_axis": "Z"})[0])["asset_id"]
    api.postprocess(asset_id, {"target_triangles": 1200, "texture_size": 256, "collision": False})
    api.bake(asset_id, {"texture_size": 256, "ao_samples": 2, "engine": "cpu"})
    return api, api.ctx.store.open(asset_id, LOCAL)


def exported_checks(api, asset) -> tuple[dict, str]:
    """The checklist in the exported manifest, and where the export run says it came from."""
    _, package = api.export(asset.asset_id, "ue5", {"use_fbx": False})
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    run = [run for run in asset.read()["stages"] if run["stage"] == "export"][-1]
    return manifest["checks"], run["parameters"]["checks_from"]


def checklist_now(asset) -> dict:
    from server.runners.stored import game_ready_checks, load_game_mesh, load_textures

    lods, hulls, state = load_game_mesh(asset)
    return game_ready_checks(lods, hulls, state, load_textures(asset))


def test_export_takes_the_checklist_the_bake_recorded_while_its_inputs_are_unchanged(baked_asset):
    from server.asset import POSTPROCESS_STATE

    api, asset = baked_asset
    checks, came_from = exported_checks(api, asset)
    assert came_from == "bake" and checks == checklist_now(asset)
    assert any(check["name"] == "pivot_bottom_centre" for check in checks["checks"])
    # Post-processing state changed after the bake (same LOD0, so the maps still fit): checked again.
    path = asset.folder / POSTPROCESS_STATE
    state = json.loads(path.read_text())
    state["settings"]["pivot"] = "custom"
    path.write_text(json.dumps(state))
    checks, came_from = exported_checks(api, asset)
    assert came_from == "computed" and checks == checklist_now(asset)
    assert not any(check["name"].startswith("pivot") for check in checks["checks"])


def test_the_checklist_digest_follows_every_input_it_reads():
    from server.runners.bake import checklist_digest

    def inputs():
        lods = [MeshArrays(np.eye(3), np.array([[0, 1, 2]]), uv=np.eye(3)[:, :2].copy()) for _ in range(2)]
        hulls = [MeshArrays(np.eye(3) * 2, np.array([[0, 1, 2]]))]
        return lods, hulls, {"settings": {"pivot": "bottom_centre"}}, {"ao": np.zeros((8, 8))}

    same = checklist_digest(*inputs())
    assert checklist_digest(*inputs()) == same
    changes = [lambda l, h, s, t: l[1].uv.__setitem__((0, 0), 0.5), lambda l, h, s, t: h.pop(),
               lambda l, h, s, t: s["settings"].update(pivot="centre"), lambda l, h, s, t: t.update(ao=np.zeros((4, 4))),
               lambda l, h, s, t: l.pop()]
    for change in changes:
        changed = inputs()
        change(*changed)
        assert checklist_digest(*changed) != same


def test_threaded_vertex_normals_equal_trimeshs_angle_weighted_ones(monkeypatch):
    shape = trimesh.creation.icosphere(subdivisions=6)  # 81,920 faces: several parts with a small chunk
    shape.vertices += np.random.default_rng(3).normal(scale=0.002, size=shape.vertices.shape)
    faces = np.vstack([shape.faces, [[0, 0, 1]]])  # a degenerate face adds nothing
    expected = trimesh.Trimesh(shape.vertices, shape.faces, process=False).vertex_normals
    monkeypatch.setattr(tangents, "NORMAL_CHUNK", 10_000)
    for workers in (1, 3):
        ours = tangents.vertex_normals(shape.vertices, faces, workers=workers)
        angle = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", ours, expected), -1, 1)))
        assert angle.max() < 1e-4
    lonely = tangents.vertex_normals(np.vstack([shape.vertices, [[5.0, 5, 5]]]), shape.faces)
    assert np.all(lonely[-1] == 0)


def test_rasterizing_in_chunks_on_threads_finds_the_same_texels(monkeypatch):
    from server.bake import uvraster

    shape = trimesh.creation.icosphere(subdivisions=4)
    unwrapped = unwrap(MeshArrays(shape.vertices, shape.faces), texture_size=512)
    monkeypatch.setattr(uvraster, "RASTER_THREADS", 1)
    whole = uvraster.rasterize_uv(unwrapped.uv, unwrapped.faces, 512)
    monkeypatch.setattr(uvraster, "RASTER_THREADS", 3)
    monkeypatch.setattr(uvraster, "MIN_CHUNK", 1000)
    chunked = uvraster.rasterize_uv(unwrapped.uv, unwrapped.faces, 512)
    assert len(whole.face) > 50_000
    for name in ("rows", "cols", "face", "bary"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name))

"""CUDA bake engine against the CPU reference: the same maps within the issue's limits (skips without CUDA)."""

import numpy as np
import pytest
import trimesh

from server.bake.engine import BakeSettings, bake, bake_engine_report, resolve_engine
from server.bake.gpu_runtime import cuda_engine_status
from server.bake.sources import SurfaceSource
from server.errors import InputError
from server.meshdata import MeshArrays
from server.stages.uv import unwrap
from tests.bake_cases import bumpy_sphere, high_poly, low_poly, painted_source, parity

AVAILABLE, REASON = cuda_engine_status()
needs_cuda = pytest.mark.skipif(not AVAILABLE, reason=f"the CUDA bake engine cannot run here: {REASON}")

# The parity limits: normal maps within 1 degree (mean), base colour within 2 of 255 levels
# (median), AO within 0.03 (mean absolute).
NORMAL_DEG, COLOUR_LEVELS, AO_ABS = 1.0, 2.0, 0.03


@pytest.fixture(scope="module")
def painted_pair():
    mesh = bumpy_sphere(6)
    return high_poly(mesh, painted_source(mesh)), low_poly(mesh, 2000, 1024)


def both_engines(high, low, settings):
    return bake(high, low, settings, "cpu"), bake(high, low, settings, "cuda")


def assert_parity(figures, ao=True):
    print({k: round(v, 4) for k, v in figures.items()})
    assert figures["coverage_mismatch"] < 0.01
    assert figures["normal_mean_deg"] < NORMAL_DEG
    assert figures["base_color_median_levels"] <= COLOUR_LEVELS
    if ao:
        assert figures["ao_mean_abs"] < AO_ABS


def test_auto_falls_back_to_the_cpu_and_a_named_cuda_engine_says_why():
    rows = {row["name"]: row for row in bake_engine_report()}
    assert rows["cpu"]["available"] and rows["cuda"]["available"] == AVAILABLE
    assert REASON in rows["cuda"]["reason"]
    assert rows["auto"]["reason"] == f"uses {'cuda' if AVAILABLE else 'cpu'} here"
    if AVAILABLE:
        assert resolve_engine("auto") == "cuda"
        return
    assert resolve_engine("auto") == "cpu"
    with pytest.raises(InputError, match="CUDA engine cannot run here"):
        resolve_engine("cuda")


def test_auto_bakes_on_the_cpu_when_the_gpu_path_fails_and_a_named_cuda_reports_it(monkeypatch):
    from server.bake import engine

    mesh = bumpy_sphere(3)
    high, low = high_poly(mesh), low_poly(mesh, 300, 256)

    def broken(*args):
        raise RuntimeError("nvrtc: library not found")

    monkeypatch.setattr(engine, "resolve_engine", lambda name, argument="engine": "cuda")
    monkeypatch.setattr(engine, "_bake_on_gpu", broken)
    maps = bake(high, low, BakeSettings(size=256, maps=("normal",)), "auto")
    assert maps.stats["engine"] == "cpu" and "nvrtc" in maps.stats["cuda_fallback"]
    assert maps.covered.mean() > 0.3
    with pytest.raises(RuntimeError, match="nvrtc"):
        bake(high, low, BakeSettings(size=256, maps=("normal",)), "cuda")


@needs_cuda
def test_every_map_matches_the_cpu_engine(painted_pair):
    high, low = painted_pair
    cpu, gpu = both_engines(high, low, BakeSettings(size=1024, max_distance=0.05, ao_distance=0.3))
    figures = parity(cpu, gpu)
    assert_parity(figures)
    assert figures["metallic_mean_abs"] < 0.01 and figures["roughness_mean_abs"] < 0.01
    assert gpu.stats["engine"] == "cuda" and cpu.stats["engine"] == "cpu"
    # The maps carry real content, so agreement is not trivial.
    assert np.percentile(np.abs(gpu.normal[gpu.covered][:, :2]).max(axis=1), 90) > 0.05
    assert gpu.ao[gpu.covered].std() > 0.01


@needs_cuda
def test_missed_cage_rays_fall_back_to_the_closest_surface(painted_pair):
    high, low = painted_pair
    cpu, gpu = both_engines(high, low, BakeSettings(size=512, max_distance=0.002, maps=("normal", "base_color")))
    assert gpu.stats["cage_misses"] > 0.05 * gpu.stats["texels"]
    assert_parity(parity(cpu, gpu), ao=False)


@needs_cuda
def test_textured_high_poly_colours_match():
    mesh = trimesh.creation.icosphere(5)
    v = mesh.vertices
    uv = np.column_stack([0.5 + np.arctan2(v[:, 1], v[:, 0]) / (2 * np.pi),
                          0.5 + np.arcsin(np.clip(v[:, 2], -1, 1)) / np.pi])
    yy, xx = np.mgrid[0:256, 0:256] / 255.0
    texture = np.stack([xx, 0.3 + 0.4 * yy, 1 - xx * yy, np.ones_like(xx)], axis=-1)
    mr = np.stack([np.zeros_like(xx), 0.2 + 0.6 * xx, yy, np.ones_like(xx)], axis=-1)
    source = SurfaceSource(mesh.faces, uv=uv, base_texture=texture, mr_texture=mr, roughness_factor=1.0,
                           metallic_factor=1.0)
    low = low_poly(mesh, 1500, 1024)
    cpu, gpu = both_engines(high_poly(mesh, source), low,
                            BakeSettings(size=1024, max_distance=0.03, maps=("base_color", "metallic", "roughness")))
    figures = parity(cpu, gpu)
    print(figures)
    assert figures["base_color_median_levels"] <= COLOUR_LEVELS
    assert figures["metallic_mean_abs"] < 0.01 and figures["roughness_mean_abs"] < 0.01


@needs_cuda
def test_ao_darkens_a_crevice_as_on_the_cpu():
    left = trimesh.creation.box((0.4, 1, 1), trimesh.transformations.translation_matrix((-0.25, 0, 0)))
    right = trimesh.creation.box((0.4, 1, 1), trimesh.transformations.translation_matrix((0.25, 0, 0)))
    both = trimesh.util.concatenate([left, right])
    low = unwrap(MeshArrays(both.vertices, both.faces), texture_size=256)
    settings = BakeSettings(size=256, max_distance=0.01, ao_samples=64, ao_distance=0.5)
    cpu, gpu = both_engines(high_poly(both), low, settings)
    covered = cpu.covered & gpu.covered
    assert np.abs(cpu.ao[covered] - gpu.ao[covered]).mean() < AO_ABS
    assert gpu.ao[covered].min() < 0.5
    assert np.median(gpu.ao[covered]) > 0.9


@needs_cuda
def test_bvh_queries_match_embree_and_trimesh():
    import torch

    from server.bake.cpu import RayScene
    from server.bake.gpu_bvh import TriangleBVH

    mesh = bumpy_sphere(5)
    rng = np.random.default_rng(7)
    origins = rng.uniform(-1.5, 1.5, (20000, 3))
    directions = rng.normal(size=(20000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    cpu_face, _, cpu_t = RayScene(mesh.vertices, mesh.faces).first_hits(origins, directions, 2.0)
    bvh = TriangleBVH(mesh.vertices, mesh.faces)
    cuda = torch.device("cuda")
    face, _, t = bvh.first_hits(torch.tensor(origins, device=cuda), torch.tensor(directions, device=cuda), 2.0)
    face, t = face.cpu().numpy(), t.cpu().numpy()
    assert (cpu_face >= 0).mean() > 0.2
    assert (face == cpu_face).mean() > 0.999
    hit = (face >= 0) & (cpu_face >= 0)
    assert np.abs(t[hit] - cpu_t[hit]).max() < 1e-4
    blocked = bvh.occluded(torch.tensor(origins, device=cuda), torch.tensor(directions, device=cuda), 2.0).cpu().numpy()
    assert (blocked == (cpu_face >= 0)).mean() > 0.999
    points = rng.uniform(-1.3, 1.3, (3000, 3))
    _, distance, _ = trimesh.proximity.closest_point(mesh, points)
    _, _, gpu_distance = bvh.closest_points(torch.tensor(points, device=cuda))
    assert np.abs(gpu_distance.cpu().numpy() - distance).max() < 1e-4


@needs_cuda
def test_a_generators_attribute_volume_bakes_the_same(painted_pair):
    from server.generators.volume import AttributeVolume, volume_source

    high, low = painted_pair
    size = 0.02
    cells = np.unique(np.floor(high.vertices / size).astype(int), axis=0)  # the voxels the surface passes
    centres = (cells + 0.5) * size
    values = {"base_color": 0.5 + 0.5 * np.sin(4 * centres), "metallic": (centres[:, :1] > 0).astype(float),
              "roughness": 0.5 + 0.4 * np.cos(3 * centres[:, 1:2]), "alpha": np.ones((len(cells), 1))}
    volume = AttributeVolume(cells, values, voxel_size=size, origin=np.zeros(3))
    source_high = type(high)(high.vertices, high.faces, high.normals, volume_source(volume))
    cpu, gpu = both_engines(source_high, low, BakeSettings(size=512, max_distance=0.05,
                                                           maps=("base_color", "metallic", "roughness")))
    figures = parity(cpu, gpu)
    print(figures)
    assert figures["base_color_median_levels"] <= COLOUR_LEVELS
    assert figures["metallic_mean_abs"] < 0.01 and figures["roughness_mean_abs"] < 0.01
    assert gpu.base_color[gpu.covered][:, :3].std() > 0.05


@needs_cuda
def test_bvh_edge_cases_axis_aligned_rays_one_triangle_and_degenerate_faces():
    import torch

    from server.bake.cpu import RayScene
    from server.bake.gpu_bvh import TriangleBVH

    cuda = torch.device("cuda")
    # A box: flat, axis-aligned faces hit by axis-aligned rays, some starting exactly on a face's plane.
    box = trimesh.creation.box((1.0, 1.0, 1.0))
    rng = np.random.default_rng(11)
    origins = np.column_stack([rng.uniform(-0.45, 0.45, 600), rng.uniform(-0.45, 0.45, 600), np.full(600, 2.0)])
    origins[:100, 0] = 0.5  # on the +X face's plane
    directions = np.tile([0.0, 0.0, -1.0], (600, 1))
    bvh = TriangleBVH(box.vertices, box.faces)
    face, bary, t = bvh.first_hits(torch.tensor(origins, device=cuda), torch.tensor(directions, device=cuda), 5.0)
    _, _, cpu_t = RayScene(box.vertices, box.faces).first_hits(origins[100:], directions[100:], 5.0)
    assert (face.cpu().numpy() >= 0).all() and np.allclose(t.cpu().numpy(), 1.5, atol=1e-5)
    assert np.allclose(cpu_t, 1.5, atol=1e-5)  # Embree agrees away from the box's edge
    assert np.allclose(bary.sum(dim=1).cpu().numpy(), 1.0, atol=1e-5)

    # One triangle: the root is a leaf.
    single = TriangleBVH(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0.0]]), np.array([[0, 1, 2]]))
    face, bary, t = single.first_hits(torch.tensor([[0.25, 0.25, 1.0], [2.0, 2.0, 1.0]], device=cuda),
                                      torch.tensor([[0, 0, -1.0], [0, 0, -1.0]], device=cuda), 3.0)
    assert face.tolist() == [0, -1] and abs(float(t[0]) - 1.0) < 1e-6
    assert np.allclose(bary[0].cpu().numpy(), [0.5, 0.25, 0.25], atol=1e-6)

    # Degenerate triangles (a point, a segment along an edge) beside real ones are never hit, and where one is
    # closest its answer is a point of the surface.
    mesh = bumpy_sphere(3)
    a, b = mesh.edges_unique[0]
    faces = np.vstack([mesh.faces, [[a, a, a], [a, b, b]]])
    bvh = TriangleBVH(mesh.vertices, faces)
    points = rng.uniform(-1.3, 1.3, (2000, 3))
    near_face, near_bary, distance = bvh.closest_points(torch.tensor(points, device=cuda))
    near_face, near_bary = near_face.cpu().numpy(), near_bary.cpu().numpy().astype(float)
    _, truth, _ = trimesh.proximity.closest_point(mesh, points)
    assert np.abs(distance.cpu().numpy() - truth).max() < 1e-4
    # The face and barycentrics returned describe the closest point itself.
    closest = np.einsum("kj,kjc->kc", near_bary, mesh.vertices[faces[near_face]])
    assert np.abs(np.linalg.norm(closest - points, axis=1) - truth).max() < 1e-4
    hits, _, _ = bvh.first_hits(torch.tensor(points, device=cuda), torch.tensor(-points, device=cuda), 3.0)
    assert hits.max().item() < len(mesh.faces)

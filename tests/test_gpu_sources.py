"""The CUDA engine's torch code (attribute lookups, the AO blur) gives what the CPU engine's numpy and OpenCV give.

They run on the CPU here (torch CPU tensors), so CI checks the same code that runs on the GPU.
"""

import numpy as np
import pytest
import trimesh

from server.bake.gpu_sources import sample_any
from server.bake.sources import SurfaceSource
from server.generators.volume import AttributeVolume, volume_source

torch = pytest.importorskip("torch")


def surface_points(mesh, count, seed):
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, len(mesh.faces), count)
    bary = rng.dirichlet(np.ones(3), count)
    points = np.einsum("kj,kjc->kc", bary, mesh.vertices[mesh.faces[faces]])
    return faces, bary, points


def compare(source, faces, bary, points):
    expected = source.sample(faces, bary, points)
    got = sample_any(torch, source, torch.as_tensor(faces), torch.as_tensor(bary, dtype=torch.float32),
                     torch.as_tensor(points, dtype=torch.float32))
    for name in ("base_color", "metallic", "roughness"):
        difference = np.abs(got[name].numpy() - expected[name]).max()
        assert difference < 1e-4, (name, difference)


def test_vertex_colours_and_pbr_textures_match_the_numpy_source():
    mesh = trimesh.creation.icosphere(3)
    v = mesh.vertices
    rng = np.random.default_rng(1)
    uv = rng.random((len(v), 2)) * 3 - 1  # outside [0, 1] on purpose: the lookup wraps
    texture = rng.random((64, 48, 4))
    packed = rng.random((32, 32, 4))
    faces, bary, points = surface_points(mesh, 5000, 2)
    compare(SurfaceSource(mesh.faces, colors=rng.random((len(v), 4)), metallic_vertex=rng.random(len(v)),
                          roughness_vertex=rng.random(len(v))), faces, bary, points)
    compare(SurfaceSource(mesh.faces, uv=uv, base_texture=texture, mr_texture=packed, base_factor=(0.9, 0.8, 1, 1),
                          metallic_factor=0.7, roughness_factor=0.6), faces, bary, points)


def test_an_attribute_volume_samples_the_same_through_placement():
    rng = np.random.default_rng(3)
    grid = np.stack(np.meshgrid(*[np.arange(-8, 8)] * 3, indexing="ij"), -1).reshape(-1, 3)
    shell = grid[np.abs(np.linalg.norm(grid + 0.5, axis=1) - 6) < 1.5]  # sparse: a shell of voxels
    volume = AttributeVolume(shell, {"base_color": rng.random((len(shell), 3)), "metallic": rng.random((len(shell), 1)),
                                     "roughness": rng.random((len(shell), 1)), "alpha": np.ones((len(shell), 1))},
                             voxel_size=0.1, origin=np.zeros(3))
    angle = 0.4
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    transform = {"rotation": rotation.tolist(), "scale": 2.5, "translation": [0.3, -0.2, 1.0]}
    source = volume_source(volume, transform)
    sphere = trimesh.creation.icosphere(3, radius=0.6)
    sphere.apply_scale(1.0 + 0.3 * rng.random())  # some points fall outside the voxels: nearest fallback
    placed = trimesh.Trimesh((sphere.vertices @ rotation.T) * 2.5 + [0.3, -0.2, 1.0], sphere.faces)
    faces, bary, points = surface_points(placed, 4000, 4)
    compare(source, faces, bary, points)


def test_the_gpu_gaussian_blur_is_opencvs():
    import cv2

    from server.bake.cuda import _gaussian_blur

    image = np.random.default_rng(5).random((96, 80)).astype(np.float32)
    for sigma in (0.75, 3.0, 6.0):
        ours = _gaussian_blur(torch, torch.from_numpy(image), sigma).numpy()
        assert np.abs(ours - cv2.GaussianBlur(image, (0, 0), sigma)).max() < 1e-5, sigma

"""CUDA bake engine: nvdiffrast rasterizes the low poly in UV space, a GPU BVH answers the rays.

Same steps, same rays and same maps as the CPU reference engine (cpu.py): cage rays from each texel's
surface point, the closest high-poly point where a cage ray misses, AO from the same cosine-weighted
directions on every ao_stride-th texel spread over the charts, holes inpainted, charts padded.
"""

from __future__ import annotations

import time

import numpy as np

from ..meshdata import MeshArrays
from .cage import welded_normals
from .gpu_bvh import TriangleBVH, torch_stream
from .gpu_runtime import rasterizer
from .gpu_sources import sample_any
from .padding import inpaint_holes
from .tangents import vertex_tangents
from .types import BakedMaps, BakeSettings, HighPoly, hemisphere_directions


def _unit(torch, v):
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-30)


def _dot(a, b):
    return (a * b).sum(dim=-1)


class _Coverage:
    """Covered texels of the UV raster, as torch tensors (row 0 at the top, v = 1)."""

    def __init__(self, torch, low: MeshArrays, size: int):
        dr, context = rasterizer()
        device = torch.device("cuda")
        uv = torch.from_numpy(np.array(low.uv, dtype=np.float32)).to(device)
        # Clip y = 1 - 2v puts row 0 at v = 1 with texel centres at u = (c + .5)/size, v = 1 - (r + .5)/size,
        # the CPU rasterizer's convention; nvdiffrast draws both windings, so the flip loses nothing.
        clip = torch.stack([uv[:, 0] * 2 - 1, 1 - uv[:, 1] * 2, torch.zeros_like(uv[:, 0]),
                            torch.ones_like(uv[:, 0])], dim=1)[None].contiguous()
        self.low_faces = torch.from_numpy(np.array(low.faces, dtype=np.int32)).to(device).contiguous()
        raster, _ = dr.rasterize(context, clip, self.low_faces, resolution=[size, size])
        triangle = raster[0, ..., 3].to(torch.int64) - 1
        self.size = size
        self.mask = triangle >= 0
        self.rows, self.cols = self.mask.nonzero(as_tuple=True)
        self.face = triangle[self.rows, self.cols]
        u, v = raster[0, self.rows, self.cols, 0], raster[0, self.rows, self.cols, 1]
        bary = torch.stack([u, v, 1 - u - v], dim=1).clamp_min(0)  # nvdiffrast: u, v weigh corners 0 and 1
        self.bary = bary / bary.sum(dim=1, keepdim=True)
        self.corners = self.low_faces.to(torch.int64)[self.face]
        self.torch = torch

    def interpolate(self, per_vertex: np.ndarray):
        values = self.torch.from_numpy(np.array(per_vertex, dtype=np.float32)).to(self.bary.device)
        corners = values[self.corners]  # (k, 3, c)
        return (corners * self.bary[..., None]).sum(dim=1)

    def scatter(self, values, fill: float):
        shape = (self.size, self.size) + tuple(values.shape[1:])
        image = self.torch.full(shape, fill, dtype=self.torch.float32, device=values.device)
        image[self.rows, self.cols] = values.to(self.torch.float32)
        return image


def _gaussian_blur(torch, image, sigma: float):
    """cv2.GaussianBlur for float images (round(8 sigma + 1) | 1 taps, reflect-101 borders).

    Shifted sums rather than a convolution call: the first cuDNN call of a process costs half a second.
    """
    taps = round(sigma * 8 + 1) | 1
    radius = taps // 2
    x = np.arange(taps) - radius
    weights = np.exp(-(x * x) / (2 * sigma * sigma))
    weights = (weights / weights.sum()).astype(np.float32)
    out = image
    for dim, pad in ((1, (radius, radius, 0, 0)), (0, (0, 0, radius, radius))):
        padded = torch.nn.functional.pad(out[None, None], pad, mode="reflect")[0, 0]
        length = out.shape[dim]
        total = torch.zeros_like(out)
        for k, weight in enumerate(weights):
            total += float(weight) * padded.narrow(dim, k, length)
        out = total
    return out


def _spread_sparse(torch, coverage: _Coverage, select, values, stride: int):
    """cpu.spread_sparse on the GPU: normalised Gaussian convolution of the sparse AO samples."""
    if stride <= 1:
        full = torch.empty(len(select), dtype=torch.float32, device=values.device)
        full[select] = values
        return full
    size = coverage.size
    weight = torch.zeros((size, size), dtype=torch.float32, device=values.device)
    total = torch.zeros_like(weight)
    rows, cols = coverage.rows[select], coverage.cols[select]
    weight[rows, cols] = 1.0
    total[rows, cols] = values
    sigma = 0.75 * stride
    weight = _gaussian_blur(torch, weight, sigma)[coverage.rows, coverage.cols]
    total = _gaussian_blur(torch, total, sigma)[coverage.rows, coverage.cols]
    ratio = total / weight.clamp_min(1e-12)
    return torch.where(weight > 1e-6, ratio, torch.ones_like(ratio))


def _ambient_occlusion(torch, bvh: TriangleBVH, points, normals, settings: BakeSettings, epsilon: float):
    """cpu._ambient_occlusion with the same directions and the same per-point rotations, in one launch."""
    directions = torch.as_tensor(hemisphere_directions(settings.ao_samples, settings.seed), dtype=torch.float32,
                                 device=points.device)
    origins = points + normals * epsilon
    helper = torch.where(normals[:, :1].abs() < 0.9, torch.tensor([[1.0, 0, 0]], device=points.device),
                         torch.tensor([[0, 1.0, 0]], device=points.device))
    frame_t = _unit(torch, torch.cross(normals, helper, dim=1))
    frame_b = torch.cross(normals, frame_t, dim=1)
    angle = np.random.default_rng(settings.seed).random(len(origins)) * 2 * np.pi
    angle = torch.as_tensor(angle, dtype=torch.float32, device=points.device)
    cos, sin = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    frame_t, frame_b = cos * frame_t + sin * frame_b, -sin * frame_t + cos * frame_b
    occluded = torch.zeros(len(origins), dtype=torch.float32, device=points.device)
    batch = max(1, 16_000_000 // max(1, len(directions)))  # rays per launch stay under ~16 million
    for start in range(0, len(origins), batch):
        part = slice(start, start + batch)
        world = (directions[None, :, 0:1] * frame_t[part, None] + directions[None, :, 1:2] * frame_b[part, None]
                 + directions[None, :, 2:3] * normals[part, None])  # (p, d, 3)
        starts = origins[part, None].expand_as(world)
        hits = bvh.occluded(starts.reshape(-1, 3), world.reshape(-1, 3), settings.ao_distance)
        occluded[part] = hits.view(-1, len(directions)).sum(dim=1).to(torch.float32)
    return 1.0 - occluded / len(directions)


def _padding_sources(torch, covered):
    """For every texel, the covered texel nearest to it (itself when covered): CuPy's exact EDT."""
    import cupy
    from cupyx.scipy import ndimage as gpu_ndimage

    if bool(covered.all()) or not bool(covered.any()):
        return None
    with torch_stream(torch, cupy):
        outside = cupy.asarray(~covered)
        indices = gpu_ndimage.distance_transform_edt(outside, return_distances=False, return_indices=True)
        result = torch.as_tensor(indices, device=covered.device).to(torch.int64)
    del outside, indices
    cupy.get_default_memory_pool().free_all_blocks()  # CuPy's pool is not torch's: give the memory back
    return result[0], result[1]


def bake_cuda(high: HighPoly, low: MeshArrays, settings: BakeSettings) -> BakedMaps:
    """The CUDA engine; numpy in, numpy out, so it can run inside one @spaces.GPU call."""
    import torch

    timings = {}

    def lap(name: str, clock: float) -> float:
        torch.cuda.synchronize()
        now = time.perf_counter()
        timings[name] = now - clock
        return now

    clock = time.perf_counter()
    size = settings.size
    coverage = _Coverage(torch, low, size)
    clock = lap("rasterize", clock)

    position = coverage.interpolate(low.vertices)
    cage_direction = _unit(torch, coverage.interpolate(welded_normals(low)))
    bvh = TriangleBVH(high.vertices, high.faces)
    clock = lap("bvh", clock)
    face, bary, _ = bvh.first_hits(position + cage_direction * settings.max_distance, -cage_direction,
                                   2 * settings.max_distance)
    missed = face < 0
    reached = torch.ones_like(missed)
    clock = lap("cage_rays", clock)

    miss_count = int(missed.sum())
    if miss_count:
        index = missed.nonzero(as_tuple=True)[0]
        near_face, near_bary, near_distance = bvh.closest_points(position[index])
        face[index], bary[index] = near_face, near_bary
        # Far from everything means the low poly has a part the high poly lacks: inpaint those texels.
        reached[index[near_distance > 4 * settings.max_distance]] = False
    clock = lap("fallback", clock)

    device = position.device
    high_vertices = torch.from_numpy(np.array(high.vertices, dtype=np.float32)).to(device)
    high_faces = torch.from_numpy(np.array(high.faces, dtype=np.int64)).to(device)
    high_normals = torch.from_numpy(np.array(high.normals, dtype=np.float32)).to(device)
    corners = high_faces[face]
    triangles = high_vertices[corners]  # (k, 3, 3)
    hit_point = (triangles * bary[..., None]).sum(dim=1)
    hit_normal = _unit(torch, (high_normals[corners] * bary[..., None]).sum(dim=1))
    normal = _unit(torch, coverage.interpolate(low.normals))
    tangents = vertex_tangents(low.vertices, low.faces, low.normals, low.uv)
    tangent = coverage.interpolate(tangents[:, :3])
    sign = torch.where(coverage.interpolate(tangents[:, 3:])[:, 0] >= 0, 1.0, -1.0)
    tangent = _unit(torch, tangent - normal * _dot(tangent, normal)[:, None])
    bitangent = sign[:, None] * torch.cross(normal, tangent, dim=1)
    tangent_space = torch.stack([_dot(hit_normal, tangent), _dot(hit_normal, bitangent),
                                 _dot(hit_normal, normal)], dim=1)
    attributes = sample_any(torch, high.source, face, bary, hit_point)
    clock = lap("shade", clock)

    select = None
    if "ao" in settings.maps:
        stride = settings.ao_stride or max(1, size // 512)
        select = (coverage.rows % stride == 0) & (coverage.cols % stride == 0)
        if int(select.sum()) < 16:
            select[:] = True
        diagonal = float(np.linalg.norm(np.ptp(np.asarray(high.vertices), axis=0)))
        # The hemisphere stands on the triangle itself: a smoothed vertex normal would tilt it into the face.
        chosen = triangles[select]
        face_normal = _unit(torch, torch.cross(chosen[:, 1] - chosen[:, 0], chosen[:, 2] - chosen[:, 0], dim=1))
        sparse = _ambient_occlusion(torch, bvh, hit_point[select], face_normal, settings, 1e-4 * diagonal)
        ao = _spread_sparse(torch, coverage, select, sparse, stride if bool((~select).any()) else 1)
    else:
        ao = torch.ones(len(face), dtype=torch.float32, device=device)
    clock = lap("ao", clock)

    covered = coverage.mask
    holes = covered.clone()
    holes[coverage.rows[reached], coverage.cols[reached]] = False
    any_holes = bool(holes.any())
    holes_cpu = holes.cpu().numpy() if any_holes else None
    sources = _padding_sources(torch, covered)

    def finish(values, fill: float) -> np.ndarray:
        image = coverage.scatter(values, fill)
        if any_holes:  # rare: only where the low poly has parts the high poly lacks
            image = torch.as_tensor(inpaint_holes(image.cpu().numpy(), holes_cpu), device=device)
        if sources is not None:
            image = image[sources[0], sources[1]]
        return image

    normal_map = finish(tangent_space, 0.0)
    normal_map = normal_map / normal_map.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    base = finish(attributes["base_color"], 0.0)
    maps = BakedMaps(
        size=size, normal=normal_map.cpu().numpy(), base_color=base.cpu().numpy(),
        metallic=finish(attributes["metallic"], 0.0).cpu().numpy(),
        roughness=finish(attributes["roughness"], 1.0).cpu().numpy(),
        ao=finish(ao, 1.0).cpu().numpy(),
        opacity=base[..., 3].cpu().numpy() if high.source.has_opacity else None,
        covered=covered.cpu().numpy())
    lap("pad", clock)
    maps.stats = {"engine": "cuda", "texels": len(face), "cage_misses": miss_count,
                  "unreached": int((~reached).sum()), "ao_points": int(select.sum()) if select is not None else 0,
                  "seconds": {k: round(v, 4) for k, v in timings.items()}}
    return maps


"""CPU bake engine: UV-space rasterization in numpy, cage rays and AO rays through Embree (embreex)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import trimesh
from scipy.spatial import cKDTree

from ..meshdata import MeshArrays
from .cage import welded_normals
from .padding import Dilation, inpaint_holes
from .tangents import vertex_tangents
from .types import BakedMaps, BakeSettings, HighPoly, hemisphere_directions
from .uvraster import UVCoverage, rasterize_uv

# Rays per Embree call: a cancel is noticed between two calls, and the thread doing numpy work gets Python's
# lock back between them (Embree keeps it during a call).
RAY_BATCH = 100000


def _never() -> None:
    """The default cancel check: nothing ever stops the bake."""


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-30)


class RayScene:
    """An Embree scene over one triangle mesh; rays start at distance 0 (so callers start them on a cage)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        from embreex import rtcore_scene
        from embreex.mesh_construction import TriangleMesh

        self.scene = rtcore_scene.EmbreeScene()
        TriangleMesh(self.scene, np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(faces, np.int32))

    def first_hits(self, origins: np.ndarray, directions: np.ndarray, distance: np.ndarray | float,
                   check: Callable[[], None] = _never):
        """(face, barycentric (k, 3), t) of the first hit within `distance`; face is -1 for a miss."""
        count = len(origins)
        face = np.full(count, -1, np.int64)
        bary = np.zeros((count, 3))
        t = np.full(count, np.inf)
        dists = np.broadcast_to(np.asarray(distance, np.float32), (count,))
        for start in range(0, count, RAY_BATCH):
            check()
            part = slice(start, min(count, start + RAY_BATCH))
            result = self.scene.run(np.ascontiguousarray(origins[part], np.float32),
                                    np.ascontiguousarray(directions[part], np.float32),
                                    dists=np.ascontiguousarray(dists[part]), output=1)
            hit = result["primID"] >= 0
            index = np.arange(part.start, part.stop)[hit]
            face[index] = result["primID"][hit]
            u, v = result["u"][hit].astype(np.float64), result["v"][hit].astype(np.float64)
            bary[index] = np.column_stack([1 - u - v, u, v])
            t[index] = result["tfar"][hit]
        return face, bary, t

    def occluded(self, origins: np.ndarray, directions: np.ndarray, distance: float,
                 check: Callable[[], None] = _never) -> np.ndarray:
        hits = np.zeros(len(origins), bool)
        dists = np.full(min(len(origins), RAY_BATCH), distance, np.float32)
        for start in range(0, len(origins), RAY_BATCH):
            check()
            part = slice(start, min(len(origins), start + RAY_BATCH))
            # An any-hit query: Embree stops at the first triangle found instead of looking for the nearest.
            ids = self.scene.run(np.ascontiguousarray(origins[part], np.float32),
                                 np.ascontiguousarray(directions[part], np.float32),
                                 dists=dists[: part.stop - part.start], query="OCCLUDED")
            hits[part] = ids >= 0  # 0 where occluded, -1 where not
        return hits


def nearest_surface(high: HighPoly, points: np.ndarray, tree: cKDTree, vertex_faces: np.ndarray):
    """Closest point on the high poly among the triangles around the nearest vertex: (face, bary, distance).

    An approximation of the true closest point (the CUDA engine's BVH finds that one); it serves the few
    texels whose cage ray missed, and agrees with the exact answer wherever triangles are small.
    """
    _, nearest = tree.query(points, workers=-1)
    candidates = vertex_faces[nearest]  # (k, m) padded with -1
    best_face = np.full(len(points), -1, np.int64)
    best_distance = np.full(len(points), np.inf)
    best_point = np.zeros_like(points)
    for column in range(candidates.shape[1]):
        face = candidates[:, column]
        valid = face >= 0
        if not valid.any():
            continue
        triangles = high.vertices[high.faces[face[valid]]]
        closest = trimesh.triangles.closest_point(triangles, points[valid])
        distance = np.linalg.norm(closest - points[valid], axis=1)
        better = distance < best_distance[valid]
        index = np.flatnonzero(valid)[better]
        best_face[index] = face[valid][better]
        best_distance[index] = distance[better]
        best_point[index] = closest[better]
    bary = trimesh.triangles.points_to_barycentric(high.vertices[high.faces[best_face]], best_point)
    bary = np.clip(np.nan_to_num(bary, nan=1.0 / 3.0), 0, 1)  # a degenerate triangle has no barycentrics
    return best_face, bary / np.maximum(bary.sum(axis=1, keepdims=True), 1e-12), best_distance


def _blend(per_vertex: np.ndarray, corners: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Barycentric blend of a per-vertex attribute over (k, 3) corner indices with (k, 3) weights."""
    out = per_vertex[corners[:, 0]] * weights[:, 0:1]
    out += per_vertex[corners[:, 1]] * weights[:, 1:2]
    out += per_vertex[corners[:, 2]] * weights[:, 2:3]
    return out


def _tangent_frame(low: MeshArrays, coverage: UVCoverage):
    normal = _unit(coverage.interpolate(low.normals, low.faces))
    tangents = vertex_tangents(low.vertices, low.faces, low.normals, low.uv)
    tangent = coverage.interpolate(tangents[:, :3], low.faces)
    sign = np.where(coverage.interpolate(tangents[:, 3:], low.faces)[:, 0] >= 0, 1.0, -1.0)
    tangent = _unit(tangent - normal * np.einsum("ij,ij->i", tangent, normal)[:, None])
    bitangent = sign[:, None] * np.cross(normal, tangent)
    return tangent, bitangent, normal


def _ambient_occlusion(scene: RayScene, points: np.ndarray, normals: np.ndarray, settings: BakeSettings,
                       epsilon: float, check: Callable[[], None]) -> np.ndarray:
    """AO (1 = open sky) at surface points from cosine-weighted hemisphere rays about their normals."""
    directions = hemisphere_directions(settings.ao_samples, settings.seed)
    origins = points + normals * epsilon
    frame_n = normals
    helper = np.where(np.abs(frame_n[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    frame_t = _unit(np.cross(frame_n, helper))
    frame_b = np.cross(frame_n, frame_t)
    # A random rotation about the normal per point turns the fixed pattern into noise, not banding.
    angle = np.random.default_rng(settings.seed).random(len(origins)) * 2 * np.pi
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    frame_t, frame_b = cos * frame_t + sin * frame_b, -sin * frame_t + cos * frame_b
    occluded = np.zeros(len(origins))
    for d in directions:
        world = d[0] * frame_t + d[1] * frame_b + d[2] * frame_n
        occluded += scene.occluded(origins, world, settings.ao_distance, check)
    return 1.0 - occluded / len(directions)


def spread_sparse(coverage: UVCoverage, select: np.ndarray, values: np.ndarray, stride: int) -> np.ndarray:
    """Values known on every stride-th texel, spread over the charts by normalised convolution.

    The kernel is a few texels wide and charts are at least 16 texels apart, so no chart borrows from
    its neighbours in the atlas.
    """
    if stride <= 1:
        full = np.empty(len(select), np.float32)
        full[select] = values
        return full
    size = coverage.size
    weight = np.zeros((size, size), np.float32)
    total = np.zeros((size, size), np.float32)
    weight[coverage.rows[select], coverage.cols[select]] = 1.0
    total[coverage.rows[select], coverage.cols[select]] = values
    sigma = 0.75 * stride
    weight = cv2.GaussianBlur(weight, (0, 0), sigma)
    total = cv2.GaussianBlur(total, (0, 0), sigma)
    ratio = total[coverage.rows, coverage.cols] / np.maximum(weight[coverage.rows, coverage.cols], 1e-12)
    return np.where(weight[coverage.rows, coverage.cols] > 1e-6, ratio, 1.0).astype(np.float32)


def bake_cpu(high: HighPoly, low: MeshArrays, settings: BakeSettings,
             check: Callable[[], None] | None = None) -> BakedMaps:
    """The reference engine. Every map is computed on the texels the low poly's UV charts cover.

    `check` is called between steps and ray batches; it raises to stop the bake (a cancelled job).
    Embree's calls hold Python's lock while numpy's and OpenCV's large operations let it go, so the rays
    are traced in a second thread while this one does the work that does not wait for them (the tangent
    frame, the padding's lookup, the surface attributes and every map but AO): on two cores the two
    overlap. Each step's time in `stats["seconds"]` is the time this thread spent on it or waited for it.
    """
    check = check or _never
    timings = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="o3f-rays") as rays:
        clock = time.perf_counter()
        # Built here: Embree holds Python's lock while it builds, so a second thread would only stand still.
        scene = RayScene(high.vertices, high.faces)
        timings["scene"] = time.perf_counter() - clock
        clock = time.perf_counter()
        size = settings.size
        coverage = rasterize_uv(low.uv, low.faces, size)
        timings["rasterize"] = time.perf_counter() - clock

        clock = time.perf_counter()
        position = coverage.interpolate(low.vertices, low.faces)
        cage_direction = _unit(coverage.interpolate(welded_normals(low), low.faces))
        origins = position + cage_direction * settings.max_distance
        check()
        cage_job = rays.submit(scene.first_hits, origins, -cage_direction, 2 * settings.max_distance, check)
        tangent, bitangent, normal = _tangent_frame(low, coverage)
        covered = coverage.mask()
        dilate = Dilation(covered)
        face, bary, _ = cage_job.result()
        missed = face < 0
        timings["cage_rays"] = time.perf_counter() - clock

        check()
        clock = time.perf_counter()
        reached = np.ones(len(face), bool)
        if missed.any():
            tree = cKDTree(high.vertices)
            vertex_faces = trimesh.Trimesh(high.vertices, high.faces, process=False).vertex_faces
            near_face, near_bary, near_distance = nearest_surface(high, position[missed], tree, vertex_faces)
            # Far from everything means the low poly has a part the high poly lacks: inpaint those texels.
            close = near_distance <= 4 * settings.max_distance
            index = np.flatnonzero(missed)
            face[index] = near_face
            bary[index] = near_bary
            reached[index[~close]] = False
        timings["fallback"] = time.perf_counter() - clock

        clock = time.perf_counter()
        corners = high.faces[face]
        weights = bary.astype(np.float32)
        high_vertices = np.asarray(high.vertices, np.float32)
        hit_point = _blend(high_vertices, corners, weights)
        ao_job, select = None, None
        if "ao" in settings.maps:
            stride = settings.ao_stride or max(1, size // 512)
            select = (coverage.rows % stride == 0) & (coverage.cols % stride == 0)
            if select.sum() < 16:
                select[:] = True
            diagonal = float(np.linalg.norm(np.ptp(high.vertices, axis=0)))
            # The hemisphere stands on the triangle itself: a smoothed vertex normal would tilt it into the face.
            # Computed here, not by trimesh.triangles.normals, which drops degenerate triangles from its answer.
            chosen = high_vertices[corners[select]]
            face_normal = _unit(np.cross(chosen[:, 1] - chosen[:, 0], chosen[:, 2] - chosen[:, 0]))
            ao_job = rays.submit(_ambient_occlusion, scene, hit_point[select], face_normal, settings,
                                 1e-4 * diagonal, check)
        hit_normal = _unit(_blend(np.asarray(high.normals, np.float32), corners, weights))
        tangent_space = np.column_stack([np.einsum("ij,ij->i", hit_normal, tangent),
                                         np.einsum("ij,ij->i", hit_normal, bitangent),
                                         np.einsum("ij,ij->i", hit_normal, normal)])
        attributes = high.source.sample(face, bary, hit_point)
        timings["shade"] = time.perf_counter() - clock

        clock = time.perf_counter()
        holes = covered.copy()
        holes[coverage.rows[reached], coverage.cols[reached]] = False
        # Every map but AO in one image while the AO rays run: one scatter, hole fill and padding pass.
        layers = {"normal": (tangent_space, 0.0), "base_color": (attributes["base_color"], 0.0),
                  "metallic": (attributes["metallic"], 0.0), "roughness": (attributes["roughness"], 1.0)}
        split = _finished(layers, coverage, holes, dilate)
        normal_map = split["normal"] / np.maximum(np.linalg.norm(split["normal"], axis=-1, keepdims=True), 1e-9)
        base = split["base_color"]
        timings["pad"] = time.perf_counter() - clock

        clock = time.perf_counter()
        if ao_job is not None:
            sparse = ao_job.result()
            ao = spread_sparse(coverage, select, sparse, stride if select.sum() < len(select) else 1)
            ao_map = _finished({"ao": (ao, 1.0)}, coverage, holes, dilate)["ao"]
        else:
            ao_map = np.ones((size, size, 1), np.float32)
        timings["ao"] = time.perf_counter() - clock
    check()

    single = {name: np.ascontiguousarray(split[name][..., 0]) for name in ("metallic", "roughness")}
    maps = BakedMaps(
        size=size, normal=normal_map, base_color=np.ascontiguousarray(base), **single,
        ao=np.ascontiguousarray(ao_map[..., 0]),
        opacity=np.ascontiguousarray(base[..., 3]) if high.source.has_opacity else None, covered=covered)
    maps.stats = {"engine": "cpu", "texels": len(face), "cage_misses": int(missed.sum()),
                  "unreached": int((~reached).sum()), "ao_points": int(select.sum()) if select is not None else 0,
                  "seconds": {k: round(v, 3) for k, v in timings.items()}}
    return maps


def _finished(layers: dict, coverage: UVCoverage, holes: np.ndarray, dilate: Dilation) -> dict[str, np.ndarray]:
    """Per-texel values {name: (values, fill)} as padded (size, size, c) images, holes inpainted."""
    columns = [np.asarray(values, np.float32).reshape(len(coverage.face), -1) for values, _ in layers.values()]
    widths = [c.shape[1] for c in columns]
    fills = np.concatenate([np.full(w, fill, np.float32) for w, (_, fill) in zip(widths, layers.values())])
    image = np.empty((coverage.size, coverage.size, len(fills)), np.float32)
    image[...] = fills
    image[coverage.rows, coverage.cols] = np.concatenate(columns, axis=1)
    image = dilate(inpaint_holes(image, holes), in_place=True)
    return dict(zip(layers, np.split(image, np.cumsum(widths)[:-1], axis=-1)))

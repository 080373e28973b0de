"""Quality figures the benchmarks print: surface distance percentiles, normal-map angles, UV and collision coverage."""

from __future__ import annotations

import numpy as np
import trimesh

from server.bake.uvraster import rasterize_uv
from server.meshdata import MeshArrays


def surface_distances(reference: MeshArrays, candidate: MeshArrays, samples: int = 100_000) -> dict:
    """Two-way distances between two surfaces (metres): mean, 99.9th percentile and max over area samples.

    `samples` points spread by area on each surface, each measured to the closest point of the other
    (pymeshlab's Hausdorff filter, which keeps every sample's distance).
    """
    import pymeshlab

    meshset = pymeshlab.MeshSet()
    meshset.add_mesh(pymeshlab.Mesh(reference.vertices, reference.faces))
    meshset.add_mesh(pymeshlab.Mesh(candidate.vertices, candidate.faces))
    reach = pymeshlab.PureValue(float(np.linalg.norm(np.ptp(reference.vertices, axis=0))) * 2 + 1)
    distances = []
    for sampled, target in ((0, 1), (1, 0)):
        meshset.get_hausdorff_distance(sampledmesh=sampled, targetmesh=target, samplevert=False, sampleface=True,
                                       samplenum=int(samples), savesample=True, maxdist=reach)
        distances.append(meshset.mesh(meshset.mesh_number() - 2).vertex_scalar_array().copy())
    both = np.concatenate(distances)
    return {"mean": float(both.mean()), "p999": float(np.percentile(both, 99.9)), "max": float(both.max()),
            "high_to_low_mean": float(distances[0].mean()), "low_to_high_mean": float(distances[1].mean())}


def texel_coverage(mesh: MeshArrays, size: int) -> float:
    """Share of a size² texture's texels whose centre lies inside a UV triangle (packing density)."""
    coverage = rasterize_uv(mesh.uv, mesh.faces, size)
    return float(len(coverage.face)) / size**2


def map_angles(ours: np.ndarray, reference: np.ndarray, where: np.ndarray) -> dict:
    """Angles (degrees) between two tangent-space normal maps in [-1, 1], over the texels `where` marks."""
    a = ours[where].astype(np.float64)
    b = reference[where].astype(np.float64)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    angle = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", a, b), -1, 1)))
    return {"mean": float(angle.mean()), "median": float(np.median(angle)), "p99": float(np.percentile(angle, 99)),
            "texels": int(where.sum())}


def collision_coverage(mesh: trimesh.Trimesh, hulls: list[MeshArrays], *, tolerance_share: float = 0.01,
                       volume_samples: int = 400_000, surface_samples: int = 50_000, seed: int = 5) -> dict:
    """How well convex hulls stand for a closed mesh.

    union_over_mesh: volume of the hulls' union over the mesh's volume (Monte Carlo in the common box);
    mesh_inside_union: share of the mesh's volume the union holds; surface_within_tol: share of the
    mesh's surface (area samples) within tolerance_share of the bounding-box diagonal of some hull.
    """
    shapes = [trimesh.Trimesh(h.vertices, h.faces, process=False) for h in hulls]
    planes = [(s.face_normals, np.einsum("ij,ij->i", s.face_normals, s.triangles[:, 0])) for s in shapes]

    def inside_union(points):
        inside = np.zeros(len(points), bool)
        for normals, offsets in planes:
            inside |= (points @ normals.T - offsets).max(axis=1) <= 0
        return inside

    rng = np.random.default_rng(seed)
    corners = np.vstack([mesh.bounds] + [s.bounds for s in shapes])
    low, high = corners.min(axis=0), corners.max(axis=0)
    points = low + rng.random((volume_samples, 3)) * (high - low)
    box = float(np.prod(high - low))
    in_union = inside_union(points)
    in_mesh = mesh.contains(points)
    mesh_volume = in_mesh.mean() * box
    diagonal = float(np.linalg.norm(mesh.extents))
    tolerance = tolerance_share * diagonal
    surface, _ = trimesh.sample.sample_surface(mesh, surface_samples, seed=seed)
    outside = ~inside_union(surface)
    distance = np.zeros(len(surface))
    if outside.any():
        hull_surface = trimesh.util.concatenate(shapes)
        _, distance[outside], _ = trimesh.proximity.closest_point(hull_surface, surface[outside])
    return {"hulls": len(hulls), "max_hull_vertices": max(len(h.vertices) for h in hulls),
            "union_over_mesh": float(in_union.mean() * box / mesh_volume),
            "mesh_inside_union": float((in_union & in_mesh).mean() / max(in_mesh.mean(), 1e-12)),
            "surface_within_tol": float((distance <= tolerance).mean()), "tolerance_m": tolerance,
            "surface_gap_p99_m": float(np.percentile(distance, 99))}


def chart_gaps(uv: np.ndarray, faces: np.ndarray, size: int) -> dict:
    """Free texels between UV islands on a size² texture: the smallest gap and the 5th percentile of the gaps
    along the islands' borders (islands: faces joined by shared UV positions).

    Each empty texel takes the island of its nearest covered texel; where two neighbouring texels take different
    islands the gap there is the free texels on the line between them (0 where two islands' texels touch).
    """
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keys = np.round(np.asarray(uv, np.float64) * 2**20).astype(np.int64)
    _, corner_ids = np.unique(keys[faces.ravel()], axis=0, return_inverse=True)
    corner_ids = corner_ids.reshape(-1, 3)
    rows = np.repeat(np.arange(len(faces)), 3)
    graph = coo_matrix((np.ones(len(rows)), (rows, corner_ids.ravel())),
                       shape=(len(faces), int(corner_ids.max()) + 1)).tocsr()
    # Faces sharing a UV position are in one island: components of the face-position graph.
    count, labels = connected_components((graph @ graph.T).tocsr(), directed=False)
    coverage = rasterize_uv(uv, faces, size)
    island = np.full(size * size, -1, np.int64)
    island[coverage.rows * size + coverage.cols] = labels[coverage.face]
    island = island.reshape(size, size)
    distance, (near_r, near_c) = ndimage.distance_transform_edt(island < 0, return_indices=True)
    nearest = island[near_r, near_c]
    gaps = []
    for a, b, da, db in ((nearest[:, :-1], nearest[:, 1:], distance[:, :-1], distance[:, 1:]),
                         (nearest[:-1], nearest[1:], distance[:-1], distance[1:])):
        differ = a != b
        gaps.append(da[differ] + db[differ])
    gaps = np.concatenate(gaps)
    if not len(gaps):
        return {"islands": int(count), "smallest": None, "p5": None}
    return {"islands": int(count), "smallest": float(gaps.min()), "p5": float(np.percentile(gaps, 5))}

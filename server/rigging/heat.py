"""Bone-heat skin weights (Baran and Popovic 2007): each bone's weight is heat that diffuses over the
surface from the vertices whose nearest visible bone it is.

For every bone i the weights w_i solve (-Laplacian + H) w_i = H p_i, where H is diagonal with
H_j = c / d_j^2 (d_j the distance from vertex j to its nearest bone that it can see in a straight line
through the inside of the mesh, 0 when it sees none) and p_i(j) is 1 where bone i is that bone. In the
weak form used here, with the cotangent stiffness matrix L and lumped mass M of robust-laplacian, that is
(L + M H) w_i = M H p_i: one sparse factorisation serves every bone. Because the right-hand sides of all
bones add up to M H 1 and L 1 = 0, the weights of every vertex already sum to one before pruning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse.linalg import splu

from ..errors import ForgeError

HEAT_CONSTANT = 1.0      # the paper's c
CANDIDATES = 4           # nearest bones whose visibility is tested per vertex
MIN_WEIGHT = 0.01        # influences below this share are dropped before renormalising
DISTANCE_BLOCK = 20_000  # vertices per block when measuring distances to the bones


@dataclass
class HeatWeights:
    """Per-vertex influences: bones[v, k] indexes the bone list given (-1 for an unused slot) and
    weights[v, k] its share; each row's weights sum to 1, largest first."""

    bones: np.ndarray
    weights: np.ndarray
    info: dict = field(default_factory=dict)

    def dense(self, bone_count: int) -> np.ndarray:
        """(vertices, bone_count) weight matrix."""
        out = np.zeros((len(self.bones), bone_count))
        rows, slots = np.nonzero(self.bones >= 0)
        out[rows, self.bones[rows, slots]] = self.weights[rows, slots]
        return out


def segment_distances(points: np.ndarray, heads: np.ndarray, tails: np.ndarray):
    """Distances (n, b) from every point to every segment head-tail, and the closest points (n, b, 3)."""
    axis = tails - heads
    length2 = np.maximum(np.einsum("bi,bi->b", axis, axis), 1e-20)
    t = np.clip(np.einsum("nbi,bi->nb", points[:, None, :] - heads[None], axis) / length2, 0.0, 1.0)
    closest = heads[None] + t[..., None] * axis[None]
    return np.linalg.norm(points[:, None, :] - closest, axis=2), closest


def bone_distances(points: np.ndarray, heads: np.ndarray, tails: np.ndarray, segment_bones: np.ndarray,
                   bone_count: int):
    """Distances (n, bones) from every point to each bone's nearest segment, and those closest points."""
    distance = np.empty((len(points), bone_count))
    closest = np.empty((len(points), bone_count, 3))
    members = [np.flatnonzero(segment_bones == bone) for bone in range(bone_count)]
    if any(len(mine) == 0 for mine in members):
        raise ValueError("every bone needs at least one segment")
    for start in range(0, len(points), DISTANCE_BLOCK):   # blocks bound the (n, segments, 3) temporaries
        block = slice(start, min(len(points), start + DISTANCE_BLOCK))
        by_segment, closest_segment = segment_distances(points[block], heads, tails)
        rows = np.arange(block.stop - block.start)
        for bone, mine in enumerate(members):
            pick = mine[np.argmin(by_segment[:, mine], axis=1)]
            distance[block, bone] = by_segment[rows, pick]
            closest[block, bone] = closest_segment[rows, pick]
    return distance, closest


class _Sight:
    """Straight-line visibility through the inside of a mesh: one Embree scene, asked in batches."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, epsilon: float):
        from embreex import rtcore_scene
        from embreex.mesh_construction import TriangleMesh

        self.scene = rtcore_scene.EmbreeScene()
        TriangleMesh(self.scene, np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(faces, np.int32))
        self.epsilon = epsilon

    def blocked(self, origins: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Whether the straight segment from each origin (a surface vertex) to its target crosses the surface."""
        offset = targets - origins
        length = np.linalg.norm(offset, axis=1)
        direction = offset / np.maximum(length, 1e-20)[:, None]
        # Start a hair inside the surface so that the vertex's own triangles are not hit at distance zero.
        start = origins + self.epsilon * direction
        reach = np.maximum(length - 2 * self.epsilon, 0.0)
        hits = self.scene.run(np.ascontiguousarray(start, np.float32), np.ascontiguousarray(direction, np.float32),
                              dists=np.ascontiguousarray(reach, np.float32))
        return (np.asarray(hits) >= 0) & (reach > 0)


def bone_heat_weights(vertices: np.ndarray, faces: np.ndarray, heads: np.ndarray, tails: np.ndarray,
                      segment_bones: np.ndarray | None = None, *, max_influences: int = 4,
                      min_weight: float = MIN_WEIGHT, heat_constant: float = HEAT_CONSTANT) -> HeatWeights:
    """Skin weights of a closed (welded) triangle mesh for bones made of segments heads[s] -> tails[s].

    segment_bones[s] is the bone that segment s belongs to (default: one segment per bone); a bone's
    distance from a vertex is that of its nearest segment.
    """
    try:
        import robust_laplacian
    except ImportError as exc:  # an optional dependency fails when used, saying what to install
        raise ForgeError("skin weights need the robust-laplacian package: pip install robust-laplacian") from exc
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    heads = np.asarray(heads, dtype=np.float64)
    tails = np.asarray(tails, dtype=np.float64)
    segment_bones = np.arange(len(heads)) if segment_bones is None else np.asarray(segment_bones, dtype=np.int64)
    count, bone_count = len(vertices), int(segment_bones.max()) + 1
    size = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))

    distance, closest = bone_distances(vertices, heads, tails, segment_bones, bone_count)
    order = np.argsort(distance, axis=1)[:, :min(CANDIDATES, bone_count)]
    rows = np.arange(count)
    nearest = np.full(count, -1)
    sight = _Sight(vertices, faces, 1e-5 * size)
    for rank in range(order.shape[1]):
        todo = nearest < 0
        if not todo.any():
            break
        bone = order[todo, rank]
        blocked = sight.blocked(vertices[todo], closest[rows[todo], bone])
        chosen = np.flatnonzero(todo)[~blocked]
        nearest[chosen] = bone[~blocked]
    # A closed part that sees no bone at all (an accessory floating just off the body) would be cut off
    # from every heat source: it takes its nearest bone, seen or not.
    adjacency = sparse.coo_matrix((np.ones(faces.size), (faces.ravel(), np.roll(faces, 1, axis=1).ravel())),
                                  shape=(count, count))
    parts, part_of = csgraph.connected_components(adjacency, directed=False)
    seen_parts = np.zeros(parts, dtype=bool)
    seen_parts[part_of[nearest >= 0]] = True
    blind = ~seen_parts[part_of]
    nearest[blind] = order[blind, 0]
    attached = nearest >= 0
    d = np.maximum(distance[rows[attached], nearest[attached]], 1e-4 * size)
    heat = np.zeros(count)
    heat[attached] = heat_constant / d ** 2

    stiffness, mass = robust_laplacian.mesh_laplacian(vertices, faces)
    tie = mass.diagonal() * heat
    system = (stiffness + sparse.diags(tie)).tocsc()
    source = np.zeros((count, bone_count))
    source[rows[attached], nearest[attached]] = tie[attached]
    solved = splu(system).solve(source)
    solved = np.clip(solved, 0.0, None)
    bones, weights = prune(solved, max_influences, min_weight)
    info = {"vertices": count, "unseen_vertices": int((~attached).sum()),
            "parts": int(parts), "parts_without_sight": int((~seen_parts).sum())}
    return HeatWeights(bones, weights, info)


def prune(dense: np.ndarray, max_influences: int, min_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep each row's `max_influences` largest shares, drop those under `min_weight`, renormalise.

    Returns (bones (n, k) with -1 in empty slots, weights (n, k)), largest first; a row with nothing
    left keeps its single largest entry.
    """
    count = len(dense)
    k = min(max_influences, dense.shape[1])
    total = dense.sum(axis=1, keepdims=True)
    share = np.divide(dense, total, out=np.zeros_like(dense), where=total > 0)
    order = np.argsort(-share, axis=1, kind="stable")[:, :k]
    kept = np.take_along_axis(share, order, axis=1)
    kept[kept < min_weight] = 0.0
    kept[:, 0] = np.where(kept.sum(axis=1) > 0, kept[:, 0], 1.0)
    kept /= kept.sum(axis=1, keepdims=True)
    bones = np.where(kept > 0, order, -1)
    return bones.astype(np.int64), np.where(bones >= 0, kept, 0.0)

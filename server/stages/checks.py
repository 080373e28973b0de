"""Game-ready checklist for manifest.json: topology, winding, UVs, texel density, textures, pivot and hulls."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import sparse
from scipy.sparse import csgraph

from ..errors import InputError
from ..meshdata import MeshArrays

UV_RESOLUTION = 1024
TEXEL_DENSITY_TOLERANCE = 0.25  # ok when the density is within 25 % of the target
UV_OVERLAP_LIMIT = 0.001  # share of covered texels that more than one triangle covers
MAX_HULL_VERTICES = 64  # CONVENTIONS.md: 32 to 64 per UCX hull
# A pivot is "on" its point when within 1 mm or 0.5 % of the asset's largest extent.
PIVOT_TOLERANCE_M = 0.001
PIVOT_TOLERANCE_FRACTION = 0.005
_SPAN_PAIRS = 250_000  # (triangle, row) pairs solved at once, bounds memory
_EDGE_EPS = 1e-6  # texel centres this close to an edge (in texel² units) count as on it
_SETTLED_MARGIN = 1e-9  # of an edge function's terms: far above its rounding (1e-16), far below a texel


def game_ready_checks(lods: list[MeshArrays], *, textures: dict[str, tuple[int, int]] | None = None,
                      texel_density_target: float | None = None, hulls: list[MeshArrays] | None = None,
                      pivot: str = "bottom_centre", max_hull_vertices: int = MAX_HULL_VERTICES) -> dict:
    """The checklist: {"ok": all checks ok, "checks": [{"name", "ok", "value", "expected"}, ...]}.

    Topology and UV checks give one value per LOD. Checks whose input is missing are left out rather
    than passed: no textures, no texture-size or texel-density check; no hulls, no hull checks; pivot
    "custom", no pivot check. Everything in the result is JSON-safe. Lengths are reported in cm.
    """
    _check_args(lods, textures, texel_density_target, hulls, pivot, max_hull_vertices)
    welded = [_welded(m) for m in lods]
    checks = []

    counts = [m.face_count for m in lods]
    checks.append(_check("triangles_per_lod", all(c > 0 for c in counts)
                         and all(a > b for a, b in zip(counts, counts[1:])), counts,
                         "each LOD has fewer triangles than the one before (LOD0 > LOD1 > LOD2 > 0)"))

    topology = [edge_report(w) for w in welded]
    checks.append(_check("watertight", all(t["boundary_edges"] == 0 and t["non_manifold_edges"] == 0
                                           for t in topology),
                         [t["boundary_edges"] == 0 and t["non_manifold_edges"] == 0 for t in topology],
                         "every edge shared by exactly two triangles (vertices welded by position), per LOD"))
    manifold = [{"non_manifold_edges": t["non_manifold_edges"],
                 "non_manifold_vertices": t["non_manifold_vertices"]} for t in topology]
    checks.append(_check("manifold", all(v["non_manifold_edges"] == 0 and v["non_manifold_vertices"] == 0
                                         for v in manifold), manifold,
                         "no edge shared by more than two triangles and no vertex joining separate fans"))
    flipped = [int(flipped_faces(w).sum()) for w in welded]
    checks.append(_check("flipped_faces", not any(flipped), flipped,
                         "0 triangles wound against their neighbours or facing into a closed shell"))

    if all(m.uv is not None for m in lods):
        overlap = [uv_overlap_fraction(m.uv, m.faces) for m in lods]
        checks.append(_check("uv_overlap", all(o <= UV_OVERLAP_LIMIT for o in overlap),
                             [round(o, 5) for o in overlap],
                             f"at most {UV_OVERLAP_LIMIT:.1%} of the covered UV texels covered twice"))
        outside = [float(np.mean((m.uv < -1e-6) | (m.uv > 1 + 1e-6)).round(5)) for m in lods]
        checks.append(_check("uv_in_unit_square", not any(outside), outside,
                             "share of UV coordinates outside [0, 1] is 0, per LOD"))
    else:
        checks.append(_check("uv_present", False, [m.uv is not None for m in lods], "UVs on every LOD"))

    if textures:
        sizes = {name: [int(w), int(h)] for name, (w, h) in textures.items()}
        checks.append(_check("texture_sizes", all(w == h and _power_of_two(w) for w, h in sizes.values()),
                             sizes, "square, power-of-two sizes (512, 1024, 2048, ...)"))
        if lods[0].uv is not None:
            side = max(math.sqrt(w * h) for w, h in sizes.values())
            density = texel_density(lods[0], side)
            if texel_density_target is None:
                checks.append(_check("texel_density_px_per_cm", density > 0, round(density, 3),
                                     "> 0 px/cm (no target given)"))
            else:
                ratio = density / texel_density_target
                checks.append(_check("texel_density_px_per_cm",
                                     1 / (1 + TEXEL_DENSITY_TOLERANCE) <= ratio <= 1 + TEXEL_DENSITY_TOLERANCE,
                                     round(density, 3),
                                     f"{texel_density_target:g} px/cm within {TEXEL_DENSITY_TOLERANCE:.0%}"))

    low, high = lods[0].vertices.min(axis=0), lods[0].vertices.max(axis=0)
    size_cm = (high - low) * 100
    checks.append(_check("bounds_cm", bool(np.isfinite(size_cm).all() and size_cm.max() > 0),
                         [round(float(s), 3) for s in size_cm], "finite size > 0 (x, y, z in cm)"))
    if pivot != "custom":
        checks.append(_pivot_check(low, high, pivot))

    if hulls is not None:
        checks.append(_check("hull_count", len(hulls) >= 1, len(hulls), "at least 1 UCX convex hull"))
        vertices = [len(h.vertices) for h in hulls]
        checks.append(_check("hull_max_vertices", bool(vertices) and max(vertices) <= max_hull_vertices,
                             max(vertices, default=0), f"at most {max_hull_vertices} vertices per hull"))
        closed = [_closed_convex(h) for h in hulls]
        checks.append(_check("hulls_closed_convex", bool(closed) and all(closed), sum(closed),
                             f"all {len(hulls)} hulls closed and convex"))

    return {"ok": all(c["ok"] for c in checks), "checks": checks}


def edge_report(mesh: trimesh.Trimesh) -> dict:
    """Counts of boundary edges, edges shared by more than two faces, and non-manifold vertices."""
    faces = mesh.faces
    edges = mesh.edges_sorted
    key = edges[:, 0] * len(mesh.vertices) + edges[:, 1]
    _, counts = np.unique(key, return_counts=True)
    return {"boundary_edges": int((counts == 1).sum()), "non_manifold_edges": int((counts > 2).sum()),
            "non_manifold_vertices": int(non_manifold_vertices(faces, mesh.face_adjacency,
                                                               mesh.face_adjacency_edges).sum())}


def non_manifold_vertices(faces: np.ndarray, adjacency: np.ndarray, adjacency_edges: np.ndarray) -> np.ndarray:
    """Mask of vertices whose faces form more than one edge-connected fan (a bow-tie or pinched vertex).

    Each face corner is a node; corners at the same vertex of two faces that share an edge are joined.
    A manifold vertex ends up with all its corners in one component.
    """
    faces = np.asarray(faces)
    links = []
    for column in (0, 1):
        vertex = adjacency_edges[:, column]
        for side in (0, 1):
            face = adjacency[:, side]
            local = np.argmax(faces[face] == vertex[:, None], axis=1)
            links.append(face * 3 + local)
    a = np.concatenate([links[0], links[2]])
    b = np.concatenate([links[1], links[3]])
    graph = sparse.coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(faces.size, faces.size))
    _, labels = csgraph.connected_components(graph, directed=False)
    vertex = faces.reshape(-1)
    pairs = np.unique(vertex * faces.size + labels)  # one entry per (vertex, fan)
    return np.bincount(pairs // faces.size, minlength=int(vertex.max()) + 1) > 1


def flipped_faces(mesh: trimesh.Trimesh) -> np.ndarray:
    """Mask of faces wound against the rest of their surface.

    Faces are 2-coloured by winding: neighbours across an edge get the same colour when they traverse
    the edge in opposite directions (consistent) and different colours when not. In each connected
    surface one colour is wrong: for a closed surface the one that makes the enclosed volume negative,
    for an open one the colour with less area. Faces of a non-orientable surface are all reported.
    """
    faces = mesh.faces
    count = len(faces)
    if count == 0:
        return np.zeros(0, bool)
    adjacency = mesh.face_adjacency
    edge = mesh.face_adjacency_edges
    # Consistent neighbours traverse their shared edge a->b in one face and b->a in the other.
    same_direction = _traverses(faces[adjacency[:, 0]], edge) == _traverses(faces[adjacency[:, 1]], edge)
    f0, f1 = adjacency[:, 0], adjacency[:, 1]
    # Node 2f is face f as wound, 2f + 1 the face reversed.
    a = np.concatenate([2 * f0, 2 * f0 + 1])
    b = np.concatenate([2 * f1 + same_direction, 2 * f1 + 1 - same_direction])
    graph = sparse.coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(2 * count, 2 * count))
    _, labels = csgraph.connected_components(graph, directed=False)
    as_wound, reversed_ = labels[0::2], labels[1::2]
    non_orientable = as_wound == reversed_

    # A surface (component) holds the labels as_wound and reversed_ of its faces; name it by the smaller.
    surface = np.minimum(as_wound, reversed_)
    in_first = as_wound == surface  # which of the two colours this face has
    sign = np.where(in_first, 1.0, -1.0)
    triangles = mesh.triangles
    volume = np.einsum("ij,ij->i", triangles[:, 0], np.cross(triangles[:, 1], triangles[:, 2])) / 6.0
    area = mesh.area_faces
    _, surface_index = np.unique(surface, return_inverse=True)
    signed_volume = np.bincount(surface_index, weights=sign * volume)
    signed_area = np.bincount(surface_index, weights=sign * area)
    closed = np.ones(len(signed_volume), bool)
    boundary_faces = _boundary_faces(mesh)
    closed[np.unique(surface_index[boundary_faces])] = False
    # True where the first colour is the right one (outward when closed, the larger area when open).
    keep_first = np.where(closed, signed_volume >= 0, signed_area >= 0)
    flipped = np.where(keep_first[surface_index], ~in_first, in_first)
    return flipped | non_orientable


def uv_overlap_fraction(uv: np.ndarray, faces: np.ndarray, resolution: int = UV_RESOLUTION) -> float:
    """Share of covered texels whose centre lies strictly inside two or more UV triangles.

    The UV square is rasterised at resolution² over texel centres; a centre on an edge belongs to
    neither triangle, so triangles that only share edges never count as overlapping. Mirrored
    (clockwise) UV triangles count like any other.
    """
    hits = uv_texel_hits(uv, faces, resolution)
    covered = int((hits > 0).sum())
    return float((hits > 1).sum() / covered) if covered else 0.0


def uv_texel_hits(uv: np.ndarray, faces: np.ndarray, resolution: int = UV_RESOLUTION) -> np.ndarray:
    """(resolution, resolution) count of the UV triangles whose inside holds each texel centre (row = v)."""
    tri = np.asarray(uv, np.float64)[np.asarray(faces)] * resolution  # (F, 3, 2) in texels
    doubled_area = _cross2(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    keep = np.abs(doubled_area) > 1e-12
    tri, doubled_area = tri[keep], doubled_area[keep]
    # Edge k runs from corner k to corner k+1; e = A x + B y + C is > 0 inside whatever the winding.
    start, end = tri, np.roll(tri, -1, axis=1)
    sign = np.sign(doubled_area)[:, None]
    edges = _Edges(a=(start[..., 1] - end[..., 1]) * sign, b=(end[..., 0] - start[..., 0]) * sign,
                   c=((end[..., 1] - start[..., 1]) * start[..., 0]
                      - (end[..., 0] - start[..., 0]) * start[..., 1]) * sign)
    low = np.clip(np.ceil(tri.min(axis=1) - 0.5), 0, resolution).astype(np.int64)
    high = np.clip(np.floor(tri.max(axis=1) - 0.5), -1, resolution - 1).astype(np.int64)
    rows = np.where(high[:, 0] >= low[:, 0], np.maximum(high[:, 1] - low[:, 1] + 1, 0), 0)
    # Each row of a triangle covers one run of texels: +1 where it starts, -1 after it ends, summed along rows.
    starts_minus_ends = np.zeros(resolution * (resolution + 1), np.int64)
    direct_hits = np.zeros(resolution * resolution, np.int64)
    chunk_of = np.cumsum(rows) // _SPAN_PAIRS
    for chunk in np.unique(chunk_of[rows > 0]):
        index = np.nonzero((chunk_of == chunk) & (rows > 0))[0]
        owner = np.repeat(index, rows[index])
        row = low[owner, 1] + np.arange(len(owner)) - np.repeat(np.cumsum(rows[index]) - rows[index], rows[index])
        spans = _row_spans(edges.of(owner), row + 0.5, low[owner, 0], high[owner, 0])
        run = spans.settled & (spans.first <= spans.last)
        line = row[run] * (resolution + 1)
        starts_minus_ends += np.bincount(line + spans.first[run], minlength=starts_minus_ends.size)
        starts_minus_ends -= np.bincount(line + spans.last[run] + 1, minlength=starts_minus_ends.size)
        unsettled = ~spans.settled
        if unsettled.any():
            direct_hits += _tested_texels(edges.of(owner[unsettled]), row[unsettled], low[owner[unsettled], 0],
                                          high[owner[unsettled], 0], resolution)
    hits = np.cumsum(starts_minus_ends.reshape(resolution, resolution + 1)[:, :resolution], axis=1)
    return hits + direct_hits.reshape(resolution, resolution)


@dataclass
class _Edges:
    """The three edge functions e = a x + b y + c of each triangle, (n, 3) arrays, > 0 inside."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray

    def of(self, owner: np.ndarray) -> "_Edges":
        return _Edges(self.a[owner], self.b[owner], self.c[owner])

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Texel centres (x, y) strictly inside: the one test every texel of the overlap check is held to."""
        return (self.a * x[:, None] + self.b * y[:, None] + self.c > _EDGE_EPS).all(axis=1)


@dataclass
class _Spans:
    first: np.ndarray  # first and last texel column inside, per (triangle, row)
    last: np.ndarray
    settled: np.ndarray  # False where a texel centre lies so near an edge that rounding could decide it


def _row_spans(edges: _Edges, y: np.ndarray, first_column: np.ndarray, last_column: np.ndarray) -> _Spans:
    """The run of texel centres inside each triangle on each row, solved from the edge functions.

    In floating point, e(x) is monotone in x for every edge, so the texels that pass the direct test form
    one run; its ends come from where each edge crosses the row. A row is left unsettled when a centre
    within its column range lies near enough a crossing that the direct test's rounding (about 1e-16 of
    the terms) could differ from the solved one: those rows get the direct test (_tested_texels).
    """
    a, rest = edges.a, edges.b * y[:, None] + edges.c
    magnitude = np.abs(a) * (np.abs(last_column) + 1.0)[:, None] + np.abs(edges.b * y[:, None]) + np.abs(edges.c)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        crossing = (_EDGE_EPS - rest) / a - 0.5  # a > 0: inside for x > crossing; a < 0: for x < crossing
        margin = _SETTLED_MARGIN * (magnitude + 1.0) / np.abs(a)
    lowest, highest = (first_column - 1)[:, None], (last_column + 1)[:, None]
    nearest = np.clip(np.round(np.nan_to_num(crossing)), first_column[:, None], last_column[:, None])
    flat = a == 0
    settled = ((np.abs(nearest - crossing) > margin) | flat).all(axis=1)
    bounded = np.clip(np.nan_to_num(crossing), lowest, highest)
    first = np.where(a > 0, np.floor(bounded) + 1, lowest).max(axis=1).astype(np.int64)
    last = np.where(a < 0, np.ceil(bounded) - 1, highest).min(axis=1).astype(np.int64)
    first, last = np.maximum(first, first_column), np.minimum(last, last_column)
    # A flat edge (a = 0) passes or fails its whole row: the direct test's own arithmetic, b y + c.
    row_outside = (flat & ~(rest > _EDGE_EPS)).any(axis=1)
    return _Spans(first, np.where(row_outside, first - 1, last), settled)


def _tested_texels(edges: _Edges, row: np.ndarray, first_column: np.ndarray, last_column: np.ndarray,
                   resolution: int) -> np.ndarray:
    """Hits per texel (flat, resolution²) from testing every texel of the given rows' column ranges."""
    count = np.maximum(last_column - first_column + 1, 0)
    owner = np.repeat(np.arange(len(row)), count)
    x = first_column[owner] + np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    inside = edges.of(owner).inside(x + 0.5, row[owner] + 0.5)
    return np.bincount(row[owner][inside] * resolution + x[inside], minlength=resolution * resolution)


def texel_density(mesh: MeshArrays, texture_side: float) -> float:
    """Texels per centimetre: texture side * sqrt(UV area / surface area in cm²)."""
    if mesh.uv is None:
        raise InputError("mesh", "a mesh without UVs", "a mesh with UVs to measure texel density")
    uv = np.asarray(mesh.uv, np.float64)[mesh.faces]
    uv_area = float(np.abs(_cross2(uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0])).sum() / 2)
    tri = mesh.vertices[mesh.faces]
    surface_cm2 = float(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
                        / 2 * 1e4)
    return texture_side * math.sqrt(uv_area / surface_cm2) if surface_cm2 > 0 else 0.0


def _pivot_check(low: np.ndarray, high: np.ndarray, pivot: str) -> dict:
    tolerance = max(PIVOT_TOLERANCE_M, PIVOT_TOLERANCE_FRACTION * float((high - low).max()))
    centre = (low + high) / 2
    offset = np.array([centre[0], centre[1], low[2] if pivot == "bottom_centre" else centre[2]])
    value = {"centre_x_cm": round(float(offset[0]) * 100, 3), "centre_y_cm": round(float(offset[1]) * 100, 3),
             ("min_z_cm" if pivot == "bottom_centre" else "centre_z_cm"): round(float(offset[2]) * 100, 3)}
    where = "bounding-box centre in x, y and lowest z" if pivot == "bottom_centre" else "bounding-box centre"
    return _check(f"pivot_{pivot}", bool(np.abs(offset).max() <= tolerance), value,
                  f"{where} at the origin within {tolerance * 100:.2f} cm")


def _welded(mesh: MeshArrays) -> trimesh.Trimesh:
    """Vertices merged by position only, so UV and normal seams do not read as holes."""
    welded = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    welded.merge_vertices(merge_tex=True, merge_norm=True)
    return welded


def _boundary_faces(mesh: trimesh.Trimesh) -> np.ndarray:
    edges = mesh.edges_sorted
    key = edges[:, 0] * len(mesh.vertices) + edges[:, 1]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return np.unique(mesh.edges_face[counts[inverse] == 1])


def _traverses(faces: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """Whether each face walks its shared edge from edge[:, 0] to edge[:, 1]."""
    start = np.argmax(faces == edge[:, :1], axis=1)
    return faces[np.arange(len(faces)), (start + 1) % 3] == edge[:, 1]


def _cross2(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _closed_convex(hull: MeshArrays) -> bool:
    mesh = trimesh.Trimesh(hull.vertices, hull.faces, process=True)
    return bool(mesh.is_watertight and mesh.is_convex and mesh.volume > 0)


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _check(name: str, ok, value, expected: str) -> dict:
    return {"name": name, "ok": bool(ok), "value": value, "expected": expected}


def _check_args(lods, textures, texel_density_target, hulls, pivot, max_hull_vertices) -> None:
    if not isinstance(lods, (list, tuple)) or not lods or not all(isinstance(m, MeshArrays) for m in lods):
        raise InputError("lods", lods, "a non-empty list of MeshArrays, LOD0 first")
    for i, mesh in enumerate(lods):
        if mesh.face_count == 0 or not np.isfinite(mesh.vertices).all():
            raise InputError(f"lods[{i}]", f"{mesh.face_count} faces", "faces and finite vertices")
        if mesh.uv is not None and np.shape(mesh.uv) != (len(mesh.vertices), 2):
            raise InputError(f"lods[{i}].uv", np.shape(mesh.uv), f"shape ({len(mesh.vertices)}, 2)")
    if textures is not None:
        if not isinstance(textures, dict):
            raise InputError("textures", textures, "a dict of name -> (width, height)")
        for name, size in textures.items():
            if (not isinstance(size, (tuple, list)) or len(size) != 2
                    or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size)):
                raise InputError(f"textures[{name!r}]", size, "(width, height) in pixels, both > 0")
    if texel_density_target is not None and (not isinstance(texel_density_target, (int, float))
                                             or not texel_density_target > 0):
        raise InputError("texel_density_target", texel_density_target, "None or a density in px/cm > 0")
    if hulls is not None and (not isinstance(hulls, (list, tuple))
                              or not all(isinstance(h, MeshArrays) for h in hulls)):
        raise InputError("hulls", hulls, "None or a list of MeshArrays")
    if pivot not in ("bottom_centre", "centre", "custom"):
        raise InputError("pivot", pivot, "one of bottom_centre, centre, custom")
    if not isinstance(max_hull_vertices, int) or max_hull_vertices < 4:
        raise InputError("max_hull_vertices", max_hull_vertices, "a whole number >= 4")

"""Convex collision hulls for UE's UCX meshes: CoACD in a time-bounded subprocess, one convex hull as fallback."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import trimesh
from scipy.spatial import QhullError

from ..errors import Cancelled, ForgeError, InputError
from ..meshdata import MeshArrays

# PhysX (UE's physics) caps a convex mesh at 255 vertices.
MAX_UCX_VERTICES = 255
POLL_S = 0.25  # how often a running CoACD asks whether its job was cancelled
# CoACD's tree search, lighter than its defaults (2000 samples, 150 iterations, 20 nodes, depth 3): on a
# 500-face proxy of the benchmark's meshes it took 1-6 s instead of 5-42 s on the old 2000-face proxy
# with 60 iterations and 10 nodes, with the same hull count and as much of the mesh covered
# (bench/results_issue17.md).
SEARCH = {"resolution": 1000, "mcts_iterations": 20, "mcts_nodes": 8, "mcts_max_depth": 2}
REFIT_REACH = 0.02  # hulls grow over mesh vertices at most this share of its diagonal outside them
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")

# Runs in a fresh interpreter so a hung or crashing CoACD can be killed without taking the server down.
# CoACD's native logger writes to stdout, so the worker moves fd 1 to stderr and answers on a copy of it.
_WORKER = r"""
import io, json, os, sys
import numpy as np
answer = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
import coacd
coacd.set_log_level("error")
params = json.loads(sys.argv[1])
arrays = np.load(io.BytesIO(sys.stdin.buffer.read()), allow_pickle=False)
parts = coacd.run_coacd(coacd.Mesh(arrays["vertices"], arrays["faces"]), **params)
out = {}
for i, (v, f) in enumerate(parts):
    out[f"v{i}"], out[f"f{i}"] = v, f
buffer = io.BytesIO()
np.savez(buffer, **out)
answer.write(buffer.getvalue())
answer.flush()
"""


def ucx_names(render_mesh_name: str, count: int) -> list[str]:
    """UE collision names for the hulls of one render mesh: UCX_<RenderMeshName>_00, _01, ..."""
    if not isinstance(render_mesh_name, str) or not NAME_PATTERN.match(render_mesh_name):
        raise InputError("render_mesh_name", render_mesh_name, "a name of letters, digits and '_' only")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise InputError("count", count, "a whole number >= 0")
    return [f"UCX_{render_mesh_name}_{i:02d}" for i in range(int(count))]


def convex_collision(mesh: MeshArrays, *, max_hulls: int = 16, max_hull_vertices: int = 48,
                     threshold: float = 0.05, timeout_s: float = 60, decimate_to: int = 500,
                     seed: int = 0, check: Callable[[], None] | None = None) -> list[MeshArrays]:
    """Closed convex hulls approximating the mesh, each with at most max_hull_vertices vertices.

    CoACD runs on a proxy: a copy welded by position and decimated to decimate_to faces, in a subprocess
    killed after timeout_s. Each hull is then grown over the mesh's own vertices that the proxy's hulls
    left outside (within REFIT_REACH of the mesh's size, so hulls do not bridge concavities), which
    wins back what decimating the proxy and the hulls cut off. If CoACD fails, times out or yields no
    usable hull, the result is the mesh's single convex hull. Every hull is rebuilt with qhull, so it is
    closed, convex and outward-wound; each hull's info holds {"method": "coacd" | "convex_hull_fallback",
    "reason": str | None, "seconds": float, "index": i, "count": n, "refit_vertices": int}. Hulls carry
    no colours, UVs or normals. seed makes CoACD's search repeatable. `check` (a job's cancel check) is
    called every POLL_S while CoACD runs; when it raises, the subprocess is killed and the exception goes on.
    """
    _check_collision_args(mesh, max_hulls, max_hull_vertices, threshold, timeout_s, decimate_to)
    started = time.perf_counter()
    welded = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    welded.merge_vertices(merge_tex=True, merge_norm=True)
    welded.update_faces(welded.nondegenerate_faces())
    if len(welded.faces) == 0:
        raise InputError("mesh", f"{mesh.face_count} faces, all degenerate", "a mesh with non-degenerate faces")
    vertices, faces = decimate(welded.vertices, welded.faces, decimate_to)

    reason = None
    try:
        parts = _run_coacd(vertices, faces, timeout_s, check, threshold=float(threshold),
                           max_convex_hull=int(max_hulls), preprocess_mode="auto", decimate=True,
                           max_ch_vertex=int(max_hull_vertices), seed=int(seed), **SEARCH)
        hulls = [h for h in (_closed_hull(v, max_hull_vertices) for v, _ in parts) if h is not None]
        if not hulls:
            reason = f"CoACD returned {len(parts)} parts and none had a volume"
    except Cancelled:
        raise
    except ForgeError as exc:
        hulls, reason = [], str(exc)

    method, refit = "coacd", 0
    if hulls:
        hulls, refit = cover_points(hulls, welded.vertices, max_hull_vertices)
    if not hulls:
        method = "convex_hull_fallback"
        hull = _closed_hull(welded.vertices, max_hull_vertices)
        if hull is None:
            raise ForgeError("the mesh is flat (it encloses no volume), so it has no convex collision; "
                             "export it without collision or give it thickness")
        hulls = [hull]

    seconds = round(time.perf_counter() - started, 3)
    return [MeshArrays(h.vertices, h.faces, info={"method": method, "reason": reason, "seconds": seconds,
                                                   "index": i, "count": len(hulls), "refit_vertices": refit})
            for i, h in enumerate(hulls)]


def cover_points(hulls: list[trimesh.Trimesh], points: np.ndarray, max_vertices: int,
                 reach: float | None = None) -> tuple[list[trimesh.Trimesh], int]:
    """Grow each hull over the points outside every hull whose nearest hull it is, within `reach` of it.

    reach defaults to REFIT_REACH of the points' bounding-box diagonal. Returns the hulls and how many
    points were taken in. "Nearest" is by the largest plane distance, which for a point outside a convex
    hull is at most its true distance, so nothing beyond reach is taken.
    """
    points = np.asarray(points, np.float64)
    diagonal = float(np.linalg.norm(np.ptp(points, axis=0)))
    reach = REFIT_REACH * diagonal if reach is None else reach
    outside = np.stack([(points @ h.face_normals.T - np.einsum("ij,ij->i", h.face_normals, h.triangles[:, 0]))
                        .max(axis=1) for h in hulls], axis=1)
    nearest, gap = outside.argmin(axis=1), outside.min(axis=1)
    take = (gap > 1e-6 * diagonal) & (gap <= reach)
    grown = []
    for index, hull in enumerate(hulls):
        extra = points[take & (nearest == index)]
        bigger = _closed_hull(np.vstack([hull.vertices, extra]), max_vertices) if len(extra) else None
        grown.append(bigger if bigger is not None else hull)
    return grown, int(take.sum())


def decimate(vertices: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadric decimation to about target_faces keeping the topology (no attributes kept).

    Topology matters here: a decimation that opens holes or pinches vertices makes CoACD remesh the
    input first (its "auto" preprocess), which on a 2k-face mug took minutes instead of seconds.
    """
    import pymeshlab

    if len(faces) <= target_faces:
        return np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    meshset = pymeshlab.MeshSet()
    meshset.add_mesh(pymeshlab.Mesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int32)))
    meshset.meshing_decimation_quadric_edge_collapse(targetfacenum=int(target_faces), preservetopology=True,
                                                    planarquadric=True)
    out = meshset.current_mesh()
    return out.vertex_matrix(), out.face_matrix().astype(np.int64)


def simplified_hull(points: np.ndarray, max_vertices: int) -> trimesh.Trimesh:
    """Convex hull of points with at most max_vertices vertices: decimate the hull and re-hull until it fits."""
    import pymeshlab

    hull = trimesh.convex.convex_hull(np.asarray(points, np.float64))
    # A closed triangulated convex polytope with V vertices has 2V - 4 faces.
    target = 2 * max_vertices - 4
    for _ in range(20):
        if len(hull.vertices) <= max_vertices:
            return hull
        meshset = pymeshlab.MeshSet()
        meshset.add_mesh(pymeshlab.Mesh(hull.vertices, hull.faces.astype(np.int32)))
        meshset.meshing_decimation_quadric_edge_collapse(targetfacenum=int(target), planarquadric=True)
        hull = trimesh.convex.convex_hull(meshset.current_mesh().vertex_matrix())
        target = max(4, int(target * 0.85))
    return trimesh.convex.convex_hull(farthest_points(hull.vertices, max_vertices))


def farthest_points(points: np.ndarray, count: int) -> np.ndarray:
    """A spread-out subset of count points (greedy farthest-point order from the first point)."""
    points = np.asarray(points, np.float64)
    chosen = [0]
    distance = np.linalg.norm(points - points[0], axis=1)
    while len(chosen) < min(count, len(points)):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return points[chosen]


def _closed_hull(points: np.ndarray, max_vertices: int) -> trimesh.Trimesh | None:
    """Simplified hull when it is closed, convex and has volume; None for flat or degenerate input."""
    points = np.asarray(points, np.float64)
    if len(points) < 4 or np.linalg.matrix_rank(points - points.mean(axis=0), tol=1e-9) < 3:
        return None
    try:
        hull = simplified_hull(points, max_vertices)
    except (QhullError, ValueError):  # coplanar or otherwise degenerate point sets
        return None
    scale = float(np.ptp(points, axis=0).max())
    if (len(hull.vertices) > max_vertices or not hull.is_watertight or not hull.is_convex
            or hull.volume <= 1e-9 * scale**3):
        return None
    return hull


def _run_coacd(vertices: np.ndarray, faces: np.ndarray, timeout_s: float, check: Callable[[], None] | None,
               **params) -> list:
    """CoACD's [(vertices, faces), ...] from a subprocess; ForgeError with the cause when it fails."""
    buffer = io.BytesIO()
    np.savez(buffer, vertices=np.asarray(vertices, np.float64), faces=np.asarray(faces, np.int32))
    # OpenMP's default busy-waiting spins on a core that other jobs need; on a loaded 2-core machine a
    # passive wait halved CoACD's time (the pool of waiting threads is woken, not polled).
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen([sys.executable, "-c", _WORKER, json.dumps(params)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    payload = buffer.getvalue()
    try:
        while True:
            try:
                # communicate() may be called again after a timeout without losing output; the input goes once.
                out, err = proc.communicate(payload, timeout=max(0.0, min(POLL_S, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                payload = None
                if check is not None:
                    check()
                if time.monotonic() >= deadline:
                    raise ForgeError(f"CoACD did not finish within timeout_s={timeout_s:g} s") from None
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    if proc.returncode != 0 or not out:
        lines = err.decode(errors="replace").strip().splitlines()
        raise ForgeError(f"CoACD failed (exit code {proc.returncode}): {lines[-1] if lines else 'no message'}")
    arrays = np.load(io.BytesIO(out), allow_pickle=False)
    return [(arrays[f"v{i}"], arrays[f"f{i}"]) for i in range(len(arrays.files) // 2)]


def _check_collision_args(mesh, max_hulls, max_hull_vertices, threshold, timeout_s, decimate_to) -> None:
    if not isinstance(mesh, MeshArrays) or mesh.face_count == 0:
        raise InputError("mesh", mesh if not isinstance(mesh, MeshArrays) else "0 faces",
                         "a MeshArrays with at least one face")
    if not np.isfinite(mesh.vertices).all():
        raise InputError("mesh", "non-finite vertex coordinates", "finite vertex coordinates")
    if isinstance(max_hulls, bool) or not isinstance(max_hulls, (int, np.integer)) or not 1 <= max_hulls <= 256:
        raise InputError("max_hulls", max_hulls, "a whole number from 1 to 256")
    if (isinstance(max_hull_vertices, bool) or not isinstance(max_hull_vertices, (int, np.integer))
            or not 4 <= max_hull_vertices <= MAX_UCX_VERTICES):
        raise InputError("max_hull_vertices", max_hull_vertices, f"a whole number from 4 to {MAX_UCX_VERTICES}")
    if not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
        raise InputError("threshold", threshold, "a concavity threshold in (0, 1]; 0.05 is CoACD's default")
    if not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise InputError("timeout_s", timeout_s, "a number of seconds > 0")
    if isinstance(decimate_to, bool) or not isinstance(decimate_to, (int, np.integer)) or decimate_to < 100:
        raise InputError("decimate_to", decimate_to, "a face count >= 100")

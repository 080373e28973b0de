"""Convex collision hulls for UE's UCX meshes: CoACD in a time-bounded subprocess, one convex hull as fallback."""

from __future__ import annotations

import heapq
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import ConvexHull, QhullError

from ..errors import Cancelled, ForgeError, InputError
from ..meshdata import MeshArrays
from ..schema import POSTPROCESS, plain_value

# PhysX (UE's physics) caps a convex mesh at 255 vertices.
MAX_UCX_VERTICES = 255
WAIT_S = 0.02  # how often running CoACD is looked at: taken up when done, killed when its job was cancelled
# When CoACD takes longer than this, a coarser run is tried first (_run_coacd). Runs on a closed 500-face proxy
# take 0.4-0.7 s on the benchmark's organic, thin and generated meshes (2-core machine).
RACE_AFTER_S = 1.0
# The coarser run's concavity threshold: on the benchmark's hard-surface part (through holes, a slot, a
# step) CoACD took 1.5-14 s at 0.05 depending on its seed and proxy (50 to 390 parts), and 0.8-2 s at this,
# with hulls as tight once merged and regrown (bench/RESULTS.md).
COARSE_THRESHOLD = 0.1
# CoACD's tree search, lighter than its defaults (2000 samples, 150 iterations, 20 nodes, depth 3): on a
# 500-face proxy of the benchmark's meshes it took 1-6 s instead of 5-42 s on the old 2000-face proxy
# with 60 iterations and 10 nodes, with the same hull count and as much of the mesh covered
# (bench/RESULTS.md).
SEARCH = {"resolution": 1000, "mcts_iterations": 20, "mcts_nodes": 8, "mcts_max_depth": 2}
# CoACD's own merge of its parts down to max_convex_hull measures each pair's concavity by sampling, over all
# pairs: on the benchmark's hard-surface proxy 1.9 of its 3.0 s (43 parts). Its parts are merged here instead
# (merge_hulls: the least empty space added first, 0.07 s there, and a tighter union of hulls: 1.034 against
# 1.051 of the mesh's volume; bench/RESULTS.md).
MERGE_IN_COACD = False
NEIGHBOUR_SHARE = 0.01  # parts whose boxes come this share of the diagonal near each other are merge candidates
PROXY_SHARES = (1.0, 1.2, 0.8, 1.5)  # proxy sizes tried (times decimate_to) until one comes out closed
REFIT_REACH = 0.02  # hulls grow over mesh vertices at most this share of its diagonal outside them
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")

# CoACD runs beside the unwrap and the error measurement, which take one core each: at a lower priority it
# takes the other core and whatever they leave, instead of a share of theirs (its two threads beside them
# made the unwrap a third slower on the 2-core machine).
NICENESS = 10
# Runs in a fresh interpreter so a hung or crashing CoACD can be killed without taking the server down.
# argv: the parameters (JSON), the input .npz and the path for the answer. CoACD's native logger writes to
# stdout, which goes nowhere; errors reach stderr.
_WORKER = r"""
import json, os, sys
if hasattr(os, "nice"):
    os.nice(NICENESS)
import numpy as np
import coacd
coacd.set_log_level("error")
params = json.loads(sys.argv[1])
arrays = np.load(sys.argv[2], allow_pickle=False)
parts = coacd.run_coacd(coacd.Mesh(arrays["vertices"], arrays["faces"]), **params)
out = {}
for i, (v, f) in enumerate(parts):
    out[f"v{i}"], out[f"f{i}"] = v, f
np.savez(sys.argv[3], **out)
""".replace("NICENESS", str(NICENESS))


def ucx_names(render_mesh_name: str, count: int) -> list[str]:
    """UE collision names for the hulls of one render mesh: UCX_<RenderMeshName>_00, _01, ..."""
    if not isinstance(render_mesh_name, str) or not NAME_PATTERN.match(render_mesh_name):
        raise InputError("render_mesh_name", render_mesh_name, "a name of letters, digits and '_' only")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise InputError("count", count, "a whole number >= 0")
    return [f"UCX_{render_mesh_name}_{i:02d}" for i in range(int(count))]


def convex_collision(mesh: MeshArrays, *, max_hulls: int = 16, max_hull_vertices: int = 48,
                     threshold: float = 0.05, timeout_s: float = 60, decimate_to: int = 500,
                     seed: int = 0, check: Callable[[], None] | None = None,
                     on_start: Callable[[], None] | None = None) -> list[MeshArrays]:
    """Closed convex hulls approximating the mesh, each with at most max_hull_vertices vertices.

    CoACD runs on a proxy: a copy welded by position and decimated to decimate_to faces, in a subprocess
    killed after timeout_s; its parts are merged down to max_hulls (merge_hulls). Each hull is then grown
    over the mesh's own vertices that the proxy's hulls left outside (within REFIT_REACH of the mesh's
    size, so hulls do not bridge concavities), which wins back what decimating the proxy and the hulls
    cut off. If CoACD fails, times out or yields no usable hull, the result is the mesh's single convex
    hull. Every hull is rebuilt with qhull, so it is closed, convex and outward-wound; each hull's info
    holds {"method": "coacd" | "convex_hull_fallback", "reason": str | None, "seconds": float, "index": i,
    "count": n, "refit_vertices": int}. Hulls carry no colours, UVs or normals. seed makes CoACD's search
    repeatable. `check` (a job's cancel check) is called every WAIT_S while CoACD runs; when it raises, the
    subprocesses are killed and the exception goes on.
    `on_start` is called once CoACD's process runs (a caller in another thread may wait for that before it
    calls an extension that holds Python's lock, which would keep this thread from starting it).
    """
    _check_collision_args(mesh, max_hulls, max_hull_vertices, threshold, timeout_s, decimate_to)
    started = time.perf_counter()
    welded = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    welded.merge_vertices(merge_tex=True, merge_norm=True)
    welded.update_faces(welded.nondegenerate_faces())
    if len(welded.faces) == 0:
        raise InputError("mesh", f"{mesh.face_count} faces, all degenerate", "a mesh with non-degenerate faces")
    # CoACD remeshes any input it finds not manifold (its "auto" preprocess), self-intersections included,
    # which a proxy of thin or holed parts often has: on the benchmark's stool that made a 75k-triangle
    # voxel remesh of a 500-face proxy, 2.5 s instead of 0.4 s, and fatter hulls (the legs are about one
    # voxel wide). A closed proxy is cut as it is; only when no proxy size gives one is it remeshed.
    for share in PROXY_SHARES:
        vertices, faces = decimate(welded.vertices, welded.faces, int(decimate_to * share))
        proxy = trimesh.Trimesh(vertices, faces, process=False)
        if proxy.is_watertight and proxy.is_winding_consistent:
            preprocess = "off"
            break
    else:
        vertices, faces = decimate(welded.vertices, welded.faces, decimate_to)
        preprocess = "auto"

    reason = None
    try:
        parts = _run_coacd(vertices, faces, timeout_s, check, on_start=on_start, threshold=float(threshold),
                           max_convex_hull=int(max_hulls), preprocess_mode=preprocess, decimate=True,
                           merge=MERGE_IN_COACD, max_ch_vertex=int(max_hull_vertices), seed=int(seed), **SEARCH,
                           coarse={"threshold": max(float(threshold), COARSE_THRESHOLD)})
        merged = merge_hulls([v for v, _ in parts], int(max_hulls))
        hulls = [h for h in (_closed_hull(v, max_hull_vertices) for v in merged) if h is not None]
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


def merge_hulls(parts: list[np.ndarray], max_count: int) -> list[np.ndarray]:
    """Merge convex parts (their points) pairwise until at most max_count are left; each result is a hull's points.

    Greedy, as V-HACD merges: the pair whose common hull adds the least volume over the two parts' own hulls
    goes first, so neighbouring pieces of one convex region are joined before anything bridges a gap. Only
    parts whose boxes come within NEIGHBOUR_SHARE of the diagonal of each other are paired, unless no such
    pair is left (separate islands), when every pair is. Flat parts count as no volume.
    """
    points = [np.asarray(p, np.float64).reshape(-1, 3) for p in parts]
    points = [p for p in points if len(p)]
    if len(points) <= max_count:
        return points
    volumes = [_hull_volume(p) for p in points]
    low = [p.min(axis=0) for p in points]
    high = [p.max(axis=0) for p in points]
    margin = NEIGHBOUR_SHARE * float(np.linalg.norm(np.ptp(np.vstack(points), axis=0)))
    alive = set(range(len(points)))
    heap: list[tuple[float, int, int]] = []

    def near(i: int, j: int) -> bool:
        return bool((low[i] - margin <= high[j]).all() and (low[j] - margin <= high[i]).all())

    def push(i: int, j: int) -> None:
        added = _hull_volume(np.vstack([points[i], points[j]])) - volumes[i] - volumes[j]
        heapq.heappush(heap, (added, i, j))

    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            if near(i, j):
                push(i, j)
    while len(alive) > max_count:
        while heap and (heap[0][1] not in alive or heap[0][2] not in alive):
            heapq.heappop(heap)
        if not heap:  # no neighbours left among the parts: islands are paired with every other
            for i in sorted(alive):
                for j in sorted(alive):
                    if i < j:
                        push(i, j)
            continue
        _, i, j = heapq.heappop(heap)
        joined = _hull_points(np.vstack([points[i], points[j]]))
        alive -= {i, j}
        points.append(joined)
        volumes.append(_hull_volume(joined))
        low.append(joined.min(axis=0))
        high.append(joined.max(axis=0))
        new = len(points) - 1
        for other in alive:
            if near(other, new):
                push(other, new)
        alive.add(new)
    return [points[i] for i in sorted(alive)]


def _hull_volume(points: np.ndarray) -> float:
    try:
        return float(ConvexHull(points).volume)
    except (QhullError, ValueError):  # flat or too few points
        return 0.0


def _hull_points(points: np.ndarray) -> np.ndarray:
    """The points on the convex hull (all of them when they span no volume)."""
    try:
        return points[ConvexHull(points).vertices]
    except (QhullError, ValueError):
        return np.unique(points, axis=0)


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
               coarse: dict | None = None, on_start: Callable[[], None] | None = None, **params) -> list:
    """CoACD's [(vertices, faces), ...] from a subprocess; ForgeError with the cause when it fails.

    `coarse`: parameters that replace some of `params` for a quicker second run, started when the first has
    not finished after RACE_AFTER_S; the first is paused meanwhile (on two cores both would only slow each
    other). The coarse run's parts are taken, and the first run killed, when it returns as many parts as
    max_convex_hull allows: the shape then needs the whole budget of hulls at the coarser concavity
    already, and the finer run would only merge its parts down to the same count. Otherwise the first run
    goes on and its answer is waited for.
    """
    # OpenMP's default busy-waiting spins on a core that other jobs need; on a loaded 2-core machine a
    # passive wait halved CoACD's time (the pool of waiting threads is woken, not polled).
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    limit = int(params.get("max_convex_hull", -1))
    with tempfile.TemporaryDirectory(prefix="o3f_coacd_") as folder:
        folder = Path(folder)
        source = folder / "mesh.npz"
        np.savez(source, vertices=np.asarray(vertices, np.float64), faces=np.asarray(faces, np.int32))
        runs: list[tuple[subprocess.Popen, Path, Path, bool]] = []

        def start(run_params: dict, quick: bool) -> None:
            answer, errors = folder / f"hulls{len(runs)}.npz", folder / f"errors{len(runs)}.txt"
            with open(errors, "wb") as stderr:
                proc = subprocess.Popen([sys.executable, "-c", _WORKER, json.dumps(run_params), str(source),
                                         str(answer)], env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=stderr)
            runs.append((proc, answer, errors, quick))

        began = time.monotonic()
        try:
            start(params, False)
            if on_start is not None:
                on_start()
            waiting = list(runs)
            while True:
                for run in list(waiting):
                    proc, answer, errors, quick = run
                    if proc.poll() is None:
                        continue
                    waiting.remove(run)
                    if proc.returncode == 0 and answer.is_file():
                        arrays = np.load(answer, allow_pickle=False)
                        parts = [(arrays[f"v{i}"], arrays[f"f{i}"]) for i in range(len(arrays.files) // 2)]
                        if not quick or len(parts) >= limit > 0 or not waiting:
                            return parts
                    if quick:  # too few parts at the coarse concavity, or it failed: the finer run decides
                        _pause(runs[0][0], False)
                        continue
                    if not waiting:
                        lines = errors.read_text(errors="replace").strip().splitlines()
                        raise ForgeError(f"CoACD failed (exit code {proc.returncode}): "
                                         f"{lines[-1] if lines else 'no message'}")
                if check is not None:
                    check()
                elapsed = time.monotonic() - began
                if elapsed >= timeout_s:
                    raise ForgeError(f"CoACD did not finish within timeout_s={timeout_s:g} s")
                if coarse and len(runs) == 1 and elapsed >= RACE_AFTER_S and hasattr(signal, "SIGSTOP"):
                    _pause(runs[0][0], True)
                    start({**params, **coarse}, True)
                    waiting.append(runs[-1])
                time.sleep(WAIT_S)
        finally:
            for proc, _, _, _ in runs:
                if proc.poll() is None:
                    proc.kill()  # a paused process is killed as it is
                proc.wait()


def _pause(proc: subprocess.Popen, stop: bool) -> None:
    """Stop or continue a running subprocess (POSIX signals; a finished one is left alone)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGSTOP if stop else signal.SIGCONT)


def _check_collision_args(mesh, max_hulls, max_hull_vertices, threshold, timeout_s, decimate_to) -> None:
    if not isinstance(mesh, MeshArrays) or mesh.face_count == 0:
        raise InputError("mesh", mesh if not isinstance(mesh, MeshArrays) else "0 faces",
                         "a MeshArrays with at least one face")
    if not np.isfinite(mesh.vertices).all():
        raise InputError("mesh", "non-finite vertex coordinates", "finite vertex coordinates")
    max_hulls = POSTPROCESS.field("max_hulls").check(plain_value(max_hulls), "max_hulls")
    if (isinstance(max_hull_vertices, bool) or not isinstance(max_hull_vertices, (int, np.integer))
            or not 4 <= max_hull_vertices <= MAX_UCX_VERTICES):
        raise InputError("max_hull_vertices", max_hull_vertices, f"a whole number from 4 to {MAX_UCX_VERTICES}")
    if not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
        raise InputError("threshold", threshold, "a concavity threshold in (0, 1]; 0.05 is CoACD's default")
    if not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise InputError("timeout_s", timeout_s, "a number of seconds > 0")
    if isinstance(decimate_to, bool) or not isinstance(decimate_to, (int, np.integer)) or decimate_to < 100:
        raise InputError("decimate_to", decimate_to, "a face count >= 100")

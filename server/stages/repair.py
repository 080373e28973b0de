"""Watertight repair with MeshFix, run in a child process under a timeout, with colours carried over."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from ..child_env import child_env
from ..errors import ForgeError, InputError
from ..meshdata import MeshArrays

# A repair that leaves less than this share of the input's triangles has destroyed the mesh.
MIN_FACE_FRACTION = 0.1
# Filling holes adds triangles; beyond this multiple of the input (or MIN_FACE_CEILING for tiny
# inputs) something has gone wrong.
MAX_FACE_GROWTH = 2.0
MIN_FACE_CEILING = 1000


def _meshfix(vertices: np.ndarray, faces: np.ndarray, largest_only: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """MeshFix's default repair (pymeshfix.MeshFix.repair), step by step so each step can be counted."""
    from pymeshfix import PyTMesh

    tin = PyTMesh()
    tin.set_quiet(True)
    tin.load_array(np.ascontiguousarray(vertices, np.float64), np.ascontiguousarray(faces, np.int32))
    stats = {"holes_found": int(tin.n_boundaries)}
    stats["holes_filled"] = int(tin.fill_small_boundaries(0, True))
    before = int(tin.n_faces)
    stats["components_dropped"] = int(tin.remove_smallest_components()) if largest_only else 0
    stats["faces_dropped_with_components"] = before - int(tin.n_faces)
    stats["clean_converged"] = bool(tin.clean(10, 3))
    out_vertices, out_faces = tin.return_arrays()
    return np.asarray(out_vertices, np.float64), np.asarray(out_faces, np.int64), stats


def weld_coincident(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Merge vertices at the same position (to 1e-8 m); drop faces that collapse. Returns the merge count."""
    import trimesh

    # Exporters split vertices along UV and normal seams; MeshFix would see each seam as a cut, tear
    # the mesh into pieces along it and keep only the largest.
    unique, inverse = trimesh.grouping.unique_rows(vertices)
    faces = inverse[faces]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])]
    return vertices[unique], faces, int(len(vertices) - len(unique))


def _worker_command(in_path: str, out_path: str) -> list[str]:
    """Command line of the child that repairs the arrays in in_path into out_path (tests replace it)."""
    return [sys.executable, "-m", __name__, in_path, out_path]


def _run_isolated(vertices: np.ndarray, faces: np.ndarray, largest_only: bool,
                  timeout_s: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """MeshFix in a child process, exchanging arrays through .npz files; ForgeError on timeout or crash."""
    # A separate interpreter (not multiprocessing) so a segfault or hang cannot take the server with it,
    # and so callers need no `if __name__ == "__main__"` guard, as multiprocessing's spawn would demand.
    env = child_env()
    with tempfile.TemporaryDirectory(prefix="o3f_repair_") as folder:
        in_path, out_path = os.path.join(folder, "in.npz"), os.path.join(folder, "out.npz")
        np.savez(in_path, vertices=vertices, faces=faces, largest_only=largest_only)
        try:
            done = subprocess.run(_worker_command(in_path, out_path), env=env, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True)
        except subprocess.TimeoutExpired:  # run() has killed the child by now
            raise ForgeError(f"mesh repair (MeshFix) timed out after {timeout_s:g} s on {len(faces)} triangles "
                             "and was stopped; simplify or split the mesh, or allow a longer timeout") from None
        last_line = (done.stderr.strip().splitlines() or ["no message"])[-1]
        if done.returncode < 0:
            raise ForgeError(f"mesh repair (MeshFix) crashed (signal {-done.returncode}) on this mesh; "
                             "clean or simplify it first")
        if done.returncode != 0 or not os.path.isfile(out_path):
            raise ForgeError(f"mesh repair (MeshFix) failed: {last_line}")
        with np.load(out_path, allow_pickle=False) as result:
            return result["vertices"], result["faces"], json.loads(str(result["stats"]))


def _worker_main(in_path: str, out_path: str) -> None:
    with np.load(in_path, allow_pickle=False) as arrays:
        vertices, faces, stats = _meshfix(arrays["vertices"], arrays["faces"], bool(arrays["largest_only"]))
    np.savez(out_path, vertices=vertices, faces=faces, stats=json.dumps(stats))


def transfer_colors(source: MeshArrays, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(n, 4) uint8 colours for `vertices`, interpolated at their closest points on `source`'s surface."""
    import pymeshlab

    target = np.ascontiguousarray(vertices, np.float64)
    mesh_set = pymeshlab.MeshSet()
    mesh_set.add_mesh(pymeshlab.Mesh(source.vertices, source.faces,
                                     v_color_matrix=np.asarray(source.colors, np.float64) / 255.0))
    mesh_set.add_mesh(pymeshlab.Mesh(target, np.ascontiguousarray(faces, np.int32)))
    reach = float(np.ptp(np.vstack([source.vertices, target]), axis=0).max()) * 4 + 1.0
    # Beyond `upperbound` the filter paints white; make it reach everything.
    mesh_set.transfer_attributes_per_vertex(sourcemesh=0, targetmesh=1, colortransfer=True,
                                            upperbound=pymeshlab.PureValue(reach))
    painted = mesh_set.mesh(1)
    if painted.vertex_number() != len(target):
        raise ForgeError("colour transfer changed the vertex count; the repaired mesh is inconsistent")
    return np.clip(np.rint(painted.vertex_color_matrix() * 255.0), 0, 255).astype(np.uint8)


def _check_input(mesh: MeshArrays, timeout_s: float, max_faces: int | None) -> None:
    mesh.validate()
    if not timeout_s > 0:
        raise InputError("timeout_s", timeout_s, "a positive number of seconds")
    if max_faces is not None and (isinstance(max_faces, bool) or not isinstance(max_faces, int) or max_faces < 4):
        raise InputError("max_faces", max_faces, "None or an integer of at least 4")


def repair(mesh: MeshArrays, *, timeout_s: float = 120, require_watertight: bool = True,
           max_faces: int | None = None, largest_only: bool = True) -> MeshArrays:
    """Close holes, remove degenerate and self-intersecting triangles with MeshFix.

    Coincident vertices (split seams) are welded first. MeshFix runs in a child Python process (it
    can crash or hang on bad input); it is killed after `timeout_s` seconds and ForgeError is raised.
    By default (`largest_only`) MeshFix keeps only the largest connected component;
    `info["repair"]` says how many were dropped.

    Attributes: `colors` are carried over by interpolating the original surface's vertex colours at
    each repaired vertex's closest point on it. `uv` and `normals` are set to None: MeshFix re-meshes
    the surface, so the old UV layout no longer fits it (unwrap again after decimation) and the
    normals are stale.

    Postconditions (ForgeError otherwise): not empty; at least MIN_FACE_FRACTION of the input's
    triangles; at most `max_faces` (default: MAX_FACE_GROWTH times the input); watertight when
    `require_watertight`.
    """
    _check_input(mesh, timeout_s, max_faces)
    if importlib.util.find_spec("pymeshfix") is None:
        raise ForgeError("mesh repair needs pymeshfix, which is not installed: pip install pymeshfix")
    started = time.perf_counter()
    vertices, faces, merged = weld_coincident(mesh.vertices, mesh.faces)
    vertices, faces, stats = _run_isolated(vertices, faces, bool(largest_only), timeout_s)
    stats = {"coincident_vertices_welded": merged, **stats}
    before = mesh.face_count
    after = int(len(faces))
    if after == 0:
        raise ForgeError(f"mesh repair removed every triangle of a {before}-triangle mesh; "
                         "the input is probably not a surface (check it for flat or broken pieces)")
    ceiling = max_faces if max_faces is not None else max(int(MAX_FACE_GROWTH * before), MIN_FACE_CEILING)
    if after > ceiling:
        raise ForgeError(f"mesh repair grew the mesh from {before} to {after} triangles (limit {ceiling}); "
                         "it has large holes or many pieces: clean it up first")
    if after < MIN_FACE_FRACTION * before:
        hint = (f"it dropped {stats['components_dropped']} smaller pieces; pass largest_only=False to keep them"
                if stats["components_dropped"] else "the input is badly broken")
        raise ForgeError(f"mesh repair kept only {after} of {before} triangles: {hint}")

    import trimesh

    watertight = bool(trimesh.Trimesh(vertices, faces, process=False).is_watertight)
    if require_watertight and not watertight:
        raise ForgeError(f"mesh repair could not make the mesh watertight ({stats['holes_found']} holes found, "
                         f"{stats['holes_filled']} filled); fix it in a modeller or skip the watertight check")

    colors = transfer_colors(mesh, vertices, faces) if mesh.colors is not None else None
    record = {"faces_before": before, "faces_after": after, **stats, "watertight": watertight,
              "colors_transferred": colors is not None, "uv_dropped": mesh.uv is not None,
              "seconds": round(time.perf_counter() - started, 3)}
    return MeshArrays(vertices, faces, colors=colors, uv=None, normals=None, info={**mesh.info, "repair": record})


if __name__ == "__main__":
    _worker_main(*sys.argv[1:3])

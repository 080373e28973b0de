"""Decimation to a triangle budget (fast preview and quadric final) and the surface deviation it causes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import Cancelled, ForgeError, InputError
from ..meshdata import MeshArrays
from . import regions
from .faces import closed_manifold, without_folded_pairs

MIN_TARGET_FACES = 4
# The final decimation penalises collapses that would leave triangles of worse quality than this
# (0 = degenerate, 1 = equilateral).
QUALITY_THRESHOLD = 0.3


def _check_mesh(mesh: MeshArrays, argument: str = "mesh") -> None:
    mesh.validate(argument)


def _check_target(target_faces) -> int:
    if isinstance(target_faces, bool) or not isinstance(target_faces, (int, np.integer)) \
            or target_faces < MIN_TARGET_FACES:
        raise InputError("target_faces", target_faces, f"an integer of at least {MIN_TARGET_FACES}")
    return int(target_faces)


def _unchanged(mesh: MeshArrays, key: str, target: int) -> MeshArrays:
    record = {"faces_before": mesh.face_count, "faces_after": mesh.face_count, "target_faces": target,
              "skipped": "the mesh already has no more triangles than the target"}
    return MeshArrays(mesh.vertices.copy(), mesh.faces.copy(),
                      colors=None if mesh.colors is None else mesh.colors.copy(),
                      uv=None if mesh.uv is None else mesh.uv.copy(),
                      normals=None if mesh.normals is None else mesh.normals.copy(),
                      info={**mesh.info, key: record})


def decimate_preview(mesh: MeshArrays, target_faces: int) -> MeshArrays:
    """Fast decimation with fast_simplification for a live preview; keeps no colours, UVs or normals."""
    try:
        import fast_simplification
    except ImportError:
        raise ForgeError("the decimation preview needs fast-simplification, which is not installed: "
                         "pip install fast-simplification") from None

    target = _check_target(target_faces)
    _check_mesh(mesh)
    if target >= mesh.face_count:
        return _unchanged(mesh, "decimate_preview", target)
    started = time.perf_counter()
    vertices, faces = fast_simplification.simplify(mesh.vertices, mesh.faces.astype(np.int32),
                                                   target_count=target)
    record = {"faces_before": mesh.face_count, "faces_after": int(len(faces)), "target_faces": target,
              "method": "fast_simplification", "seconds": round(time.perf_counter() - started, 3)}
    return MeshArrays(vertices, faces, info={**mesh.info, "decimate_preview": record})


# fast-simplification's 'agg': lower is more careful (7 is its default). A careful pass stops short of the
# target where its error threshold runs out; then the next, bolder pass continues from where it stopped.
FAST_AGGRESSIVENESS = (2, 3, 5, 7)
# The quick passes stop at a multiple of the target, and pymeshlab's heap-ordered quadric collapse (which
# takes the cheapest collapse every time) does the rest. Where the hand-over is best depends on the mesh:
# thin parts came out best from 1.5x (fast-simplification keeps thin cylinders round), flat faces with
# float32 noise from 3x (pymeshlab keeps flat regions flat). Both are made and the one nearer the input
# (mean and 99.9th percentile at 20k of its vertices) is kept; on the benchmark's organic, hard-surface, thin and
# generated meshes the kept one had less error than Blender's Decimate at the same triangle count (bench/RESULTS.md).
HAND_OVER_SHARES = (3.0, 1.5)
CAREFUL_QUALITY = 0.1  # pymeshlab's qualitythr for the careful part
ERROR_PROBES = 20_000  # input vertices the two candidates are measured at


def _fast_closed(mesh: MeshArrays, target: int, closed: bool | None = None) -> MeshArrays | None:
    """Quick passes, then a heap-ordered quadric collapse to the target, from each hand-over point.

    Of the results that reached the target and stayed closed and manifold, the one whose surface lies
    nearest the input's vertices (_nearest) is kept (None when none did). `closed`: the caller's own finding that
    the input is closed (None: check it here).
    """
    import fast_simplification

    if not (closed if closed is not None else closed_manifold(mesh.faces)):
        return None  # fast-simplification has no boundary protection: open meshes go to pymeshlab alone
    vertices, faces = mesh.vertices, mesh.faces.astype(np.int32)
    candidates = []
    for share in HAND_OVER_SHARES:
        middle = int(math.ceil(target * share))
        for aggressiveness in FAST_AGGRESSIVENESS:
            if len(faces) <= middle * 1.05:
                break
            vertices, faces = fast_simplification.simplify(vertices, faces, target_count=middle, agg=aggressiveness)
            faces = without_folded_pairs(faces)
        finished = _careful_finish(vertices, faces, target)
        if finished is not None and len(finished[1]) <= target * 1.05 and closed_manifold(finished[1]):
            candidates.append(finished)
    if not candidates:
        return None
    vertices, faces = candidates[_nearest(mesh.vertices, candidates) if len(candidates) > 1 else 0]
    return MeshArrays(vertices, np.asarray(faces, np.int64), info=mesh.info)


def _careful_finish(vertices: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray] | None:
    """pymeshlab's quadric edge collapse down to target (the input as it is when it has no more)."""
    import pymeshlab

    if len(faces) <= target:
        return vertices, faces
    mesh_set = pymeshlab.MeshSet()
    mesh_set.add_mesh(pymeshlab.Mesh(vertices, faces))
    try:
        mesh_set.meshing_decimation_quadric_edge_collapse(
            targetfacenum=target, qualitythr=CAREFUL_QUALITY, preservenormal=True, optimalplacement=True,
            preservetopology=True, planarquadric=False, autoclean=True)
    except pymeshlab.PyMeshLabException:
        return None
    return mesh_set.current_mesh().vertex_matrix(), mesh_set.current_mesh().face_matrix()


def _nearest(points: np.ndarray, candidates: list) -> int:
    """Index of the candidate surface nearest an even subset of the points (repeatable: no random samples).

    Nearest by mean distance and 99.9th percentile together, each relative to the best candidate's, so a
    slightly lower mean does not buy a much longer tail.
    """
    import pymeshlab

    probes = np.ascontiguousarray(points[:: max(1, len(points) // ERROR_PROBES)], np.float64)
    reach = pymeshlab.PureValue(float(np.linalg.norm(np.ptp(probes, axis=0))) * 2 + 1.0)
    figures = []
    for vertices, faces in candidates:
        mesh_set = pymeshlab.MeshSet()
        mesh_set.add_mesh(pymeshlab.Mesh(probes))
        mesh_set.add_mesh(pymeshlab.Mesh(vertices, faces))
        # With as many samples as the point set has vertices, the filter measures every one of them.
        mesh_set.get_hausdorff_distance(sampledmesh=0, targetmesh=1, samplevert=True, sampleface=False,
                                        samplenum=len(probes), savesample=True, maxdist=reach)
        distances = mesh_set.mesh(mesh_set.mesh_number() - 2).vertex_scalar_array()
        figures.append((float(distances.mean()), float(np.percentile(distances, 99.9))))
    figures = np.maximum(np.array(figures), 1e-15)
    return int(np.argmin((figures / figures.min(axis=0)).sum(axis=1)))


# Above this many triangles a closed mesh is first brought down to a bounded size: every later step (the careful
# decimation, the error measurement) then works on that. With REGIONS_AT_LEAST cores or more the mesh is cut into
# regions reduced side by side (regions.py) by careful passes, to REDUCED_FACES: on 16 regions, 1.5M organic,
# hard-surface and generated triangles to 250k and then to 10k came out as near the input as one pass to 500k
# (hard: nearer), and the careful decimation after it takes half the time. With fewer cores one bolder pass over
# the whole mesh goes to REDUCED_FACES_FEW_CORES: on 2 cores two regions' processes cost more than they saved
# (1.3M generated triangles: 0.96-1.03 s against 0.83-0.84 s), and careful passes more than the smaller hand-over
# saves (bench/RESULTS.md).
REDUCE_ABOVE = 1_000_000
REDUCED_FACES = 250_000
REDUCED_FACES_FEW_CORES = 500_000
REGIONS_AT_LEAST = 4
REDUCE_RATIO = 16  # the reduction takes a mesh to no less than this share of it (16M -> 1M, as measured)
# The bolder pass's aggressiveness: on 4M organic triangles, 4 was as quick as 7 and, once folded pairs were
# dropped, left the mesh closed and manifold where 5 to 7 left edges with four triangles.
REDUCE_AGGRESSIVENESS = 4


@dataclass(frozen=True)
class Reduction:
    """How reduce_early brings a mesh down: to `faces` triangles in `regions` regions, passes at `aggressiveness`."""

    faces: int
    regions: int
    aggressiveness: tuple[float, ...]


def reduction_plan(face_count: int, cores: int | None = None) -> Reduction:
    """The early reduction of a mesh of face_count triangles on this machine (or on `cores` cores)."""
    count = regions.region_count(face_count, cores)
    if count >= REGIONS_AT_LEAST:
        return Reduction(max(REDUCED_FACES, face_count // REDUCE_RATIO), count, FAST_AGGRESSIVENESS)
    return Reduction(max(REDUCED_FACES_FEW_CORES, face_count // REDUCE_RATIO), 1, (REDUCE_AGGRESSIVENESS,))


def reduce_early(mesh: MeshArrays, plan: Reduction | None = None,
                 check: Callable[[], None] | None = None) -> MeshArrays:
    """A huge closed mesh brought down by fast-simplification as `plan` says (reduction_plan's when None).

    With more than one region, the regions are reduced side by side in processes of their own (regions.py);
    when that fails, or with one region, one pass over the whole mesh. At these ratios the reduction moves the
    surface by a small fraction of what the final decimation does. The input comes back unchanged when it has
    no more triangles, or when the result is not closed and manifold (the careful decimation then starts from
    the input). Colours, UVs and normals are dropped. `check` is called while the regions' processes run (a
    cancel raises from it).
    """
    import fast_simplification

    _check_mesh(mesh)
    plan = plan or reduction_plan(mesh.face_count)
    if mesh.face_count <= plan.faces:
        return mesh
    started = time.perf_counter()
    record = {"faces_before": mesh.face_count, "target_faces": plan.faces,
              "aggressiveness": list(plan.aggressiveness)}
    if plan.regions > 1:
        try:
            stitched, cut = regions.reduce_in_regions(mesh, plan.faces, plan.aggressiveness, plan.regions, check)
        except Cancelled:
            raise
        except (ForgeError, ValueError) as exc:
            record["regions_failed"] = str(exc)
        else:
            if closed_manifold(stitched.faces):
                record.update(faces_after=stitched.face_count, **cut, seconds=round(time.perf_counter() - started, 3),
                              method=f"fast-simplification in {plan.regions} regions side by side, borders kept")
                return MeshArrays(stitched.vertices, stitched.faces, info={**mesh.info, "reduce_early": record})
            record["regions_failed"] = "the stitched regions were not closed and manifold"
    vertices, reduced = fast_simplification.simplify(mesh.vertices, mesh.faces.astype(np.int32),
                                                     target_count=plan.faces, agg=REDUCE_AGGRESSIVENESS)
    reduced = without_folded_pairs(reduced)
    if not closed_manifold(reduced):
        return mesh
    record.update(faces_after=int(len(reduced)), aggressiveness=[REDUCE_AGGRESSIVENESS],
                  method="fast-simplification, one pass", seconds=round(time.perf_counter() - started, 3))
    return MeshArrays(vertices, np.asarray(reduced, np.int64), info={**mesh.info, "reduce_early": record})


def decimate(mesh: MeshArrays, target_faces: int, *, preserve_boundary: bool = True,
             prefer_fast: bool = False, closed: bool | None = None) -> MeshArrays:
    """Quadric edge-collapse decimation (pymeshlab) of the final mesh down to `target_faces` triangles.

    A mesh that already has no more triangles than the target comes back as an unchanged copy. With
    `preserve_boundary`, open borders are not collapsed, so an open mesh may stop above the target
    (`info["decimate"]["reached_target"]` says so).
    Attributes: `colors` are kept (each surviving vertex keeps its own colour, though it may have
    moved by about one collapsed edge; bake colours from the original). `uv` and `normals` are
    set to None: collapses move vertices across UV seams and change the shading; unwrap afterwards.
    prefer_fast: for a closed manifold mesh, first take it most of the way with careful fast-simplification
    passes and finish with a heap-ordered quadric collapse (_fast_closed); keep the result when it reaches
    the target and stays closed and manifold. On the benchmark's meshes (250k to 1.3M triangles) that
    took 0.3-1.7 s with less error than Blender's Decimate (bench/RESULTS.md); colours are then
    dropped, since fast-simplification keeps none. `closed`: whether the caller already found every edge
    of the mesh shared by exactly two triangles (None: checked here; it costs a sort of the edges).
    """
    import pymeshlab

    target = _check_target(target_faces)
    _check_mesh(mesh)
    if target >= mesh.face_count:
        return _unchanged(mesh, "decimate", target)
    started = time.perf_counter()
    if prefer_fast:
        quick = _fast_closed(mesh, target, closed)
        if quick is not None:
            quick.info = {**mesh.info, "decimate": {
                "faces_before": mesh.face_count, "faces_after": quick.face_count, "target_faces": target,
                "reached_target": True, "method": "fast-simplification, then pymeshlab quadric collapse",
                "preserve_boundary": bool(preserve_boundary), "uv_dropped": mesh.uv is not None,
                "seconds": round(time.perf_counter() - started, 3)}}
            return quick
    faces_before = mesh.face_count
    mesh_set = pymeshlab.MeshSet()
    if mesh.colors is None:
        mesh_set.add_mesh(pymeshlab.Mesh(mesh.vertices, mesh.faces))
    else:
        mesh_set.add_mesh(pymeshlab.Mesh(mesh.vertices, mesh.faces,
                                         v_color_matrix=np.asarray(mesh.colors, np.float64) / 255.0))
    try:
        mesh_set.meshing_decimation_quadric_edge_collapse(
            targetfacenum=target, qualitythr=QUALITY_THRESHOLD, preserveboundary=bool(preserve_boundary),
            preservenormal=True, optimalplacement=True, planarquadric=True, autoclean=True)
    except pymeshlab.PyMeshLabException as exc:
        raise ForgeError(f"decimation failed in pymeshlab: {exc}") from exc
    result = mesh_set.current_mesh()
    colors = None
    if mesh.colors is not None:
        colors = np.clip(np.rint(result.vertex_color_matrix() * 255.0), 0, 255).astype(np.uint8)
    faces = result.face_matrix().astype(np.int64)
    record = {"faces_before": faces_before, "faces_after": int(len(faces)), "target_faces": target,
              "reached_target": len(faces) <= target * 1.05, "method": "pymeshlab quadric edge collapse",
              "preserve_boundary": bool(preserve_boundary),
              "uv_dropped": mesh.uv is not None, "seconds": round(time.perf_counter() - started, 3)}
    return MeshArrays(result.vertex_matrix(), faces, colors=colors, uv=None, normals=None,
                      info={**mesh.info, "decimate": record})


def surface_deviation(reference: MeshArrays, candidate: MeshArrays, samples: int = 50000) -> dict:
    """Two-sided distance between two surfaces in metres: {"max": Hausdorff, "mean": ..., "rms": ...}.

    pymeshlab's Hausdorff filter in both directions. "max" is over every vertex of each mesh (where
    peaks and cut corners lie) and `samples` random points on each mesh's faces; "mean" and "rms"
    are over the face samples alone, which are spread evenly by area.
    """
    import pymeshlab

    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 100:
        raise InputError("samples", samples, "an integer of at least 100")
    _check_mesh(reference, "reference")
    _check_mesh(candidate, "candidate")
    mesh_set = pymeshlab.MeshSet()
    mesh_set.add_mesh(pymeshlab.Mesh(reference.vertices, reference.faces))
    mesh_set.add_mesh(pymeshlab.Mesh(candidate.vertices, candidate.faces))
    # Samples farther than maxdist are left out of the statistics; let every sample count.
    span = np.ptp(np.vstack([reference.vertices, candidate.vertices]), axis=0)
    reach = pymeshlab.PureValue(float(np.linalg.norm(span)) * 2 + 1.0)
    largest, on_faces = 0.0, []
    for sampled, target in ((0, 1), (1, 0)):
        vertex_count = mesh_set.mesh(sampled).vertex_number()
        if vertex_count <= samples:
            # One pass over both kinds (the target's search grid is built once): asked for at least as many
            # samples as there are vertices, the filter takes every vertex first, in order, then `samples`
            # points on the faces.
            mesh_set.get_hausdorff_distance(sampledmesh=sampled, targetmesh=target, samplevert=True,
                                            sampleface=True, samplenum=int(samples), savesample=True, maxdist=reach)
            distances = mesh_set.mesh(mesh_set.mesh_number() - 2).vertex_scalar_array()
            largest = max(largest, float(distances.max()))
            on_faces.append(distances[vertex_count:])
            continue
        # Asked for fewer samples than it has vertices, the filter picks a random subset of them.
        at_vertices = mesh_set.get_hausdorff_distance(sampledmesh=sampled, targetmesh=target, samplevert=True,
                                                      sampleface=False, samplenum=vertex_count, maxdist=reach)
        mesh_set.get_hausdorff_distance(sampledmesh=sampled, targetmesh=target, samplevert=False, sampleface=True,
                                        samplenum=int(samples), savesample=True, maxdist=reach)
        distances = mesh_set.mesh(mesh_set.mesh_number() - 2).vertex_scalar_array()
        largest = max(largest, at_vertices["max"], float(distances.max()))
        on_faces.append(distances)
    area = np.concatenate(on_faces)
    return {"max": float(largest), "mean": float(area.mean()), "rms": float(math.sqrt(np.mean(area**2)))}


def target_from_preset(preset_postprocess: dict, face_count: int) -> int:
    """The preset's `target_triangles`, never more than the mesh's `face_count`."""
    target = preset_postprocess.get("target_triangles") if isinstance(preset_postprocess, dict) else None
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or target < MIN_TARGET_FACES:
        raise InputError("postprocess.target_triangles", target, f"an integer of at least {MIN_TARGET_FACES}")
    return int(min(int(target), int(face_count)))

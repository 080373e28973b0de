"""The post-processing chain: high poly -> repaired, decimated, unwrapped LOD0..2 with collision, placed and scaled."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import child_call
from .cache import StageCache, digest
from .errors import Cancelled, InputError
from .meshdata import MeshArrays
from .schema import POSTPROCESS, plain_value
from .stages import cleanup as cleanup_stage
from .stages import collision as collision_stage
from .stages import decimate as decimate_stage
from .stages import lod as lod_stage
from .stages import placement as placement_stage
from .stages import regions as regions_stage
from .stages import repair as repair_stage
from .stages import stability as stability_stage
from .stages import symmetry as symmetry_stage
from .stages import uv as uv_stage

Progress = Callable[[float, str], None]
DEVIATION_SAMPLES = 20000
# From this many reference triangles the error measurement runs in a process of its own (about 0.2 s to start
# it and hand it the meshes; 1.4 s of measuring at 1.3M triangles on the 2-core machine, 2.3 s at 1.5M on
# the GPU machine's slower cores). With cores to spare (DEVIATION_APART_CORES) from fewer: an early reduction's
# 250k reference took 0.6 s to measure on the GPU machine, while the unwrap and the LODs took over a second.
DEVIATION_APART_FACES = 1_000_000
DEVIATION_APART_CORES = 4
DEVIATION_APART_FACES_MANY_CORES = 200_000


@dataclass
class PostSettings:
    """Validated post-processing parameters (defaults come from the preset)."""

    target_triangles: int = 10000
    texture_size: int = 2048
    texel_density: float | None = None
    lod_ratios: tuple = (1.0, 0.5, 0.25)
    symmetry: str = "off"
    repair: str = "auto"
    collision: bool = True
    max_hulls: int = 16
    max_hull_vertices: int = 48
    pivot: str = "bottom_centre"
    pivot_point: tuple | None = None
    height_cm: float | None = 100.0
    stable_pose: bool = False

    def validate(self) -> "PostSettings":
        """Each field by the schema's rule (server/schema.py: the one place a postprocess setting is checked)."""
        for name in CHECKED:
            value = getattr(self, name)
            if value is not None or not POSTPROCESS.field(name).nullable:
                setattr(self, name, POSTPROCESS.field(name).check(plain_value(value), name))
        if self.pivot == "custom" and self.pivot_point is None:
            raise InputError("pivot_point", self.pivot_point, "[x, y, z] in metres for a custom pivot")
        return self


CHECKED = ("target_triangles", "texture_size", "texel_density", "lod_ratios", "symmetry", "repair", "collision",
           "max_hulls", "max_hull_vertices", "pivot", "pivot_point", "height_cm", "stable_pose")


@dataclass
class GameMesh:
    """What post-processing hands to baking and export."""

    lods: list[MeshArrays]
    hulls: list[MeshArrays]
    transform: dict           # rotation (3x3), scale, translation applied after decimation
    deviation: dict           # LOD0 against the high poly, in metres before scaling
    report: dict = field(default_factory=dict)


def apply_transform(vertices: np.ndarray, transform: dict) -> np.ndarray:
    """Rotation, then uniform scale, then translation (what postprocess applied to its meshes)."""
    rotated = vertices @ np.asarray(transform["rotation"]).T
    return rotated * float(transform["scale"]) + np.asarray(transform["translation"])


def transformed(mesh: MeshArrays, transform: dict) -> MeshArrays:
    normals = None if mesh.normals is None else mesh.normals @ np.asarray(transform["rotation"]).T
    return MeshArrays(apply_transform(mesh.vertices, transform), mesh.faces, colors=mesh.colors, uv=mesh.uv,
                      normals=normals, info=dict(mesh.info))


def postprocess(high: MeshArrays, high_key: str, settings: PostSettings, cache: StageCache,
                progress: Progress, check_cancelled: Callable[[], None]) -> GameMesh:
    """Run every geometry stage in order; each result is cached under the hash of what it depends on."""
    settings.validate()
    timings, cached = {}, {}

    def stage(name: str, key: str, compute, fraction: float):
        check_cancelled()
        progress(fraction, name)
        started = time.perf_counter()
        result, hit = cache.meshes(name, key, compute)
        timings[name] = round(time.perf_counter() - started, 3)
        cached[name] = hit
        return result

    progress(0.02, "surface_check")
    started = time.perf_counter()
    checked = cleanup_stage.surface_check(high.vertices, high.faces)
    repair = _repair_decision(settings.repair, checked)
    timings["surface_check"] = round(time.perf_counter() - started, 3)
    key = digest(high_key, "repair", repair["ran"])
    unchanged = checked["closed_manifold"] and not repair["ran"]  # cleanup hands such a mesh back as it is
    if unchanged:  # not cached: a copy of the input on disk would cost more than the check that finds it clean
        progress(0.05, "repair_cleanup")
        started = time.perf_counter()
        clean = _repair_and_clean(high, False, checked)
        timings["repair_cleanup"], cached["repair_cleanup"] = round(time.perf_counter() - started, 3), False
    else:
        (clean,) = stage("repair_cleanup", key, lambda: [_repair_and_clean(high, repair["ran"], checked)], 0.05)
    reference = clean
    if clean.face_count > decimate_stage.REDUCE_ABOVE:
        plan = decimate_stage.reduction_plan(clean.face_count)
        (reference,) = stage("reduce", digest(key, "reduce", plan.faces, plan.regions, plan.aggressiveness),
                             lambda: [decimate_stage.reduce_early(clean, plan, check_cancelled)], 0.15)
    key = digest(key, "decimate", settings.target_triangles)
    # Known closed: an input the check found clean, or a reduction (reduce_early records only closed ones).
    closed = True if (unchanged and reference is clean) or "reduce_early" in reference.info else None
    (low,) = stage("decimate", key, lambda: [decimate_stage.decimate(reference, settings.target_triangles,
                                                                     prefer_fast=True, closed=closed)], 0.25)
    key = digest(key, "symmetry", settings.symmetry)
    if settings.symmetry != "off":
        (low,) = stage("symmetry", key, lambda: [symmetry_stage.symmetrize(low, settings.symmetry)], 0.35)
    # Collision needs only the decimated shape (the unwrap splits vertices, it does not move them), and CoACD
    # runs in a subprocess: it starts now and works beside the unwrap, the LODs and the error measurement.
    hull_key = digest(key, "collision", settings.collision, settings.max_hulls, settings.max_hull_vertices)
    collision = None
    if settings.collision:
        collision = _BackgroundStage("collision", hull_key, cache,
                                     lambda check, started: _collision(low, settings, check, started), check_cancelled)
        # The unwrap and the error measurement hold Python's lock, so the thread could not start CoACD beside them.
        collision.started.wait()
    # The error measurement (pymeshlab, which holds Python's lock) of a large reference goes to a process of its
    # own, beside the unwrap and the LODs. LOD0 has the decimated mesh's surface: the unwrap only splits vertices.
    measuring = None
    if reference.face_count >= DEVIATION_APART_FACES or (reference.face_count >= DEVIATION_APART_FACES_MANY_CORES
                                                         and regions_stage.usable_cores() >= DEVIATION_APART_CORES):
        measuring = child_call.start("server.stages.decimate:surface_deviation", {"reference": reference,
                                     "candidate": low}, "measuring the decimation error", samples=DEVIATION_SAMPLES)
    try:
        # Padding scales with the texture size, so one unwrap serves every size unless a density is asked for.
        unwrap_size = settings.texture_size if settings.texel_density else 2048
        key = digest(key, "unwrap", settings.texel_density, unwrap_size)
        (lod0,) = stage("unwrap", key, lambda: [uv_stage.unwrap(low, texture_size=unwrap_size,
                                                                texel_density=settings.texel_density)], 0.45)
        lod_key = digest(key, "lods", settings.lod_ratios)
        lods = stage("lods", lod_key, lambda: lod_stage.make_lods(lod0, settings.lod_ratios), 0.6)

        check_cancelled()
        progress(0.75, "measuring the decimation error")
        started = time.perf_counter()
        # Against the early reduction when there was one: within a small fraction of LOD0's error of the input.
        if measuring is not None:
            deviation = measuring.result(check_cancelled)
        else:
            deviation = decimate_stage.surface_deviation(reference, lod0, samples=DEVIATION_SAMPLES)
        deviation["reference_triangles"] = reference.face_count
        timings["deviation"] = round(time.perf_counter() - started, 3)
    except BaseException:
        if collision is not None:
            collision.abandon()  # its CoACD is killed at its next look instead of running on for nobody
        if measuring is not None:
            measuring.abandon()
        raise
    hulls = []
    if collision is not None:
        progress(0.85, "collision")
        started = time.perf_counter()
        hulls = collision.result()
        timings["collision"], cached["collision"] = collision.seconds, collision.cached
        timings["collision_wait"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    rotation, pose = np.eye(3), None
    if settings.stable_pose:
        progress(0.93, "finding a stable resting pose")
        if not stability_stage.stands_upright(lods[0], hulls or None)["stable"]:
            rotation, pose = stability_stage.most_stable_pose(lods[0], hulls or None)
    transform = _placement(lods[0], settings, np.asarray(rotation))
    lods = [transformed(mesh, transform) for mesh in lods]
    hulls = [transformed(mesh, transform) for mesh in hulls]
    progress(0.96, "dropping it on the ground (MuJoCo)")
    stability = stability_stage.stands_upright(lods[0], hulls or None)
    timings["stability"] = round(time.perf_counter() - started, 3)
    report = {"timings_s": timings, "cached": cached, "faces_in": high.face_count,
              "repair": repair, "lod_triangles": [m.face_count for m in lods], "hulls": len(hulls),
              "deviation_m": deviation, "deviation_in_own_process": measuring is not None, "transform": transform,
              "stability": stability, "stable_pose": pose}
    if "reduce_early" in reference.info:
        report["reduction"] = reference.info["reduce_early"]
    return GameMesh(lods, hulls, transform, deviation, report)


class _BackgroundStage:
    """A cached stage computed in a thread while the caller goes on (for stages that wait on a subprocess).

    compute(check, started) gets a cancel check that raises when the job's own check does, or once abandon() was
    called, and a function to call once its subprocess runs: then (or when the thread ends first) `started` is set.
    """

    def __init__(self, name: str, key: str, cache: StageCache, compute, check_cancelled: Callable[[], None]):
        self.seconds, self.cached, self._error, self._value = 0.0, False, None, None
        self._abandoned = threading.Event()
        self.started = threading.Event()

        def check() -> None:
            if self._abandoned.is_set():
                raise Cancelled(f"the {name} stage was abandoned: the stages beside it failed")
            check_cancelled()

        def run():
            started = time.perf_counter()
            try:
                self._value, self.cached = cache.meshes(name, key, lambda: compute(check, self.started.set))
            except BaseException as exc:  # handed to the caller in result()
                self._error = exc
            finally:
                self.started.set()
            self.seconds = round(time.perf_counter() - started, 3)

        self._thread = threading.Thread(target=run, name=f"o3f-{name}", daemon=True)
        self._thread.start()

    def abandon(self) -> None:
        self._abandoned.set()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _repair_decision(mode: str, checked: dict) -> dict:
    """Whether MeshFix runs, and why: 'auto' leaves a watertight mesh (two triangles on every edge) to cleanup."""
    if mode != "auto":
        return {"ran": mode == "on", "mode": mode, "reason": f"repair={mode} was asked for", "checked": checked}
    if checked["watertight"]:
        reason = ("skipped: the mesh is closed and manifold (every edge has two triangles wound against each "
                  "other, one fan of triangles around every vertex)" if checked["closed_manifold"] else
                  "skipped: the mesh is closed (every edge has two triangles); cleanup orients and splits the rest")
        return {"ran": False, "mode": mode, "reason": reason, "checked": checked}
    return {"ran": True, "mode": mode, "reason": "the mesh has holes or edges shared by more than two triangles",
            "checked": checked}


def _repair_and_clean(high: MeshArrays, repair_on: bool, checked: dict | None = None) -> MeshArrays:
    if repair_on:
        return cleanup_stage.cleanup(repair_stage.repair(high, require_watertight=False))
    return cleanup_stage.cleanup(high, checked=checked)


def _collision(lod0: MeshArrays, settings: PostSettings, check_cancelled: Callable[[], None],
               on_start: Callable[[], None]) -> list[MeshArrays]:
    result = collision_stage.convex_collision(lod0, max_hulls=settings.max_hulls,
                                              max_hull_vertices=settings.max_hull_vertices, check=check_cancelled,
                                              on_start=on_start)
    return list(getattr(result, "hulls", result))


def _placement(lod0: MeshArrays, settings: PostSettings, rotation: np.ndarray) -> dict:
    """Turn, scale to the real height, then move the pivot; returned as a transform every mesh shares."""
    turned = lod0.vertices @ rotation.T
    height = float(np.ptp(turned[:, 2]))
    scale = 1.0 if settings.height_cm is None else float(settings.height_cm) / 100.0 / max(height, 1e-9)
    scaled = MeshArrays(turned * scale, lod0.faces)
    custom = None if settings.pivot_point is None else np.asarray(settings.pivot_point, float) * scale
    placed = placement_stage.place(scaled, pivot=settings.pivot, custom_pivot=custom)
    translation = placed.vertices[0] - scaled.vertices[0]
    return {"rotation": rotation.tolist(), "scale": scale, "translation": translation.tolist()}

"""A scene model's shared frame put into the picture's camera world: one scale, turn and shift fitted to the masks.

MIDI-3D and SceneGen place every object in one frame of their own, with no metric scale and no camera we know.
The placement keeps that layout rigid and finds the similarity that makes it agree with the picture: seen
through the assumed SceneCamera, each object's outline spans its mask, and the scene's lowest point rests on
the ground z = 0. World = T(translation) Rz(yaw) S(scale) Rx(tilt) applied to the model frame, which must
already be in Blender axes (Z up, the picture's camera looking roughly along +Y). Tilt levels a frame that
is tipped with the camera; yaw turns a frame whose front is not toward the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import trimesh
from scipy.optimize import least_squares

from ...errors import InputError, RefusedInput
from ...meshdata import MeshArrays
from ..camera import SceneCamera
from ..place import PlacedObject, resolve_overlaps
from ..segment import ObjectMask

# A model's glTF-style Y-up axes to Blender's: (x, y, z) -> (x, -z, y), a rotation (windings stay).
Y_UP_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
OUTLINE_POINTS = 128  # hull vertices kept per object for the fit: its silhouette extremes
# A free angle that is anchored (the model's frame is known to follow the camera) costs this many pixels per
# radian it moves from where it started: enough to settle a layout that cannot tell, too little to resist one that can.
ANCHOR_PX_PER_RAD = 20.0
LOSS_SCALE_PX = 2.0  # residuals beyond a few pixels count less (soft L1): one bad edge cannot drag the scene
# An object whose lowest point is within this much of the ground (or under it) is set on the ground; one higher
# up stays where the model put it (on a table, a shelf).
SNAP_SHARE = 0.15
SNAP_MIN_M = 0.05
WORST_FIT_PX = 4.0
SIDES = ("top", "bottom", "left", "right")


def rotation(yaw_deg: float, tilt_deg: float) -> np.ndarray:
    """Rz(yaw) Rx(tilt): tip about +X first, then turn about +Z."""
    yaw, tilt = math.radians(yaw_deg), math.radians(tilt_deg)
    cz, sz, cx, sx = math.cos(yaw), math.sin(yaw), math.cos(tilt), math.sin(tilt)
    turn = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    tip = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    return turn @ tip


@dataclass(frozen=True)
class FrameFit:
    """The similarity from a model's shared frame (Blender axes, model units) to the camera world (metres)."""

    scale: float  # metres per model unit
    yaw_deg: float
    tilt_deg: float
    translation: tuple[float, float, float]
    residual_px: float  # RMS over the mask edges used
    per_object_px: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def rotation(self) -> np.ndarray:
        return rotation(self.yaw_deg, self.tilt_deg)

    def apply(self, points) -> np.ndarray:
        """Model-frame points (n, 3) to world points (n, 3)."""
        return self.scale * np.asarray(points, np.float64) @ self.rotation.T + np.asarray(self.translation)

    def as_dict(self) -> dict:
        return {"scale_m_per_unit": round(self.scale, 6), "yaw_deg": round(self.yaw_deg, 3),
                "tilt_deg": round(self.tilt_deg, 3), "translation_m": [round(v, 6) for v in self.translation],
                "residual_px": round(self.residual_px, 3),
                "per_object_px": [round(v, 3) for v in self.per_object_px], "notes": list(self.notes)}


@dataclass(frozen=True)
class Start:
    """Where one run of the fit begins, in degrees."""

    yaw_deg: float = 0.0
    tilt_deg: float = 0.0


@dataclass
class _Problem:
    outlines: list[np.ndarray]
    objects: list[ObjectMask]
    camera: SceneCamera
    edges: list[list[str]]
    fit_yaw: bool
    fit_tilt: bool
    anchored: bool
    start: Start = field(default_factory=Start)

    def unpack(self, params: np.ndarray) -> tuple[float, np.ndarray, float, float]:
        scale, translation = math.exp(params[0]), params[1:4]
        rest = list(params[4:])
        yaw = rest.pop(0) if self.fit_yaw else math.radians(self.start.yaw_deg)
        tilt = rest.pop(0) if self.fit_tilt else math.radians(self.start.tilt_deg)
        return scale, translation, math.degrees(yaw), math.degrees(tilt)

    def world(self, params: np.ndarray) -> list[np.ndarray]:
        scale, translation, yaw, tilt = self.unpack(params)
        turn = rotation(yaw, tilt)
        return [scale * points @ turn.T + translation for points in self.outlines]

    def edge_residuals(self, worlds: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for points, obj, edges in zip(worlds, self.objects, self.edges):
            rows, cols, _ = self.camera.project(points)
            found = {"top": rows.min(), "bottom": rows.max(), "left": cols.min(), "right": cols.max()}
            top, left, bottom, right = obj.bbox
            wanted = {"top": top, "bottom": bottom, "left": left, "right": right}
            out.append(np.array([found[side] - wanted[side] for side in edges], np.float64))
        return out

    def residuals(self, params: np.ndarray) -> np.ndarray:
        worlds = self.world(params)
        parts = self.edge_residuals(worlds)
        # The scene's lowest point on the ground, in pixels at its depth (the camera height fixes the scale).
        lowest = min(worlds, key=lambda points: points[:, 2].min())
        point = lowest[np.argmin(lowest[:, 2])]
        depth = max(float((point - self.camera.position) @ self.camera.forward), 1e-3)
        parts.append(np.array([point[2] * self.camera.focal_px / depth]))
        if self.anchored:
            _, _, yaw, tilt = self.unpack(params)
            anchor = []
            if self.fit_yaw:
                anchor.append(math.radians(yaw - self.start.yaw_deg) * ANCHOR_PX_PER_RAD)
            if self.fit_tilt:
                anchor.append(math.radians(tilt - self.start.tilt_deg) * ANCHOR_PX_PER_RAD)
            parts.append(np.array(anchor))
        return np.concatenate(parts)


def outline_points(vertices: np.ndarray, faces: np.ndarray | None = None) -> np.ndarray:
    """The convex hull's vertices (at most OUTLINE_POINTS, evenly taken): the extremes any view can see."""
    points = np.asarray(vertices, np.float64)
    try:
        hull = trimesh.convex.convex_hull(points)
        points = np.asarray(hull.vertices)
    except Exception:  # noqa: BLE001 - a flat or degenerate part has no 3D hull; its own vertices serve
        pass
    if len(points) > OUTLINE_POINTS:
        # Keep each axis' extremes, then an even spread of the rest.
        keep = {int(i) for axis in range(3) for i in (points[:, axis].argmin(), points[:, axis].argmax())}
        spread = np.linspace(0, len(points) - 1, OUTLINE_POINTS - len(keep)).astype(int)
        points = points[sorted(keep | set(spread.tolist()))]
    return points


def _edges(objects: list[ObjectMask], free: int) -> list[list[str]]:
    """Each object's mask edges that show its own outline; all edges when too few remain to fit `free` unknowns."""
    shown = [[side for side in SIDES if side not in obj.clipped and side not in obj.hidden] for obj in objects]
    if sum(map(len, shown)) + 1 <= free:
        return [list(SIDES) for _ in objects]
    return shown


def _initial(problem: _Problem) -> np.ndarray:
    """A start from each object's width at the depth of its ground contact, and the contacts themselves."""
    camera, turn = problem.camera, rotation(problem.start.yaw_deg, problem.start.tilt_deg)
    turned = [points @ turn.T for points in problem.outlines]
    scales, offsets = [], []
    for points, obj in zip(turned, problem.objects):
        try:
            contact = camera.ground_points([obj.base_row], [obj.base_col])[0]
        except RefusedInput:
            continue  # its base is above the horizon: it says nothing about the ground
        depth = float((contact - camera.position) @ camera.forward)
        width = float(points[:, 0].max() - points[:, 0].min())
        if width <= 0:
            continue
        scale = (obj.bbox[3] - obj.bbox[1]) * depth / camera.focal_px / width
        front = np.array([(points[:, 0].min() + points[:, 0].max()) / 2, points[:, 1].min(), points[:, 2].min()])
        scales.append(scale)
        offsets.append(contact - scale * front)
    if not scales:
        # Every base is on or above the horizon: the camera cannot see where anything stands.
        obj = problem.objects[0]
        camera.ground_points([obj.base_row], [obj.base_col])  # raises RefusedInput naming the row
    scale = float(np.median(scales))
    translation = np.median(np.array(offsets), axis=0)
    translation[2] = -scale * min(points[:, 2].min() for points in turned)
    params = [math.log(scale), *translation]
    if problem.fit_yaw:
        params.append(math.radians(problem.start.yaw_deg))
    if problem.fit_tilt:
        params.append(math.radians(problem.start.tilt_deg))
    return np.array(params, np.float64)


def fit_frame(objects: list[ObjectMask], vertices: list[np.ndarray], camera: SceneCamera, *,
              starts: tuple[Start, ...] = (Start(),), fit_yaw: bool = False, fit_tilt: bool = False,
              anchored: bool = False) -> FrameFit:
    """The similarity that puts the model's objects (vertices[i] for objects[i], model frame in Blender axes) where
    the picture shows them. Each start is one least-squares run; the best is kept. anchored keeps free angles
    near their start unless the masks say otherwise (for frames known to follow the camera)."""
    if not objects or len(vertices) != len(objects):
        raise InputError("vertices", f"{len(vertices)} meshes", f"one mesh per object ({len(objects)})")
    outlines = []
    for index, points in enumerate(vertices):
        points = np.asarray(points, np.float64)
        if points.ndim != 2 or points.shape[1] != 3 or len(points) < 4 or not np.isfinite(points).all():
            raise InputError(f"vertices[{index}]", f"array {points.shape}", "(n, 3) finite model-frame points, n >= 4")
        outlines.append(outline_points(points))
    free = 4 + int(fit_yaw) + int(fit_tilt)
    edges = _edges(objects, free)
    best = None
    for start in starts:
        problem = _Problem(outlines, objects, camera, edges, fit_yaw, fit_tilt, anchored, start)
        x0 = _initial(problem)
        x_scale = np.array([0.1, 1.0, 1.0, 0.1] + [0.2] * (free - 4))
        result = least_squares(problem.residuals, x0, x_scale=x_scale, loss="soft_l1", f_scale=LOSS_SCALE_PX,
                               diff_step=1e-6, max_nfev=300 * free)
        if best is None or result.cost < best[0].cost:
            best = (result, problem)
    result, problem = best
    scale, translation, yaw, tilt = problem.unpack(result.x)
    misses = problem.edge_residuals(problem.world(result.x))
    per_object = [float(np.sqrt(np.mean(r ** 2))) if len(r) else 0.0 for r in misses]
    used = np.concatenate(misses)
    residual = float(np.sqrt(np.mean(used ** 2))) if len(used) else 0.0
    notes = []
    if residual > WORST_FIT_PX:
        notes.append(f"the model's layout fits the masks only to {residual:.1f} px: the picture's camera may differ "
                     "from the assumed one (vfov_deg, camera_height_m, pitch_deg)")
    return FrameFit(scale, ((yaw + 180.0) % 360.0) - 180.0, tilt, tuple(float(v) for v in translation), residual,
                    tuple(per_object), tuple(notes))


def place_fitted(objects: list[ObjectMask], meshes: list[MeshArrays], fit: FrameFit, camera: SceneCamera, *,
                 names: list[str], own_yaw_deg: list[float] | None = None, snap: bool = True,
                 resolve: bool = True) -> list[PlacedObject]:
    """Each object's mesh in its own upright frame (metres, origin at the bottom centre of its box, scale 1) and
    the transform that puts it where the fitted frame does. own_yaw_deg[i], when the model turned object i in its
    frame by that much about the vertical, is taken out of the mesh and into the placement's yaw, so the mesh
    keeps its own front. With snap, an object near the ground stands on it; with resolve, overlapping boxes are
    pushed apart (place.resolve_overlaps)."""
    own_yaw_deg = [0.0] * len(objects) if own_yaw_deg is None else list(own_yaw_deg)
    if not (len(objects) == len(meshes) == len(names) == len(own_yaw_deg)):
        raise InputError("meshes", f"{len(meshes)} meshes, {len(names)} names, {len(own_yaw_deg)} yaws",
                         f"one of each per object ({len(objects)})")
    tip = rotation(0.0, fit.tilt_deg)
    placed = []
    for index, (obj, mesh, name, own) in enumerate(zip(objects, meshes, names, own_yaw_deg)):
        levelled = fit.scale * mesh.vertices @ tip.T @ rotation(own, 0.0)  # row vectors: Rz(-own) applied
        lo, hi = levelled.min(axis=0), levelled.max(axis=0)
        base = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
        yaw = ((fit.yaw_deg + own + 180.0) % 360.0) - 180.0
        location = rotation(yaw, 0.0) @ base + np.asarray(fit.translation)
        notes = []
        height = float(hi[2] - lo[2])
        if snap and location[2] < max(SNAP_MIN_M, SNAP_SHARE * height):
            if abs(location[2]) > 0.01:
                notes.append(f"set on the ground: moved {abs(location[2]) * 100:.1f} cm "
                             f"{'down' if location[2] > 0 else 'up'}")
            location[2] = 0.0
        elif location[2] > 0:
            notes.append(f"rests {location[2]:.2f} m above the ground, where the model put it")
        try:
            contact = camera.ground_points([obj.base_row], [obj.base_col])[0]
        except RefusedInput:
            contact = location.copy()
        residual = fit.per_object_px[index] if index < len(fit.per_object_px) else fit.residual_px
        local = MeshArrays(levelled - base, mesh.faces, colors=mesh.colors, info=dict(mesh.info))
        placed.append(PlacedObject(name, local, location, yaw, np.ones(3), contact, residual,
                                   notes=notes, source=obj))
    if resolve:
        resolve_overlaps(placed)
    return placed


def with_mesh(placed: PlacedObject, mesh: MeshArrays) -> PlacedObject:
    """The same placement for a finished version of the object's mesh (post-processed: its pivot and triangles may
    differ, its orientation does not): its box's bottom centre goes where the old one's did, scaled to the old
    height (1 when post-processing kept the size)."""
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    old_lo, old_hi = placed.mesh.vertices.min(axis=0), placed.mesh.vertices.max(axis=0)
    if hi[2] - lo[2] <= 0:
        raise InputError(f"meshes[{placed.name}]", "flat", "a finished mesh with some height")
    factor = float(old_hi[2] - old_lo[2]) / float(hi[2] - lo[2]) * float(placed.scale[2])
    scale = np.full(3, factor)
    base_new = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    base_old = np.array([(old_lo[0] + old_hi[0]) / 2, (old_lo[1] + old_hi[1]) / 2, old_lo[2]])
    matrix = placed.matrix
    world_base = matrix[:3, :3] @ base_old + matrix[:3, 3]
    turn = rotation(placed.yaw_deg, 0.0)
    location = world_base - turn @ (base_new * scale)
    return PlacedObject(placed.name, mesh, location, placed.yaw_deg, scale, placed.contact, placed.fit_residual_px,
                        placed.moved_m.copy(), list(placed.notes), placed.source)

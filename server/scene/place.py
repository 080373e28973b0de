"""Place each object's mesh where it stood: on the ground under its mask, sized to it, facing the camera, apart."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import trimesh
from scipy.optimize import least_squares

from ..errors import InputError
from ..meshdata import MeshArrays
from .camera import SceneCamera
from .segment import ObjectMask

GAP_M = 0.002  # objects pushed apart end this far from each other
MAX_SIDEWAYS_PASSES = 50  # then only push farther objects back, which always ends
WORST_FIT_PX = 3.0  # a fitted outline further than this from the mask's edges gets a note


@dataclass
class PlacedObject:
    """One object's mesh (unchanged, in its own frame) and the transform that puts it in the scene.

    World = T(location) Rz(yaw) S(scale) applied to mesh vertices, in Blender axes (metres, Z up; the camera
    at the origin looking +Y). Only a yaw: objects stand upright on the ground z = 0.
    """

    name: str
    mesh: MeshArrays
    location: np.ndarray  # (3,) metres: where the mesh's own origin goes
    yaw_deg: float
    scale: np.ndarray  # (3,) along the mesh's own X, Y, Z
    contact: np.ndarray  # (3,) the ground point seen under the object's lowest pixel
    fit_residual_px: float
    moved_m: np.ndarray = field(default_factory=lambda: np.zeros(3))  # pushed by the overlap resolution
    notes: list[str] = field(default_factory=list)
    source: ObjectMask | None = None

    @property
    def matrix(self) -> np.ndarray:
        """4x4 local-to-world transform (Blender axes, metres)."""
        return transform_matrix(self.location, self.yaw_deg, self.scale)

    @property
    def size_m(self) -> np.ndarray:
        """Width, depth and height in metres along the object's own axes."""
        lo, hi = _bounds(self.mesh.vertices)
        return (hi - lo) * self.scale

    def world_vertices(self, vertices: np.ndarray | None = None) -> np.ndarray:
        points = self.mesh.vertices if vertices is None else vertices
        m = self.matrix
        return points @ m[:3, :3].T + m[:3, 3]

    def world_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return _bounds(self.world_vertices(_outline(self.mesh)))


def transform_matrix(location, yaw_deg: float, scale) -> np.ndarray:
    """T(location) Rz(yaw) S(scale) as a 4x4 matrix."""
    yaw = math.radians(float(yaw_deg))
    c, s = math.cos(yaw), math.sin(yaw)
    m = np.eye(4)
    m[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag(np.asarray(scale, float))
    m[:3, 3] = np.asarray(location, float)
    return m


def facing_yaw_deg(x: float, y: float) -> float:
    """Yaw that turns an object's front (-Y) toward the camera at the origin from ground position (x, y)."""
    return math.degrees(math.atan2(-x, y))


def _bounds(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return points.min(axis=0), points.max(axis=0)


def _outline(mesh: MeshArrays) -> np.ndarray:
    """The convex hull's vertices: the same silhouette extremes and bounds as the mesh, far fewer points."""
    try:
        hull = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).convex_hull
        if len(hull.vertices) >= 4:
            return np.asarray(hull.vertices)
    except Exception:  # a flat or degenerate mesh has no 3D hull; its own vertices serve
        pass
    return mesh.vertices


def _as_mesh(mesh, argument: str) -> MeshArrays:
    if isinstance(mesh, trimesh.Trimesh):
        mesh = MeshArrays.from_trimesh(mesh)
    if not isinstance(mesh, MeshArrays):
        raise InputError(argument, type(mesh).__name__, "a MeshArrays or trimesh.Trimesh in Blender axes")
    mesh.validate(argument)
    lo, hi = _bounds(mesh.vertices)
    if np.any(hi - lo <= 1e-9):
        raise InputError(argument, f"bounds {np.round(hi - lo, 6).tolist()}", "a mesh with extent along X, Y and Z")
    return mesh


FITS = ("outline", "bounds")


def place_object(obj: ObjectMask, mesh, camera: SceneCamera, name: str = "Object", *,
                 fit: str = "outline") -> PlacedObject:
    """Fit one mesh to one object's mask: position on the ground, yaw toward the camera, and scale.

    The mesh's outline, projected through the camera, must span the mask's top, bottom, left and right
    edges: four equations for the ground position (x, y), the horizontal scale (X and Y alike, keeping the
    mesh's footprint) and the vertical scale. The ground contact seen under the mask's lowest pixels starts
    the fit. An edge that does not show the object's own outline (it borders another object, or the
    picture's border cuts it) is left out, and the scale is then one factor for all axes; the known camera
    height still fixes the distance. The lowest point of the mesh stays on the ground.

    fit="outline" projects the mesh's convex hull (meshes of the object's true shape); fit="bounds" projects
    its bounding box (inflated silhouette bodies, whose own top and depth are not the object's).
    """
    if fit not in FITS:
        raise InputError("fit", fit, f"one of {', '.join(FITS)}")
    mesh = _as_mesh(mesh, f"meshes[{name}]")
    lo, hi = _bounds(mesh.vertices)
    if fit == "bounds":
        outline = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    else:
        outline = _outline(mesh)
    extent = hi - lo
    bottom_centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    points = outline - bottom_centre

    top, left, bottom, right = obj.bbox
    sides = {"top": float(top), "bottom": float(bottom), "left": float(left), "right": float(right)}
    known, notes = _edges_to_fit(obj)
    uniform = len(known) < 4

    contact = camera.ground_points([obj.base_row], [obj.base_col])[0]
    depth = float((contact - camera.position) @ camera.forward)
    width_m = (right - left) * depth / camera.focal_px
    horizontal = contact[:2] / np.linalg.norm(contact[:2])
    ray = camera.rays([top], [obj.base_col])[0]
    reach = np.linalg.norm(contact[:2]) / np.linalg.norm(ray[:2])
    height_m = max(camera.camera_height_m + reach * ray[2], 0.05 * width_m)
    scale_h = width_m / extent[0]
    scale_v = scale_h if uniform else height_m / extent[2]
    start = contact[:2] + horizontal * extent[1] * scale_h / 2

    def outline_in_image(params):
        x, y = params[0], params[1]
        s_h = math.exp(params[2])
        s_v = s_h if uniform else math.exp(params[3])
        yaw = math.atan2(-x, y)
        c, s = math.cos(yaw), math.sin(yaw)
        scaled = points * np.array([s_h, s_h, s_v])
        world = np.column_stack([c * scaled[:, 0] - s * scaled[:, 1] + x,
                                 s * scaled[:, 0] + c * scaled[:, 1] + y, scaled[:, 2]])
        rows, cols, _ = camera.project(world)
        return {"top": rows.min(), "bottom": rows.max(), "left": cols.min(), "right": cols.max()}

    def residuals(params):
        edges = outline_in_image(params)
        return np.array([edges[side] - sides[side] for side in known])

    x0 = [start[0], start[1], math.log(scale_h)] + ([] if uniform else [math.log(scale_v)])
    fit = least_squares(residuals, x0, x_scale=[1.0, 1.0, 0.1] + ([] if uniform else [0.1]),
                        diff_step=1e-4, max_nfev=400)
    x, y = fit.x[0], fit.x[1]
    s_h = math.exp(fit.x[2])
    s_v = s_h if uniform else math.exp(fit.x[3])
    scale = np.array([s_h, s_h, s_v])
    yaw_deg = facing_yaw_deg(x, y)
    rotation = transform_matrix(np.zeros(3), yaw_deg, scale)[:3, :3]
    location = np.array([x, y, 0.0]) - rotation @ bottom_centre
    residual = float(np.sqrt(np.mean(fit.fun ** 2)))
    if residual > WORST_FIT_PX:
        notes.append(f"the mesh's outline fits the mask only to {residual:.1f} px")
    return PlacedObject(name, mesh, location, yaw_deg, scale, contact, residual, notes=notes, source=obj)


def _edges_to_fit(obj: ObjectMask) -> tuple[list[str], list[str]]:
    """The mask edges that show the object's own outline, and notes on those left out.

    A side cut by the picture's border or bordering another object is left out; at least three are kept
    (hidden sides come back before clipped ones), so the fit stays determined.
    """
    order = ("top", "bottom", "left", "right")
    clipped = [side for side in order if side in obj.clipped]
    hidden = [side for side in order if side in obj.hidden and side not in clipped]
    known = [side for side in order if side not in clipped and side not in hidden]
    notes = []
    for side in hidden:
        if len(known) < 3:
            known.append(side)
            notes.append(f"its {side} edge borders another object but was used: too few edges otherwise")
        else:
            notes.append(f"its {side} edge borders another object{' (its base is hidden)' if side == 'bottom' else ''}"
                         ": placed from its other edges, one scale for all axes")
    for side in clipped:
        if len(known) < 3:
            known.append(side)
            notes.append(f"cut by the picture's {side} edge but that edge was used: too few edges otherwise")
        else:
            notes.append(f"cut by the picture's {side} edge: that edge was not used, one scale for all axes")
    return [side for side in order if side in known], notes


def place_objects(objects: list[ObjectMask], meshes: list, camera: SceneCamera, *,
                  names: list[str] | None = None, fit: str = "outline", resolve: bool = True) -> list[PlacedObject]:
    """Place every object's mesh (meshes[i] for objects[i], in Blender axes, any size and origin).

    With resolve (the default), objects whose boxes overlap are pushed apart by the smallest move
    (see resolve_overlaps).
    """
    if len(meshes) != len(objects):
        raise InputError("meshes", f"{len(meshes)} meshes", f"one mesh per object ({len(objects)})")
    names = list(names) if names is not None else [f"Object_{i + 1:02d}" for i in range(len(objects))]
    if len(names) != len(objects) or len(set(names)) != len(names):
        raise InputError("names", names, f"{len(objects)} different names")
    placed = [place_object(obj, mesh, camera, name, fit=fit) for obj, mesh, name in zip(objects, meshes, names)]
    if resolve:
        resolve_overlaps(placed)
    return placed


def box_overlap(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Volume shared by two axis-aligned boxes (lo, hi), in cubic metres."""
    sides = np.minimum(a[1], b[1]) - np.maximum(a[0], b[0])
    return float(np.prod(np.clip(sides, 0.0, None)))


def resolve_overlaps(placed: list[PlacedObject], *, gap: float = GAP_M) -> None:
    """Push apart objects whose world boxes overlap, in place, each time by the smallest move that frees them.

    Of two overlapping objects the one farther from the camera moves (its position rests on fewer pixels,
    and moving it keeps the front-to-back order): sideways (+X or -X) or farther back (+Y), whichever is
    shortest. After MAX_SIDEWAYS_PASSES moves only backward moves are taken, which always ends.
    """
    for step in range(MAX_SIDEWAYS_PASSES + 10 * len(placed) ** 2 + 10):
        boxes = [p.world_bounds() for p in placed]
        worst, pair = 0.0, None
        for i in range(len(placed)):
            for j in range(i + 1, len(placed)):
                shared = box_overlap(boxes[i], boxes[j])
                if shared > worst:
                    worst, pair = shared, (i, j)
        if pair is None:
            return
        i, j = pair
        near, far = sorted(pair, key=lambda k: np.linalg.norm((boxes[k][0][:2] + boxes[k][1][:2]) / 2))
        (n_lo, n_hi), (f_lo, f_hi) = boxes[near], boxes[far]
        moves = {"back": np.array([0.0, n_hi[1] - f_lo[1] + gap, 0.0])}
        if step < MAX_SIDEWAYS_PASSES:
            moves["right"] = np.array([n_hi[0] - f_lo[0] + gap, 0.0, 0.0])
            moves["left"] = np.array([-(f_hi[0] - n_lo[0] + gap), 0.0, 0.0])
        direction, move = min(moves.items(), key=lambda item: np.linalg.norm(item[1]))
        mover = placed[far]
        mover.location = mover.location + move
        mover.moved_m = mover.moved_m + move
        mover.notes.append(f"moved {np.linalg.norm(move) * 100:.1f} cm {direction} out of {placed[near].name}")
    raise AssertionError("resolve_overlaps did not finish")  # unreachable: backward moves always separate

"""Weight-free generator: inflate one silhouette, or carve a visual hull from two to five labelled views."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymeshlab
import trimesh
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage import measure

from ..errors import ForgeError, RefusedInput
from ..schema import GENERATE, plain_value
from .base import GeneratedMesh, GenerationRequest

SIDE_VIEWS = ("front", "back", "left", "right")
RIM_PIXELS = 2  # the outline pixels whose colour is not trusted (mixed with the background)
# Unit vector from the object toward each view's camera (CONVENTIONS.md "Input views").
TOWARD_CAMERA = {
    "front": np.array([0.0, -1.0, 0.0]), "back": np.array([0.0, 1.0, 0.0]),
    "left": np.array([-1.0, 0.0, 0.0]), "right": np.array([1.0, 0.0, 0.0]),
    "top": np.array([0.0, 0.0, 1.0]),
}
DEFAULTS = {"target_faces": 60000, "resolution": 192, "thickness": 1.0, "height": 1.0,
            "metallic": 0.0, "roughness": 0.8, "flat_base": True}


@dataclass
class Silhouette:
    """One view's object outline as a smooth signed distance (pixels, positive inside) and its colours."""

    sdf: np.ndarray
    rgb: np.ndarray
    top: float
    bottom: float
    left: float
    right: float
    scale: float = 1.0  # metres per pixel, set once the views agree on a size

    @property
    def height_px(self) -> float:
        return self.bottom - self.top

    @property
    def width_px(self) -> float:
        return self.right - self.left

    @property
    def centre_row(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def centre_col(self) -> float:
        return (self.left + self.right) / 2

    def sample_sdf(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Signed distance in metres at fractional pixel positions (pixel centres at i + 0.5)."""
        coords = np.stack([np.asarray(rows) - 0.5, np.asarray(cols) - 0.5])
        return ndimage.map_coordinates(self.sdf, coords, order=1, mode="nearest") * self.scale

    def sample_rgb(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        coords = np.stack([rows - 0.5, cols - 0.5])
        return np.stack([ndimage.map_coordinates(self.rgb[..., c], coords, order=1, mode="nearest")
                         for c in range(3)], axis=-1)


def read_silhouette(rgba: np.ndarray, flat_base: bool = False) -> Silhouette:
    """The view's outline; with flat_base the outline is taken to go on below its lowest row, so the
    distance field (and the depth inflated from it) stays full at the base instead of closing to an edge."""
    mask = rgba[..., 3] >= 128
    if not mask.any():
        raise RefusedInput("a view has no object in it after background removal")
    shape_mask = mask
    if flat_base:
        last = np.flatnonzero(mask.any(axis=1))[-1]
        shape_mask = mask.copy()
        shape_mask[last + 1:] = mask[last]
    inside = ndimage.distance_transform_edt(shape_mask)
    outside = ndimage.distance_transform_edt(~shape_mask)
    # Subtract half a pixel on each side so the zero level sits on the pixel boundary, then smooth
    # the staircase of the pixel outline away.
    sdf = ndimage.gaussian_filter(np.where(shape_mask, inside - 0.5, -(outside - 0.5)), sigma=1.0)
    # Colours come from a little inside the outline and are pushed out past it: the outline's own pixels are
    # half background in any anti-aliased picture, and the sides of the inflated body take their colour.
    core = ndimage.binary_erosion(mask, iterations=RIM_PIXELS)
    source = core if core.sum() >= 0.25 * mask.sum() else mask
    _, nearest = ndimage.distance_transform_edt(~source, return_indices=True)
    rgb = rgba[..., :3].astype(np.float32)[nearest[0], nearest[1]]
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return Silhouette(sdf, rgb, rows[0], rows[-1] + 1.0, cols[0], cols[-1] + 1.0)


def _pixel_of(view: str, sil: Silhouette, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (row, col) where each Blender-axes point projects in an orthographic view."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    if view == "top":
        return sil.centre_row - y / sil.scale, sil.centre_col + x / sil.scale
    across = {"front": x, "back": -x, "left": -y, "right": y}[view]
    return sil.bottom - z / sil.scale, sil.centre_col + across / sil.scale


def _settings(request: GenerationRequest) -> dict:
    settings = {**DEFAULTS, **{k: v for k, v in request.settings.items() if k in DEFAULTS}}
    for name in ("thickness", "resolution"):  # the schema's rule, for callers that skipped the API
        settings[name] = GENERATE.field(name).check(plain_value(settings[name]), name)
    return settings


def _grid(lower: np.ndarray, upper: np.ndarray, resolution: int) -> tuple[list[np.ndarray], float]:
    voxel = float((upper - lower).max()) / resolution
    margin = 3 * voxel  # a ring of empty voxels closes the surface
    axes = [np.arange(lo - margin, hi + margin + voxel, voxel) for lo, hi in zip(lower, upper)]
    return axes, voxel


def _surface(field: np.ndarray, axes: list[np.ndarray], voxel: float) -> trimesh.Trimesh:
    if field.max() <= 0:
        raise ForgeError("the views do not agree on any solid: check that their labels are right")
    # Samples on or next to the level give slivers whose corners nearly coincide; nudge them off it.
    near = np.abs(field) < 1e-3 * voxel
    field = np.where(near, np.float32(-1e-3 * voxel), field)
    verts, faces, _, _ = measure.marching_cubes(field, level=0.0, spacing=(voxel, voxel, voxel))
    verts += np.array([a[0] for a in axes])
    # Marching cubes output is already indexed and closed; merging by position would pinch it.
    mesh = trimesh.Trimesh(verts, faces, process=False)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def _decimate(mesh: trimesh.Trimesh, target_faces: int) -> trimesh.Trimesh:
    """Bring the face count down to the preset's target while keeping the mesh closed."""
    if len(mesh.faces) <= target_faces * 1.05:
        return mesh
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(mesh.vertices.astype(np.float64), mesh.faces.astype(np.int32)))
    meshes.meshing_decimation_quadric_edge_collapse(
        targetfacenum=int(target_faces), preservetopology=True, preservenormal=True, planarquadric=True)
    result = meshes.current_mesh()
    simplified = trimesh.Trimesh(result.vertex_matrix(), result.face_matrix(), process=False)
    return simplified if simplified.is_watertight else mesh


def _keep_largest(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    parts = mesh.split(only_watertight=False)
    if len(parts) <= 1:
        return mesh
    return max(parts, key=lambda part: abs(part.volume))


def inflate(request: GenerationRequest) -> GeneratedMesh:
    """One view: depth from the distance transform gives a rounded, closed body; back mirrors front.

    With flat_base (the default) the body keeps its full depth down to its lowest point and is cut
    flat there, so a prop or a character stands on its base instead of rocking on a rounded edge.
    """
    settings = _settings(request)
    flat_base = bool(settings["flat_base"])
    sil = read_silhouette(request.views["front"], flat_base=flat_base)
    sil.scale = float(settings["height"]) / sil.height_px
    radius = float(sil.sdf.max())
    thickness = float(settings["thickness"])
    half_depth = thickness * radius * sil.scale
    half_width = sil.width_px * sil.scale / 2
    lower = np.array([-half_width, -half_depth, 0.0])
    upper = np.array([half_width, half_depth, float(settings["height"])])
    axes, voxel = _grid(lower, upper, int(settings["resolution"]))
    request.progress(0.2, "inflating the silhouette")

    xs, zs = np.meshgrid(axes[0], axes[2], indexing="ij")
    rows, cols = _pixel_of("front", sil, np.column_stack([xs.ravel(), np.zeros(xs.size), zs.ravel()]))
    sd = ndimage.map_coordinates(sil.sdf, np.stack([rows - 0.5, cols - 0.5]), order=1, mode="nearest")
    sd = sd.reshape(xs.shape)
    # A circle of radius R has sd = R - r, so sqrt(sd (2R - sd)) = sqrt(R^2 - r^2): a sphere.
    inner = np.clip(sd, 0.0, radius)
    depth = np.where(sd > 0, thickness * np.sqrt(inner * (2 * radius - inner)), sd) * sil.scale
    field = depth[:, None, :] - np.abs(axes[1])[None, :, None]
    if flat_base:
        field = np.minimum(field, axes[2][None, None, :])  # the half-space z >= 0: a flat base
    request.check_cancelled()

    request.progress(0.5, "extracting the surface")
    mesh = _keep_largest(_surface(field.astype(np.float32), axes, voxel))
    request.check_cancelled()
    mesh = _decimate(mesh, int(settings["target_faces"]))
    request.progress(0.8, "projecting colours")
    rows, cols = _pixel_of("front", sil, mesh.vertices)
    colors = _rgba(sil.sample_rgb(rows, cols))
    return GeneratedMesh(mesh, colors, float(settings["metallic"]), float(settings["roughness"]),
                         {"mode": "inflate", "voxel": voxel, "thickness": thickness})


def _agree_on_scale(sils: dict[str, Silhouette], height: float) -> tuple[np.ndarray, np.ndarray]:
    """Side views share the object's height; the top view is fitted to the widths they show."""
    sides = [v for v in SIDE_VIEWS if v in sils]
    if not sides:
        raise ForgeError("views: a visual hull needs at least one of front, back, left or right")
    if not any(v in sils for v in ("front", "back", "top")) or not any(v in sils for v in ("left", "right", "top")):
        raise ForgeError("views: add a view that shows the depth (left, right or top) and one that shows "
                         "the width (front, back or top)")
    for view in sides:
        sils[view].scale = height / sils[view].height_px
    width = max((sils[v].width_px * sils[v].scale for v in ("front", "back") if v in sils), default=None)
    depth = max((sils[v].width_px * sils[v].scale for v in ("left", "right") if v in sils), default=None)
    if "top" in sils:
        top = sils["top"]
        top.scale = width / top.width_px if width is not None else depth / top.height_px
        width = width if width is not None else top.width_px * top.scale
        depth = depth if depth is not None else top.height_px * top.scale
    return np.array([-width / 2, -depth / 2, 0.0]), np.array([width / 2, depth / 2, height])


def carve(request: GenerationRequest) -> GeneratedMesh:
    """Two to five views: intersect every silhouette's extrusion (signed distances, minimum wins)."""
    settings = _settings(request)
    sils = {}
    for view, rgba in request.views.items():
        sils[view] = read_silhouette(rgba)
        request.check_cancelled()
    lower, upper = _agree_on_scale(sils, float(settings["height"]))
    axes, voxel = _grid(lower, upper, int(settings["resolution"]))
    shape = tuple(len(a) for a in axes)
    field = np.full(shape, np.inf, np.float32)
    for index, (view, sil) in enumerate(sils.items()):
        request.progress(0.1 + 0.4 * index / len(sils), f"carving with the {view} view")
        # Each view's distance depends on two axes only: sample a plane and broadcast it.
        if view == "top":
            a, b = np.meshgrid(axes[0], axes[1], indexing="ij")
            points = np.column_stack([a.ravel(), b.ravel(), np.zeros(a.size)])
            plane = sil.sample_sdf(*_pixel_of(view, sil, points)).reshape(a.shape)[:, :, None]
        elif view in ("front", "back"):
            a, b = np.meshgrid(axes[0], axes[2], indexing="ij")
            points = np.column_stack([a.ravel(), np.zeros(a.size), b.ravel()])
            plane = sil.sample_sdf(*_pixel_of(view, sil, points)).reshape(a.shape)[:, None, :]
        else:
            a, b = np.meshgrid(axes[1], axes[2], indexing="ij")
            points = np.column_stack([np.zeros(a.size), a.ravel(), b.ravel()])
            plane = sil.sample_sdf(*_pixel_of(view, sil, points)).reshape(a.shape)[None, :, :]
        np.minimum(field, plane.astype(np.float32), out=field)
        request.check_cancelled()

    request.progress(0.55, "extracting the surface")
    mesh = _keep_largest(_surface(field, axes, voxel))
    request.check_cancelled()
    mesh = _decimate(mesh, int(settings["target_faces"]))
    request.progress(0.8, "colouring from the views")
    colors = _colour_from_views(mesh, sils, voxel)
    return GeneratedMesh(mesh, colors, float(settings["metallic"]), float(settings["roughness"]),
                         {"mode": "visual_hull", "voxel": voxel, "views": list(sils)})


def _visible(view: str, sil: Silhouette, points: np.ndarray, voxel: float) -> np.ndarray:
    """Which points the view's camera sees: a z-buffer over bins about two voxels wide."""
    toward = TOWARD_CAMERA[view]
    depth = -points @ toward  # smaller is nearer the camera
    rows, cols = _pixel_of(view, sil, points)
    bin_px = 2 * voxel / sil.scale
    r = np.floor(rows / bin_px).astype(np.int64)
    c = np.floor(cols / bin_px).astype(np.int64)
    r -= r.min()
    c -= c.min()
    zbuf = np.full((r.max() + 1, c.max() + 1), np.inf)
    np.minimum.at(zbuf, (r, c), depth)
    zbuf = ndimage.minimum_filter(zbuf, size=3, mode="nearest")
    return depth <= zbuf[r, c] + 3 * voxel


def _colour_from_views(mesh: trimesh.Trimesh, sils: dict[str, Silhouette], voxel: float) -> np.ndarray:
    points = mesh.vertices
    normals = mesh.vertex_normals
    weights, samples = [], []
    for view, sil in sils.items():
        facing = np.clip(normals @ TOWARD_CAMERA[view], 0.0, 1.0)
        weights.append(facing ** 6 * _visible(view, sil, points, voxel) + 1e-6 * facing)
        samples.append(sil.sample_rgb(*_pixel_of(view, sil, points)))
    weights = np.stack(weights)  # views x points: the view facing a point most squarely dominates
    total = weights.sum(axis=0)
    blended = np.einsum("vp,vpc->pc", weights, np.stack(samples)) / np.maximum(total, 1e-12)[:, None]
    unseen = total <= 0
    if unseen.any():  # points no view faces (e.g. the underside): copy the nearest seen colour
        seen = np.flatnonzero(~unseen)
        if len(seen):
            _, nearest = cKDTree(points[seen]).query(points[unseen])
            blended[unseen] = blended[seen[nearest]]
    return _rgba(blended)


def _rgba(rgb: np.ndarray) -> np.ndarray:
    out = np.empty((len(rgb), 4), np.uint8)
    out[:, :3] = np.clip(np.rint(rgb), 0, 255)
    out[:, 3] = 255
    return out


class SilhouetteGenerator:
    """The embedded default: needs no weights, no GPU and no network."""

    name = "silhouette"
    title = "Silhouette (weight-free)"
    max_views = 5

    def availability(self) -> tuple[bool, str]:
        return True, "built in: inflates one view or carves a visual hull from 2 to 5 labelled views"

    def generate(self, request: GenerationRequest) -> GeneratedMesh:
        if len(request.views) == 1:
            return inflate(request)
        return carve(request)

"""Hidden sides painted: the texels of a baked base-colour map that no input view saw, refilled classically
(the default and fallback) or by SDXL inpainting of rendered views guided by the asset's own colours."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.spatial import cKDTree

from .. import gpu
from ..bake.cpu import RayScene
from ..bake.padding import Dilation
from ..bake.uvraster import rasterize_uv
from ..errors import InputError, RefusedInput
from ..meshdata import MeshArrays

# Blender's orthographic views (CONVENTIONS.md "Input views"): the direction each camera looks, and the
# picture's right and up in world axes (right = look x up). `bottom` is never an input view; it only paints.
CAMERAS = {
    "front": ((0, 1, 0), (1, 0, 0), (0, 0, 1)),
    "back": ((0, -1, 0), (-1, 0, 0), (0, 0, 1)),
    "left": ((1, 0, 0), (0, -1, 0), (0, 0, 1)),
    "right": ((-1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "top": ((0, 0, -1), (1, 0, 0), (0, 1, 0)),
    "bottom": ((0, 0, 1), (1, 0, 0), (0, -1, 0)),
}
INPUT_VIEWS = ("front", "left", "back", "right", "top")
METHODS = ("classical", "diffusion")
# A view paints a texel with a weight that grows linearly from nothing at PAINT_MIN_COS to full when its smooth
# normal faces the camera: smooth normals are shared across edges and seams, so where two views meet their
# colours blend instead of stepping.
PAINT_MIN_COS = 0.1
# Texel centres on the two sides of a UV seam lie up to about 1.4 texels apart on the surface (a right-angle
# fold, each about a texel from the edge): the blend reaches 2.5 texels so each side sees the other.
SEAM_RADIUS_TEXELS = 2.5
SEAM_NEIGHBOURS = 16
SEAM_PASSES = 3
# Repainted texels fade in over this many texels (on the surface) from the nearest seen texel, so the seen
# colours run on into the painted ones instead of meeting them at a step.
FEATHER_TEXELS = 3.0
TELEA_RADIUS = 3  # as the bake's hole filling


@dataclass(frozen=True)
class PaintSettings:
    """method: classical (OpenCV Telea from the visible texels) or diffusion (SDXL inpainting of rendered views,
    falling back to classical where the model cannot run); strength: how far the model may move away from the
    classical fill it starts from (0 to 1); min_cos: a texel counts as seen when a view looks at it within
    acos(min_cos) of its normal (0.3: about 72 degrees; flatter, the view's pixels stretch over it)."""

    method: str = "classical"
    prompt: str = ""
    strength: float = 0.75
    steps: int = 20
    guidance: float = 7.0
    seed: int = 0
    resolution: int = 1024
    min_cos: float = 0.3
    match_colours: bool = True

    def validate(self) -> "PaintSettings":
        if self.method not in METHODS:
            raise InputError("paint.method", self.method, f"one of {', '.join(METHODS)}")
        if not isinstance(self.prompt, str) or len(self.prompt) > 500:
            raise InputError("paint.prompt", self.prompt, "text of at most 500 characters")
        if self.prompt:
            from ..text2image.prompt import check_prompt

            check_prompt(self.prompt, "paint.prompt")
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)) \
                or not 0.0 < self.strength <= 1.0:
            raise InputError("paint.strength", self.strength, "a number above 0 and at most 1")
        for name, low, high in (("steps", 1, 100), ("seed", 0, 2**31 - 1), ("resolution", 64, 2048)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InputError(f"paint.{name}", value, f"a whole number from {low} to {high}")
        if self.resolution % 8:
            raise InputError("paint.resolution", self.resolution, "a multiple of 8 (the VAE's scale)")
        if isinstance(self.guidance, bool) or not isinstance(self.guidance, (int, float)) \
                or not 0.0 <= self.guidance <= 30.0:
            raise InputError("paint.guidance", self.guidance, "a number from 0 to 30")
        if isinstance(self.min_cos, bool) or not isinstance(self.min_cos, (int, float)) \
                or not 0.0 <= self.min_cos < 1.0:
            raise InputError("paint.min_cos", self.min_cos, "a number from 0 to below 1")
        return self


@dataclass
class TexelSurface:
    """Every covered texel of a size x size map with its point and face normal on the low poly."""

    size: int
    rows: np.ndarray
    cols: np.ndarray
    points: np.ndarray
    normals: np.ndarray  # flat face normals: what a view really sees
    smooth: np.ndarray   # normals averaged over every copy of a position: continuous across seams and edges
    covered: np.ndarray  # (size, size) bool
    texel_length: float  # the mean edge of one texel on the surface, in the mesh's units


@dataclass
class Visibility:
    """Which covered texels the input views saw (facing them within min_cos, not occluded) and which are hidden.
    seen_by counts the texels each view saw; hidden is covered & ~seen, as a (size, size) mask."""

    covered: np.ndarray
    seen: np.ndarray
    hidden: np.ndarray
    seen_by: dict[str, int]

    @property
    def hidden_share(self) -> float:
        covered = int(self.covered.sum())
        return float(self.hidden.sum()) / covered if covered else 0.0


@dataclass
class PaintedMap:
    """The repainted map (same shape and dtype as given), the visibility it used, and what was done."""

    image: np.ndarray
    visibility: Visibility
    record: dict = field(default_factory=dict)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-30)


def _checked_mesh(low: MeshArrays) -> MeshArrays:
    low.validate("low_poly")
    if low.uv is None or np.asarray(low.uv).shape != (len(low.vertices), 2):
        raise InputError("low_poly.uv", None if low.uv is None else np.asarray(low.uv).shape,
                         "one UV per vertex (unwrap the low poly first)")
    return low


def _checked_views(views, argument: str = "views") -> tuple[str, ...]:
    if isinstance(views, str) or not views:
        raise InputError(argument, views, f"a list of the generation views, from {', '.join(INPUT_VIEWS)}")
    for view in views:
        if view not in INPUT_VIEWS:
            raise InputError(argument, view, f"one of {', '.join(INPUT_VIEWS)} (Blender's view names)")
    return tuple(dict.fromkeys(views))


def _checked_rotation(rotation) -> np.ndarray:
    matrix = np.eye(3) if rotation is None else np.asarray(rotation, np.float64)
    if matrix.shape != (3, 3) or not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-6):
        raise InputError("rotation", matrix.shape, "a 3 x 3 rotation from the generation frame to the mesh's")
    return matrix


def texel_surface(low: MeshArrays, size: int) -> TexelSurface:
    """Rasterize the low poly in UV space: each covered texel's surface point and flat face normal."""
    low = _checked_mesh(low)
    coverage = rasterize_uv(np.asarray(low.uv, np.float64), low.faces, size)
    if len(coverage.face) == 0:
        raise InputError("low_poly.uv", "no texel inside any triangle", f"UVs that cover a {size} px map")
    corners = low.vertices[low.faces]
    face_normals = _unit(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]))
    points = coverage.interpolate(low.vertices, low.faces).astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    texel_length = float(np.sqrt(area.sum() / len(coverage.face)))
    smooth = _unit(coverage.interpolate(welded_vertex_normals(low.vertices, low.faces), low.faces).astype(np.float64))
    return TexelSurface(size, coverage.rows, coverage.cols, points, face_normals[coverage.face], smooth,
                        coverage.mask(), texel_length)


def welded_vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals summed over every copy of a position (a mesh split at UV seams gets the
    same normal on both sides of each seam)."""
    _, group = np.unique(np.round(vertices, 9), axis=0, return_inverse=True)
    group = group.reshape(-1)
    corners = vertices[faces]
    weighted = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # length = 2 x area
    summed = np.zeros((group.max() + 1, 3))
    for corner in range(3):
        np.add.at(summed, group[faces[:, corner]], weighted)
    return _unit(summed)[group]


def _offset(low: MeshArrays) -> float:
    return 1e-4 * float(np.linalg.norm(np.ptp(low.vertices, axis=0))) + 1e-9


def _facing_and_clear(surface: TexelSurface, scene: RayScene, look: np.ndarray, offset: float, reach: float,
                      select: np.ndarray | None = None, smooth: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(cosine between each texel's normal, flat or smooth, and the way to the camera; whether the way to the
    camera is clear of the mesh, from a point just off the flat face)."""
    index = np.arange(len(surface.points)) if select is None else select
    towards = -look
    cos = (surface.smooth if smooth else surface.normals)[index] @ towards
    clear = np.zeros(len(index), bool)
    facing = (surface.normals[index] @ towards > 0) | (cos > 0)
    if facing.any():
        origins = surface.points[index][facing] + surface.normals[index][facing] * offset
        clear[facing] = ~scene.occluded(origins, np.tile(towards, (int(facing.sum()), 1)), reach)
    return cos, clear


def hidden_texels(low: MeshArrays, size: int, views, *, min_cos: float = 0.3, rotation=None,
                  surface: TexelSurface | None = None) -> Visibility:
    """Which texels of a size x size map no generation view saw. views: Blender's names of the pictures the
    asset was generated from (orthographic; front = camera on -Y looking +Y). rotation: the turn the low poly
    was given after generation (postprocess's transform), so the views' directions follow it."""
    views = _checked_views(views)
    turn = _checked_rotation(rotation)
    surface = surface or texel_surface(low, size)
    scene = RayScene(low.vertices, low.faces)
    offset, reach = _offset(low), 4.0 * float(np.linalg.norm(np.ptp(low.vertices, axis=0))) + 1.0
    seen = np.zeros(len(surface.points), bool)
    seen_by = {}
    for view in views:
        look = turn @ np.asarray(CAMERAS[view][0], np.float64)
        cos, clear = _facing_and_clear(surface, scene, look, offset, reach)
        by_view = (cos >= min_cos) & clear
        seen_by[view] = int(by_view.sum())
        seen |= by_view
    seen_map = np.zeros((size, size), bool)
    seen_map[surface.rows[seen], surface.cols[seen]] = True
    return Visibility(surface.covered, seen_map, surface.covered & ~seen_map, seen_by)


def _as_float(base_color) -> tuple[np.ndarray, np.dtype]:
    image = np.asarray(base_color)
    if image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[2] not in (3, 4):
        raise InputError("base_color", f"array {image.shape}", "a square RGB or RGBA map (size, size, 3 or 4)")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0, image.dtype
    if image.dtype in (np.float32, np.float64) and np.isfinite(image).all() and image.min() >= 0 \
            and image.max() <= 1:
        return image.astype(np.float32), image.dtype
    raise InputError("base_color", f"{image.dtype} values", "uint8, or floats from 0 to 1")


def _back_to(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8:
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return image.astype(dtype)


def classical_fill(colours: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Every texel the views did not see (hidden ones and the padding between charts) refilled from the seen
    texels by OpenCV's Telea inpainting, the bake's own hole filling; seen texels keep their colours.

    Telea extrapolates gradients: over regions as wide as a whole side its float version runs far outside the
    colours it starts from (a box's front in 0.53..0.88 gave -0.55..1.97 on the hidden sides), so it runs on
    8 bits, as the map is stored, and the result is kept within the seen colours' range per channel.
    """
    mask = (~seen).astype(np.uint8)
    eight = np.clip(np.rint(colours * 255.0), 0, 255).astype(np.uint8)
    channels = [cv2.inpaint(np.ascontiguousarray(eight[..., :3]), mask, TELEA_RADIUS, cv2.INPAINT_TELEA)]
    if colours.shape[2] == 4:
        channels.append(cv2.inpaint(np.ascontiguousarray(eight[..., 3]), mask, TELEA_RADIUS,
                                    cv2.INPAINT_TELEA)[..., None])
    filled = np.concatenate(channels, axis=2).astype(np.float32) / 255.0
    known = colours[seen]
    filled = np.clip(filled, known.min(axis=0), known.max(axis=0))
    filled[seen] = colours[seen]
    return filled


@dataclass
class _ViewFrame:
    """An orthographic picture of the mesh from one side: world point -> pixel, and back."""

    name: str
    look: np.ndarray
    right: np.ndarray
    up: np.ndarray
    centre: np.ndarray  # (right, up) coordinates of the picture's centre
    span: float
    resolution: int

    def pixels(self, points: np.ndarray) -> np.ndarray:
        """(x, y) pixel coordinates (x right, y down; pixel centres at whole numbers) of world points."""
        u = (points @ self.right - self.centre[0]) / self.span + 0.5
        v = 0.5 - (points @ self.up - self.centre[1]) / self.span
        return np.stack([u * self.resolution - 0.5, v * self.resolution - 0.5], axis=-1)


def _frame(name: str, vertices: np.ndarray, turn: np.ndarray, resolution: int) -> _ViewFrame:
    look, right, up = (turn @ np.asarray(axis, np.float64) for axis in CAMERAS[name])
    u, v = vertices @ right, vertices @ up
    centre = np.array([(u.min() + u.max()) / 2, (v.min() + v.max()) / 2])
    span = 1.1 * max(float(np.ptp(u)), float(np.ptp(v)), 1e-9)  # a margin so the object never touches the edge
    return _ViewFrame(name, look, right, up, centre, span, resolution)


def _sample(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (h, w, c) float image at (k, 2) pixel coordinates (edges clamp)."""
    maps = xy.astype(np.float32).reshape(-1, 1, 2)
    sampled = cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(len(xy), -1)


def _render_view(frame: _ViewFrame, low: MeshArrays, scene: RayScene, texture: np.ndarray,
                 paint_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The low poly seen from `frame` with `texture` on it, on white: (RGB float picture, mask of the pixels
    whose texel is to be painted, mask of the pixels the object covers)."""
    r = frame.resolution
    size = texture.shape[0]
    columns, rows = np.meshgrid(np.arange(r), np.arange(r))
    u = frame.centre[0] + ((columns.ravel() + 0.5) / r - 0.5) * frame.span
    v = frame.centre[1] - ((rows.ravel() + 0.5) / r - 0.5) * frame.span
    depth = low.vertices @ frame.look
    start = depth.min() - 1.0 - float(np.ptp(depth))
    origins = u[:, None] * frame.right + v[:, None] * frame.up + start * frame.look
    reach = 3.0 * float(np.ptp(depth)) + 2.0
    face, bary, _ = scene.first_hits(origins, np.tile(frame.look, (len(origins), 1)), reach)
    hit = face >= 0
    picture = np.ones((r * r, 3), np.float32)
    mask = np.zeros(r * r, bool)
    if hit.any():
        uv = np.einsum("kj,kjc->kc", bary[hit], np.asarray(low.uv, np.float64)[low.faces[face[hit]]])
        texel_xy = np.stack([uv[:, 0] * size - 0.5, (1.0 - uv[:, 1]) * size - 0.5], axis=-1)
        picture[hit] = _sample(np.ascontiguousarray(texture[..., :3]), texel_xy)
        nearest = np.clip(np.rint(texel_xy).astype(np.int64), 0, size - 1)
        mask[hit] = paint_mask[nearest[:, 1], nearest[:, 0]]
    mask = cv2.dilate(mask.reshape(r, r).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return picture.reshape(r, r, 3), mask, hit.reshape(r, r)


def _match_colours(painted: np.ndarray, mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The painted pixels' colour distribution moved onto the asset's visible colours (histogram matching)."""
    from skimage.exposure import match_histograms

    if not mask.any() or len(palette) == 0:
        return painted
    out = painted.copy()
    out[mask] = match_histograms(painted[mask][:, None, :], palette[:, None, :3], channel_axis=-1)[:, 0, :]
    return out


def _blend_across_seams(points: np.ndarray, values: np.ndarray, movable: np.ndarray, radius: float) -> np.ndarray:
    """Repainted texels averaged with their neighbours on the surface (in 3D, so across UV seams and into the
    visible texels around them): both sides of a seam converge on the same colour. Only `movable` change."""
    from scipy import sparse

    index = np.flatnonzero(movable)
    if len(index) == 0:
        return values
    distance, neighbour = cKDTree(points).query(points[index], k=min(SEAM_NEIGHBOURS, len(points)),
                                                distance_upper_bound=radius, workers=-1)
    distance = distance.reshape(len(index), -1)
    neighbour = neighbour.reshape(len(index), -1)
    found = np.isfinite(distance)  # the texel itself is always found, at distance 0
    weight = np.exp(-((distance[found] / (0.5 * radius)) ** 2))
    rows = np.repeat(np.arange(len(index)), found.sum(axis=1))
    average = sparse.csr_matrix((weight, (rows, neighbour[found])), shape=(len(index), len(points)))
    average = sparse.diags(1.0 / np.asarray(average.sum(axis=1)).ravel()) @ average
    out = values.astype(np.float64)
    for _ in range(SEAM_PASSES):
        out[index] = average @ out
    return out.astype(values.dtype)


def _feather(surface: TexelSurface, hidden: np.ndarray) -> np.ndarray:
    """How much of the repainted colour each texel takes: 0 beside a seen texel, 1 from FEATHER_TEXELS away
    (distances on the surface, so the fade runs across UV seams as it runs inside a chart)."""
    fade = np.zeros(len(hidden))
    seen = ~hidden
    if not seen.any():
        return fade + 1.0
    reach = FEATHER_TEXELS * surface.texel_length
    # Beyond the fade the distance does not matter: the bound stops the search there (infinite = far).
    distance, _ = cKDTree(surface.points[seen]).query(surface.points[hidden], distance_upper_bound=reach,
                                                      workers=-1)
    fade[hidden] = np.clip(distance / reach, 0.0, 1.0)
    return fade


def paint_seconds(views, settings: PaintSettings = PaintSettings()) -> float:
    """GPU seconds the paint asks for, shown before it runs: 0 for the classical method; for diffusion, one
    call that inpaints every side the generation views did not face."""
    settings.validate()
    if settings.method == "classical":
        return 0.0
    from ..text2image.inpaint import denoising_steps
    from ..text2image.models import INPAINT

    count = len(paint_views(_checked_views(views)))
    steps = denoising_steps(settings.steps, settings.strength)
    return INPAINT.seconds(steps, settings.resolution, settings.resolution, images=count)


def paint_views(views: tuple[str, ...]) -> tuple[str, ...]:
    """The sides rendered for painting: every side of the six that was not a generation view."""
    return tuple(name for name in CAMERAS if name not in views)


def paint_hidden(base_color, low: MeshArrays, views, settings: PaintSettings = PaintSettings(), *,
                 rotation=None, quota_left_s: float | None = None) -> PaintedMap:
    """Repaint the texels of `base_color` (a baked square map, RGB or RGBA, uint8 or floats in [0, 1]) that no
    generation view saw. low: the low poly the map was baked onto, with its UVs, in the frame the views saw
    after `rotation`. Visible texels are returned unchanged; the padding outside the charts is redone from the
    charts. With method 'diffusion' the SDXL inpainting model paints rendered views of the hidden sides where
    it can run (else the classical fill, and the record says why); quota_left_s refuses a GPU request that
    does not fit (gpu.QuotaExceeded) before it is made."""
    settings = settings.validate()
    views = _checked_views(views)
    colours, dtype = _as_float(base_color)
    size = colours.shape[0]
    low = _checked_mesh(low)
    turn = _checked_rotation(rotation)
    surface = texel_surface(low, size)
    visibility = hidden_texels(low, size, views, min_cos=settings.min_cos, rotation=turn, surface=surface)
    record = {"views": list(views), "hidden_texels": int(visibility.hidden.sum()),
              "hidden_share": round(visibility.hidden_share, 4), "seen_by": visibility.seen_by,
              "method": settings.method, "gpu_seconds": 0.0}
    if not visibility.hidden.any():
        return PaintedMap(_back_to(colours, dtype), visibility, {**record, "painted": "nothing hidden"})
    if not visibility.seen.any():
        raise RefusedInput("paint_hidden: no texel was seen by the generation views; nothing to guide the paint")
    filled = classical_fill(colours, visibility.seen)
    values = filled[surface.rows, surface.cols]
    hidden = visibility.hidden[surface.rows, surface.cols]
    painted_by = "classical (OpenCV Telea from the visible texels)"
    if settings.method == "diffusion":
        from ..text2image.models import INPAINT, availability

        ready, reason = availability(INPAINT)
        if ready:
            values, seconds, estimate, views_painted = _diffusion(filled, colours, visibility, surface, low, views,
                                                                  turn, settings, quota_left_s)
            painted_by = (f"{INPAINT.name} over {', '.join(views_painted)}" if views_painted else
                          "classical (no other side of the object faces a hidden texel)")
            record["gpu_seconds"] = round(seconds, 3)
            record["gpu_estimate_s"] = round(estimate, 3)
            record["gpu_charge_s"] = round(gpu.charged_seconds(seconds, estimate), 3) if views_painted else 0.0
        else:
            painted_by = f"classical (the inpainting model cannot run: {reason})"
    values = _blend_across_seams(surface.points, values, hidden, SEAM_RADIUS_TEXELS * surface.texel_length)
    original = colours[surface.rows, surface.cols]
    fade = _feather(surface, hidden)[:, None]
    out = colours.copy()
    out[surface.rows[hidden], surface.cols[hidden]] = (original[hidden] * (1.0 - fade[hidden])
                                                       + values[hidden] * fade[hidden])
    out = Dilation(visibility.covered)(out)
    record["painted"] = painted_by
    return PaintedMap(_back_to(out, dtype), visibility, record)


def _diffusion(filled: np.ndarray, colours: np.ndarray, visibility: Visibility, surface: TexelSurface,
               low: MeshArrays, views: tuple[str, ...], turn: np.ndarray, settings: PaintSettings,
               quota_left_s: float | None) -> tuple[np.ndarray, float, float, list[str]]:
    """(per-texel colours, GPU seconds measured, GPU seconds asked for, the views painted) after SDXL inpainting
    of every non-generation side, each texel weighted by how squarely each view faces it; texels no paint view
    reaches keep the classical fill."""
    from ..text2image.inpaint import (
        DEFAULT_PROMPT,
        NEGATIVE_PROMPT,
        InpaintJob,
        inpaint_pipeline,
        inpaint_seconds,
        inpaint_views,
    )
    from ..text2image.models import INPAINT, device, source_of

    scene = RayScene(low.vertices, low.faces)
    offset, reach = _offset(low), 4.0 * float(np.linalg.norm(np.ptp(low.vertices, axis=0))) + 1.0
    hidden = visibility.hidden[surface.rows, surface.cols]
    hidden_index = np.flatnonzero(hidden)
    frames, pictures, masks, objects, weights = [], [], [], [], []
    for name in paint_views(views):
        frame = _frame(name, low.vertices, turn, settings.resolution)
        cos, clear = _facing_and_clear(surface, scene, frame.look, offset, reach, hidden_index, smooth=True)
        weight = np.clip((cos - PAINT_MIN_COS) / (1.0 - PAINT_MIN_COS), 0.0, 1.0) * clear
        if not (weight > 0).any():
            continue
        picture, mask, covered = _render_view(frame, low, scene, filled, visibility.hidden)
        if not mask.any():
            continue
        frames.append(frame)
        pictures.append(np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8))
        masks.append(mask)
        objects.append(covered)
        weights.append(weight)
    values = filled[surface.rows, surface.cols]
    if not frames:
        return values, 0.0, 0.0, []
    source, _ = source_of(INPAINT)
    job = InpaintJob(source, device(), tuple(pictures), tuple(masks), settings.prompt or DEFAULT_PROMPT,
                     NEGATIVE_PROMPT, float(settings.strength), settings.steps, float(settings.guidance),
                     settings.seed)
    estimate = inpaint_seconds(job)
    if quota_left_s is not None:
        gpu.check_quota(estimate, quota_left_s, f"hidden-side painting ({len(frames)} views)")
    inpaint_pipeline(job)  # loaded outside the GPU call
    painted, seconds = inpaint_views(job)
    palette = colours[visibility.seen]
    total = np.zeros((len(hidden_index), 3))
    weight_sum = np.zeros(len(hidden_index))
    for frame, picture, mask, covered, weight, result in zip(frames, pictures, masks, objects, weights, painted):
        result = result.astype(np.float32) / 255.0
        start = picture.astype(np.float32) / 255.0
        if settings.match_colours:
            result = _match_colours(result, mask, palette)
        # The object's own pixels run on over the background, so samples at its outline never take in white.
        result = Dilation(covered)(np.where(mask[..., None], result, start))
        sampled = _sample(result, frame.pixels(surface.points[hidden_index]))
        total += weight[:, None] * sampled
        weight_sum += weight
    reached = weight_sum > 0
    rgb = values[hidden_index, :3].copy()
    rgb[reached] = total[reached] / weight_sum[reached, None]
    values[hidden_index, :3] = rgb
    return values, float(seconds), estimate, [frame.name for frame in frames]

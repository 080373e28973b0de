"""Preview picture of LOD0 without bpy or OpenGL: a vectorised numpy z-buffer rasterizer.

Orthographic three-quarter view from the front-left and above (Blender axes: front is -Y, left is -X),
Lambert shading in linear light from a key light plus ambient, base colour looked up per pixel through the
interpolated UV (nearest texel). Transparent background.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..meshdata import MeshArrays

TO_CAMERA = np.array([-0.55, -1.0, 0.6])  # from the object toward the camera: front, left, above
KEY_LIGHT = np.array([-1.0, -0.4, 0.9])  # toward the light: from the left, above, a little in front
AMBIENT = 0.3
MARGIN = 0.06  # of the picture on each side
UNTEXTURED = np.array([0.72, 0.72, 0.72])
MAX_CANDIDATES = 6_000_000  # pixel-triangle pairs tested at once (memory bound)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def camera_axes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(right, up, to_camera) unit vectors of the preview camera, in Blender axes."""
    back = _unit(TO_CAMERA)
    right = _unit(np.cross([0.0, 0.0, 1.0], back))
    up = np.cross(back, right)
    return right, up, back


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def _candidates(x0, x1, y0, y1):
    """Every (triangle, px, py) in each triangle's pixel bounding box, as flat arrays."""
    w = x1 - x0 + 1
    h = y1 - y0 + 1
    counts = w * h
    tri = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    local = np.arange(int(counts.sum())) - np.repeat(starts, counts)
    wr = w[tri]
    px = x0[tri] + local % wr
    py = y0[tri] + local // wr
    return tri, px, py


def render_preview(lod0: MeshArrays, base_color: np.ndarray | None, size: int = 512) -> np.ndarray:
    """An RGBA uint8 (size, size, 4) picture of the mesh; alpha 0 where nothing was drawn."""
    size = int(size)
    if not 16 <= size <= 4096:
        raise InputError("size", size, "16 to 4096 pixels")
    vertices = np.asarray(lod0.vertices, dtype=np.float64)
    faces = np.asarray(lod0.faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise InputError("lod0", f"vertices {vertices.shape}, faces {faces.shape}", "a triangle mesh")
    right, up, back = camera_axes()
    # Screen space: x right, y down (row), depth = distance toward the camera (larger is nearer).
    sx, sy, depth = vertices @ right, vertices @ up, vertices @ back
    lo = np.array([sx.min(), sy.min()])
    hi = np.array([sx.max(), sy.max()])
    extent = max(float((hi - lo).max()), 1e-9)
    scale = size * (1 - 2 * MARGIN) / extent
    centre = (lo + hi) / 2
    px = (sx - centre[0]) * scale + size / 2
    py = size / 2 - (sy - centre[1]) * scale

    tri_x, tri_y = px[faces], py[faces]  # (m, 3)
    area = (tri_x[:, 1] - tri_x[:, 0]) * (tri_y[:, 2] - tri_y[:, 0]) - (tri_x[:, 2] - tri_x[:, 0]) * (tri_y[:, 1] - tri_y[:, 0])
    keep = np.abs(area) > 1e-12
    # Pixel centres sit at (i + 0.5); a triangle covers the centres inside its bounding box.
    x0 = np.clip(np.ceil(tri_x.min(1) - 0.5), 0, size - 1).astype(np.int64)
    x1 = np.clip(np.floor(tri_x.max(1) - 0.5), 0, size - 1).astype(np.int64)
    y0 = np.clip(np.ceil(tri_y.min(1) - 0.5), 0, size - 1).astype(np.int64)
    y1 = np.clip(np.floor(tri_y.max(1) - 0.5), 0, size - 1).astype(np.int64)
    keep &= (x1 >= x0) & (y1 >= y0)
    ids = np.nonzero(keep)[0]

    best_depth = np.full(size * size, -np.inf)
    best_tri = np.full(size * size, -1, dtype=np.int64)
    best_w = np.zeros((size * size, 3))
    counts = (x1[ids] - x0[ids] + 1) * (y1[ids] - y0[ids] + 1)
    # Chunks of triangles whose candidate pixels fit the memory bound.
    bounds = np.searchsorted(np.cumsum(counts), np.arange(MAX_CANDIDATES, counts.sum() + MAX_CANDIDATES, MAX_CANDIDATES))
    start = 0
    for stop in list(bounds) + [len(ids)]:
        stop = max(int(stop), start + 1)
        chunk = ids[start:stop]
        start = stop
        if len(chunk) == 0:
            continue
        tri_local, cx, cy = _candidates(x0[chunk], x1[chunk], y0[chunk], y1[chunk])
        tri = chunk[tri_local]
        fx, fy = cx + 0.5, cy + 0.5
        ax, ay = tri_x[tri, 0], tri_y[tri, 0]
        bx, by = tri_x[tri, 1], tri_y[tri, 1]
        qx, qy = tri_x[tri, 2], tri_y[tri, 2]
        inv = 1.0 / area[tri]
        w1 = ((fx - ax) * (qy - ay) - (qx - ax) * (fy - ay)) * inv
        w2 = ((bx - ax) * (fy - ay) - (fx - ax) * (by - ay)) * inv
        w0 = 1.0 - w1 - w2
        eps = -1e-9
        inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        tri, cx, cy, w0, w1, w2 = tri[inside], cx[inside], cy[inside], w0[inside], w1[inside], w2[inside]
        z = w0 * depth[faces[tri, 0]] + w1 * depth[faces[tri, 1]] + w2 * depth[faces[tri, 2]]
        pix = cy * size + cx
        # Nearest candidate per pixel: sort by pixel, then by depth descending; keep each pixel's first.
        order = np.lexsort((-z, pix))
        pix_sorted = pix[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = pix_sorted[1:] != pix_sorted[:-1]
        win = order[first]
        wp = pix[win]
        nearer = z[win] > best_depth[wp]
        win, wp = win[nearer], wp[nearer]
        best_depth[wp] = z[win]
        best_tri[wp] = tri[win]
        best_w[wp] = np.stack([w0[win], w1[win], w2[win]], axis=1)

    covered = best_tri >= 0
    image = np.zeros((size * size, 4), dtype=np.uint8)
    if not covered.any():
        return image.reshape(size, size, 4)
    tri = best_tri[covered]
    w = best_w[covered]
    corners = faces[tri]  # (k, 3)

    # Normals: interpolated vertex normals, else the face normal; turned toward the camera (two-sided).
    if lod0.normals is not None and len(lod0.normals) == len(vertices):
        normals = np.einsum("kj,kjc->kc", w, np.asarray(lod0.normals, dtype=np.float64)[corners])
    else:
        p = vertices[corners]
        normals = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    normals *= np.where(normals @ back < 0, -1.0, 1.0)[:, None]
    light = AMBIENT + (1 - AMBIENT) * np.clip(normals @ _unit(KEY_LIGHT), 0.0, 1.0)

    if base_color is not None and lod0.uv is not None and len(lod0.uv) == len(vertices):
        texture = np.asarray(base_color)
        if texture.ndim == 2:
            texture = np.repeat(texture[..., None], 3, axis=2)
        th, tw = texture.shape[:2]
        uv = np.einsum("kj,kjc->kc", w, np.asarray(lod0.uv, dtype=np.float64)[corners])
        u = np.mod(uv[:, 0], 1.0)
        v = np.mod(uv[:, 1], 1.0)
        col = np.clip((u * tw).astype(np.int64), 0, tw - 1)
        row = np.clip(((1.0 - v) * th).astype(np.int64), 0, th - 1)  # v up: row 0 is v = 1
        lut = _srgb_to_linear(np.arange(256) / 255.0)
        albedo = lut[texture[row, col, :3].astype(np.int64)]
    else:
        albedo = np.broadcast_to(_srgb_to_linear(UNTEXTURED), (len(tri), 3))
    rgb = _linear_to_srgb(albedo * light[:, None])
    image[covered, :3] = np.round(rgb * 255).astype(np.uint8)
    image[covered, 3] = 255
    return image.reshape(size, size, 4)

"""A generator's sparse voxel volume of surface attributes, and the bake source that samples it."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from ..bake.sources import FieldSource
from ..errors import ForgeError

CHUNK = 1 << 20  # points sampled at a time, so a 4096² bake does not hold eight corner copies at once
CORNERS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
OPAQUE = 250 / 255  # alpha above this everywhere means the surface is opaque (as TRELLIS.2's exporter decides)


@dataclass
class AttributeVolume:
    """Values on a sparse voxel grid: voxel i spans origin + [i, i + 1) * voxel_size, its value sits at its centre.

    values maps a name (base_color, metallic, roughness, alpha) to an (n, k) float array in [0, 1], one row per
    voxel in coords (n, 3) int. Base colour is sRGB-encoded, as the bake expects.
    """

    coords: np.ndarray
    values: dict[str, np.ndarray]
    voxel_size: float
    origin: np.ndarray
    _lookup: _VoxelLookup | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.coords = np.asarray(self.coords, np.int64).reshape(-1, 3)
        self.origin = np.asarray(self.origin, np.float64).reshape(3)
        self.voxel_size = float(self.voxel_size)
        self.values = {name: np.asarray(value, np.float32).reshape(len(self.coords), -1)
                       for name, value in self.values.items()}
        if not len(self.coords):
            raise ForgeError("the generator returned an empty attribute volume")
        if not self.voxel_size > 0:
            raise ForgeError(f"attribute volume voxel_size={self.voxel_size}: expected a positive size")

    def centres(self) -> np.ndarray:
        return self.origin + (self.coords + 0.5) * self.voxel_size

    def transformed(self, scale: float, translation: np.ndarray) -> AttributeVolume:
        """The volume after p -> p * scale + translation (a uniform scale keeps it a grid)."""
        return AttributeVolume(self.coords, self.values, self.voxel_size * scale,
                               self.origin * scale + np.asarray(translation, np.float64))

    def permuted(self, matrix: np.ndarray) -> AttributeVolume:
        """The volume after p -> matrix @ p, for a signed permutation matrix (an axis swap or flip)."""
        matrix = np.asarray(matrix)
        source = np.abs(matrix).argmax(axis=1)
        sign = matrix[np.arange(3), source]
        if not (np.allclose(np.abs(sign), 1) and np.count_nonzero(matrix) == 3 and len(set(source)) == 3):
            raise ForgeError("attribute volumes only take axis swaps and flips")
        coords = self.coords[:, source].copy()
        origin = self.origin[source].copy()
        flip = sign < 0
        # A flipped axis maps the centre o + (c + 0.5) s to -o - (c + 0.5) s = -o + (-c - 1 + 0.5) s.
        coords[:, flip] = -coords[:, flip] - 1
        origin[flip] = -origin[flip]
        return AttributeVolume(coords, self.values, self.voxel_size, origin)

    def lookup(self) -> _VoxelLookup:
        """The voxel index, built on first use."""
        if self._lookup is None:
            self._lookup = _VoxelLookup(self)
        return self._lookup

    def sample(self, points: np.ndarray) -> dict[str, np.ndarray]:
        """Trilinear values at points from the voxels that exist; a point with none around takes the nearest."""
        points = np.asarray(points, np.float64).reshape(-1, 3)
        parts = [self.lookup().sample(points[start:start + CHUNK]) for start in range(0, len(points), CHUNK)]
        return {name: np.concatenate([part[name] for part in parts]) if parts else np.zeros((0, value.shape[1]))
                for name, value in self.values.items()}

    @property
    def has_opacity(self) -> bool:
        alpha = self.values.get("alpha")
        return alpha is not None and float(alpha.min()) < OPAQUE

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        arrays = {f"value_{name}": value for name, value in self.values.items()}
        np.savez_compressed(buffer, coords=self.coords.astype(np.int32), voxel_size=np.float64(self.voxel_size),
                            origin=self.origin, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> AttributeVolume:
        with np.load(io.BytesIO(data)) as archive:
            values = {key[len("value_"):]: archive[key] for key in archive.files if key.startswith("value_")}
            return cls(archive["coords"], values, float(archive["voxel_size"]), archive["origin"])


class _VoxelLookup:
    """Voxel index by integer coordinate through a sorted key array (no dense grid: the volume is sparse)."""

    def __init__(self, volume: AttributeVolume):
        self.volume = volume
        self.low = volume.coords.min(axis=0)
        self.dims = volume.coords.max(axis=0) - self.low + 1
        keys = self._keys(volume.coords)
        self.order = np.argsort(keys, kind="stable")
        self.sorted_keys = keys[self.order]
        self.names = list(volume.values)
        self.stacked = np.concatenate([volume.values[name] for name in self.names], axis=1)
        self.widths = [volume.values[name].shape[1] for name in self.names]
        self._tree: cKDTree | None = None

    def _keys(self, coords: np.ndarray) -> np.ndarray:
        local = coords - self.low
        return (local[:, 0] * self.dims[1] + local[:, 1]) * self.dims[2] + local[:, 2]

    def find(self, coords: np.ndarray) -> np.ndarray:
        """Row of each coordinate in the volume, or -1 where there is no voxel."""
        local = coords - self.low
        inside = np.all((local >= 0) & (local < self.dims), axis=1)
        keys = self._keys(np.where(inside[:, None], coords, self.low))
        position = np.clip(np.searchsorted(self.sorted_keys, keys), 0, len(self.sorted_keys) - 1)
        found = inside & (self.sorted_keys[position] == keys)
        return np.where(found, self.order[position], -1)

    def nearest(self, points: np.ndarray) -> np.ndarray:
        if self._tree is None:
            self._tree = cKDTree(self.volume.centres())
        return self._tree.query(points)[1]

    def sample_torch(self, torch, points) -> dict:
        """sample() on torch tensors: the same trilinear weights and nearest-voxel fallback."""
        device = points.device
        tensors = {"sorted_keys": self.sorted_keys, "order": self.order, "stacked": self.stacked,
                   "low": self.low, "dims": self.dims}
        t = {name: torch.as_tensor(np.ascontiguousarray(value), device=device) for name, value in tensors.items()}
        grid = (points - torch.as_tensor(self.volume.origin, device=device)) / self.volume.voxel_size - 0.5
        base = torch.floor(grid).to(torch.int64)
        fraction = grid - base
        total = torch.zeros((len(points), self.stacked.shape[1]), dtype=torch.float64, device=device)
        weight_sum = torch.zeros(len(points), dtype=torch.float64, device=device)
        for corner in CORNERS:
            local = base + torch.as_tensor(corner, device=device) - t["low"]
            inside = ((local >= 0) & (local < t["dims"])).all(dim=1)
            local = torch.where(inside[:, None], local, torch.zeros_like(local))
            keys = (local[:, 0] * int(self.dims[1]) + local[:, 1]) * int(self.dims[2]) + local[:, 2]
            position = torch.searchsorted(t["sorted_keys"], keys).clamp_max(len(self.sorted_keys) - 1)
            found = inside & (t["sorted_keys"][position] == keys)
            rows = t["order"][position]
            upper = torch.as_tensor(corner == 1, device=device)
            weight = torch.where(upper, fraction, 1.0 - fraction).prod(dim=1) * found
            total += weight[:, None] * t["stacked"][rows].to(torch.float64)
            weight_sum += weight
        values = total / weight_sum.clamp_min(1e-12)[:, None]
        empty = weight_sum <= 1e-6
        if bool(empty.any()):  # few points: the CPU's k-d tree answers them
            nearest = self.nearest(points[empty].cpu().numpy())
            values[empty] = torch.as_tensor(self.stacked[nearest], dtype=torch.float64, device=device)
        return dict(zip(self.names, torch.split(values.to(torch.float32), self.widths, dim=1)))

    def sample(self, points: np.ndarray) -> dict[str, np.ndarray]:
        grid = (points - self.volume.origin) / self.volume.voxel_size - 0.5
        base = np.floor(grid).astype(np.int64)
        fraction = grid - base
        total = np.zeros((len(points), self.stacked.shape[1]))
        weight_sum = np.zeros(len(points))
        for corner in CORNERS:
            rows = self.find(base + corner)
            weight = np.prod(np.where(corner == 1, fraction, 1.0 - fraction), axis=1) * (rows >= 0)
            total += weight[:, None] * self.stacked[np.maximum(rows, 0)]
            weight_sum += weight
        empty = weight_sum <= 1e-6
        values = total / np.maximum(weight_sum, 1e-12)[:, None]
        if empty.any():
            values[empty] = self.stacked[self.nearest(points[empty])]
        splits = np.cumsum(self.widths)[:-1]
        return dict(zip(self.names, np.split(values, splits, axis=1)))


@dataclass
class PlacedVolume:
    """The volume as a field over placed space: `transform` is the placement postprocess applied (rotation,
    then uniform scale, then translation), undone on each query. A plain object, so it pickles to a GPU worker."""

    volume: AttributeVolume
    transform: dict | None = None

    def original_points(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, np.float64)
        if self.transform is None:
            return points
        # placed = original @ R.T * s + t, so original = ((placed - t) / s) @ R
        rotation = np.asarray(self.transform["rotation"], np.float64)
        return (points - np.asarray(self.transform["translation"])) / float(self.transform["scale"]) @ rotation

    def __call__(self, points: np.ndarray) -> dict[str, np.ndarray]:
        return _bake_values(self.volume.sample(self.original_points(points)), len(points), np)

    def sample_torch(self, torch, points) -> dict:
        """The same lookup on torch tensors (the CUDA bake keeps its millions of points on the GPU)."""
        points = points.to(torch.float64)
        if self.transform is not None:
            rotation = torch.as_tensor(np.asarray(self.transform["rotation"], np.float64), device=points.device)
            translation = torch.as_tensor(np.asarray(self.transform["translation"], np.float64), device=points.device)
            points = (points - translation) / float(self.transform["scale"]) @ rotation
        return _bake_values(self.volume.lookup().sample_torch(torch, points), len(points), torch)


def _bake_values(sampled: dict, count: int, xp) -> dict:
    """The bake's names from the volume's: RGBA base colour (alpha as opacity), metallic, roughness."""
    alpha = sampled["alpha"][:, :1] if "alpha" in sampled else None
    base = sampled["base_color"][:, :3] if "base_color" in sampled else None
    if xp is np:
        alpha = alpha if alpha is not None else np.ones((count, 1))
        base = base if base is not None else np.ones((count, 3))
        values = {"base_color": np.concatenate([base, alpha], axis=1)}
    else:
        like = next(iter(sampled.values()))
        alpha = alpha if alpha is not None else like.new_ones((count, 1))
        base = base if base is not None else like.new_ones((count, 3))
        values = {"base_color": xp.cat([base, alpha], dim=1)}
    for name in ("metallic", "roughness"):
        if name in sampled:
            values[name] = sampled[name][:, 0]
    return values


def volume_source(volume: AttributeVolume, transform: dict | None = None) -> FieldSource:
    """A bake source reading the volume at the bake's (placed) surface points."""
    return FieldSource(PlacedVolume(volume, transform), has_opacity=volume.has_opacity)


def vertex_rgba(volume: AttributeVolume, vertices: np.ndarray) -> np.ndarray:
    """uint8 RGBA per vertex from the volume's base colour and alpha, for the high poly's vertex colours."""
    sampled = volume_source(volume).field(vertices)["base_color"]
    return np.clip(np.rint(sampled * 255), 0, 255).astype(np.uint8)

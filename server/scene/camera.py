"""The assumed pinhole camera of a scene picture, and back-projection of pixels onto the ground plane.

World frame (Blender axes, metres, Z up): the camera stands at (0, 0, camera_height_m) and looks along +Y,
tilted pitch_deg below the horizon, with image right = +X. So the scene lies at y > 0 and an object turned to
face the camera shows its front (-Y) to it. Pixel (row i, column j) covers [i, i+1] x [j, j+1] in continuous
image coordinates, so its centre is (i + 0.5, j + 0.5); the principal point is the image centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, RefusedInput

DEFAULT_VFOV_DEG = 50.0
DEFAULT_CAMERA_HEIGHT_M = 1.6
DEFAULT_PITCH_DEG = 15.0
VFOV_RANGE = (10.0, 120.0)
HEIGHT_RANGE = (0.05, 100.0)
PITCH_RANGE = (0.0, 80.0)


def _number(argument: str, value, low: float, high: float, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise InputError(argument, value, f"a number from {low:g} to {high:g} ({unit})")
    return float(value)


@dataclass(frozen=True)
class SceneCamera:
    """A pinhole camera of known vertical field of view, height above the ground and downward pitch."""

    width: int
    height: int
    vfov_deg: float = DEFAULT_VFOV_DEG
    camera_height_m: float = DEFAULT_CAMERA_HEIGHT_M
    pitch_deg: float = DEFAULT_PITCH_DEG

    def __post_init__(self):
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 8:
                raise InputError(f"image {name}", value, "a whole number of pixels, at least 8")
        _number("vfov_deg", self.vfov_deg, *VFOV_RANGE, "degrees")
        _number("camera_height_m", self.camera_height_m, *HEIGHT_RANGE, "metres above the ground")
        _number("pitch_deg", self.pitch_deg, *PITCH_RANGE, "degrees below the horizon")

    @classmethod
    def for_image(cls, shape, *, vfov_deg=DEFAULT_VFOV_DEG, camera_height_m=DEFAULT_CAMERA_HEIGHT_M,
                  pitch_deg=DEFAULT_PITCH_DEG) -> "SceneCamera":
        """The camera of an image of this array shape (rows, columns, ...)."""
        return cls(int(shape[1]), int(shape[0]), vfov_deg, camera_height_m, pitch_deg)

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (the same horizontally and vertically: square pixels)."""
        return (self.height / 2.0) / math.tan(math.radians(self.vfov_deg) / 2.0)

    @property
    def position(self) -> np.ndarray:
        return np.array([0.0, 0.0, self.camera_height_m])

    @property
    def forward(self) -> np.ndarray:
        pitch = math.radians(self.pitch_deg)
        return np.array([0.0, math.cos(pitch), -math.sin(pitch)])

    @property
    def right(self) -> np.ndarray:
        return np.array([1.0, 0.0, 0.0])

    @property
    def up(self) -> np.ndarray:
        pitch = math.radians(self.pitch_deg)
        return np.array([0.0, math.sin(pitch), math.cos(pitch)])

    @property
    def horizon_row(self) -> float:
        """The image row (continuous) where the ground meets the sky: rays below it hit the ground."""
        return self.height / 2.0 - self.focal_px * math.tan(math.radians(self.pitch_deg))

    def rays(self, rows, cols) -> np.ndarray:
        """Unnormalised world directions (n, 3) through continuous image positions (row, column)."""
        rows = np.atleast_1d(np.asarray(rows, dtype=np.float64))
        cols = np.atleast_1d(np.asarray(cols, dtype=np.float64))
        across = cols - self.width / 2.0
        down = rows - self.height / 2.0
        return (self.focal_px * self.forward[None, :] + across[:, None] * self.right[None, :]
                - down[:, None] * self.up[None, :])

    def ground_points(self, rows, cols) -> np.ndarray:
        """Where the rays through (row, column) meet the ground z = 0, as (n, 3) points.

        A position on or above the horizon never meets the ground: RefusedInput says which row.
        """
        directions = self.rays(rows, cols)
        dz = directions[:, 2]
        if np.any(dz >= -1e-9 * self.focal_px):
            row = float(np.atleast_1d(rows)[np.argmax(dz)])
            raise RefusedInput(
                f"image row {row:.1f} is on or above the horizon (row {self.horizon_row:.1f}) of the assumed "
                f"camera ({self.pitch_deg:g} degrees below the horizon, vertical field of view "
                f"{self.vfov_deg:g} degrees): an object standing there cannot touch the ground. "
                "Raise pitch_deg or vfov_deg to match the picture.")
        t = -self.camera_height_m / dz
        return self.position[None, :] + t[:, None] * directions

    def project(self, points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points (n, 3) to continuous image (rows, columns) and their depth along the view axis."""
        relative = np.asarray(points, dtype=np.float64).reshape(-1, 3) - self.position[None, :]
        depth = relative @ self.forward
        safe = np.where(depth > 1e-9, depth, 1e-9)
        cols = self.width / 2.0 + self.focal_px * (relative @ self.right) / safe
        rows = self.height / 2.0 - self.focal_px * (relative @ self.up) / safe
        return rows, cols, depth

    def as_dict(self) -> dict:
        """The camera as scene.json records it (Blender axes, metres and degrees)."""
        return {"image_size": [self.width, self.height], "vfov_deg": self.vfov_deg,
                "camera_height_m": self.camera_height_m, "pitch_deg": self.pitch_deg,
                "focal_px": self.focal_px, "position_m": self.position.tolist(),
                "forward": self.forward.tolist(), "frame": "Blender axes: metres, Z up, camera looking +Y"}

"""The generator interface: views in, a coloured Blender-axes mesh out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import trimesh

VIEW_LABELS = ("front", "left", "back", "right", "top")


class CancelCheck(Protocol):
    def __call__(self) -> None:
        """Raise Cancelled when the job has been cancelled."""


def _no_progress(fraction: float, message: str) -> None:
    return None


def _never_cancelled() -> None:
    return None


@dataclass
class GenerationRequest:
    """What every generator receives: cut-out square RGBA views keyed by label, and settings."""

    views: dict[str, np.ndarray]
    seed: int = 0
    settings: dict = field(default_factory=dict)
    progress: Callable[[float, str], None] = _no_progress
    check_cancelled: CancelCheck = _never_cancelled


@dataclass
class GeneratedMesh:
    """A closed mesh in Blender axes (metres, Z up, front toward -Y) with per-vertex RGBA colours."""

    mesh: trimesh.Trimesh
    colors: np.ndarray
    metallic: float = 0.0
    roughness: float = 0.8
    info: dict = field(default_factory=dict)


class Generator(Protocol):
    name: str
    title: str
    max_views: int

    def availability(self) -> tuple[bool, str]:
        """(True, what it will use) or (False, why it cannot run here)."""

    def generate(self, request: GenerationRequest) -> GeneratedMesh:
        """Make a mesh from the request's views."""

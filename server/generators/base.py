"""The generator interface: views in, a coloured Blender-axes mesh out."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import trimesh

from ..errors import InputError
from .volume import AttributeVolume

VIEW_LABELS = ("front", "left", "back", "right", "top")
QUALITIES = ("fast", "balanced", "hero")
DOWNLOAD_ENV = "O3F_DOWNLOAD_WEIGHTS"  # "1": a model whose weights are not cached downloads them on first use


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
    """A closed mesh in Blender axes (metres, Z up, front toward -Y) with per-vertex RGBA colours.

    attribute_volume, when the model gives one, holds the surface attributes in the mesh's own frame; the bake
    reads it instead of the vertex colours. info["gpu_seconds"] is the GPU time the call measured.
    """

    mesh: trimesh.Trimesh
    colors: np.ndarray
    metallic: float = 0.0
    roughness: float = 0.8
    info: dict = field(default_factory=dict)
    attribute_volume: AttributeVolume | None = None


class Generator(Protocol):
    """Optional members the pipeline looks for: uses_gpu (True puts the generator under the GPU quota guard;
    absent means False) and check_settings(settings, view_count) (raises InputError before any asset exists)."""

    name: str
    title: str
    max_views: int

    def availability(self) -> tuple[bool, str]:
        """(True, what it will use) or (False, why it cannot run here)."""

    def generate(self, request: GenerationRequest) -> GeneratedMesh:
        """Make a mesh from the request's views."""


# Helpers for weight-based adapters: what they need at run time, where their weights are, and their output.


def library_present(module: str) -> bool:
    """Whether `module` (a dotted name such as trellis.pipelines) can be imported here."""
    if module in sys.modules:
        return sys.modules[module] is not None  # None there means "import fails"
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError, OSError, RuntimeError):
        return False  # the parent is missing, is a plain module (an unrelated namesake), or fails to import


def _import_failure(module: str) -> tuple[bool, str | None]:
    """(found, why it does not import): found is False when `module` itself (or its package) does not exist."""
    if module in sys.modules:
        return (sys.modules[module] is not None), None if sys.modules[module] is not None else "import blocked"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return False, None
        return True, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure is the reason health reports
        return True, f"{type(exc).__name__}: {exc}"
    return True, None


def runtime_problem(module: str, what: str, hint: str,
                    compiled: tuple[tuple[str, str], ...] = ()) -> str | None:
    """Why a CUDA model cannot run here, naming the missing piece (its source, PyTorch, a compiled extension and
    the wheel that provides it, the GPU), or None when it can. `compiled` is ((module, where it comes from), ...).
    A library that is present but fails to import for want of torch or an extension is reported as that want."""
    found, failure = _import_failure(module)
    if not found:
        return f"library {what} is not installed ({module} not found; {hint})"
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    for extension, source in compiled:
        if not library_present(extension):
            return f"compiled extension {extension} is not installed ({source})"
    if failure:
        return f"library {what} does not import ({failure}; {hint})"
    from .. import gpu

    if not gpu.on_zero_gpu() and not torch.cuda.is_available():
        return "no CUDA GPU on this server"
    return None


def space_wheel(name: str) -> str:
    """Where a compiled extension of the Space's stack comes from, for health's reasons."""
    return f"the {name} wheel of vendor/wheels.toml; tools/build_space_wheels.sh builds it"


def cached_on_hub(repo: str, filename: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo, filename), str)


def weights_source(env_var: str, repo: str, marker: str) -> tuple[str | None, str]:
    """(what from_pretrained should load, how it was found) or (None, why there are no weights).

    A local folder named by env_var wins; then the Hugging Face cache; then, with O3F_DOWNLOAD_WEIGHTS=1,
    the Hub itself on first use.
    """
    local = os.environ.get(env_var, "").strip()
    if local:
        if (Path(local) / marker).is_file():
            return local, f"weights from {local}"
        return None, f"{env_var}={local} has no {marker}"
    if cached_on_hub(repo, marker):
        return repo, f"weights {repo} from the Hugging Face cache"
    if os.environ.get(DOWNLOAD_ENV) == "1":
        return repo, f"weights {repo} download from the Hub on first use"
    return None, (f"weights {repo} are not in the Hugging Face cache: download them, point {env_var} at a local "
                  f"copy, or set {DOWNLOAD_ENV}=1")


def hf_token() -> str | None:
    token = os.environ.get("HF_TOKEN", "").strip()
    if token:
        return token
    try:
        from huggingface_hub import get_token
    except ImportError:
        return None
    return get_token()


def quality_of(settings: dict) -> str:
    quality = settings.get("quality", "balanced")
    if quality not in QUALITIES:
        raise InputError("options.quality", quality, f"one of {', '.join(QUALITIES)}")
    return quality


def to_numpy(value) -> np.ndarray:
    """A torch tensor (on any device) or array-like as a NumPy array."""
    for step in ("detach", "cpu"):
        if hasattr(value, step):
            value = getattr(value, step)()
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def standing(vertices: np.ndarray, height: float) -> tuple[float, np.ndarray]:
    """(scale, translation) that make the mesh `height` tall with its lowest point centred on the origin."""
    lower, upper = vertices.min(axis=0), vertices.max(axis=0)
    extent = float(upper[2] - lower[2])
    if not extent > 0:
        raise InputError("mesh", "flat", "a generated mesh with some height")
    scale = float(height) / extent
    centre = (lower + upper) / 2
    return scale, -np.array([centre[0], centre[1], lower[2]]) * scale


def placed_in_blender(vertices: np.ndarray, faces: np.ndarray, to_blender: np.ndarray,
                      height: float) -> tuple[trimesh.Trimesh, float, np.ndarray]:
    """A model's mesh turned into Blender axes by `to_blender` (a signed axis permutation), `height` tall,
    standing centred on the origin, faces outward: (mesh, scale, translation) of the placement."""
    matrix = np.asarray(to_blender, np.float64)
    faces = np.asarray(faces, np.int64)
    # Decoders may hand over every vertex of their grid (TRELLIS.2: a million for 140k faces); only the ones the
    # faces use may size and place the object.
    used, faces = np.unique(faces, return_inverse=True)
    faces = faces.reshape(-1, 3)
    vertices = np.asarray(vertices, np.float64)[used] @ matrix.T
    if np.linalg.det(matrix) < 0:  # a mirror turns the windings inside out
        faces = faces[:, ::-1]
    scale, translation = standing(vertices, height)
    mesh = trimesh.Trimesh(vertices * scale + translation, faces, process=False)
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()
    return mesh, scale, translation


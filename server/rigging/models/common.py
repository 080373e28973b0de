"""What the rig model adapters share: their options, the mesh check, where upstream sources and weights are, and
turning a dense weight matrix into the RigResult's pruned influences."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import gpu
from ...errors import ForgeError, InputError
from ...generators.base import DOWNLOAD_ENV, cached_on_hub
from ...meshdata import MeshArrays
from ...schema import RIG, plain_value
from ..rig import MAX_VERTICES

FRONT = np.array([0.0, -1.0, 0.0])  # Blender: the character faces -Y
UP = np.array([0.0, 0.0, 1.0])
OPTION_KEYS = ("max_influences", "fingers", "skeleton", "seed")


def _no_progress(fraction: float, message: str) -> None:
    return None


def _never_cancelled() -> None:
    return None


@dataclass(frozen=True)
class ModelRigOptions:
    """max_influences: bones per vertex kept; fingers: keep the model's finger bones (Make-It-Animatable);
    skeleton: the naming the method gives; seed: the model's sampling seed."""

    max_influences: int
    fingers: bool
    skeleton: str
    seed: int


def model_options(options, method: str, skeletons: tuple[str, ...], default_seed: int) -> ModelRigOptions:
    """Checked options for a model method; InputError names the key, the value and what was expected."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InputError("options", options, "a dict of rig options")
    for key, value in options.items():
        if key not in OPTION_KEYS:
            raise InputError(f"options.{key}", value, f"one of the rig options {list(OPTION_KEYS)}")
    influences = RIG.field("max_influences").check(plain_value(options.get("max_influences", 4)))
    fingers = RIG.field("fingers").check(plain_value(options.get("fingers", False)))
    skeleton = options.get("skeleton", skeletons[0])
    if skeleton not in skeletons:
        raise InputError("options.skeleton", skeleton, f"one of {list(skeletons)} for the {method} method")
    seed = options.get("seed")
    seed = default_seed if seed is None else RIG.field("seed").check(plain_value(seed))
    return ModelRigOptions(int(influences), bool(fingers), skeleton, int(seed))


def checked_mesh(mesh) -> MeshArrays:
    """The LOD0 mesh, refused by name when it is not a usable triangle mesh of a size a model can take."""
    if not isinstance(mesh, MeshArrays):
        raise InputError("mesh", type(mesh).__name__, "a MeshArrays (LOD0 in Blender axes, metres)")
    mesh.validate("mesh")
    if len(mesh.vertices) > MAX_VERTICES:
        raise InputError("mesh", f"{len(mesh.vertices)} vertices", f"at most {MAX_VERTICES} vertices (rig a "
                                                                    "decimated LOD0)")
    extent = np.ptp(np.asarray(mesh.vertices, np.float64), axis=0)
    if not float(extent.max()) > 0:
        raise InputError("mesh", "all vertices at one point", "a mesh with a size")
    return mesh


# Where the upstream code and weights are. Neither model is a PyPI package: a checkout of the pinned commit is
# named by an environment variable (or sits at the Space bundle's root under the default folder name).


def source_folder(env: str, default_name: str, markers: tuple[str, ...], upstream: str,
                  manifest: str) -> tuple[Path | None, str]:
    """(the checkout, how it was found) or (None, why there is none). `upstream` is the GitHub repository,
    `manifest` the vendor file that pins its commit."""
    named = os.environ.get(env, "").strip()
    folder = Path(named) if named else Path(__file__).resolve().parents[3] / default_name
    missing = [marker for marker in markers if not (folder / marker).is_file()]
    if not missing:
        return folder, f"source {folder}"
    if named:
        return None, (f"{env}={named} is not a checkout of {upstream} (it has no {', '.join(missing)}; "
                      f"{manifest} pins the commit)")
    return None, (f"the source of {upstream} is not on this server: set {env} to a checkout of the commit "
                  f"{manifest} pins")


def missing_library(modules: tuple[tuple[str, str], ...]) -> str | None:
    """The first (module, where it comes from) that cannot be found, as a reason; None when all are there."""
    for module, where in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"{module} is not installed ({where})"
    return None


CPU_ENV = "O3F_ALLOW_CPU_MODELS"  # "1": run the models on the CPU (slow; for tests), as the generators allow


def on_cuda() -> bool:
    import torch

    return gpu.on_zero_gpu() or torch.cuda.is_available()


def cuda_problem() -> str | None:
    """Why the model cannot run on this server's devices, or None."""
    if on_cuda() or os.environ.get(CPU_ENV) == "1":
        return None
    return f"no CUDA GPU on this server ({CPU_ENV}=1 allows the CPU, for tests)"


def device() -> str:
    return "cuda" if on_cuda() else "cpu"


def weight_files(env: str, repo: str, files: tuple[str, ...]) -> tuple[dict[str, str] | None, str]:
    """({repository path: local file or repository path to download}, how) or (None, why there are none).

    A folder named by env holds the repository's files at their repository paths (a clone of it); else the
    Hugging Face cache; else, with O3F_DOWNLOAD_WEIGHTS=1, the Hub on first use."""
    local = os.environ.get(env, "").strip()
    if local:
        missing = [name for name in files if not (Path(local) / name).is_file()]
        if missing:
            return None, f"{env}={local} has no {', '.join(missing)} (a clone of {repo} holds them)"
        return {name: str(Path(local) / name) for name in files}, f"weights from {local}"
    if all(cached_on_hub(repo, name) for name in files):
        from huggingface_hub import try_to_load_from_cache

        return {name: try_to_load_from_cache(repo, name) for name in files}, \
            f"weights {repo} from the Hugging Face cache"
    if os.environ.get(DOWNLOAD_ENV) == "1":
        return {name: f"hub:{name}" for name in files}, f"weights {repo} download from the Hub on first use"
    missing = [name for name in files if not cached_on_hub(repo, name)]
    return None, (f"weights {repo} ({', '.join(missing)}) are not in the Hugging Face cache: download them, point "
                  f"{env} at a clone, or set {DOWNLOAD_ENV}=1")


def local_file(repo: str, where: str) -> str:
    """A path weight_files gave, downloading it first when it named the Hub (O3F_DOWNLOAD_WEIGHTS=1)."""
    if not where.startswith("hub:"):
        return where
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo_id=repo, filename=where[len("hub:"):])


def upstream_on_path(source: Path, modules: tuple[str, ...]) -> None:
    """Put the checkout first on sys.path (upstream imports its own top-level names) and refuse when one of those
    names is already taken by something else."""
    root = str(source)
    if root not in sys.path:
        sys.path.insert(0, root)
    for name in modules:
        loaded = sys.modules.get(name)
        where = getattr(loaded, "__file__", None) or next(iter(getattr(loaded, "__path__", [])), None)
        if loaded is not None and where is not None and not Path(where).resolve().is_relative_to(source.resolve()):
            raise ForgeError(f"the upstream module name '{name}' is already taken by {where}; the model's code "
                             f"in {source} cannot be imported beside it")


# Skeletons and weights in our frame.


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def lean(direction: np.ndarray, hint: np.ndarray) -> np.ndarray:
    """`hint` made perpendicular to the bone's direction (+Z, then +X, when they are parallel)."""
    direction = unit(direction)
    for candidate in (hint, UP, np.array([1.0, 0.0, 0.0])):
        out = candidate - (candidate @ direction) * direction
        if np.linalg.norm(out) > 1e-6:
            return unit(out)
    return unit(np.cross(direction, np.array([0.0, 1.0, 0.0])))


def sound_tails(heads: np.ndarray, tails: np.ndarray, parents: list[int], size: float) -> np.ndarray:
    """Tails with a length: a bone whose tail sits on its head points on along its parent (or up) by 5 % of the
    body's size."""
    tails = np.array(tails, np.float64)
    for i, parent in enumerate(parents):
        if np.linalg.norm(tails[i] - heads[i]) < 1e-4 * size:
            along = heads[i] - heads[parent] if parent >= 0 else UP
            if np.linalg.norm(along) < 1e-9:
                along = UP
            tails[i] = heads[i] + 0.05 * size * unit(along)
    return tails


def influences(dense: np.ndarray, max_influences: int, fallback: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bones, weights) per vertex from a (vertices, bones) weight matrix: the largest max_influences kept,
    largest first, rows summing to one; a row with no weight at all goes wholly to its `fallback` bone."""
    dense = np.nan_to_num(np.asarray(dense, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    dense = np.clip(dense, 0.0, None)
    empty = dense.sum(axis=1) <= 0
    dense[np.flatnonzero(empty), np.asarray(fallback)[empty]] = 1.0
    k = min(max_influences, dense.shape[1])
    order = np.argsort(-dense, axis=1, kind="stable")[:, :k]
    weights = np.take_along_axis(dense, order, axis=1)
    weights = weights / weights.sum(axis=1, keepdims=True)
    bones = np.where(weights > 0, order, -1).astype(np.int64)
    weights = np.where(bones >= 0, weights, 0.0)
    return bones, weights


def nearest_bone(vertices: np.ndarray, heads: np.ndarray, tails: np.ndarray, deform: np.ndarray) -> np.ndarray:
    """Per vertex, the deforming bone whose segment is nearest (the fallback for a vertex a model left unweighted)."""
    candidates = np.flatnonzero(deform)
    best = np.full(len(vertices), np.inf)
    choice = np.full(len(vertices), candidates[0] if len(candidates) else 0)
    for bone in candidates:
        a, b = heads[bone], tails[bone]
        span = b - a
        t = np.clip((vertices - a) @ span / max(float(span @ span), 1e-12), 0.0, 1.0)
        distance = np.linalg.norm(vertices - (a + t[:, None] * span), axis=1)
        closer = distance < best
        best[closer], choice[closer] = distance[closer], bone
    return choice


@dataclass
class RunHooks:
    """Progress and cancellation, as the pipeline passes them."""

    progress: Callable[[float, str], None] = _no_progress
    check_cancelled: Callable[[], None] = _never_cancelled


@dataclass(frozen=True)
class Upstream:
    """Where a model's code and weights are looked for: its checkout (env, default folder, files that mark it,
    the GitHub repository and the vendor manifest pinning it), the libraries it imports, and its checkpoints
    (role -> repository path) in the weights repository."""

    source_env: str
    default_folder: str
    markers: tuple[str, ...]
    repository: str
    manifest: str
    libraries: tuple[tuple[str, str], ...]
    weights_env: str
    weights_repo: str
    checkpoints: dict


def find_upstream(upstream: Upstream, checkout_problem: Callable[[Path], str | None] = lambda source: None,
                  ready_problem: Callable[[Path], str | None] = lambda source: None
                  ) -> tuple[Path | None, dict[str, str] | None, str]:
    """(checkout, checkpoint files by role, how they were found), or (None, None, the first thing missing): the
    checkout, its libraries, checkout_problem(checkout), a device, the weights, then ready_problem(checkout)."""
    source, where = source_folder(upstream.source_env, upstream.default_folder, upstream.markers,
                                  upstream.repository, upstream.manifest)
    if source is None:
        return None, None, where
    problem = missing_library(upstream.libraries) or checkout_problem(source) or cuda_problem()
    if problem:
        return None, None, problem
    files, weights = weight_files(upstream.weights_env, upstream.weights_repo, tuple(upstream.checkpoints.values()))
    if files is None:
        return None, None, weights
    problem = ready_problem(source)
    if problem:
        return None, None, problem
    return source, {role: files[path] for role, path in upstream.checkpoints.items()}, f"{where}, {weights}"

"""Reading what earlier stages saved in an asset: the high poly, the game mesh, the maps, and their digests."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import trimesh

from .. import pixel_cache
from ..asset import HIGH_POLY, HULLS, LODS, POSTPROCESS_STATE, Asset, texture_file
from ..cache import FIELDS, meshes_from_file
from ..errors import ForgeError
from ..meshdata import MeshArrays
from ..meshfile import read_glb
from ..stages import checks as checks_stage

TEXTURES = ("base_color", "normal_gl", "metallic", "roughness", "ao")


def read_high_poly(asset: Asset) -> trimesh.Trimesh:
    """The asset's high poly in Blender axes with its visuals (colours, textures, PBR values)."""
    path = asset.folder / HIGH_POLY
    if not path.is_file():
        raise ForgeError(f"asset {asset.asset_id} has no high poly yet: run generate or import_mesh first")
    return read_glb(path)


def high_arrays(mesh: trimesh.Trimesh) -> MeshArrays:
    colors = None
    visual = mesh.visual
    if visual.kind == "vertex":
        colors = np.asarray(visual.vertex_colors, np.uint8)
    elif "color" in getattr(visual, "vertex_attributes", {}):
        colors = np.asarray(visual.vertex_attributes["color"], np.uint8)
    return MeshArrays(mesh.vertices, mesh.faces, colors=colors)


def load_game_mesh(asset: Asset) -> tuple[list[MeshArrays], list[MeshArrays], dict]:
    if not (asset.folder / LODS).is_file():
        raise ForgeError(f"asset {asset.asset_id} is not post-processed yet: run postprocess first")
    lods = meshes_from_file(asset.folder / LODS)
    hulls = meshes_from_file(asset.folder / HULLS)
    state = json.loads((asset.folder / POSTPROCESS_STATE).read_text())
    return lods, hulls, state


def unwrapped_size(asset: Asset) -> int | None:
    """The texture size post-processing laid LOD0's UVs out for (the bake's size unless asked otherwise)."""
    path = asset.folder / POSTPROCESS_STATE
    return json.loads(path.read_text()).get("settings", {}).get("texture_size") if path.is_file() else None


def lod0_digest(lods: list[MeshArrays]) -> str:
    """SHA-256 (24 hex digits, like cache.digest) of LOD0's arrays: the surface the maps are baked onto.

    The arrays, not game/lods.npz's bytes: the npz zip stamps its write time, so an identical LOD0 written
    again would read as a new one.
    """
    hasher = hashlib.sha256()
    for name in FIELDS:
        value = getattr(lods[0], name)
        if value is not None:
            array = np.ascontiguousarray(value)
            hasher.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
            hasher.update(array.tobytes())
    return hasher.hexdigest()[:24]


def load_textures(asset: Asset) -> dict[str, np.ndarray]:
    textures = {}
    for name in (*TEXTURES, "opacity"):
        path = asset.folder / texture_file(name)
        if not path.is_file():
            if name == "opacity":
                continue
            raise ForgeError(f"asset {asset.asset_id} has no baked {name} map: run bake first")
        array = pixel_cache.read(path)
        textures[name] = array if name in ("base_color", "normal_gl") else array.astype(np.float32) / 255.0
    return textures


def game_ready_checks(lods: list[MeshArrays], hulls: list[MeshArrays], state: dict,
                      textures: dict[str, np.ndarray] | None) -> dict:
    """The checklist for the UI and manifest.json, with the MuJoCo verdict postprocess recorded."""
    settings = state.get("settings", {})
    checks = checks_stage.game_ready_checks(
        lods, textures=None if textures is None else {k: (v.shape[1], v.shape[0]) for k, v in textures.items()},
        hulls=hulls if settings.get("collision", True) else None,
        pivot=settings.get("pivot", "bottom_centre"), max_hull_vertices=int(settings.get("max_hull_vertices", 64)))
    stability = state.get("report", {}).get("stability")
    if stability is not None:
        checks["checks"].append({"name": "stands_under_gravity", "ok": bool(stability["stable"]),
                                 "value": round(float(stability["tilt_deg"]), 2),
                                 "expected": f"tilt <= {stability['tilt_limit_deg']} deg after settling"})
        checks["ok"] = all(check["ok"] for check in checks["checks"])
    return checks

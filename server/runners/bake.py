"""The bake run: the high poly's surface and attributes onto LOD0's UVs, saved as the asset's maps."""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import trimesh

from .. import gpu, pixel_cache
from ..asset import ATTRIBUTES, HIGH_POLY, Asset, texture_file
from ..bake.engine import BakeSettings, HighPoly, bake, resolve_engine
from ..bake.sources import AttributeSource, FieldSource, source_from_trimesh
from ..bake.tangents import vertex_normals
from ..cache import FIELDS, file_digest
from ..gameready import apply_transform
from ..generators.base import VIEW_LABELS
from ..generators.volume import AttributeVolume, volume_source
from ..images import ENCODE_WORKERS, save_png
from ..jobs import Progress, charged_if_failed
from ..meshdata import MeshArrays
from ..quota import QuotaLedger
from ..stages.paint_hidden import PaintSettings, paint_hidden
from .stored import game_ready_checks, load_game_mesh, lod0_digest, read_high_poly


def bake_source(asset: Asset, mesh: trimesh.Trimesh, transform: dict) -> AttributeSource:
    """The generator's attribute volume when it left one (sampled back in the high poly's own frame), else
    what the high poly carries (vertex colours, textures, PBR values)."""
    path = asset.folder / ATTRIBUTES
    if path.is_file():
        return volume_source(AttributeVolume.from_bytes(path.read_bytes()), transform)
    return source_from_trimesh(mesh)


def run_bake(asset: Asset, settings: BakeSettings, engine: str, progress: Progress, check,
             quota: QuotaLedger | None = None, paint: PaintSettings | None = None) -> dict:
    """Bake the high poly onto LOD0 (in LOD0's placed space) and save the maps as PNGs under textures/.

    On the CUDA engine the bake is refused before it starts when `quota` cannot cover its GPU seconds. With
    `paint`, the base colour's texels that no generation view saw are painted over (server/stages/paint_hidden.py).
    """
    lods, hulls, state = load_game_mesh(asset)
    mesh = read_high_poly(asset)
    device = resolve_engine(engine)  # only a CUDA bake spends GPU quota
    estimate = None
    if device == "cuda":
        estimate = gpu.bake_seconds(settings.size, len(mesh.faces), len(settings.maps))
        if quota is not None:
            gpu.check_quota(estimate, quota.left_today(), "bake on the CUDA engine")
    transform = state["transform"]
    vertices = apply_transform(np.asarray(mesh.vertices), transform)
    normals = vertex_normals(mesh.vertices, mesh.faces) @ np.asarray(transform["rotation"]).T
    high = HighPoly(vertices, np.asarray(mesh.faces), normals, bake_source(asset, mesh, transform))
    scale = float(transform["scale"])
    diagonal = float(np.linalg.norm(np.ptp(vertices, axis=0)))
    # The cage must clear the largest gap decimation left; never thinner than a sliver of the object.
    settings.max_distance = max(1.5 * float(state["deviation_m"]["max"]) * scale, 0.002 * diagonal)
    if settings.ao_distance <= 0:
        settings.ao_distance = 0.1 * diagonal
    with asset.stage("bake", {"size": settings.size, "engine": engine, "device": device,
                              "ao_samples": settings.ao_samples, "max_distance_m": settings.max_distance,
                              "ao_distance_m": settings.ao_distance}) as run:
        run["made_from"] = {"lod0": lod0_digest(lods), "high_poly": file_digest(asset.folder / HIGH_POLY)}
        check()
        progress(0.1, f"baking {settings.size}x{settings.size} maps")
        started = time.perf_counter()
        if quota is not None and device == "cuda":
            with charged_if_failed(quota, asset, "bake", estimate):
                maps = bake(high, lods[0], settings, engine, check)
        else:
            maps = bake(high, lods[0], settings, engine, check)
        elapsed = time.perf_counter() - started
        run["parameters"]["bake_seconds"] = round(elapsed, 3)
        run["parameters"]["stats"] = maps.stats
        run["parameters"]["attributes"] = "volume" if isinstance(high.source, FieldSource) else "surface"
        if device == "cuda":  # charged even when 'auto' fell back to the CPU: the GPU call was made
            run["gpu_seconds"] = round(elapsed, 3) if maps.stats.get("engine") == "cuda" else 0.0
            run["gpu_charged_seconds"] = gpu.charged_seconds(elapsed, estimate)
        check()
        if paint is not None:
            progress(0.8, f"painting the sides no view saw ({paint.method})")
            views = [item["view"] for item in asset.read().get("inputs", []) if item.get("view") in VIEW_LABELS]
            painted = paint_hidden(maps.base_color, lods[0], views or ["front"], paint,
                                   rotation=np.asarray(transform["rotation"]),
                                   quota_left_s=None if quota is None else quota.left_today())
            maps.base_color = painted.image
            run["parameters"]["paint_hidden"] = painted.record
            if quota is not None and painted.record.get("gpu_charge_s"):
                quota.record("paint_hidden", asset.asset_id, painted.record["gpu_charge_s"])
        progress(0.9, "writing textures")
        images = {"base_color": maps.base_color_rgba(), "normal_gl": maps.normal_rgb(),
                  "metallic": _gray(maps.metallic), "roughness": _gray(maps.roughness), "ao": _gray(maps.ao)}
        if maps.opacity is not None:
            images["opacity"] = _gray(maps.opacity)
        # The maps encode in threads (OpenCV lets go of Python's lock) while the checklist is made beside them.
        with ThreadPoolExecutor(max_workers=ENCODE_WORKERS, thread_name_prefix="o3f_bake_png") as pool:
            encoded = {name: pool.submit(save_png, image) for name, image in images.items()}
            run["parameters"]["checks"] = game_ready_checks(lods, hulls, state, images)
            run["made_from"]["checklist"] = checklist_digest(lods, hulls, state, images)
            for name, png in encoded.items():
                asset.write_bytes(texture_file(name), png.result())
                pixel_cache.remember(png.result(), images[name])  # the export reads them back
                run["outputs"][f"texture_{name}"] = texture_file(name)
        if quota is not None:
            quota.record("bake", asset.asset_id, run.get("gpu_charged_seconds", 0.0))
    return maps.stats


def _gray(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)


def checklist_digest(lods: list[MeshArrays], hulls: list[MeshArrays], state: dict,
                     textures: dict[str, np.ndarray]) -> str:
    """SHA-256 (24 hex digits) of everything the game-ready checklist reads: every LOD's and hull's arrays,
    the post-processing state (settings, stability verdict) and the maps' sizes. Equal digests, equal lists."""
    hasher = hashlib.sha256()
    for group, meshes in (("lod", lods), ("hull", hulls)):
        for index, mesh in enumerate(meshes):
            for name in FIELDS:
                value = getattr(mesh, name)
                if value is not None:
                    array = np.ascontiguousarray(value)
                    hasher.update(f"{group}{index}.{name}:{array.dtype.str}:{array.shape};".encode())
                    hasher.update(array.tobytes())
    sizes = {name: list(np.shape(image)[:2]) for name, image in textures.items()}
    hasher.update(json.dumps({"state": state, "texture_sizes": sizes}, sort_keys=True).encode())
    return hasher.hexdigest()[:24]

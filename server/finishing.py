"""Post-process, bake and export runs on an asset: load its files, run the stages, save and record them."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import trimesh

from . import gpu
from .asset import Asset, atomic_write_bytes
from .bake.engine import BakeSettings, HighPoly, bake, resolve_engine
from .bake.sources import AttributeSource, FieldSource, source_from_trimesh
from .cache import FIELDS, StageCache, file_digest, meshes_from_file, meshes_to_bytes
from .errors import ForgeError, InputError
from .export.package import ExportBundle, export_package
from .gameready import PostSettings, apply_transform, postprocess
from .generators.volume import AttributeVolume, volume_source
from .images import save_png
from .jsonsafe import jsonable
from .meshdata import MeshArrays
from .meshfile import glb_bytes, read_glb
from .pipeline import ATTRIBUTES, charged_if_failed
from .quota import QuotaLedger
from .rigging import RigResult, rig_mesh
from .rigging import models as rig_models
from .rigging.methods import TEMPLATE
from .generators.base import VIEW_LABELS
from .stages import checks as checks_stage
from .stages.paint_hidden import PaintSettings, paint_hidden

Progress = Callable[[float, str], None]
TEXTURES = ("base_color", "normal_gl", "metallic", "roughness", "ao")


def read_high_poly(asset: Asset) -> trimesh.Trimesh:
    """The asset's high poly in Blender axes with its visuals (colours, textures, PBR values)."""
    path = asset.folder / "high_poly.glb"
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


def run_postprocess(asset: Asset, settings: PostSettings, progress: Progress, check) -> dict:
    """Geometry stages on the asset's high poly; saves game/lods.npz, game/hulls.npz and game/postprocess.json."""
    mesh = read_high_poly(asset)
    high = high_arrays(mesh)
    cache = StageCache(asset.folder / "cache")
    high_digest = file_digest(asset.folder / "high_poly.glb")
    with asset.stage("postprocess", jsonable(settings.__dict__)) as run:
        run["made_from"] = {"high_poly": high_digest}
        game = postprocess(high, high_digest, settings, cache, progress, check)
        check()
        asset.write_bytes("game/lods.npz", meshes_to_bytes(game.lods))
        asset.write_bytes("game/hulls.npz", meshes_to_bytes(game.hulls))
        asset.write_bytes("game/postprocess.json", json.dumps(jsonable(
            {"settings": settings.__dict__, "transform": game.transform, "deviation_m": game.deviation,
             "report": game.report})).encode())
        run["outputs"].update({"lods": "game/lods.npz", "hulls": "game/hulls.npz",
                               "postprocess": "game/postprocess.json"})
        run["parameters"]["report"] = jsonable(game.report)
        state = {"settings": settings.__dict__, "report": jsonable(game.report)}
        run["parameters"]["checks"] = game_ready_checks(game.lods, game.hulls, state, None)
        run["made"] = {"lod0": lod0_digest(game.lods)}
    return game.report


RIG = "rig.npz"  # the rig stage's skeleton and skin weights for LOD0 (server/rigging RigResult.save)


def run_rig(asset: Asset, method: str, options: dict, progress: Progress, check,
            quota: QuotaLedger | None = None) -> dict:
    """Rig the asset's LOD0 with a resolved method (template, or a model method: rigging.methods.resolve) and
    save rig.npz. A refusal (not a humanoid, an open mesh) changes nothing: the rig is written only when it
    succeeded. A model method's GPU calls are checked against today's quota first and charged to it."""
    lods, _, _ = load_game_mesh(asset)
    estimate = None
    if method != TEMPLATE and quota is not None:
        estimate = rig_models.quota_estimate(method, lods[0], options, quota.left_today())
    with asset.stage("rig", {"method": method, **options}) as run:
        run["made_from"] = {"lod0": lod0_digest(lods)}
        check()
        if method == TEMPLATE:
            progress(0.1, "fitting the UE5 Mannequin skeleton")
            rig = rig_mesh(lods[0], options)
        else:
            with charged_if_failed(quota, asset, "rig", estimate) if quota is not None else nullcontext():
                rig = rig_models.rig_with(method, lods[0], options, progress=progress, check_cancelled=check)
            run["gpu_seconds"] = float(rig.report.get("gpu_seconds", 0.0))
            run["gpu_charged_seconds"] = gpu.charged_seconds(run["gpu_seconds"], estimate)
            if quota is not None:
                quota.record("rig", asset.asset_id, run["gpu_charged_seconds"])
        check()
        buffer = io.BytesIO()
        rig.save(buffer)
        asset.write_bytes(RIG, buffer.getvalue())
        run["outputs"]["rig"] = RIG
        run["parameters"]["report"] = jsonable(rig.report)
        progress(1.0, f"{len(rig.bone_names)} bones")
    return rig.report


def current_rig(asset: Asset, record: dict, lod0: str) -> RigResult | None:
    """The asset's rig when its last rig stage rigged this LOD0; None when it was never rigged; refuses a rig
    made for an earlier LOD0 (postprocess ran after it), as export refuses stale maps."""
    rigs = [run for run in record.get("stages", []) if run.get("stage") == "rig" and run.get("status") == "ok"]
    if not rigs:
        return None
    if rigs[-1].get("made_from", {}).get("lod0") != lod0:
        raise InputError("asset_id", asset.asset_id, "a rig made for its current LOD0, but it was rigged before "
                         "the last postprocess: run rig again")
    return RigResult.load(asset.folder / RIG)


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


def unwrapped_size(asset: Asset) -> int | None:
    """The texture size post-processing laid LOD0's UVs out for (the bake's size unless asked otherwise)."""
    path = asset.folder / "game" / "postprocess.json"
    return json.loads(path.read_text()).get("settings", {}).get("texture_size") if path.is_file() else None


def load_game_mesh(asset: Asset) -> tuple[list[MeshArrays], list[MeshArrays], dict]:
    if not (asset.folder / "game" / "lods.npz").is_file():
        raise ForgeError(f"asset {asset.asset_id} is not post-processed yet: run postprocess first")
    lods = meshes_from_file(asset.folder / "game" / "lods.npz")
    hulls = meshes_from_file(asset.folder / "game" / "hulls.npz")
    state = json.loads((asset.folder / "game" / "postprocess.json").read_text())
    return lods, hulls, state


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
    normals = np.asarray(mesh.vertex_normals) @ np.asarray(transform["rotation"]).T
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
        run["made_from"] = {"lod0": lod0_digest(lods), "high_poly": file_digest(asset.folder / "high_poly.glb")}
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
        for name, image in images.items():
            asset.write_bytes(f"textures/{name}.png", save_png(image))
            run["outputs"][f"texture_{name}"] = f"textures/{name}.png"
        run["parameters"]["checks"] = game_ready_checks(lods, hulls, state, images)
        if quota is not None:
            quota.record("bake", asset.asset_id, run.get("gpu_charged_seconds", 0.0))
    return maps.stats


def load_textures(asset: Asset) -> dict[str, np.ndarray]:
    from PIL import Image

    textures = {}
    for name in (*TEXTURES, "opacity"):
        path = asset.folder / "textures" / f"{name}.png"
        if not path.is_file():
            if name == "opacity":
                continue
            raise ForgeError(f"asset {asset.asset_id} has no baked {name} map: run bake first")
        with Image.open(path) as image:
            array = np.asarray(image)
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


def run_export(asset: Asset, engine: str, options: dict, progress: Progress, check) -> Path:
    """Build the engine package from the saved LODs, hulls and maps; returns the zip inside the asset folder."""
    lods, hulls, state = load_game_mesh(asset)
    textures = load_textures(asset)
    record = asset.read()
    lod0 = lod0_digest(lods)
    bake_run = check_maps_match(asset, record, lod0)
    checks = game_ready_checks(lods, hulls, state, textures)
    manifest = {"asset_id": asset.asset_id, "name": record["name"], "kind": record["kind"],
                "generator": record.get("generator"), "checks": checks,
                "postprocess": state.get("report", {}), "source": record.get("inputs", [])}
    rig = current_rig(asset, record, lod0)  # a rigged character exports as SK_<Name> with its skeleton
    if rig is None and record.get("kind") == "character":
        refused = [run for run in record.get("stages", []) if run.get("stage") == "rig"]
        manifest["rig"] = {"rigged": False, "why": refused[-1].get("error") if refused else "never rigged"}
    bundle = ExportBundle(name=record["name"], lods=lods, hulls=hulls, textures=textures,
                          manifest=jsonable(manifest), nanite=bool(options.get("nanite", False)), rig=rig)
    with asset.stage("export", {"engine": engine, **options}) as run:
        run["made_from"] = {"lod0": lod0, "bake_started": bake_run["started"]}
        check()
        progress(0.2, f"writing the {engine} package")
        use_fbx = options.get("use_fbx")
        path = export_package(bundle, engine, asset.folder / "exports", use_fbx=use_fbx)
        if options.get("include_high_poly"):
            path = _with_high_poly(asset, path, state["transform"])
        run["outputs"][f"export_{engine.lower()}"] = str(path.relative_to(asset.folder))
        run["parameters"]["checks_ok"] = bool(checks.get("ok", False))
    return path


def check_maps_match(asset: Asset, record: dict, lod0: str) -> dict:
    """The last finished bake when it baked onto this LOD0; refuses maps left from an earlier LOD0."""
    bakes = [run for run in record.get("stages", []) if run.get("stage") == "bake" and run.get("status") == "ok"]
    baked_onto = bakes[-1].get("made_from", {}).get("lod0") if bakes else None
    if baked_onto is None:
        raise InputError("asset_id", asset.asset_id, "maps whose bake recorded the LOD0 it baked onto, but "
                         "the last bake recorded none (an older version made it): run bake again")
    if baked_onto != lod0:
        raise InputError("asset_id", asset.asset_id, "maps baked onto its current LOD0, but they were baked "
                         "for an earlier LOD0 (postprocess ran after the last bake): run bake again")
    return bakes[-1]


def _with_high_poly(asset: Asset, package: Path, transform: dict) -> Path:
    """A copy of the package plus high_poly.glb placed like the LODs, for inspection in Blender."""
    import zipfile

    mesh = read_high_poly(asset)
    mesh.vertices = apply_transform(np.asarray(mesh.vertices), transform)
    target = package.with_name(f"{package.stem}_inspect.zip")
    buffer = io.BytesIO()
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as copy:
        for item in source.infolist():
            copy.writestr(item, source.read(item.filename))
        copy.writestr("high_poly.glb", glb_bytes(mesh))
    atomic_write_bytes(target, buffer.getvalue())
    return target


def _gray(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)

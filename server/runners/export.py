"""The export run: the engine package from the saved game mesh, maps and rig, refused when they are stale."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

from ..asset import EXPORTS, HIGH_POLY, Asset, atomic_write_bytes
from ..errors import InputError
from ..export.package import ExportBundle, export_package
from ..gameready import apply_transform
from ..jobs import Progress
from ..jsonsafe import jsonable
from ..meshfile import glb_bytes
from .bake import checklist_digest
from .rig import current_rig
from .stored import (
    game_ready_checks,
    load_game_mesh,
    load_textures,
    lod0_digest,
    read_high_poly,
)


def run_export(asset: Asset, engine: str, options: dict, progress: Progress, check) -> Path:
    """Build the engine package from the saved LODs, hulls and maps; returns the zip inside the asset folder."""
    started = time.perf_counter()
    lods, hulls, state = load_game_mesh(asset)
    textures = load_textures(asset)
    record = asset.read()
    lod0 = lod0_digest(lods)
    bake_run = check_maps_match(asset, record, lod0)
    timings = {"read_s": time.perf_counter() - started}
    started = time.perf_counter()
    checks, checks_from = checklist(bake_run, lods, hulls, state, textures)
    timings["checks_s"] = time.perf_counter() - started
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
        started = time.perf_counter()
        path = export_package(bundle, engine, asset.folder / EXPORTS, use_fbx=use_fbx)
        timings["package_s"] = time.perf_counter() - started
        if options.get("include_high_poly"):
            path = _with_high_poly(asset, path, state["transform"])
        run["outputs"][f"export_{engine.lower()}"] = str(path.relative_to(asset.folder))
        run["parameters"]["checks_ok"] = bool(checks.get("ok", False))
        run["parameters"]["checks_from"] = checks_from
        run["parameters"]["timings_s"] = {part: round(seconds, 3) for part, seconds in timings.items()}
    return path


def checklist(bake_run: dict, lods, hulls, state: dict, textures: dict) -> tuple[dict, str]:
    """The game-ready checklist and where it came from: the one the bake recorded when it was made from these
    same LODs, hulls, post-processing state and map sizes ("bake"), else made again ("computed")."""
    recorded = bake_run.get("parameters", {}).get("checks")
    made_from = bake_run.get("made_from", {}).get("checklist")
    if recorded is not None and made_from == checklist_digest(lods, hulls, state, textures):
        return recorded, "bake"
    return game_ready_checks(lods, hulls, state, textures), "computed"


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
        copy.writestr(HIGH_POLY, glb_bytes(mesh))
    atomic_write_bytes(target, buffer.getvalue())
    return target

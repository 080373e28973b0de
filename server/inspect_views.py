"""What the web UI shows of an asset: a GLB of one part (textured LOD0, a LOD, the hulls, the high poly), the
game-ready checklist as rows, and the quota as a bar. No Gradio here."""

from __future__ import annotations

import html
import io

from .asset import EXPORTS, HIGH_POLY, PREVIEW_PICTURE, Asset, atomic_write_bytes, view_file
from .errors import ForgeError
from .export.gltf import GltfMaterial, GltfNode, build_glb
from .runners.stored import load_game_mesh, load_textures
from .stages.packing import pack_gltf_orm

VIEWS = ("LOD0 (textured)", "LOD1", "LOD2", "collision hulls", "high poly")


def view_glb(asset: Asset, which: str) -> str:
    """A GLB of one part of the asset for the viewer, written beside its record (views/...); returns its path."""
    if which not in VIEWS:
        raise ForgeError(f"view={which!r}: expected one of {', '.join(VIEWS)}")
    if which == "high poly":
        path = asset.folder / HIGH_POLY
        if not path.is_file():
            raise ForgeError(f"asset {asset.asset_id} has no high poly yet")
        return str(path)
    lods, hulls, _ = load_game_mesh(asset)
    if which == "collision hulls":
        if not hulls:
            raise ForgeError(f"asset {asset.asset_id} has no collision hulls (collision was off)")
        data = build_glb([GltfNode(f"UCX_{i:02d}", hull, material=False) for i, hull in enumerate(hulls)], None)
    else:
        index = 0 if which.startswith("LOD0") else int(which[-1])
        material = None
        try:
            textures = load_textures(asset)
            material = GltfMaterial("baked", base_color=textures["base_color"][..., :3],
                                    normal=textures["normal_gl"],
                                    orm=pack_gltf_orm(textures["ao"], textures["roughness"], textures["metallic"]))
        except ForgeError:
            pass  # not baked yet: the shape alone
        data = build_glb([GltfNode(f"LOD{index}", lods[index])], material or GltfMaterial("untextured"))
    path = asset.folder / view_file(f"{which.split()[0].lower()}_{which.split()[-1].strip('()').lower()}.glb")
    atomic_write_bytes(path, data)
    return str(path)


def checklist_rows(record: dict) -> list[list]:
    """The last game-ready checklist an asset's stages recorded: [check, ok, value, expected] per row."""
    for run in reversed(record.get("stages", [])):
        checks = (run.get("parameters") or {}).get("checks")
        if isinstance(checks, dict) and checks.get("checks"):
            return [[c.get("name"), "pass" if c.get("ok") else "FAIL", _text(c.get("value")), _text(c.get("expected"))]
                    for c in checks["checks"]]
    return []


def _text(value) -> str:
    return "" if value is None else str(value)


def quota_bar(summary: dict) -> str:
    """The day's GPU seconds as an HTML bar: used against the daily limit."""
    limit = float(summary.get("daily_limit_seconds") or 0)
    used = float(summary.get("used_seconds") or 0)
    share = 0.0 if limit <= 0 else min(1.0, used / limit)
    return (f'<div class="o3f-quota"><progress value="{share:.3f}" max="1" style="width:100%"></progress>'
            f"<div>GPU today: {used:.0f} s of {limit:.0f} s ({html.escape(str(summary.get('left_seconds')))} s "
            "left)</div></div>")


def preview_png(asset: Asset) -> str | None:
    """The asset's newest preview picture (from its last export), if it has one."""
    exports = asset.folder / EXPORTS
    if not exports.is_dir():
        return None
    import zipfile

    zips = sorted(exports.glob("*.zip"), key=lambda p: p.stat().st_mtime)
    for package in reversed(zips):
        with zipfile.ZipFile(package) as archive:
            if "preview.png" in archive.namelist():
                target = asset.folder / PREVIEW_PICTURE
                atomic_write_bytes(target, io.BytesIO(archive.read("preview.png")).getvalue())
                return str(target)
    return None

"""Engine packages: ExportBundle -> <Name>_<Engine>.zip (UE5, Unity or Godot), written atomically."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import tempfile
import time
import uuid
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import ForgeError, InputError
from ..images import ENCODE_WORKERS, save_png
from ..jsonsafe import jsonable
from ..meshdata import MeshArrays
from . import naming, rigged
from .fbx import DEFAULT_TIMEOUT_S, FbxFile, FbxObject, bpy_available, write_fbx_files
from .gltf import GltfMaterial, GltfNode, write_glb
from .gltf_skin import write_skinned_glb
from .preview import render_preview
from .ue5_script import import_script
from .unity_humanoid import humanoid_section

FORMAT = "open3dforge-export/1"
PREVIEW_SIZE = 512
REQUIRED_TEXTURES = ("base_color", "normal_gl", "ao", "roughness", "metallic")
MIN_TEXTURE = 4
MAX_TEXTURE = 8192


@dataclass
class ExportBundle:
    """Everything an engine package is made from (see export_package)."""

    name: str  # sanitised asset name, [A-Za-z0-9_], e.g. "Barrel"
    lods: list[MeshArrays]  # LOD0..LOD2, pivot and scale applied, each with uv (n,2) and normals (n,3)
    hulls: list[MeshArrays]  # convex collision hulls (may be empty)
    textures: dict[str, np.ndarray]  # base_color (H,W,4) uint8 sRGB; normal_gl (H,W,3) uint8 OpenGL;
    # ao, roughness, metallic (H,W) float32 in [0,1]; optional opacity (H,W)
    manifest: dict = field(default_factory=dict)  # checks, parameters, stats
    skeletal: bool = False  # SK_ instead of SM_
    nanite: bool = False
    # A server.rigging.RigResult made for lods[0] (same vertices, same order): the package then carries the
    # skinned LOD0 with its armature and no static LODs or hulls (see rigged.py).
    rig: object | None = None


# ---------------------------------------------------------------------------------------------- checks


def _check_mesh(label: str, mesh, *, attributes: bool) -> None:
    if not isinstance(mesh, MeshArrays):
        raise InputError(label, type(mesh).__name__, "a MeshArrays")
    v, f = mesh.vertices, mesh.faces
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 3:
        raise InputError(f"{label}.vertices", v.shape, "shape (n, 3) with n >= 3")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise InputError(f"{label}.faces", f.shape, "shape (m, 3) with m >= 1")
    if f.min() < 0 or f.max() >= len(v):
        raise InputError(f"{label}.faces", f"indices {int(f.min())}..{int(f.max())}", f"indices in 0..{len(v) - 1}")
    if not np.isfinite(v).all():
        raise InputError(f"{label}.vertices", "non-finite values", "finite positions")
    if not attributes:
        return
    for attr, width in (("uv", 2), ("normals", 3)):
        value = getattr(mesh, attr)
        if value is None:
            raise InputError(f"{label}.{attr}", None, f"an (n, {width}) array (vertices split at UV seams)")
        value = np.asarray(value)
        if value.shape != (len(v), width) or not np.isfinite(value).all():
            raise InputError(f"{label}.{attr}", value.shape, f"finite values of shape ({len(v)}, {width})")


def _check_square_pow2(label: str, image: np.ndarray) -> int:
    h, w = image.shape[:2]
    if h != w or h < MIN_TEXTURE or h > MAX_TEXTURE or h & (h - 1):
        raise InputError(label, f"{w}x{h}", f"a power-of-two square from {MIN_TEXTURE} to {MAX_TEXTURE} texels")
    return h


def _check_textures(textures) -> dict[str, np.ndarray]:
    if not isinstance(textures, dict):
        raise InputError("bundle.textures", type(textures).__name__, "a dict of arrays")
    missing = [k for k in REQUIRED_TEXTURES if textures.get(k) is None]
    if missing:
        raise InputError("bundle.textures", sorted(textures), f"the keys {list(REQUIRED_TEXTURES)} (+ optional 'opacity')")
    out = {}
    for key, channels in (("base_color", (3, 4)), ("normal_gl", (3,))):
        image = np.asarray(textures[key])
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in channels:
            raise InputError(f"bundle.textures[{key!r}]", f"{image.dtype} {image.shape}", f"uint8 (H, W, {'|'.join(map(str, channels))})")
        _check_square_pow2(f"bundle.textures[{key!r}]", image)
        out[key] = image
    scalar_keys = ["ao", "roughness", "metallic"] + (["opacity"] if textures.get("opacity") is not None else [])
    for key in scalar_keys:
        image = np.asarray(textures[key])
        if image.ndim != 2 or image.dtype.kind not in "fui":
            raise InputError(f"bundle.textures[{key!r}]", f"{image.dtype} {image.shape}", "a float (H, W) map in [0, 1]")
        image = image.astype(np.float32)
        if not np.isfinite(image).all() or image.min() < -1e-3 or image.max() > 1 + 1e-3:
            shown = "non-finite values" if not np.isfinite(image).all() else f"range {image.min():.3g}..{image.max():.3g}"
            raise InputError(f"bundle.textures[{key!r}]", shown, "finite values in [0, 1]")
        _check_square_pow2(f"bundle.textures[{key!r}]", image)
        out[key] = np.clip(image, 0.0, 1.0)
    if not out["ao"].shape == out["roughness"].shape == out["metallic"].shape:
        raise InputError("bundle.textures", {k: out[k].shape for k in ("ao", "roughness", "metallic")},
                         "ao, roughness and metallic of one size (they are packed into one image)")
    if "opacity" in out and out["opacity"].shape != out["base_color"].shape[:2]:
        raise InputError("bundle.textures['opacity']", out["opacity"].shape,
                         f"the base colour's size {out['base_color'].shape[:2]} (it becomes its alpha)")
    return out


def check_bundle(bundle: ExportBundle) -> dict[str, np.ndarray]:
    """Validate every part of the bundle before any work; returns the textures, checked and clipped."""
    if not isinstance(bundle, ExportBundle):
        raise InputError("bundle", type(bundle).__name__, "an ExportBundle")
    naming.check_name(bundle.name)
    if not isinstance(bundle.lods, (list, tuple)) or not 1 <= len(bundle.lods) <= naming.MAX_LODS:
        count = len(bundle.lods) if isinstance(bundle.lods, (list, tuple)) else bundle.lods
        raise InputError("bundle.lods", count, f"a list of 1 to {naming.MAX_LODS} meshes (LOD0 first)")
    for i, lod in enumerate(bundle.lods):
        _check_mesh(f"bundle.lods[{i}]", lod, attributes=True)
    if not isinstance(bundle.hulls, (list, tuple)) or len(bundle.hulls) > 99:
        raise InputError("bundle.hulls", bundle.hulls if not isinstance(bundle.hulls, (list, tuple)) else len(bundle.hulls), "a list of at most 99 meshes")
    for i, hull in enumerate(bundle.hulls):
        _check_mesh(f"bundle.hulls[{i}]", hull, attributes=False)
    if not isinstance(bundle.manifest, dict):
        raise InputError("bundle.manifest", type(bundle.manifest).__name__, "a dict")
    if bundle.rig is not None:
        rigged.check_rig_for_mesh(bundle.rig, bundle.lods[0])
    return _check_textures(bundle.textures)


# -------------------------------------------------------------------------------------------- helpers


def _png(path: Path, image: np.ndarray) -> None:
    try:
        Path(path).write_bytes(save_png(image))
    except ForgeError as error:
        raise ForgeError(f"{Path(path).name}: {error}") from None


def _base_color(textures: dict[str, np.ndarray]) -> np.ndarray:
    """RGB, or RGBA with alpha = opacity when the bundle has an opacity map (the BC alpha is not used)."""
    rgb = textures["base_color"][..., :3]
    if "opacity" in textures:
        alpha = np.round(textures["opacity"] * 255).astype(np.uint8)
        return np.dstack([rgb, alpha])
    return np.ascontiguousarray(rgb)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _lod_entries(lods: list[MeshArrays], names: naming.EngineNames) -> list[dict]:
    """One entry per LOD the package carries: its file, node name and counts."""
    out = []
    for i, lod in enumerate(lods):
        if names.mesh_nodes[i] is None:
            continue
        file = next(f for f in reversed(names.mesh_files[: i + 1]) if f)
        out.append({"lod": i, "file": file, "node": names.mesh_nodes[i], "triangles": int(lod.face_count),
                    "vertices": int(len(lod.vertices))})
    return out


# ------------------------------------------------------------------------------------ engine writers


def _map_images(key: str, textures, names) -> dict[str, Callable[[], np.ndarray]]:
    """The engine's map files, each with the function that makes its pixels (Godot embeds its maps in the GLB)."""
    from ..stages.packing import (normal_gl_to_dx, pack_ue5_orm, pack_unity_hdrp_mask,
                                  pack_unity_urp_metallic_smoothness)

    tex = names.textures
    ao, rough, metal = textures["ao"], textures["roughness"], textures["metallic"]
    if key == "ue5":
        return {tex["base_color"]: lambda: _base_color(textures),
                tex["normal"]: lambda: normal_gl_to_dx(textures["normal_gl"]),
                tex["orm"]: lambda: pack_ue5_orm(ao, rough, metal)}
    if key == "unity":
        return {tex["base_color"]: lambda: _base_color(textures),
                tex["normal"]: lambda: textures["normal_gl"],  # Unity wants OpenGL (+Y)
                tex["metallic_smoothness"]: lambda: pack_unity_urp_metallic_smoothness(metal, rough, ao=ao),
                tex["mask_map"]: lambda: pack_unity_hdrp_mask(metal, ao, None, rough)}
    return {}


def _timed_png(path: Path, make: Callable[[], np.ndarray]) -> float:
    """Make an image and write it as a PNG; returns the seconds both took."""
    started = time.perf_counter()
    _png(path, make())
    return round(time.perf_counter() - started, 3)


@contextmanager
def _image_workers() -> Iterator[ThreadPoolExecutor]:
    """Threads for the images. On the way out (after an error too) jobs not started are dropped and running
    ones finished, so nothing writes into the staging folder once it is removed."""
    pool = ThreadPoolExecutor(max_workers=ENCODE_WORKERS, thread_name_prefix="o3f_export_images")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _seconds_of(jobs: list[Future]) -> float:
    """Waits for every job (raising the first failure) and adds up their seconds."""
    return round(sum(job.result() for job in jobs), 3)


def _write_ue5(bundle, textures, names, stage: Path, use_fbx: bool, timeout: float) -> dict:
    tex = names.textures
    if bundle.rig is not None:
        return _write_ue5_rigged(bundle, textures, names, stage, use_fbx, timeout)
    hull_names = names.hull_nodes(len(bundle.hulls))
    render = names.mesh_nodes[0]
    if use_fbx:
        files = []
        for i, lod in enumerate(bundle.lods):
            objects = [FbxObject(render, lod, material=names.material)]
            if i == 0:
                objects += [FbxObject(n, h) for n, h in zip(hull_names, bundle.hulls)]
            files.append(FbxFile(stage / names.mesh_files[i], objects, preset="ue5", skeletal=bundle.skeletal))
        report = write_fbx_files(files, timeout=timeout)
    else:
        material = GltfMaterial(names.material)  # the maps ship as PNGs; the import script builds M_<Name>
        for i, lod in enumerate(bundle.lods):
            nodes = [GltfNode(render, lod)]
            if i == 0:
                nodes += [GltfNode(n, h, material=False) for n, h in zip(hull_names, bundle.hulls)]
            write_glb(stage / names.mesh_files[i], nodes, material)
        report = None
    script = import_script(
        bundle.name, [f for f in names.mesh_files if f], render, tex, names.material,
        hull_count=len(bundle.hulls), nanite=bundle.nanite, skeletal=bundle.skeletal,
        opacity_mask="opacity" in textures, lod_triangles=[int(lod.face_count) for lod in bundle.lods],
    )
    (stage / names.import_script).write_text(script, encoding="utf-8")
    return _ue5_details(textures, names, use_fbx, hull_names, report)


def _write_ue5_rigged(bundle, textures, names, stage: Path, use_fbx: bool, timeout: float) -> dict:
    """SK_<Name> skinned LOD0 (FBX by Blender, else GLB) and an import script that imports it as a skeletal
    mesh onto the project's Mannequin skeleton when the bones match."""
    rig, lod0, node = bundle.rig, bundle.lods[0], names.mesh_nodes[0]
    generic = rigged.is_generic(rig)
    report = rigged.write_rigged_mesh(stage / names.mesh_files[0], bundle.name, node, lod0, rig,
                                      GltfMaterial(names.material), use_fbx=use_fbx, timeout=timeout)
    names_list = list(rig.bone_names)
    script = import_script(
        bundle.name, [names.mesh_files[0]], node, names.textures, names.material, skeletal=True,
        opacity_mask="opacity" in textures, lod_triangles=[int(lod0.face_count)],
        bones=names_list, parents=[names_list[p] if p >= 0 else None for p in rig.parents],
        mannequin_skeletons=[] if generic else None,
        generic_skeleton=generic,
    )
    (stage / names.import_script).write_text(script, encoding="utf-8")
    details = _ue5_details(textures, names, use_fbx, [], report)
    details["collision"] = {"hulls": 0, "nodes": [], "convention": "a skeletal mesh collides through its physics "
                            "asset, which the import script makes (or the import made)"}
    details["skeleton"] = rigged.skeleton_section(rig, lod0, engine="ue5")
    details["skeleton"].update({
        "armature_node": names.armature if use_fbx else None,
        "import": "onto a new skeleton SK_<Name>_Skeleton (a generic skeleton: the Mannequin's animations need "
                  "an IK Retargeter); a physics asset" if generic else
                  "onto an existing UE5 Mannequin skeleton when its bone names and hierarchy match (the import "
                  "script checks), else a new skeleton SK_<Name>_Skeleton; a physics asset either way",
    })
    return details


def _ue5_details(textures, names, use_fbx: bool, hull_names: list[str], report) -> dict:
    tex = names.textures
    return {
        "units": {"source": "m (Blender, 1 unit = 1 m)", "engine": "cm",
                  "file": "FBX UnitScaleFactor 100 (1 file unit = 1 m); Unreal imports 1 m as 100 cm at scale 1.0"
                  if use_fbx else "glTF metres; Unreal imports 1 m as 100 cm"},
        "axes": {"engine": "Unreal: +Z up, left-handed",
                 "source": "Blender: +Z up, front -Y; Unreal shows that front along +Y",
                 "file": "FBX declares Y up, -Z forward (Blender's defaults); Unreal's importer converts it"
                 if use_fbx else "glTF: +Y up, front +Z"},
        "normal_map": {"file": tex["normal"], "convention": "DirectX (green = -Y)"},
        "textures": {
            tex["base_color"]: {"role": "base_color", "color_space": "sRGB", "compression": "TC_DEFAULT",
                                "channels": "RGBA (A = opacity)" if "opacity" in textures else "RGB"},
            tex["normal"]: {"role": "normal", "color_space": "linear", "compression": "TC_NORMALMAP",
                            "channels": "RGB DirectX"},
            tex["orm"]: {"role": "orm", "color_space": "linear", "compression": "TC_MASKS",
                         "channels": "R ambient occlusion, G roughness, B metallic"},
        },
        "collision": {"hulls": len(hull_names), "nodes": hull_names, "file": names.mesh_files[0],
                      "convention": "UCX_<RenderMesh>_NN convex hulls in the LOD0 file; import with one_convex_hull_per_ucx"},
        "material": {"name": names.material, "built_by": names.import_script},
        "import_script": names.import_script,
        "fbx_writer": report,
    }


def _write_unity(bundle, textures, names, stage: Path, use_fbx: bool, timeout: float) -> dict:
    tex = names.textures
    if bundle.rig is not None:
        return _write_unity_rigged(bundle, textures, names, stage, use_fbx, timeout)
    hull_names = names.hull_nodes(len(bundle.hulls))
    lod0 = names.mesh_nodes[0]
    if use_fbx:
        objects = [FbxObject(names.mesh_nodes[i], lod, material=names.material) for i, lod in enumerate(bundle.lods)]
        objects += [FbxObject(n, h, parent=lod0) for n, h in zip(hull_names, bundle.hulls)]
        report = write_fbx_files([FbxFile(stage / names.mesh_files[0], objects, preset="unity",
                                          skeletal=bundle.skeletal)], timeout=timeout)
    else:
        nodes = [GltfNode(names.mesh_nodes[i], lod) for i, lod in enumerate(bundle.lods)]
        nodes += [GltfNode(n, h, material=False) for n, h in zip(hull_names, bundle.hulls)]
        write_glb(stage / names.mesh_files[0], nodes, GltfMaterial(names.material))
        report = None
    return {
        "units": {"source": "m", "engine": "m",
                  "file": "FBX UnitScaleFactor 100 (1 file unit = 1 m): Unity imports at scale 1.0" if use_fbx else "glTF metres"},
        "axes": {"engine": "Unity: +Y up, left-handed", "source": "Blender: +Z up, front -Y",
                 "file": "FBX Y up, -Z forward; every node written with an identity transform (no -90 degree X rotation)"
                 if use_fbx else "glTF: +Y up, front +Z"},
        **_unity_maps(textures, tex),
        "lod_group": "meshes named <Name>_LOD0/1/2: Unity builds a LODGroup from the names",
        "collision": {"hulls": len(bundle.hulls), "nodes": hull_names, "parent": lod0 if hull_names else None,
                      "convention": "convex parts as child meshes of LOD0: give each a MeshCollider (Convex) and "
                                    "disable its MeshRenderer"},
        "material": {"name": names.material},
        "fbx_writer": report,
    }


def _unity_maps(textures, tex) -> dict:
    return {
        "normal_map": {"file": tex["normal"], "convention": "OpenGL (green = +Y)"},
        "textures": {
            tex["base_color"]: {"role": "base_color", "color_space": "sRGB",
                                "channels": "RGBA (A = opacity)" if "opacity" in textures else "RGB"},
            tex["normal"]: {"role": "normal", "color_space": "linear", "channels": "RGB OpenGL", "texture_type": "Normal map"},
            tex["metallic_smoothness"]: {"role": "urp_metallic_smoothness", "color_space": "linear",
                                         "channels": "R metallic, G ambient occlusion, B 0, A smoothness (1 - roughness)",
                                         "pipeline": "URP (Lit: Metallic Map, Smoothness Source = Metallic Alpha)"},
            tex["mask_map"]: {"role": "hdrp_mask_map", "color_space": "linear",
                              "channels": "R metallic, G ambient occlusion, B detail mask (1), A smoothness",
                              "pipeline": "HDRP (Lit: Mask Map)"},
        },
    }


def _write_unity_rigged(bundle, textures, names, stage: Path, use_fbx: bool, timeout: float) -> dict:
    """<Name>.fbx (or .glb) with the skinned LOD0 and its armature, and the Humanoid bone map."""
    rig, lod0 = bundle.rig, bundle.lods[0]
    report = rigged.write_rigged_mesh(stage / names.mesh_files[0], bundle.name, names.mesh_nodes[0], lod0, rig,
                                      GltfMaterial(names.material), use_fbx=use_fbx, timeout=timeout)
    return {
        "units": {"source": "m", "engine": "m",
                  "file": "FBX UnitScaleFactor 100 (1 file unit = 1 m): Unity imports at scale 1.0" if use_fbx else "glTF metres"},
        "axes": {"engine": "Unity: +Y up, left-handed", "source": "Blender: +Z up, front -Y",
                 "file": "FBX Y up, -Z forward; the root node Armature carries the Z-up to Y-up turn (the model "
                         "importer's Bake Axis Conversion takes it out)" if use_fbx else "glTF: +Y up, front +Z"},
        **_unity_maps(textures, names.textures),
        "collision": {"hulls": 0, "nodes": [], "convention": "add colliders to the bones (Ragdoll Wizard) if needed"},
        "material": {"name": names.material},
        "skeleton": {**rigged.skeleton_section(rig, lod0, engine="unity"),
                     "armature_node": names.armature if use_fbx else None},
        "humanoid": None if rigged.is_generic(rig) else humanoid_section(list(rig.bone_names)),
        "animation_type": "Generic (the skeleton is the model's own, not a humanoid's)" if rigged.is_generic(rig)
        else "Humanoid",
        "fbx_writer": report,
    }


def _write_godot(bundle, textures, names, stage: Path) -> dict:
    from ..stages.packing import pack_gltf_orm

    hull_names = names.hull_nodes(len(bundle.hulls))
    material = GltfMaterial(
        names.material, base_color=_base_color(textures), normal=np.ascontiguousarray(textures["normal_gl"]),
        orm=pack_gltf_orm(textures["ao"], textures["roughness"], textures["metallic"]),
        alpha_mode="MASK" if "opacity" in textures else "OPAQUE",
    )
    if bundle.rig is not None:
        write_skinned_glb(stage / names.mesh_files[0], names.mesh_nodes[0], bundle.lods[0], bundle.rig, material)
        hull_names = []
    else:
        nodes = [GltfNode(names.mesh_nodes[0], bundle.lods[0])]
        nodes += [GltfNode(n, h, material=False) for n, h in zip(hull_names, bundle.hulls)]
        write_glb(stage / names.mesh_files[0], nodes, material)
    details = {
        "units": {"source": "m", "engine": "m", "file": "glTF metres"},
        "axes": {"engine": "Godot: +Y up, front faces +Z", "source": "Blender: +Z up, front -Y",
                 "file": "glTF +Y up, front +Z; Blender (x, y, z) -> glTF (x, z, -y)"},
        "normal_map": {"file": f"{names.mesh_files[0]} (embedded)", "convention": "OpenGL (green = +Y)"},
        "textures": {
            "baseColorTexture": {"role": "base_color", "color_space": "sRGB", "embedded": True},
            "normalTexture": {"role": "normal", "color_space": "linear", "embedded": True},
            "metallicRoughnessTexture+occlusionTexture": {
                "role": "orm", "color_space": "linear", "embedded": True,
                "channels": "R occlusion, G roughness, B metallic (one image serves both slots)"},
        },
        "lods": "Godot generates mesh LODs on import; the GLB carries LOD0",
        "collision": {"hulls": len(hull_names), "nodes": hull_names,
                      "convention": "-convcolonly suffix: Godot makes a StaticBody3D with a ConvexPolygonShape3D"},
        "material": {"name": names.material},
    }
    if bundle.rig is not None:
        details["skeleton"] = {**rigged.skeleton_section(bundle.rig, bundle.lods[0], engine="godot"),
                               "skin": names.armature,
                               "godot": "the glTF skin becomes a Skeleton3D with these bone names and the mesh a "
                                        "MeshInstance3D skinned to it"}
    return details


# ----------------------------------------------------------------------------------------- the package


def export_package(bundle: ExportBundle, engine: str, out_dir: Path, *, use_fbx: bool | None = None,
                   fbx_timeout: float = DEFAULT_TIMEOUT_S) -> Path:
    """Write <out_dir>/<Name>_<Engine>.zip for engine 'ue5' | 'unity' | 'godot' (case-insensitive).

    use_fbx None: FBX (Blender's exporter in a subprocess) when bpy is importable here, else GLB with the
    same base names. Godot is always GLB. Every input is validated before any work (InputError); the zip
    is written to a temporary file in out_dir and moved into place, so a failure leaves nothing behind.
    """
    key = naming.engine_key(engine)
    textures = check_bundle(bundle)
    if use_fbx is None:
        use_fbx = bpy_available()
    use_fbx = bool(use_fbx) and key != "godot"
    is_rigged = bundle.rig is not None
    names = naming.engine_names(bundle.name, key, len(bundle.lods), use_fbx=use_fbx, skeletal=bundle.skeletal,
                                rigged=is_rigged)
    shipped = bundle.lods[:1] if is_rigged else bundle.lods
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / naming.zip_name(bundle.name, key)
    timings = {}

    with tempfile.TemporaryDirectory(prefix="o3f_export_") as stage, _image_workers() as workers:
        stage = Path(stage)
        started = time.perf_counter()
        maps = [workers.submit(_timed_png, stage / name, make)
                for name, make in _map_images(key, textures, names).items()]
        preview = workers.submit(_timed_png, stage / names.preview,
                                 lambda: render_preview(bundle.lods[0], _base_color(textures), PREVIEW_SIZE))
        # The meshes are written here (FBX: waiting on Blender's subprocess) while the workers make the images.
        if key == "ue5":
            details = _write_ue5(bundle, textures, names, stage, use_fbx, fbx_timeout)
        elif key == "unity":
            details = _write_unity(bundle, textures, names, stage, use_fbx, fbx_timeout)
        else:
            details = _write_godot(bundle, textures, names, stage)
        timings["meshes_s"] = round(time.perf_counter() - started, 3)
        timings["maps_s"] = _seconds_of(maps)
        timings["preview_s"] = _seconds_of([preview])
        timings["meshes_and_images_s"] = round(time.perf_counter() - started, 3)

        manifest = jsonable(copy.deepcopy(bundle.manifest))
        fbx_report = details.pop("fbx_writer", None)
        if fbx_report:
            timings["fbx_subprocess_s"] = fbx_report.get("seconds")
            details["blender"] = fbx_report.get("blender")
        manifest.update({
            "format": FORMAT,
            "asset": bundle.name,
            "engine": naming.engine_label(key),
            "mesh_format": names.mesh_ext,
            "skeletal": bool(bundle.skeletal or is_rigged),
            "rigged": is_rigged,
            "nanite": bool(bundle.nanite) and not is_rigged,
            "lods": _lod_entries(shipped, names),
            "lod_triangles": [int(l.face_count) for l in shipped],
            "collision_hulls": 0 if is_rigged else len(bundle.hulls),
            **details,
            "conventions": {
                "names": "[A-Za-z0-9_]; " + ("SK_" if bundle.skeletal or is_rigged else "SM_") + "/T_/M_ prefixes"
                if key == "ue5"
                else "[A-Za-z0-9_]",
                "tangents": "MikkTSpace",
                "pivot": "bottom centre for props, transforms applied",
                "reference": "Open3DForge CONVENTIONS.md, engine presets",
            },
            "export_timings": timings,
        })
        if is_rigged and (len(bundle.lods) > 1 or bundle.hulls):
            manifest["left_out"] = {"lods": len(bundle.lods) - 1, "hulls": len(bundle.hulls),
                                    "why": "a rigged character ships its skinned LOD0 only: static LODs and convex "
                                           "hulls would not follow the bones"}
        if key == "ue5" and not use_fbx:
            manifest["fallback"] = ("no bpy on the server: meshes are GLB with the same base names; the add-on "
                                    "writes FBX with your Blender")
        files = [f for f in names.file_list() if f != names.manifest]
        for name in files:
            if not (stage / name).is_file():
                raise ForgeError(f"export {key}: {name} was not written")
        manifest["files"] = [{"name": n, "bytes": (stage / n).stat().st_size, "sha256": _sha256(stage / n)}
                             for n in files]
        manifest["files_note"] = "every file of the zip except manifest.json itself"
        (stage / names.manifest).write_text(json.dumps(manifest, indent=2, sort_keys=False), encoding="utf-8")

        temporary = out_dir / f".{target.name}.{uuid.uuid4().hex}.tmp"
        try:
            # Level 1: the run-length PNGs and Blender's FBX files come out no larger than at 6, a third sooner.
            with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
                for name in names.file_list():
                    archive.write(stage / name, arcname=name)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    return target


def read_manifest(zip_path: Path) -> dict:
    """The manifest.json of a package (for tests and the add-on)."""
    with zipfile.ZipFile(zip_path) as archive:
        return json.load(io.BytesIO(archive.read("manifest.json")))

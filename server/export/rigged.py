"""A rigged character's mesh file and skeleton manifest: skinned LOD0 as FBX (Blender) or skinned GLB."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..meshdata import MeshArrays
from .gltf import GltfMaterial
from .gltf_skin import check_rig, write_skinned_glb
from .naming import NAME_PATTERN

ARMATURE = "Armature"  # the FBX armature node: UE's importer takes it as the armature itself, no extra bone
DEFAULT_SKELETON = "ue5_mannequin"


def check_rig_for_mesh(rig, lod0: MeshArrays, argument: str = "bundle.rig") -> None:
    """InputError unless `rig` skins exactly `lod0` and every bone name is a valid node name."""
    check_rig(rig, len(lod0.vertices), argument)
    bad = [name for name in rig.bone_names if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name)]
    if bad:
        raise InputError(f"{argument}.bone_names", bad[:5], "names of [A-Za-z0-9_] (they become FBX and glTF nodes)")
    if ARMATURE in rig.bone_names:
        raise InputError(f"{argument}.bone_names", ARMATURE, f"no bone named {ARMATURE!r} (the armature node's name)")


def write_rigged_mesh(path: Path, asset: str, node: str, lod0: MeshArrays, rig, material: GltfMaterial, *,
                      use_fbx: bool, timeout: float) -> dict | None:
    """Write the skinned LOD0 to `path`: FBX by Blender (its mesh node is SK_<asset>, the armature node
    'Armature') or a skinned GLB whose mesh node is `node`. Returns the FBX writer's report, or None."""
    if use_fbx:
        from .blender_skeletal import write_skeletal_fbx

        return write_skeletal_fbx(path, lod0, rig, name=asset, material=material.name, armature_name=ARMATURE,
                                  timeout=timeout)
    write_skinned_glb(path, node, lod0, rig, material)
    return None


def is_generic(rig) -> bool:
    """A skeleton of the model's own (UniRig): neither the Mannequin's skeleton nor a Humanoid map applies."""
    report = rig.report if isinstance(getattr(rig, "report", None), dict) else {}
    return report.get("skeleton") == "generic"


def skeleton_section(rig, lod0: MeshArrays, *, engine: str) -> dict:
    """The manifest's skeleton: which skeleton, bones with parents, deforming bones, the body's height."""
    names = list(rig.bone_names)
    parents = {name: (names[p] if p >= 0 else None) for name, p in zip(names, rig.parents)}
    report = rig.report if isinstance(getattr(rig, "report", None), dict) else {}
    height_m = float(np.ptp(np.asarray(lod0.vertices)[:, 2]))
    section = {
        "skeleton": report.get("skeleton", DEFAULT_SKELETON),
        "method": report.get("method"),
        "bone_count": len(names),
        "bones": names,
        "parents": parents,
        "root": names[list(rig.parents).index(-1)],
        "deform_bones": [n for n, d in zip(names, np.asarray(rig.deform, dtype=bool)) if d],
        "max_influences": int(np.asarray(rig.influence_bones).shape[1]),
        "height_m": round(height_m, 4),
    }
    if engine == "ue5":
        section["height_cm"] = round(height_m * 100.0, 2)
    return section

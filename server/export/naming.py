"""File and node names of each engine preset (UE5, Unity, Godot), as CONVENTIONS.md spells them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import InputError

ENGINES = {"ue5": "UE5", "unity": "Unity", "godot": "Godot"}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")
# Blender truncates object names at 63 bytes; the longest name we make is "UCX_SM_<Name>_NN" (10 more).
MAX_NAME_LENGTH = 48
MAX_LODS = 8  # UE5 static meshes take LOD0..LOD7


def engine_key(engine) -> str:
    """'ue5' | 'unity' | 'godot' from a case-insensitive engine name; InputError otherwise."""
    key = engine.strip().lower() if isinstance(engine, str) else None
    if key not in ENGINES:
        raise InputError("engine", engine, "one of 'ue5', 'unity', 'godot' (case-insensitive)")
    return key


def engine_label(engine) -> str:
    """The engine as it appears in the zip name: UE5, Unity or Godot."""
    return ENGINES[engine_key(engine)]


def sanitize_name(text: str, fallback: str = "Asset") -> str:
    """A user-given name reduced to [A-Za-z0-9_], no leading digit, at most MAX_NAME_LENGTH characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", str(text or "")).strip("_")
    cleaned = re.sub(r"_+", "_", cleaned)[:MAX_NAME_LENGTH].rstrip("_")
    if not cleaned:
        cleaned = fallback
    if cleaned[0].isdigit():
        cleaned = ("A_" + cleaned)[:MAX_NAME_LENGTH]
    return cleaned


def check_name(name) -> str:
    """The asset name itself when it is already sanitised; InputError naming the problem otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise InputError("bundle.name", name, f"1 to {MAX_NAME_LENGTH} characters of [A-Za-z0-9_]")
    return name


def zip_name(name: str, engine) -> str:
    return f"{name}_{engine_label(engine)}.zip"


@dataclass(frozen=True)
class EngineNames:
    """Every name one engine preset uses for one asset.

    mesh_files[i]: the file holding LOD i, or None where LOD i rides in an earlier file (Unity, Godot);
    mesh_nodes[i]: the render object (FBX node / glTF node) of LOD i; hull_nodes(n): collision objects.
    textures: role -> file name, for the roles this engine ships.
    """

    engine: str
    name: str
    mesh_ext: str
    mesh_files: tuple
    mesh_nodes: tuple
    material: str
    textures: dict = field(default_factory=dict)
    import_script: str | None = None
    manifest: str = "manifest.json"
    preview: str = "preview.png"
    armature: str | None = None  # the armature / skin of a rigged character; None for static meshes

    def hull_nodes(self, count: int) -> list[str]:
        if self.engine == "ue5":
            # UE pairs UCX_<RenderMeshName>_NN with the render mesh of that name (one convex hull each).
            return [f"UCX_{self.mesh_nodes[0]}_{i:02d}" for i in range(count)]
        if self.engine == "unity":
            return [f"{self.name}_Collider_{i:02d}" for i in range(count)]
        # Godot 4 import hint: "-convcolonly" makes a StaticBody3D with a ConvexPolygonShape3D and drops
        # the mesh. Godot 4.2 reads the hints case-sensitively with "-" only; later versions also take
        # "_" and "$" in any case, so the lowercase "-" form works everywhere.
        return [f"{self.name}_Hull_{i:02d}-convcolonly" for i in range(count)]

    def file_list(self) -> list[str]:
        """Every file of the zip, in a stable order."""
        files = [f for f in self.mesh_files if f]
        files += list(self.textures.values())
        if self.import_script:
            files.append(self.import_script)
        files += [self.manifest, self.preview]
        return files


def engine_names(name: str, engine, lod_count: int = 3, *, use_fbx: bool = True, skeletal: bool = False,
                 rigged: bool = False) -> EngineNames:
    """The names of one asset under one engine preset.

    UE5: SM_<Name>.fbx (LOD0 + UCX_SM_<Name>_NN), SM_<Name>_LOD1.fbx, ..., T_<Name>_BC/N/ORM.png,
    import_<Name>.py. Unity: <Name>.fbx holding <Name>_LOD0.., <Name>_BaseMap/Normal/MetallicSmoothness/
    MaskMap.png. Godot: <Name>.glb with LOD0 and <Name>_Hull_NN-convcolonly nodes, textures embedded.
    use_fbx=False keeps the same base names with .glb (servers without bpy).
    rigged: a rigged character, one skinned LOD0 file and no hulls: UE5 SK_<Name>.fbx, Unity <Name>.fbx
    whose mesh is SK_<Name> (the skeletal FBX writer's name), Godot <Name>.glb; armature "Armature".
    """
    key = engine_key(engine)
    check_name(name)
    if not 1 <= int(lod_count) <= MAX_LODS:
        raise InputError("lod_count", lod_count, f"1 to {MAX_LODS}")
    ext = "fbx" if use_fbx and key != "godot" else "glb"
    if rigged:
        return _rigged_names(name, key, ext)
    if key == "ue5":
        base = f"{'SK' if skeletal else 'SM'}_{name}"
        files = tuple(f"{base}.{ext}" if i == 0 else f"{base}_LOD{i}.{ext}" for i in range(lod_count))
        return EngineNames(
            engine=key, name=name, mesh_ext=ext, mesh_files=files, mesh_nodes=(base,) * lod_count,
            material=f"M_{name}",
            textures={"base_color": f"T_{name}_BC.png", "normal": f"T_{name}_N.png", "orm": f"T_{name}_ORM.png"},
            import_script=f"import_{name}.py",
        )
    if key == "unity":
        files = (f"{name}.{ext}",) + (None,) * (lod_count - 1)
        return EngineNames(
            engine=key, name=name, mesh_ext=ext, mesh_files=files,
            mesh_nodes=tuple(f"{name}_LOD{i}" for i in range(lod_count)), material=f"M_{name}",
            textures={
                "base_color": f"{name}_BaseMap.png",
                "normal": f"{name}_Normal.png",
                "metallic_smoothness": f"{name}_MetallicSmoothness.png",
                "mask_map": f"{name}_MaskMap.png",
            },
        )
    # Godot 4 builds its own mesh LODs on import, so the GLB carries LOD0 only.
    return EngineNames(
        engine=key, name=name, mesh_ext="glb", mesh_files=(f"{name}.glb",) + (None,) * (lod_count - 1),
        mesh_nodes=(name,) + (None,) * (lod_count - 1), material=f"M_{name}", textures={},
    )


def _rigged_names(name: str, key: str, ext: str) -> EngineNames:
    base = engine_names(name, key, 1, use_fbx=ext == "fbx", skeletal=key == "ue5")
    if key == "unity":
        return EngineNames(engine=key, name=name, mesh_ext=ext, mesh_files=base.mesh_files,
                           mesh_nodes=(f"SK_{name}",), material=base.material, textures=base.textures,
                           armature="Armature")
    return EngineNames(engine=key, name=name, mesh_ext=ext, mesh_files=base.mesh_files, mesh_nodes=base.mesh_nodes,
                       material=base.material, textures=base.textures, import_script=base.import_script,
                       armature="Armature")

"""Mesh files in and out: glTF axes on disk, Blender axes (Z up, front toward -Y) in memory."""

from __future__ import annotations

import copy
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import trimesh

from .errors import InputError
from .meshcount import count_triangles

MESH_SUFFIXES = (".glb", ".gltf", ".ply", ".zip")
ZIP_MEMBER_SUFFIXES = (".obj", ".mtl", ".png", ".jpg", ".jpeg", ".bmp", ".tga", ".tif", ".tiff", ".webp")
MAX_ZIP_MEMBERS = 64


def _size(count: int) -> str:
    return f"{count / 2**20:.0f} MB" if count >= 2**20 else f"{count / 1024:.0f} KB"


def blender_to_gltf(vertices: np.ndarray) -> np.ndarray:
    """Z-up (Blender, UE) to Y-up (glTF): x stays, glTF y = z, glTF z = -y."""
    v = np.asarray(vertices, dtype=np.float64)
    return np.column_stack([v[:, 0], v[:, 2], -v[:, 1]])


def gltf_to_blender(vertices: np.ndarray) -> np.ndarray:
    v = np.asarray(vertices, dtype=np.float64)
    return np.column_stack([v[:, 0], -v[:, 2], v[:, 1]])


def srgb_to_linear(colors: np.ndarray) -> np.ndarray:
    """uint8 sRGB(A) to uint8 linear RGB(A); glTF stores COLOR_0 in linear light, alpha untouched."""
    out = np.array(colors, dtype=np.uint8, copy=True)
    c = out[:, :3].astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    out[:, :3] = np.clip(np.rint(linear * 255), 0, 255)
    return out


def linear_to_srgb(colors: np.ndarray) -> np.ndarray:
    out = np.array(colors, dtype=np.uint8, copy=True)
    c = out[:, :3].astype(np.float64) / 255.0
    srgb = np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)
    out[:, :3] = np.clip(np.rint(srgb * 255), 0, 255)
    return out


def _color_store(visual) -> tuple[object, str] | None:
    """Where a trimesh visual keeps per-vertex colours, if it has any."""
    if visual is None:
        return None
    if visual.kind == "vertex":
        return visual, "vertex_colors"
    if "color" in getattr(visual, "vertex_attributes", {}):
        return visual.vertex_attributes, "color"
    return None


def _convert_colors(visual, convert) -> None:
    store = _color_store(visual)
    if store is None:
        return
    holder, key = store
    if key == "vertex_colors":
        holder.vertex_colors = convert(np.asarray(holder.vertex_colors))
    else:
        holder[key] = convert(np.asarray(holder[key]))


def vertex_coloured(mesh: trimesh.Trimesh, colors: np.ndarray, *, metallic: float, roughness: float) -> None:
    """Attach vertex colours and a PBR material carrying the metallic and roughness factors."""
    material = trimesh.visual.material.PBRMaterial(
        name="surface", baseColorFactor=[255, 255, 255, 255], metallicFactor=float(metallic),
        roughnessFactor=float(roughness))
    visual = trimesh.visual.TextureVisuals(material=material)
    visual.vertex_attributes["color"] = np.asarray(colors, dtype=np.uint8)
    mesh.visual = visual
    count = len(mesh.vertices)
    mesh.vertex_attributes["_METALLIC"] = np.full(count, metallic, np.float32)
    mesh.vertex_attributes["_ROUGHNESS"] = np.full(count, roughness, np.float32)


def glb_bytes(mesh: trimesh.Trimesh) -> bytes:
    """GLB of a Blender-axes mesh, written in glTF axes."""
    # Trimesh.copy() drops the vertex colours of a TextureVisuals; build the copy by hand.
    out = trimesh.Trimesh(blender_to_gltf(mesh.vertices), mesh.faces, visual=copy.deepcopy(mesh.visual),
                          process=False)
    _convert_colors(out.visual, srgb_to_linear)  # in memory colours are sRGB; glTF wants linear
    for key, value in mesh.vertex_attributes.items():
        out.vertex_attributes[key] = value
    return out.export(file_type="glb")


def _check_mesh(mesh: trimesh.Trimesh, argument: str, name: str, max_faces: int) -> trimesh.Trimesh:
    if len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise InputError(argument, name, "a mesh with at least one triangle, but it is empty")
    if len(mesh.faces) > max_faces:
        raise InputError(argument, f"{name} ({len(mesh.faces)} triangles)",
                         f"a mesh of at most {max_faces} triangles; decimate it first")
    if not np.isfinite(mesh.vertices).all():
        raise InputError(argument, name, "finite vertex coordinates, but some are NaN or infinite")
    extent = float(np.ptp(mesh.vertices, axis=0).max())
    if extent <= 0:
        raise InputError(argument, name, "a mesh with a non-zero size")
    return mesh


def _as_single_mesh(loaded, argument: str, name: str) -> trimesh.Trimesh:
    if isinstance(loaded, trimesh.Scene):
        # A lone mesh at the origin is taken as it is: dump() would drop its vertex colour attribute.
        geometries = [g for g in loaded.geometry.values() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
        if len(geometries) == 1 and len(loaded.graph.nodes_geometry) == 1:
            transform, _ = loaded.graph[loaded.graph.nodes_geometry[0]]
            if np.allclose(transform, np.eye(4)):
                return geometries[0]
        meshes = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
        if not meshes:
            raise InputError(argument, name, "a file with at least one triangle mesh, but it has none")
        return meshes[0] if len(meshes) == 1 else trimesh.util.concatenate(meshes)
    if isinstance(loaded, trimesh.Trimesh):
        return loaded
    raise InputError(argument, name, f"a triangle mesh, but it holds a {type(loaded).__name__}")


def _extract_zip(path: Path, folder: Path, max_bytes: int, argument: str) -> Path:
    """Unpack an OBJ bundle safely and return the OBJ's path; refuse traversal, links and bombs."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise InputError(argument, path.name, "a zip holding an OBJ with its MTL and textures") from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise InputError(argument, path.name, f"a zip of at most {MAX_ZIP_MEMBERS} files")
        if sum(m.file_size for m in members) > max_bytes:
            raise InputError(argument, path.name, f"a zip that unpacks to at most {_size(max_bytes)}")
        objs = []
        for member in members:
            relative = PurePosixPath(member.filename)
            if relative.is_absolute() or ".." in relative.parts or "\\" in member.filename:
                raise InputError(argument, member.filename, "zip entries with relative paths inside the zip")
            if (member.external_attr >> 16) & 0o170000 == 0o120000:
                raise InputError(argument, member.filename, "regular files in the zip, not links")
            if relative.suffix.lower() not in ZIP_MEMBER_SUFFIXES:
                continue
            target = folder.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            if relative.suffix.lower() == ".obj":
                objs.append(target)
    if len(objs) != 1:
        raise InputError(argument, path.name, f"a zip holding exactly one .obj file, found {len(objs)}")
    return objs[0]


def read_glb(path: str | Path) -> trimesh.Trimesh:
    """One of our GLBs (glTF axes, linear COLOR_0) as one Blender-axes mesh with sRGB vertex colours."""
    scene = trimesh.load(path, file_type="glb", process=False)
    mesh = _as_single_mesh(scene, "file", Path(path).name)
    mesh.vertices = gltf_to_blender(mesh.vertices)
    _convert_colors(mesh.visual, linear_to_srgb)
    return mesh


def load_mesh_upload(path: str | Path, *, argument: str, up_axis: str, max_faces: int,
                     max_bytes: int) -> trimesh.Trimesh:
    """Load an uploaded GLB, glTF, PLY or OBJ zip into one Blender-axes mesh with its visuals."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise InputError(argument, path.name, "a .glb, .gltf, .ply, or a .zip holding an OBJ with its MTL")
    if not path.is_file() or path.stat().st_size == 0:
        raise InputError(argument, path.name, "a non-empty mesh file")
    if path.stat().st_size > max_bytes:
        raise InputError(argument, path.name, f"a file of at most {_size(max_bytes)}")
    if up_axis not in ("auto", "Y", "Z"):
        raise InputError("options.up_axis", up_axis, "'auto', 'Y' or 'Z'")
    with tempfile.TemporaryDirectory(prefix="o3f-upload-") as scratch:
        source = path
        if suffix == ".zip":
            source = _extract_zip(path, Path(scratch), max_bytes, argument)
        declared = count_triangles(source)
        if declared is not None and declared > max_faces:
            raise InputError(argument, f"{path.name} ({declared} triangles)",
                             f"a mesh of at most {max_faces} triangles; decimate it first")
        try:
            loaded = trimesh.load(source, process=False, maintain_order=True)
        except InputError:
            raise
        except Exception as exc:  # trimesh raises many types on corrupt files
            if "escapes resolver root" in str(exc):  # a glTF buffer or image URI that leaves the upload
                raise InputError(argument, path.name, "a mesh whose buffers and images lie inside the upload, "
                                 "but it refers to a file outside it") from exc
            raise InputError(argument, path.name, f"a readable mesh file ({type(exc).__name__}: {exc})") from exc
        mesh = _as_single_mesh(loaded, argument, path.name)
        # Texture images are lazily referenced; load them before the scratch folder goes away.
        material = getattr(mesh.visual, "material", None)
        for slot in ("image", "baseColorTexture", "metallicRoughnessTexture", "normalTexture",
                     "occlusionTexture", "emissiveTexture"):
            image = getattr(material, slot, None)
            if image is not None and hasattr(image, "load"):
                image.load()
    _check_mesh(mesh, argument, path.name, max_faces)
    if suffix in (".glb", ".gltf"):
        _convert_colors(mesh.visual, linear_to_srgb)
    y_up = up_axis == "Y" or (up_axis == "auto" and suffix != ".ply")
    if y_up:
        mesh.vertices = gltf_to_blender(mesh.vertices)
    return mesh

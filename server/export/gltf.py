"""GLB writer without bpy: named mesh nodes, UVs, normals and one PBR material with embedded PNG maps.

Written directly from numpy (no exporter in between) so node names, the shared ORM image and the axis
conversion are exactly what the engine presets need. glTF axes: metres, +Y up, front faces +Z;
Blender (x, y, z) -> glTF (x, z, -y), a proper rotation, so triangle winding is kept. glTF UVs have
their origin at the top left: (u, v_blender) -> (u, 1 - v). Tangents are left out on purpose: glTF
readers then generate MikkTSpace tangents, the basis the maps were baked in.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..images import save_png
from ..meshdata import MeshArrays

GLB_MAGIC = 0x46546C67  # "glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
FLOAT = 5126
UNSIGNED_BYTE = 5121
UNSIGNED_SHORT = 5123
UNSIGNED_INT = 5125
INTEGER_DTYPES = {UNSIGNED_BYTE: "<u1", UNSIGNED_SHORT: "<u2", UNSIGNED_INT: "<u4"}
LINEAR = 9729
LINEAR_MIPMAP_LINEAR = 9987
REPEAT = 10497


@dataclass
class GltfMaterial:
    """A metallic-roughness material. Images are uint8 arrays: base colour (H,W,3|4) sRGB, normal (H,W,3)
    OpenGL (+Y), orm (H,W,3) R occlusion, G roughness, B metallic: one image serves both the
    metallicRoughnessTexture (G, B) and the occlusionTexture (R) slots. A material without images still
    names the slot (the UE5 and Unity fallbacks ship their maps as separate PNGs)."""

    name: str
    base_color: np.ndarray | None = None
    normal: np.ndarray | None = None
    orm: np.ndarray | None = None
    alpha_mode: str = "OPAQUE"  # or "MASK" when base colour alpha is an opacity mask
    alpha_cutoff: float = 0.5


@dataclass
class GltfNode:
    """One node with its own mesh; material=False for collision hulls (positions and indices only)."""

    name: str
    mesh: MeshArrays
    material: bool = True


def blender_to_gltf(points: np.ndarray) -> np.ndarray:
    """Blender (x, y, z) -> glTF (x, z, -y)."""
    points = np.asarray(points, dtype=np.float64)
    return np.stack([points[:, 0], points[:, 2], -points[:, 1]], axis=1)


def _unit_normals(normals: np.ndarray, mesh: MeshArrays) -> np.ndarray:
    """Unit vectors; zero-length ones are replaced by the mean of their faces' normals (or +Z)."""
    normals = np.asarray(normals, dtype=np.float64)
    lengths = np.linalg.norm(normals, axis=1)
    bad = ~(lengths > 1e-12) | ~np.isfinite(lengths)
    if bad.any():
        tri = mesh.vertices[mesh.faces]
        face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        acc = np.zeros_like(normals)
        for k in range(3):
            np.add.at(acc, mesh.faces[:, k], face_n)
        normals = normals.copy()
        normals[bad] = acc[bad]
        normals[bad & ~(np.linalg.norm(normals, axis=1) > 1e-12)] = (0.0, 0.0, 1.0)
        lengths = np.linalg.norm(normals, axis=1)
    return normals / lengths[:, None]


class GlbBuilder:
    """Accumulates one GLB: the JSON document and its binary chunk (one buffer). Other writers (the skinned
    GLB in gltf_skin.py) add their own nodes and accessors through it."""

    def __init__(self):
        self.blob = bytearray()
        self.doc = {"asset": {"version": "2.0", "generator": "Open3DForge"}, "buffers": [],
                    "bufferViews": [], "accessors": []}

    def view(self, data: bytes, target: int | None = None) -> int:
        while len(self.blob) % 4:
            self.blob.append(0)
        view = {"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.blob.extend(data)
        self.doc["bufferViews"].append(view)
        return len(self.doc["bufferViews"]) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int | None, *, minmax: bool = False,
                 component: int | None = None) -> int:
        """One accessor over a new buffer view. `component` picks the integer type (UNSIGNED_BYTE,
        UNSIGNED_SHORT, UNSIGNED_INT); floats are always FLOAT."""
        if array.dtype.kind == "f":
            array = np.ascontiguousarray(array, dtype="<f4")
            component = FLOAT
        else:
            component = component or UNSIGNED_INT
            array = np.ascontiguousarray(array, dtype=INTEGER_DTYPES[component])
        accessor = {"bufferView": self.view(array.tobytes(), target), "componentType": component,
                    "count": int(array.shape[0]), "type": kind}
        if minmax:
            flat = array.reshape(array.shape[0], -1)
            accessor["min"] = [float(x) for x in flat.min(axis=0)]
            accessor["max"] = [float(x) for x in flat.max(axis=0)]
        self.doc["accessors"].append(accessor)
        return len(self.doc["accessors"]) - 1

    def material(self, material: GltfMaterial) -> int:
        """Add the one material (with its images, if any); returns its index."""
        doc = self.doc
        samplers = [{"magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR, "wrapS": REPEAT, "wrapT": REPEAT}]
        images, textures = [], []

        def texture(image: np.ndarray, name: str) -> int:
            images.append({"name": name, "mimeType": "image/png", "bufferView": self.view(save_png(image))})
            textures.append({"sampler": 0, "source": len(images) - 1, "name": name})
            return len(textures) - 1

        pbr = {"metallicFactor": 1.0, "roughnessFactor": 1.0}
        entry = {"name": material.name, "pbrMetallicRoughness": pbr, "doubleSided": False}
        if material.base_color is not None:
            pbr["baseColorTexture"] = {"index": texture(material.base_color, f"{material.name}_BaseColor")}
        if material.orm is not None:
            orm = texture(material.orm, f"{material.name}_ORM")
            pbr["metallicRoughnessTexture"] = {"index": orm}
            entry["occlusionTexture"] = {"index": orm, "strength": 1.0}
        else:
            pbr["metallicFactor"], pbr["roughnessFactor"] = 0.0, 0.5
        if material.normal is not None:
            entry["normalTexture"] = {"index": texture(material.normal, f"{material.name}_Normal"), "scale": 1.0}
        if material.alpha_mode == "MASK":
            entry["alphaMode"] = "MASK"
            entry["alphaCutoff"] = float(material.alpha_cutoff)
        if textures:  # glTF forbids empty arrays
            doc["samplers"], doc["images"], doc["textures"] = samplers, images, textures
        doc.setdefault("materials", []).append(entry)
        return len(doc["materials"]) - 1

    def mesh(self, name: str, mesh: MeshArrays, *, surface: bool, material: int | None,
             extra: dict[str, int] | None = None) -> int:
        """Add a mesh of one triangle primitive; surface=False writes positions and indices only (hulls).
        `extra`: more attributes (semantic -> accessor index), e.g. JOINTS_0/WEIGHTS_0. Returns its index."""
        _check_mesh(f"mesh {name!r}", mesh)
        attributes = {"POSITION": self.accessor(blender_to_gltf(mesh.vertices), "VEC3", ARRAY_BUFFER, minmax=True)}
        if surface:
            if mesh.normals is not None:
                normals = blender_to_gltf(_unit_normals(mesh.normals, mesh))
                attributes["NORMAL"] = self.accessor(normals, "VEC3", ARRAY_BUFFER)
            if mesh.uv is not None:
                uv = np.asarray(mesh.uv, dtype=np.float64)
                attributes["TEXCOORD_0"] = self.accessor(np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1), "VEC2",
                                                         ARRAY_BUFFER)
        attributes.update(extra or {})
        primitive = {"attributes": attributes, "mode": 4,
                     "indices": self.accessor(mesh.faces.reshape(-1), "SCALAR", ELEMENT_ARRAY_BUFFER)}
        if surface and material is not None:
            primitive["material"] = material
        self.doc.setdefault("meshes", []).append({"name": name, "primitives": [primitive]})
        return len(self.doc["meshes"]) - 1

    def node(self, entry: dict) -> int:
        self.doc.setdefault("nodes", []).append(entry)
        return len(self.doc["nodes"]) - 1

    def finish(self, scene_nodes: list[int]) -> bytes:
        """The GLB bytes: one scene holding `scene_nodes`."""
        doc = self.doc
        doc["scenes"] = [{"name": "Scene", "nodes": list(scene_nodes)}]
        doc["scene"] = 0
        while len(self.blob) % 4:
            self.blob.append(0)
        doc["buffers"] = [{"byteLength": len(self.blob)}]
        text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 4)
        total = 12 + 8 + len(text) + 8 + len(self.blob)
        out = bytearray(struct.pack("<III", GLB_MAGIC, 2, total))
        out += struct.pack("<II", len(text), CHUNK_JSON) + text
        out += struct.pack("<II", len(self.blob), CHUNK_BIN) + bytes(self.blob)
        return bytes(out)


def _check_mesh(label: str, mesh: MeshArrays) -> None:
    v, f = mesh.vertices, mesh.faces
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise InputError(label, f"vertices {v.shape}, faces {f.shape}", "(n,3) vertices and (m,3) triangles, n, m > 0")
    if f.min() < 0 or f.max() >= len(v):
        raise InputError(label, f"face indices {f.min()}..{f.max()} for {len(v)} vertices", "indices within range")
    if not np.isfinite(v).all():
        raise InputError(label, "non-finite vertex positions", "finite positions")


def build_glb(nodes: list[GltfNode], material: GltfMaterial | None) -> bytes:
    """The GLB bytes for these nodes (one scene, top-level nodes, one shared material)."""
    b = GlbBuilder()
    material_index = b.material(material) if material is not None and any(n.material for n in nodes) else None
    for node in nodes:
        mesh = b.mesh(node.name, node.mesh, surface=node.material, material=material_index)
        b.node({"name": node.name, "mesh": mesh})
    return b.finish(list(range(len(nodes))))


def write_glb(path: Path, nodes: list[GltfNode], material: GltfMaterial | None) -> Path:
    """Write a GLB file (see build_glb); returns its path."""
    path = Path(path)
    path.write_bytes(build_glb(nodes, material))
    return path


def read_glb_json(data: bytes) -> dict:
    """The JSON chunk of a GLB (for tests and checks)."""
    magic, version, total = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC or version != 2 or total != len(data):
        raise InputError("glb", f"magic {magic:#x} version {version} length {total}/{len(data)}", "a GLB 2.0 file")
    length, kind = struct.unpack_from("<II", data, 12)
    if kind != CHUNK_JSON:
        raise InputError("glb", f"first chunk {kind:#x}", "a JSON chunk first")
    return json.loads(data[20:20 + length])

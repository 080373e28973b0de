"""Triangle counts read from a mesh file's header or face lines, so an oversized upload is refused unparsed."""

from __future__ import annotations

import json
import struct
from pathlib import Path

GLB_MAGIC, GLB_JSON_CHUNK = b"glTF", 0x4E4F534A
TRIANGLES, TRIANGLE_STRIP, TRIANGLE_FAN = 4, 5, 6
_CHUNK = 1 << 20


def count_triangles(path: Path) -> int | None:
    """Triangles the file declares (an upper bound for polygons), or None when its kind is not counted here.

    OBJ: face lines, a polygon of n corners as n - 2 triangles. PLY: the header's face element (each face at
    least one triangle). GLB/glTF: every triangle primitive's index (or position) count, times the nodes that
    place its mesh. A file too damaged to count is left to the parser, which refuses it with its own reason.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".obj":
            return _obj_triangles(path)
        if suffix == ".ply":
            return _ply_faces(path)
        if suffix == ".glb":
            return _gltf_triangles(_glb_json(path))
        if suffix == ".gltf":
            return _gltf_triangles(json.loads(path.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
        return None
    return None


def _obj_triangles(path: Path) -> int:
    total = 0
    with open(path, "rb") as handle:
        for line in handle:
            if line.startswith((b"f ", b"f\t")):
                total += max(len(line.split()) - 3, 1)
    return total


def _ply_faces(path: Path) -> int | None:
    with open(path, "rb") as handle:
        for _ in range(200):  # a PLY header is a few dozen lines; stop at end_header
            line = handle.readline(_CHUNK).strip()
            if line == b"end_header" or not line:
                return None
            words = line.split()
            if len(words) == 3 and words[0] == b"element" and words[1] == b"face":
                return int(words[2])
    return None


def _glb_json(path: Path) -> dict:
    with open(path, "rb") as handle:
        magic, _version, _length = struct.unpack("<4sII", handle.read(12))
        if magic != GLB_MAGIC:
            raise ValueError("not a GLB")
        chunk_length, chunk_type = struct.unpack("<II", handle.read(8))
        if chunk_type != GLB_JSON_CHUNK or chunk_length > 64 * _CHUNK:
            raise ValueError("no JSON chunk first")
        return json.loads(handle.read(chunk_length))


def _gltf_triangles(document: dict) -> int:
    accessors = document.get("accessors", [])
    uses = [0] * len(document.get("meshes", []))
    for node in document.get("nodes", []):
        if isinstance(node.get("mesh"), int) and 0 <= node["mesh"] < len(uses):
            uses[node["mesh"]] += 1
    total = 0
    for mesh, placed in zip(document.get("meshes", []), uses):
        for primitive in mesh.get("primitives", []):
            mode = primitive.get("mode", TRIANGLES)
            if mode not in (TRIANGLES, TRIANGLE_STRIP, TRIANGLE_FAN):
                continue
            source = primitive["indices"] if "indices" in primitive else primitive["attributes"]["POSITION"]
            count = int(accessors[source]["count"])
            total += max(placed, 1) * (count // 3 if mode == TRIANGLES else max(count - 2, 0))
    return total

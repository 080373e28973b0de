"""Skinned GLB of a rigged mesh: bone nodes in their hierarchy with rest transforms, one skin, JOINTS/WEIGHTS.

Written on gltf.py's GlbBuilder. Each bone is a node whose rest frame is the one Blender gives the same
bone (local +Y from head to tail, local +Z leaning to the rig's `up`, as EditBone.align_roll sets it), in
glTF axes; joint j of the skin is bone j of the rig, so JOINTS_0 holds the rig's own bone indices. The
mesh node sits at the scene root without a transform (the glTF spec ignores a skinned mesh node's own
transform), and the skin's inverse bind matrices are the inverses of the bones' rest world matrices, so
the rest pose reproduces the vertices exactly. More than four influences go into JOINTS_1/WEIGHTS_1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..meshdata import MeshArrays
from .gltf import ARRAY_BUFFER, UNSIGNED_BYTE, UNSIGNED_SHORT, GlbBuilder, GltfMaterial

# Blender (x, y, z) -> glTF (x, z, -y), as a matrix acting on column vectors.
BLENDER_TO_GLTF = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
MAX_JOINT_SETS = 2  # JOINTS_0/1: eight influences, the most RigOptions allows


def bone_rest_matrices(heads: np.ndarray, tails: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(b, 4, 4) rest world matrices in Blender axes: columns X, Y (head to tail), Z, head.

    Z is `up` with its component along Y removed, as Blender's align_roll does; X = Y x Z.
    """
    heads, tails, up = (np.asarray(a, dtype=np.float64) for a in (heads, tails, up))
    y = tails - heads
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    z = up - np.sum(up * y, axis=1, keepdims=True) * y
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    x = np.cross(y, z)
    out = np.tile(np.eye(4), (len(heads), 1, 1))
    out[:, :3, 0], out[:, :3, 1], out[:, :3, 2], out[:, :3, 3] = x, y, z, heads
    return out


def gltf_rest_matrices(rig) -> np.ndarray:
    """(b, 4, 4) bone rest world matrices in glTF axes (the same frames, the world turned Y up)."""
    convert = np.eye(4)
    convert[:3, :3] = BLENDER_TO_GLTF
    return convert @ bone_rest_matrices(rig.heads, rig.tails, rig.up)


def check_rig(rig, vertex_count: int, argument: str = "rig") -> None:
    """InputError unless `rig` is a RigResult-shaped skeleton and skin for a mesh of vertex_count vertices."""
    needed = ("bone_names", "parents", "heads", "tails", "up", "deform", "influence_bones", "influence_weights")
    missing = [name for name in needed if not hasattr(rig, name)]
    if missing:
        raise InputError(argument, type(rig).__name__, f"a server.rigging.RigResult (missing {missing})")
    names, parents = list(rig.bone_names), list(rig.parents)
    count = len(names)
    if count == 0 or len(parents) != count or len(set(names)) != count:
        raise InputError(f"{argument}.bone_names", names[:8], "unique bone names, one parent index each")
    for label in ("heads", "tails", "up"):
        value = np.asarray(getattr(rig, label))
        if value.shape != (count, 3) or not np.isfinite(value).all():
            raise InputError(f"{argument}.{label}", value.shape, f"finite values of shape ({count}, 3)")
    lengths = np.linalg.norm(np.asarray(rig.tails) - np.asarray(rig.heads), axis=1)
    if (lengths <= 1e-9).any():
        raise InputError(f"{argument}.tails", names[int(np.argmin(lengths))], "every bone longer than zero")
    roots = [i for i, p in enumerate(parents) if p < 0]
    if len(roots) != 1 or any(not (p < i) for i, p in enumerate(parents) if p >= 0):
        raise InputError(f"{argument}.parents", parents[:8], "one root (-1) and every parent listed before its child")
    bones, weights = np.asarray(rig.influence_bones), np.asarray(rig.influence_weights)
    if bones.ndim != 2 or bones.shape != weights.shape or len(bones) != vertex_count:
        raise InputError(f"{argument}.influence_bones", bones.shape,
                         f"({vertex_count}, k) bone indices and weights of the same shape: one row per mesh vertex")
    if bones.shape[1] > 4 * MAX_JOINT_SETS:
        raise InputError(f"{argument}.influence_bones", bones.shape, f"at most {4 * MAX_JOINT_SETS} influences a vertex")
    if bones.min() < -1 or bones.max() >= count:
        raise InputError(f"{argument}.influence_bones", f"{bones.min()}..{bones.max()}", f"-1 (empty) or 0..{count - 1}")
    if not np.isfinite(weights).all() or weights.min() < 0:
        raise InputError(f"{argument}.influence_weights", "negative or non-finite", "weights >= 0")
    sums = np.where(bones >= 0, weights, 0.0).sum(axis=1)
    if np.abs(sums - 1.0).max() > 1e-4:
        row = int(np.argmax(np.abs(sums - 1.0)))
        raise InputError(f"{argument}.influence_weights", f"row {row} sums to {sums[row]:.6g}", "every row summing to 1")


def skin_attributes(bones: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4*s) joint indices and float32 weights for s JOINTS_n/WEIGHTS_n sets.

    Empty or zero-weight slots get joint 0 and weight 0 (the spec asks unused joints to be 0); each row's
    float32 weights are rescaled so they sum to 1 as closely as float32 allows.
    """
    bones = np.asarray(bones)
    weights = np.where(bones >= 0, np.asarray(weights, dtype=np.float64), 0.0)
    sets = max(1, -(-bones.shape[1] // 4))
    width = 4 * sets
    joints = np.zeros((len(bones), width), dtype=np.int64)
    out = np.zeros((len(bones), width), dtype=np.float64)
    used = weights > 0
    joints[:, : bones.shape[1]] = np.where(used, bones, 0)
    out[:, : bones.shape[1]] = weights
    out /= out.sum(axis=1, keepdims=True)
    out32 = out.astype(np.float32)
    # float32 rounding can leave the sum a few ulps off 1: the largest weight takes up the rest.
    largest = np.argmax(out32, axis=1)
    rows = np.arange(len(out32))
    rest = out32.sum(axis=1, dtype=np.float64) - out32[rows, largest].astype(np.float64)
    out32[rows, largest] = (1.0 - rest).astype(np.float32)
    return joints, out32


def build_skinned_glb(name: str, mesh: MeshArrays, rig, material: GltfMaterial | None) -> bytes:
    """The GLB bytes: the rig's bones as a node hierarchy, the mesh `name` skinned to them, one material.

    `rig` is a server.rigging.RigResult made for `mesh` (same vertices, Blender axes).
    """
    check_rig(rig, len(mesh.vertices))
    names, parents = list(rig.bone_names), [int(p) for p in rig.parents]
    world = gltf_rest_matrices(rig)
    b = GlbBuilder()
    material_index = b.material(material) if material is not None else None
    joints, weights = skin_attributes(rig.influence_bones, rig.influence_weights)
    component = UNSIGNED_BYTE if len(names) <= 256 else UNSIGNED_SHORT
    extra = {}
    for k in range(joints.shape[1] // 4):
        extra[f"JOINTS_{k}"] = b.accessor(joints[:, 4 * k: 4 * k + 4], "VEC4", ARRAY_BUFFER, component=component)
        extra[f"WEIGHTS_{k}"] = b.accessor(weights[:, 4 * k: 4 * k + 4], "VEC4", ARRAY_BUFFER)
    mesh_index = b.mesh(name, mesh, surface=True, material=material_index, extra=extra)

    from scipy.spatial.transform import Rotation

    children: dict[int, list[int]] = {}
    for i, parent in enumerate(parents):
        if parent >= 0:
            children.setdefault(parent, []).append(i)
    for i, bone in enumerate(names):
        local = world[i] if parents[i] < 0 else np.linalg.solve(world[parents[i]], world[i])
        quaternion = Rotation.from_matrix(local[:3, :3]).as_quat()  # x, y, z, w: glTF's order
        entry = {"name": bone, "translation": [float(v) for v in local[:3, 3]],
                 "rotation": [float(v) for v in quaternion / np.linalg.norm(quaternion)]}
        if i in children:
            entry["children"] = children[i]
        b.node(entry)
    inverse_bind = np.linalg.inv(world)
    # glTF matrices are column-major: a row-major (4, 4) array transposed, then flattened.
    ibm = b.accessor(np.ascontiguousarray(inverse_bind.transpose(0, 2, 1)).reshape(len(names), 16), "MAT4", None)
    root = parents.index(-1)
    b.doc["skins"] = [{"name": "Armature", "joints": list(range(len(names))), "skeleton": root,
                       "inverseBindMatrices": ibm}]
    mesh_node = b.node({"name": name, "mesh": mesh_index, "skin": 0})
    return b.finish([root, mesh_node])


def write_skinned_glb(path: Path, name: str, mesh: MeshArrays, rig, material: GltfMaterial | None) -> Path:
    """Write build_skinned_glb's bytes to `path`; returns it."""
    path = Path(path)
    path.write_bytes(build_skinned_glb(name, mesh, rig, material))
    return path

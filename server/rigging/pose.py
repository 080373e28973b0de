"""Posing a rigged mesh: rotations of bones about their joints, passed down the hierarchy, then linear
blend skinning with the rig's weights (what UE5 and Blender's Armature modifier compute)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .rig import RigResult


def _rotation(value) -> np.ndarray:
    """A 3x3 rotation matrix from a matrix or a rotation vector (axis times angle in radians)."""
    value = np.asarray(value, dtype=np.float64)
    if value.shape == (3, 3):
        return value
    if value.shape == (3,):
        from scipy.spatial.transform import Rotation

        return Rotation.from_rotvec(value).as_matrix()
    raise ValueError(f"shape {value.shape}")


def bone_transforms(rig: RigResult, rotations: dict) -> np.ndarray:
    """(bones, 4, 4) world transforms from the rest pose to the pose where each named bone turns by its
    rotation (world axes, about its own joint) and carries its children with it."""
    index = {name: i for i, name in enumerate(rig.bone_names)}
    local = np.tile(np.eye(4), (len(rig.bone_names), 1, 1))
    for name, value in rotations.items():
        if name not in index:
            raise InputError("rotations", name, "names of this rig's bones")
        try:
            turn = _rotation(value)
        except ValueError:
            raise InputError(f"rotations.{name}", value, "a 3x3 rotation matrix or a rotation vector") from None
        head = rig.heads[index[name]]
        local[index[name], :3, :3] = turn
        local[index[name], :3, 3] = head - turn @ head
    world = np.empty_like(local)
    for i, parent in enumerate(rig.parents):   # parents come before their children
        world[i] = local[i] if parent < 0 else world[parent] @ local[i]
    return world


def pose_vertices(rig: RigResult, vertices: np.ndarray, rotations: dict) -> np.ndarray:
    """The mesh's vertices (the ones the rig was made for) in the pose `rotations` gives (see bone_transforms)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    if len(vertices) != len(rig.influence_bones):
        raise InputError("vertices", f"{len(vertices)} vertices", f"the rig's {len(rig.influence_bones)} vertices")
    world = bone_transforms(rig, rotations)
    posed = np.zeros_like(vertices)
    for slot in range(rig.influence_bones.shape[1]):
        bone = rig.influence_bones[:, slot]
        used = bone >= 0
        moved = np.einsum("nij,nj->ni", world[bone[used], :3, :3], vertices[used]) + world[bone[used], :3, 3]
        posed[used] += rig.influence_weights[used, slot, None] * moved
    return posed

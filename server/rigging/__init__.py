"""Rigging: a UE5 Mannequin skeleton and bone-heat skin weights for a humanoid mesh (the rig stage)."""

from .pose import bone_transforms, pose_vertices
from .rig import RigOptions, RigResult, rig_mesh, rig_options

__all__ = ["RigOptions", "RigResult", "bone_transforms", "pose_vertices", "rig_mesh", "rig_options"]

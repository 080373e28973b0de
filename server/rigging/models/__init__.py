"""Rig model adapters: Make-It-Animatable (humanoids, UE5 Mannequin names) and UniRig (any creature, its own names)."""

from .registry import METHODS, check_method, method_named, quota_estimate, report, rig_with

__all__ = ["METHODS", "check_method", "method_named", "quota_estimate", "report", "rig_with"]

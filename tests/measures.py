"""How far a result is from its truth: angles between directions, overlap of masks."""

from __future__ import annotations

import numpy as np


def angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The angle between each pair of vectors along the last axis, in degrees (zero vectors count as any)."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.degrees(np.arccos(np.clip(np.einsum("...i,...i->...", a, b), -1, 1)))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (0 when both are empty)."""
    return float((a & b).sum() / max(1, (a | b).sum()))

"""Pivot and real-world size: move the mesh so its pivot is the origin, scale it to a height in metres."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

from ..errors import InputError
from ..meshdata import MeshArrays

PIVOTS = ("bottom_centre", "centre", "custom")

# Typical heights in metres (Z extent of the asset as it stands).
HEIGHT_PRESETS: dict[str, float] = {
    "human": 1.80,
    "child": 1.20,
    "door": 2.10,
    "chair": 0.90,
    "table": 0.75,
    "desk": 0.75,
    "crate": 0.60,
    "barrel": 0.90,
    "bottle": 0.30,
    "cup": 0.10,
    "sword": 1.00,
    "rock": 0.50,
    "bush": 1.00,
    "fence": 1.20,
    "car": 1.50,
    "lamp_post": 4.50,
    "tree": 6.00,
    "house": 7.00,
}
MAX_HEIGHT_CM = 100_000.0  # 1 km; anything taller is a typo
_NUMBER_WITH_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(cm|m)?\s*$")


def place(mesh: MeshArrays, *, pivot: str = "bottom_centre", custom_pivot=None) -> MeshArrays:
    """A copy of mesh translated so its pivot point lands on the origin.

    pivot: "bottom_centre" (bounding-box centre in x and y, lowest z), "centre" (bounding-box centre) or
    "custom" (custom_pivot, a point (x, y, z) in metres in the mesh's own coordinates). Vertices move;
    normals, UVs and colours are unchanged. info["placement"] is updated as described in placement_record.
    """
    _check_mesh(mesh)
    if pivot not in PIVOTS:
        raise InputError("pivot", pivot, f"one of {', '.join(PIVOTS)}")
    if pivot != "custom" and custom_pivot is not None:
        raise InputError("custom_pivot", custom_pivot, "None unless pivot='custom'")
    low, high = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    if pivot == "bottom_centre":
        point = np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2]])
    elif pivot == "centre":
        point = (low + high) / 2
    else:
        point = _point(custom_pivot)
    return _transformed(mesh, 1.0, -point, pivot=pivot)


def scale_to_height(mesh: MeshArrays, height_m: float) -> MeshArrays:
    """A copy of mesh scaled uniformly about the origin so its Z extent is height_m metres.

    Scaling about the origin keeps a bottom-centre pivot where it is, so call place() first. Normals
    stay as they are (a uniform scale does not turn them). info["placement"] is updated as described in
    placement_record, with "height_m" added.
    """
    _check_mesh(mesh)
    if isinstance(height_m, bool) or not isinstance(height_m, (int, float, np.integer, np.floating)) \
            or not math.isfinite(height_m) or not 0 < height_m <= MAX_HEIGHT_CM / 100:
        raise InputError("height_m", height_m, f"a height in metres > 0 and <= {MAX_HEIGHT_CM / 100:g}")
    extent = float(np.ptp(mesh.vertices[:, 2]))
    if extent <= 0:
        raise InputError("mesh", "a mesh with zero height (flat in Z)", "a mesh with a Z extent to scale")
    return _transformed(mesh, float(height_m) / extent, np.zeros(3), height_m=float(height_m))


def placement_record(mesh: MeshArrays) -> dict:
    """The placement so far: {"scale": s, "translation": [x, y, z], ...} with vertex = s * original + t.

    "original" is the mesh before its first place() or scale_to_height(); "pivot" and "height_m" say
    what was asked. Use apply_placement to give LODs, hulls or the high poly the same transform.
    """
    record = {"pivot": None, "scale": 1.0, "translation": [0.0, 0.0, 0.0]}
    record.update(mesh.info.get("placement", {}))
    return record


def apply_placement(mesh: MeshArrays, record: dict) -> MeshArrays:
    """A copy of mesh with the transform of a placement record applied (vertex = s * vertex + t)."""
    _check_mesh(mesh)
    scale = record.get("scale") if isinstance(record, dict) else None
    translation = np.asarray(record.get("translation", ()) if isinstance(record, dict) else (), np.float64)
    if not isinstance(scale, (int, float)) or not scale > 0 or translation.shape != (3,):
        raise InputError("record", record, "a placement record {'scale': s > 0, 'translation': [x, y, z]}")
    return _transformed(mesh, float(scale), translation, **{k: v for k, v in record.items()
                                                           if k not in ("scale", "translation")})


def resolve_height(value) -> float:
    """Height in metres from a preset name ("human", "door", ...), a number of centimetres, or "180cm"/"1.8m".

    A bare number is always centimetres (the API's height_cm); write "1.8m" to give metres.
    """
    if isinstance(value, str):
        key = value.strip().lower().replace(" ", "_").replace("-", "_")
        if key in HEIGHT_PRESETS:
            return HEIGHT_PRESETS[key]
        match = _NUMBER_WITH_UNIT.match(value)
        if not match:
            raise InputError("height", value, "a preset (" + ", ".join(HEIGHT_PRESETS)
                             + "), a number of centimetres, or a string like '180cm' or '1.8m'")
        number, unit = float(match.group(1)), match.group(2) or "cm"
        centimetres = number * 100 if unit == "m" else number
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        centimetres = float(value)
    else:
        raise InputError("height", value, "a preset name or a number of centimetres")
    if not math.isfinite(centimetres) or not 0 < centimetres <= MAX_HEIGHT_CM:
        raise InputError("height", value, f"a height > 0 cm and <= {MAX_HEIGHT_CM:g} cm")
    return centimetres / 100.0


def _transformed(mesh: MeshArrays, scale: float, translation: np.ndarray, **notes) -> MeshArrays:
    """Copy with vertex -> scale * vertex + translation, composed into info["placement"]."""
    before = placement_record(mesh)
    record = {**before, **notes}
    record["scale"] = float(before["scale"]) * scale
    record["translation"] = (np.asarray(before["translation"]) * scale + translation).tolist()
    info = dict(mesh.info)
    info["placement"] = record
    return dataclasses.replace(mesh, vertices=mesh.vertices * scale + translation, faces=mesh.faces.copy(),
                               info=info, colors=None if mesh.colors is None else mesh.colors.copy(),
                               uv=None if mesh.uv is None else mesh.uv.copy(),
                               normals=None if mesh.normals is None else mesh.normals.copy())


def _point(custom_pivot) -> np.ndarray:
    try:
        point = np.asarray(custom_pivot, dtype=np.float64)
    except (TypeError, ValueError):
        point = None
    if point is None or point.shape != (3,) or not np.isfinite(point).all():
        raise InputError("custom_pivot", custom_pivot, "a point (x, y, z) in metres when pivot='custom'")
    return point


def _check_mesh(mesh) -> None:
    if not isinstance(mesh, MeshArrays) or len(mesh.vertices) == 0:
        raise InputError("mesh", mesh if not isinstance(mesh, MeshArrays) else "no vertices",
                         "a MeshArrays with vertices")
    if not np.isfinite(mesh.vertices).all():
        raise InputError("mesh", "non-finite vertex coordinates", "finite vertex coordinates")

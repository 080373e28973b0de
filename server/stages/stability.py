"""Stands under gravity: drop the asset on a plane in MuJoCo and measure how far its up axis tilts."""

from __future__ import annotations

import math
import time

import numpy as np
import trimesh

from ..errors import ForgeError, InputError
from ..meshdata import MeshArrays

TILT_LIMIT_DEG = 20.0  # the DSO paper's criterion for "unstable"
PERTURB_DEG = 2.0
DENSITY = 1000.0  # kg/m³; only ratios matter for standing or falling
TIMESTEP = 0.002
# Each drop is its own free body; bodies touch the ground but not each other (contype/conaffinity bits).
_GROUND_BITS = 'contype="1" conaffinity="2"'
_BODY_BITS = 'contype="2" conaffinity="1"'


def stands_upright(mesh: MeshArrays, hulls: list[MeshArrays] | None = None, *, seconds: float = 3.0,
                   tilt_limit_deg: float = TILT_LIMIT_DEG, perturb_deg: float = PERTURB_DEG) -> dict:
    """Whether the asset, dropped in its authored pose onto a plane at its feet, stays upright.

    MuJoCo collides each mesh geom by its convex hull, so the collision shapes are the given hulls (the
    asset's UCX decomposition, as the engine will see it) or, without hulls, the mesh's convex hull.
    On flat ground both touch at the same points (the lowest points of a body are always on its convex
    hull). Mass and inertia come from the render mesh when it is a closed volume, else from the hulls,
    at uniform density. Five drops run side by side: the authored pose and the pose tilted by
    perturb_deg about +x, -x, +y and -y, so a shape balanced on a knife edge is caught.
    Returns {"stable": every drop ends within tilt_limit_deg of upright, "tilt_deg": the largest
    final tilt, "max_tilt_deg": the largest tilt seen at any time, "settled": every drop at rest at
    the end, "drops": [{"perturb_axis", "tilt_deg", "settled"}, ...], "collision": "hulls" |
    "convex_hull", "inertia_from": "mesh" | "hulls" | "convex_hull", "seconds": simulated time,
    "wall_s": time taken}.
    """
    _check_mesh(mesh, "mesh")
    for name, value, low in (("seconds", seconds, 0.1), ("tilt_limit_deg", tilt_limit_deg, 0.1),
                             ("perturb_deg", perturb_deg, 0.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= 180:
            raise InputError(name, value, f"a number from {low:g} to 180")
    if perturb_deg >= tilt_limit_deg:
        raise InputError("perturb_deg", perturb_deg, f"less than tilt_limit_deg={tilt_limit_deg:g}")
    started = time.perf_counter()
    shapes, collision = _collision_shapes(mesh, hulls)
    mass, com, inertia, inertia_from = mass_properties(mesh, shapes if collision == "hulls" else None)

    axes = [None, (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0)] if perturb_deg > 0 else [None]
    tilts = [np.eye(3) if axis is None else _rotation(axis, perturb_deg) for axis in axes]
    points = np.concatenate([s.vertices for s in shapes])
    size = float(np.ptp(points, axis=0).max())
    clearance = 0.002 * size
    bodies = []
    for rotation in tilts:
        lowest = float((points @ rotation.T)[:, 2].min())
        bodies.append((rotation, np.array([0.0, 0.0, clearance - lowest])))
    xml = _model_xml(shapes, bodies, mass, com, inertia)
    final, peak, settled = _simulate(xml, len(bodies), seconds, size)

    drops = [{"perturb_axis": None if axis is None else list(axis), "tilt_deg": round(float(t), 3),
              "settled": bool(s)} for axis, t, s in zip(axes, final, settled)]
    return {"stable": bool(max(final) <= tilt_limit_deg), "tilt_deg": round(float(max(final)), 3),
            "max_tilt_deg": round(float(max(peak)), 3), "settled": bool(all(settled)), "drops": drops,
            "tilt_limit_deg": float(tilt_limit_deg), "collision": collision, "inertia_from": inertia_from,
            "mass_kg": round(mass, 6), "seconds": float(seconds),
            "wall_s": round(time.perf_counter() - started, 3)}


def most_stable_pose(mesh: MeshArrays, hulls: list[MeshArrays] | None = None, *, max_candidates: int = 6,
                     seconds: float = 3.0, tilt_limit_deg: float = TILT_LIMIT_DEG) -> tuple[np.ndarray, dict]:
    """The rotation (3x3, applied as v' = R v) that rests the asset in its most probable stable pose.

    Candidates are trimesh's quasi-static resting faces of the convex hull, most probable first
    (compute_stable_poses); each is checked with stands_upright and the first that stays up wins. R is
    the smallest rotation that turns the resting face's normal to -Z (no spin about Z is added). Use it
    when stands_upright says the authored pose falls over; apply R to the mesh and hulls, then place().
    report: {"stable": a candidate stood, "chosen": its index or None, "candidates": [{"probability",
    "normal", "stable", "tilt_deg"}, ...]}. With no stable candidate R is the most probable one's.
    """
    _check_mesh(mesh, "mesh")
    if isinstance(max_candidates, bool) or not isinstance(max_candidates, int) or max_candidates < 1:
        raise InputError("max_candidates", max_candidates, "a whole number >= 1")
    shapes, collision = _collision_shapes(mesh, hulls)
    _, com, _, _ = mass_properties(mesh, shapes if collision == "hulls" else None)
    hull = trimesh.convex.convex_hull(np.concatenate([s.vertices for s in shapes]))
    transforms, probabilities = trimesh.poses.compute_stable_poses(hull, center_mass=com)
    if len(transforms) == 0:
        raise ForgeError("no resting pose found for the mesh (is it flat?)")

    candidates, chosen, rotations = [], None, []
    for transform, probability in list(zip(transforms, probabilities))[:max_candidates]:
        # compute_stable_poses puts the resting face's outward normal on -Z: its third row is -normal.
        normal = -np.asarray(transform[2, :3])
        rotation = trimesh.geometry.align_vectors(normal, [0.0, 0.0, -1.0])[:3, :3]
        rotations.append(rotation)
        turned = [_rotated(h, rotation) for h in hulls] if hulls else None
        result = stands_upright(_rotated(mesh, rotation), turned, seconds=seconds,
                                tilt_limit_deg=tilt_limit_deg)
        candidates.append({"probability": round(float(probability), 4),
                           "normal": [round(float(n), 4) for n in normal], "stable": result["stable"],
                           "tilt_deg": result["tilt_deg"]})
        if result["stable"]:
            chosen = len(candidates) - 1
            break
    rotation = rotations[chosen if chosen is not None else 0]
    return rotation, {"stable": chosen is not None, "chosen": chosen, "candidates": candidates}


def mass_properties(mesh: MeshArrays, hulls: list[MeshArrays] | None = None) -> tuple[float, np.ndarray,
                                                                                     np.ndarray, str]:
    """(mass kg, centre of mass, 3x3 inertia about it, source) at uniform density.

    The render mesh when it encloses a volume (welded, watertight, consistent winding); else the
    hulls' union (overlaps counted twice); else the mesh's convex hull.
    """
    welded = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    welded.merge_vertices(merge_tex=True, merge_norm=True)
    source = welded
    name = "mesh"
    if not welded.is_volume:
        if hulls:
            source = trimesh.util.concatenate([trimesh.Trimesh(h.vertices, h.faces) for h in hulls])
            name = "hulls"
        else:
            source = trimesh.convex.convex_hull(welded.vertices)
            name = "convex_hull"
    source.density = DENSITY
    props = source.mass_properties
    if not props.mass > 0:
        raise ForgeError("the mesh encloses no volume, so it has no mass to stand on its own")
    return float(props.mass), np.asarray(props.center_mass), np.asarray(props.inertia), name


def _collision_shapes(mesh: MeshArrays, hulls) -> tuple[list[MeshArrays], str]:
    if hulls:
        if not isinstance(hulls, (list, tuple)) or not all(isinstance(h, MeshArrays) for h in hulls):
            raise InputError("hulls", hulls, "None or a list of MeshArrays (convex hulls)")
        for i, h in enumerate(hulls):
            _check_mesh(h, f"hulls[{i}]")
        return list(hulls), "hulls"
    try:
        hull = trimesh.convex.convex_hull(mesh.vertices)
    except Exception:  # qhull fails on flat point sets
        raise ForgeError("the mesh is flat (no volume), so it cannot stand") from None
    return [MeshArrays(hull.vertices, hull.faces)], "convex_hull"


def _model_xml(shapes: list[MeshArrays], bodies: list, mass: float, com: np.ndarray,
               inertia: np.ndarray) -> str:
    """MJCF with inline mesh assets (no files): a ground plane and one free body per drop."""
    assets = "\n".join(f'<mesh name="h{i}" vertex="{_numbers(s.vertices)}" face="{_numbers(s.faces)}"/>'
                       for i, s in enumerate(shapes))
    geoms = "\n".join(f'<geom type="mesh" mesh="h{i}" {_BODY_BITS}/>' for i in range(len(shapes)))
    full = [inertia[0, 0], inertia[1, 1], inertia[2, 2], inertia[0, 1], inertia[0, 2], inertia[1, 2]]
    inertial = f'<inertial pos="{_numbers(com)}" mass="{mass!r}" fullinertia="{_numbers(full)}"/>'
    body_xml = []
    for i, (rotation, position) in enumerate(bodies):
        quat = _quaternion(rotation)
        body_xml.append(f'<body name="drop{i}" pos="{_numbers(position)}" quat="{_numbers(quat)}">'
                        f'<freejoint/>{inertial}{geoms}</body>')
    return f"""<mujoco model="stands_upright">
  <compiler balanceinertia="true" boundmass="1e-9" boundinertia="1e-12"/>
  <option timestep="{TIMESTEP}" gravity="0 0 -9.81" integrator="implicitfast"/>
  <asset>{assets}</asset>
  <worldbody>
    <geom name="ground" type="plane" size="0 0 1" {_GROUND_BITS}/>
    {''.join(body_xml)}
  </worldbody>
</mujoco>"""


def _simulate(xml: str, count: int, seconds: float, size: float) -> tuple[list, list, list]:
    """Final tilt, peak tilt (degrees) and whether at rest, per body."""
    try:
        import mujoco
    except ImportError:
        raise ForgeError("the stands-under-gravity check needs MuJoCo: pip install mujoco") from None

    try:
        model = mujoco.MjModel.from_xml_string(xml)
    except ValueError as exc:
        raise ForgeError(f"MuJoCo could not build the stability model: {exc}") from None
    data = mujoco.MjData(model)
    body_ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"drop{i}") for i in range(count)]
    peak = np.zeros(count)
    steps = int(round(seconds / model.opt.timestep))
    for step in range(steps):
        mujoco.mj_step(model, data)
        if step % 10 == 0:
            peak = np.maximum(peak, _tilts(data, body_ids))
    final = _tilts(data, body_ids)
    velocity = data.qvel.reshape(count, 6)
    # qvel of a free joint: linear velocity (world) then angular velocity (body frame)
    linear = np.linalg.norm(velocity[:, :3], axis=1)
    angular = np.linalg.norm(velocity[:, 3:], axis=1)
    settled = (linear < 0.01 * max(size, 0.1)) & (angular < 0.05)
    return final.tolist(), np.maximum(peak, final).tolist(), settled.tolist()


def _tilts(data, body_ids: list[int]) -> np.ndarray:
    """Angle between each body's local +Z and world +Z, in degrees."""
    up_z = data.xmat[body_ids].reshape(-1, 3, 3)[:, 2, 2]
    return np.degrees(np.arccos(np.clip(up_z, -1.0, 1.0)))


def _rotation(axis, degrees: float) -> np.ndarray:
    return trimesh.transformations.rotation_matrix(math.radians(degrees), axis)[:3, :3]


def _quaternion(rotation: np.ndarray) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    return trimesh.transformations.quaternion_from_matrix(matrix)  # (w, x, y, z), MuJoCo's order


def _rotated(mesh: MeshArrays, rotation: np.ndarray) -> MeshArrays:
    normals = None if mesh.normals is None else mesh.normals @ rotation.T
    return MeshArrays(mesh.vertices @ rotation.T, mesh.faces.copy(), colors=mesh.colors, uv=mesh.uv,
                      normals=normals, info=dict(mesh.info))


def _numbers(values) -> str:
    return " ".join(repr(float(v)) if isinstance(v, (float, np.floating)) else str(int(v))
                    for v in np.asarray(values).reshape(-1))


def _check_mesh(mesh, argument: str) -> None:
    if not isinstance(mesh, MeshArrays) or mesh.face_count == 0:
        raise InputError(argument, mesh if not isinstance(mesh, MeshArrays) else "0 faces",
                         "a MeshArrays with faces")
    if not np.isfinite(mesh.vertices).all():
        raise InputError(argument, "non-finite vertex coordinates", "finite vertex coordinates")

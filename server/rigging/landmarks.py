"""Body landmarks of a standing humanoid (T- or A-pose, Z up, facing -Y) from slices of its voxel solid.

Each slice (a layer of the voxel grid) is split into connected components; following one component
from slice to slice traces one body part:

- legs: horizontal slices from the soles up; the two feet are the two parts that touch the ground, and
  the crotch is the first slice where the two legs' components become one (thighs that touch below it
  are followed as the two lobes of a pinched section); the hips sit a thigh's radius above the crotch,
  the ankles just above where the feet reach forward;
- arms: vertical slices across X from each hand's outermost point inwards, until the arm's component
  joins the torso (the armpit); the shoulder sits an arm's radius outside it, or at the kink where a
  shoulder girdle traced with the arm turns into it;
- neck and head: horizontal slices from the crown down; the neck is the narrowest slice above the
  shoulders, the head's middle the peak of its sections' areas.

The centroids of a traced part's sections are its medial axis (for the arms, slabs across the arm's own
direction). Joints on the axis without a shape cue of their own (elbow, knee, wrist) sit where the axis
bends when it bends, else at the share of the limb's length that human proportions give. Anything that
does not read as a humanoid raises RefusedInput with what was found.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from ..errors import RefusedInput
from .heat import segment_distances
from .voxels import Solid, solid_voxels

# Voxels along the body's height: 128 puts about 1.4 cm in a voxel on a 1.8 m body.
LAYERS = 128
FEET_BAND = 0.08         # share of the height searched for the parts that touch the ground
ELBOW_SHARE = 0.56       # upper arm / (upper arm + forearm), from anthropometric segment lengths
HAND_SHARE = 0.245       # wrist-to-fingertip / shoulder-to-fingertip
KNEE_SHARE = 0.5         # thigh / (thigh + shank)
BALL_SHARE = 0.72        # heel-to-ball / heel-to-toe
ANKLE_SHARE = 0.045      # ankle joint height / body height (a foot the mesh does not show)
FOOT_SHARE = 0.12        # ankle-to-toe along -Y / body height (likewise)
PINCH = 0.7             # middle depth / leg depth below which a joined section is still two thighs
NECK_BASE_MAX = 0.4     # neck base's highest place, as a share of the shoulder line to head joint span
SHOULDER_KINK_DEG = 14.0  # a turn this sharp in the arm's inner half is where a shoulder girdle meets the arm
BEND_MIN_DEG = 8.0       # a limb axis turning less than this is taken as straight
CROTCH_RANGE = (0.3, 0.65)   # crotch height / body height for a humanoid
ARM_REACH_MIN = 0.22     # hand tip's distance from the body's middle / height, the least a T/A-pose gives


@dataclass
class Section:
    """One connected component of one slice: its size and where it sits (world units)."""

    position: float           # the slice's coordinate along the slicing axis
    area: float
    centroid: np.ndarray      # (3,) world position
    low: np.ndarray           # (3,) component's bounding box
    high: np.ndarray


@dataclass
class Landmarks:
    """Joint positions in the mesh's axes (metres, Z up, facing -Y; `_l` on +X) and what was measured."""

    points: dict[str, np.ndarray] = field(default_factory=dict)
    height: float = 0.0
    floor: float = 0.0
    info: dict = field(default_factory=dict)


def _label(mask: np.ndarray):
    structure = np.ones((3,) * mask.ndim, dtype=bool)
    return ndimage.label(mask, structure=structure)


def _section(solid: Solid, mask3: np.ndarray, position: float) -> Section:
    """Statistics of a component given as voxel indices (n, 3)."""
    points = solid.centres(mask3)
    return Section(position, len(mask3) * solid.pitch ** 2, points.mean(axis=0), points.min(axis=0),
                   points.max(axis=0))


def _dominant(labels: np.ndarray, previous: np.ndarray) -> int:
    """The label covering most of the previous slice's component (0 when none does)."""
    under = labels[previous]
    under = under[under > 0]
    if len(under) == 0:
        return 0
    return int(np.bincount(under).argmax())


def _polyline_point(points: np.ndarray, share: float) -> np.ndarray:
    """The point at `share` of the arc length along a polyline."""
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    target = share * arc[-1]
    return np.array([np.interp(target, arc, points[:, i]) for i in range(3)])


def _smooth(points: np.ndarray, passes: int = 2) -> np.ndarray:
    """Light smoothing of a polyline's inner points (voxel centroids step in pitch-sized jumps)."""
    out = np.asarray(points, dtype=np.float64).copy()
    for _ in range(passes):
        if len(out) < 3:
            break
        out[1:-1] = 0.25 * out[:-2] + 0.5 * out[1:-1] + 0.25 * out[2:]
    return out


def _direction(points: np.ndarray, rough: np.ndarray) -> np.ndarray:
    """Unit direction of a run of axis points (their principal axis, oriented along `rough`)."""
    rough = rough / max(float(np.linalg.norm(rough)), 1e-20)
    if len(points) < 3:
        return rough
    centred = points - points.mean(axis=0)
    main = np.linalg.svd(centred, full_matrices=False)[2][0]
    return main if main @ rough >= 0 else -main


def _joint_between(axis: np.ndarray, start: np.ndarray, end: np.ndarray, share: float,
                   window: float = 0.2, min_bend: float = BEND_MIN_DEG) -> tuple[np.ndarray, str, float]:
    """A middle joint (elbow, knee) on a limb axis from `start` to `end`.

    The axis is fitted by two straight pieces, start-joint and joint-end, with the joint at the axis point
    within `window` of the proportional place that fits best. Where the two pieces turn by BEND_MIN_DEG or
    more, that point is the joint; otherwise the limb is straight and the joint sits at the proportional
    place. Returns (point, how, bend in degrees).
    """
    chord = end - start
    length = float(np.linalg.norm(chord))
    along = (axis - start) @ (chord / length)
    inside = np.flatnonzero((along > (share - window) * length) & (along < (share + window) * length))
    guess = start + share * chord
    if len(inside) < 3:
        return guess, "proportion", 0.0
    costs = []
    for i in inside:
        before, after = axis[:i + 1], axis[i:]
        costs.append(np.sum(segment_distances(before, start[None], axis[i][None])[0] ** 2)
                     + np.sum(segment_distances(after, axis[i][None], end[None])[0] ** 2))
    best = inside[int(np.argmin(costs))]
    apex = axis[best]
    # The turn between the axis's own directions on either side (not towards start and end, which carry
    # the shoulder's or hip's uncertainty).
    a, b = _direction(axis[: best + 1], apex - start), _direction(axis[best:], end - apex)
    bend = float(np.degrees(np.arccos(np.clip(float(a @ b), -1.0, 1.0))))
    if bend >= min_bend:
        return apex, "bend", bend
    return guess, "proportion", bend


# ------------------------------------------------------------------------------------------------
# legs
# ------------------------------------------------------------------------------------------------

def _trace_legs(solid: Solid, floor: float, height: float):
    """Sections of each leg from the ground up to the crotch; returns (legs, crotch_z, feet_masks)."""
    occupied = solid.occupied
    band = solid.k_of(floor + FEET_BAND * height)
    labels, count = _label(occupied[:, :, : band + 1])
    sizes = np.bincount(labels.ravel())[1:]
    parts = [i + 1 for i, size in enumerate(sizes) if size >= 0.05 * sizes.max()] if count else []
    if len(parts) != 2:
        raise RefusedInput(
            f"mesh: {len(parts)} separate part(s) touch the ground in the lowest {FEET_BAND:.0%} of its height; "
            "a humanoid standing in a T- or A-pose has two feet apart (a box, a ball, a robe down to the "
            "ground or a four-legged body cannot be rigged as a humanoid)")
    centres = [np.argwhere(labels == part)[:, 0].mean() for part in parts]
    parts = [p for _, p in sorted(zip(centres, parts), reverse=True)]   # +X first: the character's left
    legs = {"l": [], "r": []}
    masks = {}
    feet_voxels = {}
    for side, part in zip(("l", "r"), parts):
        voxels = np.argwhere(labels == part)
        feet_voxels[side] = voxels
        for k in range(band + 1):
            layer = voxels[voxels[:, 2] == k]
            if len(layer):
                legs[side].append(_section(solid, layer, float(solid.z(k))))
        masks[side] = labels[:, :, band] == part
    crotch_k = None
    for k in range(band + 1, occupied.shape[2]):
        layer_labels, _ = _label(occupied[:, :, k])
        ids = {side: _dominant(layer_labels, masks[side]) for side in ("l", "r")}
        if ids["l"] == 0 or ids["r"] == 0:
            raise RefusedInput(f"mesh: a leg ends at {solid.z(k) - floor:.3f} above the ground without joining "
                               "the body; expected two legs that meet at the crotch")
        if ids["l"] == ids["r"]:
            crotch_k = k
            break
        for side in ("l", "r"):
            masks[side] = layer_labels == ids[side]
            ij = np.argwhere(masks[side])
            legs[side].append(_section(solid, np.column_stack([ij, np.full(len(ij), k)]), float(solid.z(k))))
    if crotch_k is None:
        raise RefusedInput("mesh: the two parts on the ground never join; expected two legs meeting at a crotch")
    crotch_k = _follow_touching_thighs(solid, crotch_k, masks, legs, height)
    crotch_z = float(solid.z(crotch_k) - 0.5 * solid.pitch)
    share = (crotch_z - floor) / height
    if not CROTCH_RANGE[0] <= share <= CROTCH_RANGE[1]:
        raise RefusedInput(f"mesh: the legs join at {share:.0%} of the height; a humanoid's crotch is at "
                           f"{CROTCH_RANGE[0]:.0%}-{CROTCH_RANGE[1]:.0%}")
    return legs, crotch_z, feet_voxels


def _follow_touching_thighs(solid: Solid, k: int, masks: dict, legs: dict, height: float) -> int:
    """The crotch's layer, above thighs that touch each other below it.

    Thighs that touch join the slices before the crotch; their joined section is then pinched at the
    middle (two lobes side by side). While the middle column holds less than PINCH of the thinner leg's
    depth, the section is split at the middle and each half added to its leg. Returns the first layer that
    is no longer pinched (the crotch) or the layer where the thighs joined, if it never was.
    """
    occupied = solid.occupied
    centre = {side: int(round(np.argwhere(masks[side])[:, 0].mean())) for side in ("l", "r")}
    limit = min(occupied.shape[2], k + int(np.ceil(0.2 * height / solid.pitch)))
    while k < limit:
        labels, _ = _label(occupied[:, :, k])
        joined = labels == _dominant(labels, masks["l"] | masks["r"])
        depth = joined.sum(axis=1)
        middle = (centre["l"] + centre["r"]) // 2
        thinner = min(depth[centre["l"]], depth[centre["r"]])
        if thinner == 0 or depth[middle] >= PINCH * thinner:
            break
        columns = np.arange(occupied.shape[0])[:, None]
        for side, half in (("l", columns > middle), ("r", columns < middle)):
            masks[side] = joined & half
            ij = np.argwhere(masks[side])
            legs[side].append(_section(solid, np.column_stack([ij, np.full(len(ij), k)]), float(solid.z(k))))
            centre[side] = int(round(ij[:, 0].mean()))
        k += 1
    return k


def _fit_leg(solid: Solid, sections: list[Section], foot: np.ndarray, crotch_z: float, floor: float,
             height: float) -> tuple[dict, dict]:
    """Hip, knee, ankle, ball and toe of one leg from its sections (ground to crotch)."""
    z = np.array([s.position for s in sections])
    centroid = np.array([s.centroid for s in sections])
    radius = np.sqrt(np.array([s.area for s in sections]) / np.pi)
    front = np.array([s.low[1] for s in sections])
    # The shank above the foot: its axis and radius are the reference the foot sticks out from.
    shank = (z > floor + 0.12 * height) & (z < floor + 0.2 * height)
    if shank.sum() < 2:
        raise RefusedInput("mesh: the legs are too short to find the ankles")
    shank_y = float(np.median(centroid[shank, 1]))
    shank_r = float(np.median(radius[shank]))
    low = z < floor + 0.12 * height
    reach = shank_y - front
    back_reach = np.array([s.high[1] for s in sections]) - shank_y
    in_foot = (reach > 2.5 * shank_r) & low
    backwards = (back_reach > 2.5 * shank_r) & low
    if backwards.any() and (not in_foot.any() or back_reach[low].max() > reach[low].max() + 0.5 * shank_r):
        raise RefusedInput("mesh: the feet point to +Y; the character must face -Y (Blender's front view)")
    if in_foot.any():
        ankle, ball, toe = _foot(solid, foot, z, centroid, shank_r, float(z[in_foot].max()) + 0.25 * shank_r)
        foot_how = "from the foot"
    else:
        # Legs with no foot sticking out (a body inflated from a front view, boots seen head-on): the ankle,
        # ball and toe by a standing human's proportions, the toes toward -Y.
        ankle_z = floor + ANKLE_SHARE * height
        ankle_xy = centroid[np.argmin(abs(z - ankle_z)), :2]
        ankle = np.array([ankle_xy[0], ankle_xy[1], ankle_z])
        ball = ankle + np.array([0.0, -FOOT_SHARE * BALL_SHARE * height, floor + 0.25 * (ankle_z - floor) - ankle_z])
        toe = ankle + np.array([0.0, -FOOT_SHARE * height, floor - ankle_z])
        foot_how = "by proportion (no foot reaches forward from the ankle)"
    ankle_z = float(ankle[2])
    # Thigh: the leg's axis below the crotch, extended up to the hip joint, which sits about one thigh
    # radius above the crotch.
    # (Not the last few slices: where the thighs meet the groin their sections lean in towards the middle.)
    upper = (z > crotch_z - 0.15 * height) & (z < crotch_z - 0.04 * height)
    if upper.sum() < 3:
        raise RefusedInput("mesh: too little of the thighs is apart below the crotch to place the hips")
    top_of_thigh = (z > crotch_z - 0.05 * height) & (z < crotch_z - 1.5 * solid.pitch)
    thigh_r = float(np.median(radius[top_of_thigh if top_of_thigh.any() else upper]))
    hip_z = crotch_z + thigh_r
    fit = np.polyfit(z[upper], centroid[upper, :2], 1)
    hip = np.array([np.polyval(fit[:, 0], hip_z), np.polyval(fit[:, 1], hip_z), hip_z])
    axis = _smooth(np.vstack([ankle, centroid[(z > ankle_z) & (z < crotch_z - solid.pitch)], hip]))[::-1]
    knee, how, bend = _joint_between(axis, hip, ankle, KNEE_SHARE)
    points = {"thigh": hip, "calf": knee, "foot": ankle, "ball": ball, "toe": toe}
    info = {"knee": how, "knee_bend_deg": round(bend, 1), "thigh_radius": round(thigh_r, 4), "foot": foot_how}
    return points, info


def _foot(solid: Solid, foot: np.ndarray, z: np.ndarray, centroid: np.ndarray, shank_r: float, ankle_z: float):
    """Ankle, ball and toe of a foot that reaches forward (-Y) from the ankle."""
    foot_points = solid.centres(foot)
    toe_y, heel_y = float(foot_points[:, 1].min()), float(foot_points[:, 1].max())
    above = (z > ankle_z) & (z < ankle_z + 2 * shank_r + solid.pitch)
    ankle_xy = centroid[above, :2].mean(axis=0) if above.any() else centroid[np.argmin(abs(z - ankle_z)), :2]
    ankle = np.array([ankle_xy[0], ankle_xy[1], ankle_z])
    toe_voxels = foot_points[foot_points[:, 1] <= toe_y + solid.pitch]
    toe = np.array([toe_voxels[:, 0].mean(), toe_y, toe_voxels[:, 2].mean()])
    ball_y = heel_y + BALL_SHARE * (toe_y - heel_y)
    at_ball = foot_points[np.abs(foot_points[:, 1] - ball_y) <= solid.pitch]
    ball = np.array([at_ball[:, 0].mean(), ball_y, 0.5 * (at_ball[:, 2].min() + at_ball[:, 2].max())])
    return ankle, ball, toe


# ------------------------------------------------------------------------------------------------
# arms
# ------------------------------------------------------------------------------------------------

def _trace_arm(solid: Solid, sign: float, middle_x: float, floor: float, height: float):
    """Follow one arm across X from the hand's outermost voxel inwards until it joins the torso.

    Returns (voxels of the arm (n, 3) indices, the outermost X reached by the hand, the armpit's X).
    """
    occupied = solid.occupied
    above_knees = solid.k_of(floor + 0.3 * height)
    columns = np.argwhere(occupied[:, :, above_knees:].any(axis=(1, 2)))[:, 0]
    if len(columns) == 0:
        raise RefusedInput("mesh: nothing above the knees")
    tip_i = int(columns.max() if sign > 0 else columns.min())
    reach = abs(float(solid.x(tip_i)) - middle_x) / height
    if reach < ARM_REACH_MIN:
        raise RefusedInput(
            f"mesh: the outermost point above the knees on the {'left (+X)' if sign > 0 else 'right (-X)'} is "
            f"{reach:.0%} of the height from the middle; arms held away from the body (T- or A-pose) reach "
            f"at least {ARM_REACH_MIN:.0%}")
    tip_mask = occupied[tip_i].copy()
    tip_mask[:, :above_knees] = False
    labels, _ = _label(occupied[tip_i])
    mask = np.isin(labels, np.unique(labels[tip_mask]))
    mask &= labels > 0
    voxels, areas, bottoms = [], [], []
    step = -1 if sign > 0 else 1
    merged_at = None
    i = tip_i
    while 0 <= i < occupied.shape[0] and (float(solid.x(i)) - middle_x) * sign > 0:
        if i != tip_i:
            labels, _ = _label(occupied[i])
            part = _dominant(labels, ndimage.binary_dilation(mask))
            if part == 0:
                # The arm ends without meeting the torso in one slice: a shoulder joined over the top, across
                # slices. Its innermost slice stands for the armpit (find_landmarks checks that it is joined).
                if len(areas) >= 8:
                    merged_at = float(solid.x(i - step))
                    break
                raise RefusedInput("mesh: an arm could not be followed from the hand to the body")
            mask = labels == part
        jk = np.argwhere(mask)
        bottom = int(jk[:, 1].min())
        # The torso's side: the section's underside drops below where the arm's underside was heading
        # (by more than a third of the arm's thickness), or the section suddenly holds far more.
        if len(areas) >= 6:
            trend = np.polyfit(np.arange(6), bottoms[-6:], 1)
            expected = np.polyval(trend, 6)
            thickness = np.sqrt(np.median(areas[-8:]))
            if bottom < expected - max(2.0, thickness / 3) or len(jk) > 2.5 * np.median(areas[-8:]):
                merged_at = float(solid.x(i - step))
                break
        voxels.append(np.column_stack([np.full(len(jk), i), jk]))
        areas.append(len(jk))
        bottoms.append(bottom)
        i += step
    if merged_at is None or len(areas) < 8:
        raise RefusedInput("mesh: an arm never joins the torso as an arm does; expected arms held away from "
                           "the body in a T- or A-pose")
    return np.vstack(voxels), float(solid.x(tip_i)) + 0.5 * sign * solid.pitch, merged_at


def _axis_along(points: np.ndarray, start: np.ndarray, direction: np.ndarray, step: float):
    """Medial axis of a limb's voxel centres: centroids of slabs `step` thick across `direction`.

    Returns (centroids (m, 3), slab areas (m,) in voxel counts), ordered from `start` outwards.
    """
    along = (points - start) @ direction
    slab = np.floor(along / step).astype(int)
    slab -= slab.min()
    counts = np.bincount(slab)
    sums = np.stack([np.bincount(slab, weights=points[:, i]) for i in range(3)], axis=1)
    filled = counts > 0
    return sums[filled] / counts[filled, None], counts[filled]


def _fit_arm(solid: Solid, voxels: np.ndarray, tip_x: float, merged_x: float, sign: float) -> tuple[dict, dict]:
    """Shoulder, elbow, wrist and hand tip of one arm from its voxels."""
    points = solid.centres(voxels)
    outermost = points[:, 0].max() if sign > 0 else points[:, 0].min()
    outer = points[np.abs(points[:, 0] - outermost) <= solid.pitch]
    tip = np.array([tip_x, outer[:, 1].mean(), outer[:, 2].mean()])
    near = np.abs(points[:, 0] - merged_x) <= 2 * solid.pitch
    root = points[near].mean(axis=0)
    # Slice across the arm's own direction (not across X), so an A-pose's oblique arm gets round sections.
    direction = (tip - root) / np.linalg.norm(tip - root)
    axis, counts = _axis_along(points, root, direction, solid.pitch)
    radius = float(np.sqrt(np.median(counts[: max(3, len(counts) // 4)]) * solid.pitch ** 2 / np.pi))
    # The shoulder joint sits about one arm radius outwards from where the arm's underside meets the torso.
    shoulder_x = merged_x + sign * radius
    upper = np.abs(axis[:, 0] - merged_x) < 0.35 * abs(tip_x - merged_x)
    fit = np.polyfit(axis[upper, 0], axis[upper, 1:], 1)
    shoulder = np.array([shoulder_x, np.polyval(fit[:, 0], shoulder_x), np.polyval(fit[:, 1], shoulder_x)])
    # A shoulder girdle followed together with the arm (a long sloping trapezius above a narrow chest)
    # turns into the arm at the shoulder: where the inner half of the axis kinks, the kink is the shoulder.
    span = abs(tip_x - merged_x)
    inner = np.abs(axis[:, 0] - merged_x) <= 0.5 * span
    if inner.sum() >= 6:
        kink, how, _ = _joint_between(axis[inner], root, axis[inner][-1], 0.5, window=0.4,
                                      min_bend=SHOULDER_KINK_DEG)
        if how == "bend" and (kink[0] - shoulder_x) * sign > 0:
            shoulder, shoulder_x = kink, float(kink[0])
    line = _smooth(np.vstack([shoulder, axis[(axis[:, 0] - shoulder_x) * sign > 0], tip]))
    wrist = _polyline_point(line, 1.0 - HAND_SHARE)
    elbow, how, bend = _joint_between(line, shoulder, wrist, ELBOW_SHARE)
    drop = float(np.degrees(np.arctan2(shoulder[2] - wrist[2], abs(wrist[0] - shoulder[0]))))
    joints = {"upperarm": shoulder, "lowerarm": elbow, "hand": wrist, "hand_tip": tip}
    info = {"elbow": how, "elbow_bend_deg": round(bend, 1), "arm_drop_deg": round(drop, 1),
            "armpit_x": round(merged_x, 4), "arm_radius": round(radius, 4)}
    return joints, info


# ------------------------------------------------------------------------------------------------
# neck and head
# ------------------------------------------------------------------------------------------------

def _trace_head(solid: Solid, shoulder_z: float) -> list[Section]:
    """Sections from the crown down to the shoulders' height."""
    occupied = solid.occupied
    layers = np.flatnonzero(occupied.any(axis=(0, 1)))
    top = int(layers.max())
    labels, _ = _label(occupied[:, :, top])
    mask = labels > 0
    sections = []
    for k in range(top, solid.k_of(shoulder_z) - 1, -1):
        if k != top:
            labels, _ = _label(occupied[:, :, k])
            part = _dominant(labels, ndimage.binary_dilation(mask))
            if part == 0:
                break
            mask = labels == part
        ij = np.argwhere(mask)
        sections.append(_section(solid, np.column_stack([ij, np.full(len(ij), k)]), float(solid.z(k))))
    return sections


def _fit_head(sections: list[Section], shoulder_z: float, height: float) -> tuple[dict, dict]:
    """Neck base, head joint and crown from the sections below the crown."""
    z = np.array([s.position for s in sections])
    area = np.array([s.area for s in sections])
    centroid = np.array([s.centroid for s in sections])
    top_z = float(z.max() + 0.5 * (z[0] - z[1]) if len(z) > 1 else z.max())
    neck_zone = (z > shoulder_z) & (z < top_z - 0.06 * height)
    if neck_zone.sum() < 2:
        raise RefusedInput("mesh: no neck between the shoulders and the crown")
    neck_i = int(np.flatnonzero(neck_zone)[np.argmin(area[neck_zone])])
    neck_area = float(area[neck_i])
    # The head's middle: the vertex of a parabola fitted to the section areas of its upper, wide part
    # (an ellipsoid's sections grow as 1 - (dz / r)^2), steadier than the single widest slice.
    head_zone = z > z[neck_i]
    wide = head_zone & (area >= 0.6 * area[head_zone].max())
    if wide.sum() >= 3:
        a2, a1, _ = np.polyfit(z[wide], area[wide], 2)
        middle_z = -a1 / (2 * a2) if a2 < 0 else float(z[wide].mean())
        middle_z = float(np.clip(middle_z, z[wide].min(), z[wide].max()))
    else:
        middle_z = float(z[head_zone][np.argmax(area[head_zone])])
    head_z = middle_z - 0.6 * (top_z - middle_z)
    if head_z <= shoulder_z:
        raise RefusedInput("mesh: the head is found at the shoulders' height; expected a head on a neck")
    # Neck base: going down from the narrowest slice, where the section starts to flare into the shoulders.
    base_i = None
    for i in range(neck_i, len(z)):
        if area[i] > 1.6 * neck_area:
            base_i = i
            break
    base_z = float(z[base_i]) if base_i is not None else shoulder_z
    # A neck that flares gradually has no clear base: keep it where bodies have it, in the lower part of
    # the span from the shoulder line to the head joint (the neck's bones need that length to lead).
    base_z = float(np.clip(base_z, shoulder_z, shoulder_z + NECK_BASE_MAX * (head_z - shoulder_z)))

    def axis_at(height_z):
        i = int(np.argmin(np.abs(z - height_z)))
        return centroid[i, :2]

    head = np.array([*axis_at(head_z), head_z])
    neck = np.array([*axis_at(base_z), base_z])
    crown = np.array([*centroid[0, :2], top_z])
    info = {"neck_radius": round(float(np.sqrt(neck_area / np.pi)), 4), "neck_z": float(z[neck_i])}
    return {"neck_01": neck, "head": head, "head_top": crown}, info


# ------------------------------------------------------------------------------------------------

def _mesh_parts(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """The connected part of the mesh each vertex belongs to."""
    count = len(vertices)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    graph = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(count, count))
    return csgraph.connected_components(graph, directed=False)[1]


def find_landmarks(vertices: np.ndarray, faces: np.ndarray, *, layers: int = LAYERS) -> Landmarks:
    """Landmarks of a watertight humanoid mesh in Blender axes; raises RefusedInput for anything else."""
    vertices = np.asarray(vertices, dtype=np.float64)
    floor = float(vertices[:, 2].min())
    height = float(vertices[:, 2].max() - floor)
    if height <= 0:
        raise RefusedInput("mesh: it is flat (no height along Z)")
    solid = solid_voxels(vertices, faces, height / layers)
    legs, crotch_z, feet = _trace_legs(solid, floor, height)
    points: dict[str, np.ndarray] = {}
    info: dict = {"pitch": solid.pitch, "odd_columns": solid.odd_columns,
                  "crotch_height": round(crotch_z - floor, 4)}
    for side in ("l", "r"):
        leg, leg_info = _fit_leg(solid, legs[side], feet[side], crotch_z, floor, height)
        points.update({f"{name}_{side}": p for name, p in leg.items()})
        info[f"leg_{side}"] = leg_info
    middle_x = 0.5 * (points["thigh_l"][0] + points["thigh_r"][0])
    part_of = _mesh_parts(vertices, faces)
    tree = cKDTree(vertices)
    legs_part = part_of[tree.query(solid.centres(feet["l"][:1]))[1][0]]
    for side, sign in (("l", 1.0), ("r", -1.0)):
        voxels, tip_x, merged_x = _trace_arm(solid, sign, middle_x, floor, height)
        if part_of[tree.query(solid.centres(voxels[:1]))[1][0]] != legs_part:
            raise RefusedInput(f"mesh: the {'left (+X)' if sign > 0 else 'right (-X)'} arm is a separate part, not "
                               "joined to the body")
        arm, arm_info = _fit_arm(solid, voxels, tip_x, merged_x, sign)
        points.update({f"{name}_{side}": p for name, p in arm.items()})
        info[f"arm_{side}"] = arm_info
    shoulder_z = 0.5 * (points["upperarm_l"][2] + points["upperarm_r"][2])
    if shoulder_z <= crotch_z:
        raise RefusedInput("mesh: the shoulders are found below the crotch; expected an upright humanoid")
    head, head_info = _fit_head(_trace_head(solid, shoulder_z), shoulder_z, height)
    points.update(head)
    info["head"] = head_info
    points["pelvis"] = np.array([middle_x, 0.5 * (points["thigh_l"][1] + points["thigh_r"][1]),
                                 0.5 * (points["thigh_l"][2] + points["thigh_r"][2])])
    drop = 0.5 * (info["arm_l"]["arm_drop_deg"] + info["arm_r"]["arm_drop_deg"])
    info["pose"] = "T" if drop < 20 else "A"
    return Landmarks(points, height, floor, info)

"""Bone heads, tails and roll hints of the UE5 Mannequin skeleton from a body's landmarks.

Joints measured on the body (hips, knees, ankles, balls, shoulders, elbows, wrists, neck base, head)
become bone heads as they are; the spine, clavicles and fingers, which a surface does not show, are
placed by human proportions between them. Each bone also gets the segment that deforms the mesh in
bone heat (`heat_segments`): the bone itself, with the bones at the ends of the body (head, hands,
balls) stopped short of the surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .landmarks import Landmarks
from .skeleton import FINGERS, BoneSpec

# Where spine_01..spine_05 sit between the pelvis and the neck base (shares of that distance).
SPINE_SHARES = (0.1, 0.28, 0.46, 0.64, 0.82)
FRONT = np.array([0.0, -1.0, 0.0])
UP = np.array([0.0, 0.0, 1.0])


@dataclass
class Placement:
    heads: np.ndarray        # (b, 3)
    tails: np.ndarray        # (b, 3)
    up: np.ndarray           # (b, 3) the direction each bone's local Z axis leans to (Blender's align_roll)
    heat_heads: np.ndarray   # (s, 3) the segments the bones deform from, in bone heat
    heat_tails: np.ndarray
    heat_bones: np.ndarray   # (s,) the bone (index into the bone list) of each segment; bones without one
                             # carry no weight


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _across(direction: np.ndarray, hint: np.ndarray) -> np.ndarray:
    """`hint` made perpendicular to `direction` (falls back to +Z when they are parallel)."""
    out = hint - (hint @ direction) * direction
    if np.linalg.norm(out) < 1e-6:
        out = UP - (UP @ direction) * direction
    return _unit(out)


def _finger_joints(side: str, wrist: np.ndarray, tip: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(head, tail) of every finger bone inside the hand by hand proportions: the thumb to the front."""
    length = float(np.linalg.norm(tip - wrist))
    along = _unit(tip - wrist)
    front = _across(along, FRONT)
    breadth = 0.45 * length
    bones = {}
    spread = {"index": 0.3, "middle": 0.1, "ring": -0.1, "pinky": -0.3}
    reach = {"index": 0.96, "middle": 1.0, "ring": 0.96, "pinky": 0.82}
    for finger, offset in spread.items():
        base = wrist + 0.22 * length * along + 0.5 * offset * breadth * front
        knuckle = wrist + 0.45 * length * along + offset * breadth * front
        end = knuckle + (reach[finger] * length - 0.45 * length) * 0.97 * along
        bones[f"{finger}_metacarpal_{side}"] = (base, knuckle)
        cuts = [knuckle + share * (end - knuckle) for share in (0.0, 0.45, 0.75, 1.0)]
        for joint, (head, tail) in zip(("01", "02", "03"), zip(cuts[:-1], cuts[1:])):
            bones[f"{finger}_{joint}_{side}"] = (head, tail)
    thumb_base = wrist + 0.1 * length * along + 0.3 * breadth * front
    thumb_dir = _unit(along + 0.8 * front)
    cuts = [thumb_base + share * 0.5 * length * thumb_dir for share in (0.0, 0.4, 0.72, 1.0)]
    for joint, (head, tail) in zip(("01", "02", "03"), zip(cuts[:-1], cuts[1:])):
        bones[f"thumb_{joint}_{side}"] = (head, tail)
    return bones


def place_bones(landmarks: Landmarks, bones: list[BoneSpec]) -> Placement:
    """Heads, tails, roll hints and heat segments for `bones` (names from skeleton.mannequin_bones)."""
    p = landmarks.points
    height = landmarks.height
    pelvis, neck = p["pelvis"], p["neck_01"]
    spine = {f"spine_0{i + 1}": pelvis + share * (neck - pelvis) for i, share in enumerate(SPINE_SHARES)}
    neck_02 = neck + 0.5 * (p["head"] - neck)
    root = np.array([pelvis[0], pelvis[1], landmarks.floor])
    ahead = np.array([0.0, 0.1 * height, 0.0])    # root-like bones lie along +Y on the floor (no meaning)
    segments: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "root": (root, root + ahead),
        "pelvis": (pelvis, spine["spine_01"]),
        "neck_01": (neck, neck_02),
        "neck_02": (neck_02, p["head"]),
        "head": (p["head"], p["head_top"]),
        "ik_foot_root": (root, root + ahead),
        "ik_hand_root": (root, root + ahead),
    }
    names = list(spine)
    for name, following in zip(names, names[1:] + ["neck_01"]):
        segments[name] = (spine[name], spine[following] if following != "neck_01" else neck)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        shoulder, elbow, wrist, tip = (p[f"upperarm_{side}"], p[f"lowerarm_{side}"], p[f"hand_{side}"],
                                       p[f"hand_tip_{side}"])
        clavicle = neck + np.array([sign * 0.018 * height, -0.01 * height, -0.015 * height])
        segments[f"clavicle_{side}"] = (clavicle, shoulder)
        segments[f"upperarm_{side}"] = (shoulder, elbow)
        segments[f"lowerarm_{side}"] = (elbow, wrist)
        segments[f"hand_{side}"] = (wrist, wrist + 0.5 * (tip - wrist))
        segments.update(_finger_joints(side, wrist, tip))
        hip, knee, ankle, ball, toe = (p[f"thigh_{side}"], p[f"calf_{side}"], p[f"foot_{side}"],
                                       p[f"ball_{side}"], p[f"toe_{side}"])
        segments[f"thigh_{side}"] = (hip, knee)
        segments[f"calf_{side}"] = (knee, ankle)
        segments[f"foot_{side}"] = (ankle, ball)
        segments[f"ball_{side}"] = (ball, toe)
        segments[f"ik_foot_{side}"] = segments[f"foot_{side}"]
        segments[f"ik_hand_{side}"] = segments[f"hand_{side}"]
    segments["ik_hand_gun"] = segments["hand_r"]
    names = [bone.name for bone in bones]
    heads = np.array([segments[name][0] for name in names], dtype=np.float64)
    tails = np.array([segments[name][1] for name in names], dtype=np.float64)
    up = np.array([_roll_hint(name, tails[i] - heads[i]) for i, name in enumerate(names)])
    heat_heads, heat_tails = heads.copy(), tails.copy()
    has_fingers = any(name.startswith("index_") for name in names)
    for i, name in enumerate(names):
        # Bones that end at the body's surface stop short of it, so the surface there is not at
        # distance zero from a bone (heat 1/d^2).
        if name == "head":
            # The skull starts above the head bone's joint: the upper neck follows neck_02, not the head.
            heat_heads[i] = heads[i] + 0.3 * (tails[i] - heads[i])
            heat_tails[i] = heads[i] + 0.85 * (tails[i] - heads[i])
        elif name.startswith("clavicle_"):
            # The collarbone moves the shoulder, not the base of the neck beside its inner end.
            heat_heads[i] = heads[i] + 0.35 * (tails[i] - heads[i])
        elif name.startswith("hand_"):
            side = name[-1]
            reach = 0.45 if has_fingers else 0.85
            heat_tails[i] = heads[i] + reach * (p[f"hand_tip_{side}"] - heads[i])
        elif name.startswith("ball_"):
            heat_tails[i] = heads[i] + 0.7 * (tails[i] - heads[i])
        elif name.endswith(("_03_l", "_03_r")):
            heat_tails[i] = heads[i] + 0.7 * (tails[i] - heads[i])
    # Metacarpals deform in the Mannequin, but a palm moves with the hand bone in the shapes we rig
    # (fingers, when there are any, start at the knuckles): they get no heat segment and carry no weight.
    deforming = [i for i, bone in enumerate(bones) if bone.deform and "_metacarpal_" not in bone.name]
    extra_heads, extra_tails, extra_bones = [], [], []
    if "pelvis" in names:
        # The pelvis also reaches across to both hip joints (the pelvic girdle): without that its short
        # bone up to spine_01 is swamped by the thighs' heat and leads no vertex.
        extra_heads.append(p["thigh_r"])
        extra_tails.append(p["thigh_l"])
        extra_bones.append(names.index("pelvis"))
    return Placement(heads, tails, up,
                     np.vstack([heat_heads[deforming]] + [np.array(extra_heads).reshape(-1, 3)]),
                     np.vstack([heat_tails[deforming]] + [np.array(extra_tails).reshape(-1, 3)]),
                     np.array(deforming + extra_bones, dtype=np.int64))


def _roll_hint(name: str, direction: np.ndarray) -> np.ndarray:
    """The bone's local Z axis leans to the front for the spine, legs and arms, up for the feet."""
    direction = _unit(direction)
    if name.startswith(("foot_", "ball_", "ik_foot_l", "ik_foot_r", "root", "ik_foot_root", "ik_hand_root")):
        return _across(direction, UP)
    if any(name.startswith(finger) for finger in FINGERS) or name.startswith(("hand_", "ik_hand")):
        return _across(direction, UP)
    return _across(direction, FRONT)

"""The 52 Mixamo joints Make-It-Animatable predicts, and how they become the UE5 Mannequin's bones and weights.

Mixamo names map one to one onto most Mannequin bones (Hips -> pelvis, LeftArm -> upperarm_l, ...). The
Mannequin has more spine and neck bones than Mixamo: spine_02, spine_04 and neck_02 are placed halfway between
the bones around them, and a vertex the model gave to the bone below takes a share of that weight for the new
bone by how far along it lies. The metacarpals sit halfway between the hand and each finger's first bone and,
like the template method's, carry no weight (the palm follows the hand). root and the ik bones are added as the
template method adds them. Mixamo's Left is the character's own left, as our _l is.
"""

from __future__ import annotations

import numpy as np

from ..skeleton import FINGERS, mannequin_bones, parent_indices
from .common import FRONT, UP, lean

PREFIX = "mixamorig:"
SIDES = (("Left", "l"), ("Right", "r"))
FINGER_NAMES = {"thumb": "Thumb", "index": "Index", "middle": "Middle", "ring": "Ring", "pinky": "Pinky"}


def _arm(side: str) -> list[str]:
    names = [f"{side}Shoulder", f"{side}Arm", f"{side}ForeArm", f"{side}Hand"]
    names += [f"{side}Hand{FINGER_NAMES[finger]}{joint}" for finger in FINGERS for joint in (1, 2, 3)]
    return names


# Make-It-Animatable's order (util/dataset_mixamo.py MIXAMO_JOINTS at the pin): the adapter checks it on load.
JOINTS = ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", *_arm("Left"), *_arm("Right"),
          "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase")
INDEX = {name: i for i, name in enumerate(JOINTS)}


def _parent(name: str) -> str | None:
    chain = {"Hips": None, "Spine": "Hips", "Spine1": "Spine", "Spine2": "Spine1", "Neck": "Spine2", "Head": "Neck"}
    if name in chain:
        return chain[name]
    side = "Left" if name.startswith("Left") else "Right"
    rest = name[len(side):]
    limbs = {"Shoulder": "Spine2", "Arm": f"{side}Shoulder", "ForeArm": f"{side}Arm", "Hand": f"{side}ForeArm",
             "UpLeg": "Hips", "Leg": f"{side}UpLeg", "Foot": f"{side}Leg", "ToeBase": f"{side}Foot"}
    if rest in limbs:
        return limbs[rest]
    joint = int(rest[-1])  # Hand<Finger><n>
    return f"{side}Hand" if joint == 1 else f"{side}{rest[:-1]}{joint - 1}"


PARENTS = tuple(-1 if _parent(name) is None else INDEX[_parent(name)] for name in JOINTS)


def ue5_source(fingers: bool) -> dict[str, str]:
    """Mannequin bone -> the Mixamo joint it is, for the bones that have one."""
    mapping = {"pelvis": "Hips", "spine_01": "Spine", "spine_03": "Spine1", "spine_05": "Spine2", "neck_01": "Neck",
               "head": "Head"}
    for side, s in SIDES:
        mapping.update({f"clavicle_{s}": f"{side}Shoulder", f"upperarm_{s}": f"{side}Arm",
                        f"lowerarm_{s}": f"{side}ForeArm", f"hand_{s}": f"{side}Hand", f"thigh_{s}": f"{side}UpLeg",
                        f"calf_{s}": f"{side}Leg", f"foot_{s}": f"{side}Foot", f"ball_{s}": f"{side}ToeBase"})
        if fingers:
            for finger, title in FINGER_NAMES.items():
                for joint in (1, 2, 3):
                    mapping[f"{finger}_0{joint}_{s}"] = f"{side}Hand{title}{joint}"
    return mapping


# A Mannequin bone Mixamo lacks: (the bone below it, the bone above it). It takes part of the lower one's weight.
INSERTED = {"spine_02": ("spine_01", "spine_03"), "spine_04": ("spine_03", "spine_05"), "neck_02": ("neck_01", "head")}
SPLIT_START, SPLIT_END = 0.25, 0.75  # along the lower bone's span: all its own below, all the inserted one's above


def merged_fingers(weights: np.ndarray) -> np.ndarray:
    """(n, 52) weights with every finger joint's weight added to its hand (for a rig without finger bones)."""
    weights = np.array(weights, np.float64)
    for side, _ in SIDES:
        hand = INDEX[f"{side}Hand"]
        for finger in FINGER_NAMES.values():
            for joint in (1, 2, 3):
                column = INDEX[f"{side}Hand{finger}{joint}"]
                weights[:, hand] += weights[:, column]
                weights[:, column] = 0.0
    return weights


def _limb(name: str) -> tuple[str, str]:
    """(side, limb) of a Mixamo joint: side Left, Right or '' (the trunk), limb arm, leg or ''."""
    side = "Left" if name.startswith("Left") else "Right" if name.startswith("Right") else ""
    rest = name[len(side):]
    if rest.startswith(("Arm", "ForeArm", "Hand")):
        return side, "arm"
    if rest in ("UpLeg", "Leg", "Foot", "ToeBase"):
        return side, "leg"
    return side, ""


def exclusive(weights: np.ndarray) -> np.ndarray:
    """Weights with the impossible influences taken out, by each vertex's leading joint: a vertex led by a limb
    of one side keeps nothing of the other side's limbs, and one led by an arm keeps nothing of the legs (and the
    other way round). Rows are renormalised; one left empty keeps its leading joint alone."""
    weights = np.clip(np.array(weights, np.float64), 0.0, None)
    lead = np.argmax(weights, axis=1)
    kinds = [_limb(name) for name in JOINTS]
    sides = np.array([side for side, _ in kinds])
    limbs = np.array([limb for _, limb in kinds])
    lead_side, lead_limb = sides[lead], limbs[lead]
    for column, (side, limb) in enumerate(kinds):
        if not limb:
            continue
        other_side = (lead_limb != "") & (lead_side != "") & (lead_side != side)
        other_limb = (lead_limb != "") & (lead_limb != limb)
        weights[other_side | other_limb, column] = 0.0
    total = weights.sum(axis=1)
    empty = total <= 0
    weights[np.flatnonzero(empty), lead[empty]] = 1.0
    total[empty] = 1.0
    return weights / total[:, None]


def _roll(name: str, direction: np.ndarray) -> np.ndarray:
    """Like the template method: a bone's local Z leans to the front, up for feet, hands and fingers."""
    if name.startswith(("foot_", "ball_", "ik_foot", "root", "ik_hand", "hand_")) \
            or any(name.startswith(finger) for finger in FINGERS):
        return lean(direction, UP)
    return lean(direction, FRONT)


def to_mannequin(heads: np.ndarray, tails: np.ndarray, weights: np.ndarray, vertices: np.ndarray, fingers: bool,
                 floor: float):
    """The Mannequin's bones from Mixamo joints, all in Blender axes.

    heads, tails: (52, 3) Mixamo joints and tails; weights: (n, 52) per mesh vertex; floor: the lowest z of the
    mesh (root stands there below the pelvis). Returns (names, parents, heads, tails, up, deform, dense weights
    (n, bones))."""
    bones = mannequin_bones(fingers=fingers)
    names = [bone.name for bone in bones]
    index = {name: i for i, name in enumerate(names)}
    source = ue5_source(fingers)
    out_heads = np.zeros((len(names), 3))
    out_tails = np.zeros((len(names), 3))
    for name, joint in source.items():
        out_heads[index[name]] = heads[INDEX[joint]]
        out_tails[index[name]] = tails[INDEX[joint]]
    for name, (below, above) in INSERTED.items():
        start, end = out_heads[index[below]], out_heads[index[above]]
        out_heads[index[name]] = (start + end) / 2
        out_tails[index[name]] = end
        out_tails[index[below]] = out_heads[index[name]]
    if fingers:
        for s in ("l", "r"):
            hand = out_heads[index[f"hand_{s}"]]
            for finger in FINGERS:
                if finger == "thumb":
                    continue
                first = out_heads[index[f"{finger}_01_{s}"]]
                out_heads[index[f"{finger}_metacarpal_{s}"]] = (hand + first) / 2
                out_tails[index[f"{finger}_metacarpal_{s}"]] = first
    pelvis = out_heads[index["pelvis"]]
    height = max(float(np.ptp(vertices[:, 2])), 1e-6)
    root = np.array([pelvis[0], pelvis[1], floor])
    ahead = np.array([0.0, 0.1 * height, 0.0])  # root-like bones lie along +Y on the floor, as the template's do
    for name in ("root", "ik_foot_root", "ik_hand_root"):
        out_heads[index[name]], out_tails[index[name]] = root, root + ahead
    for s in ("l", "r"):
        for ik, bone in ((f"ik_foot_{s}", f"foot_{s}"), (f"ik_hand_{s}", f"hand_{s}")):
            out_heads[index[ik]], out_tails[index[ik]] = out_heads[index[bone]], out_tails[index[bone]]
    out_heads[index["ik_hand_gun"]], out_tails[index["ik_hand_gun"]] = out_heads[index["hand_r"]], \
        out_tails[index["hand_r"]]
    dense = np.zeros((len(vertices), len(names)))
    for name, joint in source.items():
        dense[:, index[name]] += weights[:, INDEX[joint]]
    for name, (below, above) in INSERTED.items():
        start, end = out_heads[index[below]], out_heads[index[above]]
        span = end - start
        along = (vertices - start) @ span / max(float(span @ span), 1e-12)
        share = np.clip((along - SPLIT_START) / (SPLIT_END - SPLIT_START), 0.0, 1.0)
        moved = dense[:, index[below]] * share
        dense[:, index[below]] -= moved
        dense[:, index[name]] += moved
    up = np.array([_roll(name, out_tails[i] - out_heads[i]) for i, name in enumerate(names)])
    deform = np.array([bone.deform for bone in bones])  # metacarpals deform in the Mannequin, weightless here
    return names, parent_indices(bones), out_heads, out_tails, up, deform, dense


"""The UE5 Mannequin (Manny/Quinn) skeleton: bone names, parents and which bones deform the mesh.

Names and parents are exactly the Mannequin's, so a skeletal mesh made with them can import onto its
skeleton. `_l` is the character's own left (+X for a character facing -Y). Twist bones, `interaction` and
`center_of_mass` are left out; fingers are optional.
"""

from __future__ import annotations

from dataclasses import dataclass

SIDES = ("l", "r")
FINGERS = ("thumb", "index", "middle", "ring", "pinky")


@dataclass(frozen=True)
class BoneSpec:
    name: str
    parent: str | None
    deform: bool = True


def _arm(side: str) -> list[BoneSpec]:
    return [BoneSpec(f"clavicle_{side}", "spine_05"), BoneSpec(f"upperarm_{side}", f"clavicle_{side}"),
            BoneSpec(f"lowerarm_{side}", f"upperarm_{side}"), BoneSpec(f"hand_{side}", f"lowerarm_{side}")]


def _fingers(side: str) -> list[BoneSpec]:
    bones = []
    for finger in FINGERS:
        # The thumb hangs off the hand directly; the other four start with a metacarpal on UE5.
        parent = f"hand_{side}"
        if finger != "thumb":
            bones.append(BoneSpec(f"{finger}_metacarpal_{side}", parent))
            parent = f"{finger}_metacarpal_{side}"
        for joint in ("01", "02", "03"):
            bones.append(BoneSpec(f"{finger}_{joint}_{side}", parent))
            parent = f"{finger}_{joint}_{side}"
    return bones


def _leg(side: str) -> list[BoneSpec]:
    return [BoneSpec(f"thigh_{side}", "pelvis"), BoneSpec(f"calf_{side}", f"thigh_{side}"),
            BoneSpec(f"foot_{side}", f"calf_{side}"), BoneSpec(f"ball_{side}", f"foot_{side}")]


def mannequin_bones(fingers: bool = False) -> list[BoneSpec]:
    """The Mannequin's bones, every parent before its children, in the Mannequin's own order."""
    bones = [BoneSpec("root", None, deform=False), BoneSpec("pelvis", "root"), BoneSpec("spine_01", "pelvis")]
    bones += [BoneSpec(f"spine_0{i}", f"spine_0{i - 1}") for i in range(2, 6)]
    bones += [BoneSpec("neck_01", "spine_05"), BoneSpec("neck_02", "neck_01"), BoneSpec("head", "neck_02")]
    for side in SIDES:
        bones += _arm(side)
        if fingers:
            bones += _fingers(side)
    for side in SIDES:
        bones += _leg(side)
    bones += [BoneSpec("ik_foot_root", "root", deform=False), BoneSpec("ik_foot_l", "ik_foot_root", deform=False),
              BoneSpec("ik_foot_r", "ik_foot_root", deform=False), BoneSpec("ik_hand_root", "root", deform=False),
              BoneSpec("ik_hand_gun", "ik_hand_root", deform=False),
              BoneSpec("ik_hand_l", "ik_hand_gun", deform=False), BoneSpec("ik_hand_r", "ik_hand_gun", deform=False)]
    return bones


def parent_indices(bones: list[BoneSpec]) -> list[int]:
    """Each bone's parent as an index into `bones` (-1 for the root)."""
    index = {bone.name: i for i, bone in enumerate(bones)}
    return [index[bone.parent] if bone.parent else -1 for bone in bones]

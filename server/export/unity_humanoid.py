"""Unity Humanoid avatar slots (HumanBodyBones names) for the UE5 Mannequin bones a rig carries."""

from __future__ import annotations

# Unity's HumanBodyBones name -> the Mannequin bone that fills it. Spine, Chest and UpperChest take every
# other spine bone of the five, so each Unity slot keeps a bone between it and the next one up.
BODY = {
    "Hips": "pelvis", "Spine": "spine_01", "Chest": "spine_03", "UpperChest": "spine_05",
    "Neck": "neck_01", "Head": "head",
}
LIMBS = {
    "Shoulder": "clavicle", "UpperArm": "upperarm", "LowerArm": "lowerarm", "Hand": "hand",
    "UpperLeg": "thigh", "LowerLeg": "calf", "Foot": "foot", "Toes": "ball",
}
FINGERS = {"Thumb": "thumb", "Index": "index", "Middle": "middle", "Ring": "ring", "Little": "pinky"}
PHALANGES = {"Proximal": "01", "Intermediate": "02", "Distal": "03"}
# The slots Unity needs filled before it accepts an avatar as Humanoid.
REQUIRED = ("Hips", "Spine", "Head") + tuple(
    f"{side}{part}" for side in ("Left", "Right")
    for part in ("UpperLeg", "LowerLeg", "Foot", "UpperArm", "LowerArm", "Hand"))
# Each slot's nearest slot above it in Unity's humanoid hierarchy (optional slots skipped over when empty).
HUMAN_PARENTS = {
    "Hips": None, "Spine": "Hips", "Chest": "Spine", "UpperChest": "Chest", "Neck": "UpperChest",
    "Head": "Neck",
    **{f"{side}{part}": parent for side in ("Left", "Right") for part, parent in (
        ("Shoulder", "UpperChest"), ("UpperArm", f"{side}Shoulder"), ("LowerArm", f"{side}UpperArm"),
        ("Hand", f"{side}LowerArm"), ("UpperLeg", "Hips"), ("LowerLeg", f"{side}UpperLeg"),
        ("Foot", f"{side}LowerLeg"), ("Toes", f"{side}Foot"))},
    **{f"{side}{finger}{phalanx}": (f"{side}Hand" if phalanx == "Proximal" else f"{side}{finger}{before}")
       for side in ("Left", "Right") for finger in FINGERS
       for phalanx, before in (("Proximal", None), ("Intermediate", "Proximal"), ("Distal", "Intermediate"))},
}


def human_slots() -> dict[str, str]:
    """Every HumanBodyBones name we fill -> the Mannequin bone for it (`_l` is Unity's Left)."""
    slots = dict(BODY)
    for side, suffix in (("Left", "l"), ("Right", "r")):
        for part, bone in LIMBS.items():
            slots[f"{side}{part}"] = f"{bone}_{suffix}"
        for finger, bone in FINGERS.items():
            for phalanx, joint in PHALANGES.items():
                slots[f"{side}{finger}{phalanx}"] = f"{bone}_{joint}_{suffix}"
    return slots


def humanoid_section(bone_names: list[str]) -> dict:
    """The manifest's Unity Humanoid mapping for a rig with these bones: our bone -> HumanBodyBones name."""
    present = set(bone_names)
    mapping = {bone: slot for slot, bone in human_slots().items() if bone in present}
    filled = set(mapping.values())
    return {
        "bone_map": mapping,
        "required_missing": [slot for slot in REQUIRED if slot not in filled],
        "unmapped_bones": [b for b in bone_names if b not in mapping],
        "how": "Model import settings > Rig: Animation Type Humanoid, Avatar Definition Create From This Model, "
               "then Configure: each HumanBodyBones slot takes the bone bone_map names for it",
        "reference": "Unity HumanBodyBones (ScriptReference); the bones are the UE5 Mannequin's",
    }

"""The rig stage's template method: a UE5 Mannequin skeleton fitted to a humanoid mesh, with bone-heat
skin weights, on the CPU and without model weights."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, RefusedInput
from ..schema import RIG, plain_value
from ..meshdata import MeshArrays
from .heat import bone_heat_weights
from .landmarks import find_landmarks
from .placement import place_bones
from .skeleton import mannequin_bones, parent_indices

MAX_VERTICES = 200_000   # 105k vertices took 10-20 s and 0.7 GB on 2 cores, mostly the weights; LOD0 is far smaller
SKELETONS = ("ue5_mannequin",)
# Bones that must lead some vertices, or the fit is refused.
LIMB_BONES = frozenset({"pelvis", "head"} | {f"{bone}_{side}" for side in "lr" for bone in
                                            ("thigh", "calf", "foot", "upperarm", "lowerarm", "hand")})


@dataclass(frozen=True)
class RigOptions:
    """max_influences: bones per vertex kept (UE5 and glTF read 4 per set); fingers: add the Mannequin's
    finger bones (placed by hand proportions inside each hand); skeleton: only ue5_mannequin here."""

    max_influences: int = 4
    fingers: bool = False
    skeleton: str = "ue5_mannequin"


def rig_options(options: dict | RigOptions | None = None) -> RigOptions:
    """Checked RigOptions from a dict (as the API passes them); InputError names any bad key or value."""
    if options is None:
        return RigOptions()
    if isinstance(options, RigOptions):
        values = {"max_influences": options.max_influences, "fingers": options.fingers,
                  "skeleton": options.skeleton}
    elif isinstance(options, dict):
        values = dict(options)
    else:
        raise InputError("options", options, "a dict of rig options")
    known = {"max_influences", "fingers", "skeleton"}
    for key in values:
        if key not in known:
            raise InputError(f"options.{key}", values[key], f"one of the rig options {sorted(known)}")
    influences = RIG.field("max_influences").check(plain_value(values.get("max_influences", 4)))
    fingers = RIG.field("fingers").check(plain_value(values.get("fingers", False)))
    skeleton = values.get("skeleton", "ue5_mannequin")
    if skeleton not in SKELETONS:
        raise InputError("options.skeleton", skeleton, f"one of {list(SKELETONS)} for the template method")
    return RigOptions(int(influences), bool(fingers), skeleton)


@dataclass
class RigResult:
    """A skeleton and skin weights for one mesh, in the mesh's axes (Blender: metres, Z up, facing -Y).

    bone_names/parents: the Mannequin's bones, parents before children (parents[i] == -1 for root).
    heads/tails: (b, 3) bone ends; a bone's head is its joint. up: (b, 3) the direction each bone's local
    Z axis leans to (give it to Blender's EditBone.align_roll). deform: (b,) which bones carry weights
    (root and the ik_ bones do not). influence_bones/influence_weights: (n, k) per mesh vertex, bone
    indices (-1 for an empty slot) and weights, largest first; every row sums to 1 and k is at most
    max_influences. report: what was found and measured, JSON-ready.
    """

    bone_names: list[str]
    parents: list[int]
    heads: np.ndarray
    tails: np.ndarray
    up: np.ndarray
    deform: np.ndarray
    influence_bones: np.ndarray
    influence_weights: np.ndarray
    report: dict = field(default_factory=dict)

    @property
    def joints(self) -> dict[str, np.ndarray]:
        """Each bone's joint (head) position by name."""
        return {name: self.heads[i] for i, name in enumerate(self.bone_names)}

    @property
    def parent_names(self) -> dict[str, str | None]:
        return {name: (self.bone_names[p] if p >= 0 else None) for name, p in zip(self.bone_names, self.parents)}

    def dense_weights(self) -> np.ndarray:
        """(vertices, bones) weight matrix."""
        out = np.zeros((len(self.influence_bones), len(self.bone_names)))
        rows, slots = np.nonzero(self.influence_bones >= 0)
        out[rows, self.influence_bones[rows, slots]] = self.influence_weights[rows, slots]
        return out

    def save(self, path) -> None:
        """Write the rig to one .npz (arrays, plus names and report as JSON text), e.g. into an asset's folder."""
        np.savez_compressed(
            path, heads=self.heads, tails=self.tails, up=self.up, deform=self.deform,
            parents=np.asarray(self.parents, dtype=np.int64), influence_bones=self.influence_bones,
            influence_weights=self.influence_weights,
            names=np.array(json.dumps(self.bone_names)), report=np.array(json.dumps(self.report)))

    @classmethod
    def load(cls, path) -> "RigResult":
        """A rig written by save()."""
        with np.load(path, allow_pickle=False) as data:
            return cls(json.loads(str(data["names"])), data["parents"].tolist(), data["heads"], data["tails"],
                       data["up"], data["deform"], data["influence_bones"], data["influence_weights"],
                       json.loads(str(data["report"])))


def weld(vertices: np.ndarray, faces: np.ndarray, tolerance: float):
    """Merge vertices at one position, to within `tolerance` (UV seams split them): (vertices, faces, inverse).

    Positions are snapped to a grid of that pitch, so copies of one vertex always merge.
    """
    key = np.round(np.asarray(vertices) / tolerance).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    welded_faces = inverse[np.asarray(faces)]
    keep = ((welded_faces[:, 0] != welded_faces[:, 1]) & (welded_faces[:, 1] != welded_faces[:, 2])
            & (welded_faces[:, 0] != welded_faces[:, 2]))
    return np.asarray(vertices)[first], welded_faces[keep], inverse


def _open_edges(faces: np.ndarray) -> int:
    """Edges not shared by exactly two triangles."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return int((counts != 2).sum())


def rig_mesh(mesh: MeshArrays, options: dict | RigOptions | None = None) -> RigResult:
    """Fit the UE5 Mannequin skeleton to a watertight humanoid in a T- or A-pose and skin it by bone heat.

    The mesh is in Blender axes (Z up, facing -Y, its own left on +X); vertices split along UV seams are
    welded for the fit and the weights, and every input vertex gets the weights of its welded position.
    Raises InputError for bad options or a mesh that is not closed, RefusedInput (with what was found)
    for a mesh that is not a humanoid standing in a T- or A-pose.
    """
    started = time.perf_counter()
    opts = rig_options(options)
    mesh.validate("mesh")
    if len(mesh.vertices) > MAX_VERTICES:
        raise InputError("mesh", f"{len(mesh.vertices)} vertices",
                         f"at most {MAX_VERTICES} vertices (rig a decimated LOD0)")
    size = float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    if size <= 0:
        raise InputError("mesh", "all vertices at one point", "a mesh with a size")
    vertices, faces, inverse = weld(mesh.vertices, mesh.faces, 1e-6 * size)
    open_edges = _open_edges(faces)
    if open_edges:
        raise InputError("mesh", f"{open_edges} open or non-manifold edges",
                         "a closed (watertight) mesh; run postprocess with repair on first")
    landmarks = find_landmarks(vertices, faces)
    fitted = time.perf_counter()
    bones = mannequin_bones(fingers=opts.fingers)
    names = [bone.name for bone in bones]
    placement = place_bones(landmarks, bones)
    deform = np.array([bone.deform for bone in bones])
    deforming = np.unique(placement.heat_bones)
    # Heat works on the deforming bones only, numbered 0..d-1 there.
    local = np.full(len(names), -1)
    local[deforming] = np.arange(len(deforming))
    heat = bone_heat_weights(vertices, faces, placement.heat_heads, placement.heat_tails,
                             local[placement.heat_bones], max_influences=opts.max_influences)
    weighted = time.perf_counter()
    bone_of = np.where(heat.bones >= 0, deforming[np.maximum(heat.bones, 0)], -1)[inverse]
    weights = heat.weights[inverse]
    dominant = np.bincount(bone_of[:, 0], minlength=len(names))
    idle = [names[i] for i in np.flatnonzero(deform) if dominant[i] == 0]
    misfit = [name for name in idle if name in LIMB_BONES]
    if misfit:
        # A limb, the pelvis or the head that leads no vertex means the skeleton does not sit in this body.
        # Short bones between them (spine_0N, neck_0N, clavicles, balls, fingers) may lead nowhere on a
        # coarse or mitten-handed mesh and still deform with their neighbours: the report lists them.
        raise RefusedInput(f"mesh: no vertex follows {', '.join(misfit)} most; the fitted skeleton does not "
                           "fit this body")
    report = {
        "method": "template",
        "skeleton": opts.skeleton,
        "pose": landmarks.info["pose"],
        "height": round(landmarks.height, 4),
        "bones": len(names),
        "deform_bones": int(deform.sum()),
        "vertices": int(len(mesh.vertices)),
        "welded_vertices": int(len(vertices)),
        "max_influences": opts.max_influences,
        "unseen_vertices": heat.info["unseen_vertices"],
        "parts": heat.info["parts"],
        "parts_without_sight": heat.info["parts_without_sight"],
        "idle_bones": idle,
        "seconds": {"landmarks": round(fitted - started, 3), "weights": round(weighted - fitted, 3),
                    "total": round(time.perf_counter() - started, 3)},
        "landmarks": {k: v for k, v in landmarks.info.items()},
        "joints": {name: [round(float(c), 5) for c in placement.heads[i]] for i, name in enumerate(names)},
    }
    return RigResult(names, parent_indices(bones), placement.heads, placement.tails, placement.up, deform,
                     bone_of, weights, report)

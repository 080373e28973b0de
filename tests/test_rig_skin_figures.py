"""The template rig on a second family of bodies it was not tuned on: stick figures grown by Blender's Skin
modifier (bpy in a subprocess), with the figure's nodes as the true joints."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from server.export.fbx import bpy_available
from server.rigging import rig_mesh
from tests.humanoids import CAST, MEASURED_JOINTS, make_skin_humanoid

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not bpy_available(), reason="bpy (Blender as a module, cp311) is not installed")]

FIGURES = ("t_pose_average", "a_pose_stocky", "t_pose_tall_slim", "a_pose_long_arms")


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    out = {}
    for name in FIGURES:
        human = make_skin_humanoid(CAST[name], tmp_path_factory.mktemp(name))
        out[name] = (human, rig_mesh(human.mesh))
    return out


@pytest.mark.parametrize("name", FIGURES)
def test_joint_error_on_skin_figures(name, figures):
    human, rig = figures[name]
    errors = {j: float(np.linalg.norm(rig.joints[j] - human.joints[j])) / human.height for j in MEASURED_JOINTS}
    assert np.mean(list(errors.values())) <= 0.03, errors
    assert max(errors.values()) <= 0.06, errors


@pytest.mark.parametrize("name", FIGURES)
def test_weights_on_skin_figures(name, figures):
    human, rig = figures[name]
    np.testing.assert_allclose(rig.influence_weights.sum(axis=1), 1.0, atol=1e-9)
    assert (rig.influence_bones[:, 0] >= 0).all() and rig.influence_bones.shape[1] == 4
    leading = set(np.unique(rig.influence_bones[:, 0]))
    for bone in ("pelvis", "head", "thigh_l", "calf_r", "foot_l", "upperarm_r", "lowerarm_l", "hand_r"):
        assert rig.bone_names.index(bone) in leading, bone
    # the elbow test on this family too
    pivot = rig.joints["lowerarm_r"]
    turn = Rotation.from_rotvec([0.0, 0.0, np.pi / 2]).as_matrix()
    moving = [rig.bone_names.index(b) for b in ("lowerarm_r", "hand_r")]
    share = rig.dense_weights()[:, moving].sum(axis=1)
    vertices = human.mesh.vertices
    moved = np.linalg.norm(share[:, None] * ((vertices - pivot) @ turn.T + pivot - vertices), axis=1)
    left_arm = np.isin(rig.influence_bones[:, 0], [rig.bone_names.index(b) for b in ("upperarm_l", "lowerarm_l", "hand_l")])
    assert left_arm.any() and moved[left_arm].max() < 1e-3
    assert moved[rig.influence_bones[:, 0] == rig.bone_names.index("hand_r")].min() > 0.05 * human.height

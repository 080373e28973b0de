"""Stands under gravity: boxes and cones stand, a pole on a tiny foot falls, a box on a corner is turned flat."""

import numpy as np
import pytest
import trimesh

from server.errors import InputError
from server.meshdata import MeshArrays
from server.stages.stability import mass_properties, most_stable_pose, stands_upright


def arrays(mesh: trimesh.Trimesh) -> MeshArrays:
    return MeshArrays(mesh.vertices, mesh.faces)


def on_ground(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    mesh.apply_translation((0, 0, -mesh.bounds[0, 2]))
    return mesh


def pole_on_a_tiny_foot() -> trimesh.Trimesh:
    foot = trimesh.creation.cylinder(radius=0.01, height=0.04, sections=16)
    foot.apply_translation((0, 0, 0.02))
    shaft = trimesh.creation.cylinder(radius=0.03, height=1.5, sections=16)
    shaft.apply_translation((0, 0, 0.04 + 0.75))
    return trimesh.util.concatenate([foot, shaft])


def box_on_a_corner() -> trimesh.Trimesh:
    box = trimesh.creation.box((0.4, 0.3, 0.2))
    box.apply_transform(trimesh.transformations.rotation_matrix(np.radians(45), (1, 0, 0)))
    box.apply_transform(trimesh.transformations.rotation_matrix(np.radians(35), (0, 1, 0)))
    return on_ground(box)


@pytest.mark.parametrize("shape", ["box", "cone"])
def test_box_and_cone_on_their_bases_stand(shape):
    mesh = on_ground(trimesh.creation.box((0.4, 0.3, 0.2)) if shape == "box"
                     else trimesh.creation.cone(radius=0.2, height=0.5, sections=32))
    result = stands_upright(arrays(mesh))
    assert result["stable"] and result["settled"]
    assert result["tilt_deg"] < 1.0
    assert result["collision"] == "convex_hull" and result["inertia_from"] == "mesh"
    assert len(result["drops"]) == 5


def test_tall_pole_on_a_tiny_foot_falls_over():
    result = stands_upright(arrays(pole_on_a_tiny_foot()))
    assert not result["stable"]
    assert result["tilt_deg"] > 20


def test_cone_on_its_tip_falls_over():
    cone = trimesh.creation.cone(radius=0.2, height=0.5, sections=32)
    cone.apply_transform(trimesh.transformations.rotation_matrix(np.pi, (1, 0, 0)))
    result = stands_upright(arrays(on_ground(cone)))
    assert not result["stable"] and result["tilt_deg"] > 20


def test_hulls_are_the_collision_shapes_when_given():
    # A table: a top on two legs; the render mesh is the union of three closed boxes.
    parts = []
    for size, centre in (((1.0, 0.4, 0.05), (0, 0, 0.725)), ((0.05, 0.4, 0.7), (-0.45, 0, 0.35)),
                         ((0.05, 0.4, 0.7), (0.45, 0, 0.35))):
        part = trimesh.creation.box(size)
        part.apply_translation(centre)
        parts.append(part)
    table = trimesh.util.concatenate(parts)
    result = stands_upright(arrays(table), [arrays(p) for p in parts])
    assert result["collision"] == "hulls" and result["stable"] and result["tilt_deg"] < 1.0
    # Shift the top far past one leg: the same hulls now tip over.
    parts[0].apply_translation((1.2, 0, 0))
    tipped = trimesh.util.concatenate(parts)
    assert not stands_upright(arrays(tipped), [arrays(p) for p in parts])["stable"]


def test_box_on_a_corner_is_turned_onto_a_face():
    box = box_on_a_corner()
    assert not stands_upright(arrays(box))["stable"]
    rotation, report = most_stable_pose(arrays(box))
    assert report["stable"] and report["chosen"] == 0  # a box stands on its most probable resting face
    assert np.allclose(rotation @ rotation.T, np.eye(3)) and np.linalg.det(rotation) == pytest.approx(1.0)
    turned = on_ground(trimesh.Trimesh(box.vertices @ rotation.T, box.faces))
    # Flat on a face: four corners touch the ground and the height is one of the box's sides.
    assert np.sum(np.isclose(turned.vertices[:, 2], 0, atol=1e-6)) == 4
    assert min(abs(np.ptp(turned.vertices[:, 2]) - side) for side in (0.4, 0.3, 0.2)) < 1e-6
    assert stands_upright(arrays(turned))["stable"]


def test_mass_properties_prefer_the_closed_render_mesh():
    box = trimesh.creation.box((1.0, 0.5, 0.2))
    mass, com, inertia, source = mass_properties(arrays(box))
    assert source == "mesh" and mass == pytest.approx(100.0) and np.allclose(com, 0)
    assert inertia[0, 0] == pytest.approx(100.0 * (0.5**2 + 0.2**2) / 12)
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-2])
    _, _, _, source = mass_properties(arrays(open_box))
    assert source == "convex_hull"


def test_arguments_are_checked():
    box = arrays(trimesh.creation.box())
    with pytest.raises(InputError) as error:
        stands_upright(box, seconds=0)
    assert error.value.argument == "seconds"
    with pytest.raises(InputError) as error:
        stands_upright(box, hulls=[box, "hull"])
    assert error.value.argument == "hulls"

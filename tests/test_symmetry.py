"""Symmetrize: asymmetric shapes come out mirror-symmetric, watertight, with their colours."""

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from server.errors import ForgeError, InputError
from server.meshdata import MeshArrays
from server.stages.symmetry import symmetrize

AXIS = {"x": 0, "y": 1}


def lopsided_sphere():
    """A watertight sphere stretched on +X and +Y and shifted, coloured by position."""
    sphere = trimesh.creation.icosphere(subdivisions=4)
    vertices = sphere.vertices.copy()
    vertices[vertices[:, 0] > 0, 0] *= 1.6
    vertices[vertices[:, 1] > 0, 1] *= 1.3
    vertices += (0.05, -0.03, 0.0)
    colors = np.column_stack([np.clip(128 + 100 * vertices, 0, 255), np.full(len(vertices), 255)])
    return MeshArrays(vertices, sphere.faces, colors=colors.astype(np.uint8))


def bumped_box():
    """A unit box with a smaller box poking out of its +X face: two closed shells, so watertight."""
    box = trimesh.creation.box(extents=(1, 1, 1))
    bump = trimesh.creation.box(extents=(0.4, 0.3, 0.3))
    bump.apply_translation((0.6, 0.1, 0.2))
    both = trimesh.util.concatenate([box, bump])
    return MeshArrays(both.vertices, both.faces)


def mirror_partner(mesh, axis):
    """For each vertex: distance to the nearest vertex of the mirrored mesh, and that vertex's index."""
    mirrored = mesh.vertices.copy()
    mirrored[:, AXIS[axis]] *= -1
    return cKDTree(mesh.vertices).query(mirrored)


def assert_mirror_symmetric(mesh, axis):
    distance, partner = mirror_partner(mesh, axis)
    assert distance.max() < 1e-9  # every vertex's mirror image is a vertex, so lies on the surface
    # and the triangles match too: each face's mirror image (reversed winding) is a face
    faces = {tuple(sorted(face)) for face in mesh.faces.tolist()}
    assert {tuple(sorted(face)) for face in partner[mesh.faces].tolist()} == faces
    surface = mesh.to_trimesh()
    assert surface.is_watertight and surface.is_winding_consistent and surface.volume > 0


@pytest.mark.parametrize("axis,keep", [("x", "positive"), ("x", "negative"), ("y", "positive"), ("y", "negative")])
def test_lopsided_sphere_becomes_mirror_symmetric(axis, keep):
    mesh = lopsided_sphere()
    assert mirror_partner(mesh, axis)[0].max() > 0.05  # not symmetric to begin with
    result = symmetrize(mesh, axis, keep)
    assert_mirror_symmetric(result, axis)
    k = AXIS[axis]
    kept = mesh.vertices[:, k].max() if keep == "positive" else -mesh.vertices[:, k].min()
    assert result.vertices[:, k].max() == pytest.approx(kept)
    assert result.vertices[:, k].min() == pytest.approx(-kept)
    record = result.info["symmetry"]
    assert record["axis"] == axis and record["keep"] == keep and record["watertight"]
    assert record["seam_vertices"] > 20 and record["faces_after"] == result.face_count


def test_colours_are_carried_and_mirrored():
    mesh = lopsided_sphere()
    result = symmetrize(mesh, "x", "negative")
    _, partner = mirror_partner(result, "x")
    assert (result.colors == result.colors[partner]).all()
    # the kept side keeps its own colours: red channel = 128 + 100 x on the -X side
    kept = result.vertices[:, 0] < -0.1
    original = dict(zip(map(tuple, mesh.vertices.round(9)), map(tuple, mesh.colors)))
    survivors = [original[tuple(v)] == tuple(c)
                 for v, c in zip(result.vertices[kept].round(9), result.colors[kept]) if tuple(v) in original]
    assert len(survivors) > 100 and all(survivors)
    assert result.uv is None and result.normals is None


def test_box_with_a_bump_on_one_side_gets_it_on_both():
    mesh = bumped_box()
    result = symmetrize(mesh, "x", "positive")
    assert_mirror_symmetric(result, "x")
    assert result.vertices[:, 0].min() == pytest.approx(-0.8)
    # the half box and its mirror close up into the box, and the bump appears twice
    assert result.to_trimesh().volume == pytest.approx(1.0 + 2 * 0.4 * 0.3 * 0.3)
    assert np.isclose(result.vertices[:, 0], 0).sum() == result.info["symmetry"]["seam_vertices"]


def test_a_face_lying_in_the_plane_is_removed_not_doubled():
    box = trimesh.creation.box(bounds=[[0, -0.5, -0.5], [1, 0.5, 0.5]])  # its -X face lies on x = 0
    result = symmetrize(MeshArrays(box.vertices, box.faces), "x", "positive")
    assert result.info["symmetry"]["in_plane_faces_removed"] == 2
    assert_mirror_symmetric(result, "x")
    assert result.to_trimesh().volume == pytest.approx(2.0)


def test_off_returns_the_input_unchanged():
    mesh = lopsided_sphere()
    assert symmetrize(mesh, "off") is mesh
    assert symmetrize(mesh) is mesh


def test_bad_arguments_and_an_empty_side_are_refused():
    mesh = lopsided_sphere()
    for axis in ("z", "X", "", None):
        with pytest.raises(InputError, match="axis"):
            symmetrize(mesh, axis)
    with pytest.raises(InputError, match="keep"):
        symmetrize(mesh, "x", "left")
    shifted = MeshArrays(mesh.vertices + (5.0, 0, 0), mesh.faces)
    with pytest.raises(ForgeError, match="nothing of the mesh lies on the negative side"):
        symmetrize(shifted, "x", "negative")

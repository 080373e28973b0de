"""Cleanup: duplicates, zero-area and non-manifold faces, floating specks and orientation, colours kept."""

import numpy as np
import pytest
import trimesh

from server.errors import ForgeError, InputError
from server.meshdata import MeshArrays
from server.stages.cleanup import cleanup


def color_of(points):
    """A colour that is a function of position, so survivors can be checked after reindexing."""
    rgb = np.clip(np.rint((points + 1.5) / 3 * 255), 0, 255)
    return np.column_stack([rgb, np.full(len(points), 255)]).astype(np.uint8)


def messy_sphere():
    """A unit sphere, inside out, split along a seam, with doubled, zero-area faces and a floating speck."""
    sphere = trimesh.creation.icosphere(subdivisions=3)
    vertices = sphere.vertices.copy()
    faces = sphere.faces[:, ::-1].copy()  # inside out: negative volume
    # split along x = 0: faces on +X use copies of their vertices, as exporters do at UV seams
    plus = vertices[faces].mean(axis=1)[:, 0] > 0
    copied, inverse = np.unique(faces[plus], return_inverse=True)
    faces[plus] = len(vertices) + inverse.reshape(-1, 3)
    vertices = np.vstack([vertices, vertices[copied]])
    doubled = faces[:7]
    collinear = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.2, 0.0, 0.0]])
    speck = trimesh.creation.icosphere(subdivisions=1, radius=0.01)
    speck.apply_translation((3.0, 0.0, 0.0))
    m = len(vertices)
    vertices = np.vstack([vertices, collinear, speck.vertices])
    faces = np.vstack([faces, doubled, [[m, m + 1, m + 2]], [[0, 0, 1]], speck.faces + m + 3])
    return MeshArrays(vertices, faces, colors=color_of(vertices)), sphere, len(copied)


def test_messy_sphere_comes_out_clean_closed_and_outward():
    mesh, sphere, copied = messy_sphere()
    surface = mesh.to_trimesh()
    assert not surface.is_watertight and surface.volume < 0  # the input really is broken

    clean = cleanup(mesh)
    surface = clean.to_trimesh()
    assert clean.face_count == len(sphere.faces)
    assert len(clean.vertices) == len(sphere.vertices)
    assert surface.is_watertight and surface.is_winding_consistent
    assert surface.volume == pytest.approx(sphere.volume, rel=1e-6)
    assert np.linalg.norm(clean.vertices, axis=1).max() < 1.0 + 1e-9  # the speck at x = 3 is gone

    record = clean.info["cleanup"]
    assert record["duplicate_vertices_merged"] == copied
    assert record["unreferenced_vertices_removed"] == 3  # the corners of the collinear face
    assert record["duplicate_faces_removed"] == 7
    assert record["zero_area_faces_removed"] == 2
    assert record["components_removed"] == 1 and record["faces_removed_with_components"] == 80
    assert record["components_flipped"] == 1 and record["open_components"] == 0
    assert record["faces_before"] == mesh.face_count and record["faces_after"] == clean.face_count

    assert clean.colors is not None and (clean.colors == color_of(clean.vertices)).all()


def test_incoherent_half_is_flipped_to_match():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    faces = sphere.faces.copy()
    half = sphere.vertices[faces].mean(axis=1)[:, 2] > 0
    faces[half] = faces[half][:, ::-1]
    assert not trimesh.Trimesh(sphere.vertices, faces, process=False).is_winding_consistent
    surface = cleanup(MeshArrays(sphere.vertices, faces)).to_trimesh()
    assert surface.is_winding_consistent and surface.volume == pytest.approx(sphere.volume)


def test_separate_inverted_part_is_flipped_but_a_cavity_is_left_pointing_inward():
    outer = trimesh.creation.icosphere(subdivisions=3)
    cavity = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    cavity.invert()
    loose = trimesh.creation.icosphere(subdivisions=3, radius=0.6)
    loose.invert()
    loose.apply_translation((3.0, 0, 0))
    parts = trimesh.util.concatenate([outer, cavity, loose])
    clean = cleanup(MeshArrays(parts.vertices, parts.faces))
    record = clean.info["cleanup"]
    assert record["components"] == 3 and record["components_flipped"] == 1 and record["nested_components"] == 1
    assert clean.to_trimesh().volume == pytest.approx(outer.volume + cavity.volume - loose.volume)
    assert cavity.volume < 0 < -loose.volume


def test_shells_touching_along_an_edge_are_split_not_holed():
    a = trimesh.creation.box(bounds=[[0, 0, 0], [1, 1, 1]])
    b = trimesh.creation.box(bounds=[[1, 1, 0], [2, 2, 1]])
    touching = trimesh.util.concatenate([a, b])
    touching.merge_vertices()
    assert not touching.is_watertight  # the shared edge has four faces
    clean = cleanup(MeshArrays(touching.vertices, touching.faces))
    assert clean.info["cleanup"]["non_manifold_edges"] >= 1
    assert clean.face_count == 24 and clean.to_trimesh().is_watertight
    assert clean.to_trimesh().volume == pytest.approx(2.0)


def test_a_large_part_with_few_triangles_is_not_a_speck():
    sphere = trimesh.creation.icosphere(subdivisions=4)  # 5120 faces
    blade = trimesh.creation.box(extents=(0.1, 0.1, 1.5))  # 12 faces, well under 1 % of the sphere's
    blade.apply_translation((2.0, 0, 0))
    speck = trimesh.creation.box(extents=(0.05, 0.05, 0.05))
    speck.apply_translation((-2.0, 0, 0))
    parts = trimesh.util.concatenate([sphere, blade, speck])
    clean = cleanup(MeshArrays(parts.vertices, parts.faces))
    assert clean.info["cleanup"]["components_removed"] == 1
    assert clean.face_count == len(sphere.faces) + 12
    assert clean.vertices[:, 0].max() > 2.0 and clean.vertices[:, 0].min() > -1.01

    everything = cleanup(MeshArrays(parts.vertices, parts.faces), min_component_fraction=0)
    assert everything.face_count == len(parts.faces)


def test_everything_degenerate_and_bad_arguments_are_refused():
    flat = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], float)
    with pytest.raises(ForgeError, match="removed every triangle"):
        cleanup(MeshArrays(flat, [[0, 1, 2]]))
    with pytest.raises(ForgeError, match="at least one triangle"):
        cleanup(MeshArrays(np.zeros((0, 3)), np.zeros((0, 3), np.int64)))
    sphere = trimesh.creation.icosphere(subdivisions=1)
    with pytest.raises(InputError, match="min_component_fraction"):
        cleanup(MeshArrays(sphere.vertices, sphere.faces), min_component_fraction=1.5)

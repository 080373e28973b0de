"""Cleanup: duplicates, zero-area and non-manifold faces, floating specks and orientation, colours kept."""

import numpy as np
import pytest
import trimesh

from server.errors import ForgeError, InputError
from server.meshdata import MeshArrays
from server.stages.cleanup import cleanup, surface_check


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


def cones_touching_at_a_tip():
    """Two closed cones meeting tip to tip at one shared vertex: every edge is fine, that vertex is not."""
    top = trimesh.creation.cone(radius=1.0, height=1.0, sections=16)
    bottom = top.copy()
    bottom.apply_transform(trimesh.transformations.rotation_matrix(np.pi, [1, 0, 0]))
    bottom.apply_translation((0, 0, 2.0))
    both = trimesh.util.concatenate([top, bottom])
    both.merge_vertices()
    return both


def test_surface_check_finds_what_the_pymeshlab_pass_would_fix():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    assert surface_check(sphere.vertices, sphere.faces) == {
        "watertight": True, "closed_manifold": True, "zero_area_faces": 0, "shared_positions": 0, "unreferenced_vertices": 0,
        "clean": True}
    mesh, _, copied = messy_sphere()
    messy = surface_check(mesh.vertices, mesh.faces)
    assert not messy["clean"] and not messy["closed_manifold"]
    assert messy["shared_positions"] == copied and messy["zero_area_faces"] == 2
    half = sphere.faces.copy()
    half[:100] = half[:100, ::-1]
    flipped = surface_check(sphere.vertices, half)
    assert flipped["watertight"] and not flipped["closed_manifold"]  # wound both ways
    cones = cones_touching_at_a_tip()
    assert cones.is_watertight and cones.is_winding_consistent  # trimesh sees no fault: the tip is shared
    tip = surface_check(cones.vertices, cones.faces)
    assert tip["watertight"] and not tip["closed_manifold"]
    holed = surface_check(sphere.vertices, sphere.faces[:-1])
    assert not holed["watertight"] and not holed["closed_manifold"]


def test_the_check_does_not_depend_on_the_order_of_faces_and_vertices(monkeypatch):
    from server.stages import cleanup as cleanup_module

    mesh, _, _ = messy_sphere()
    rng = np.random.default_rng(5)
    faces, vertex_order = rng.permutation(mesh.faces), rng.permutation(len(mesh.vertices))
    shuffled = surface_check(mesh.vertices[vertex_order], np.argsort(vertex_order)[faces])
    assert shuffled == surface_check(mesh.vertices, mesh.faces)
    # Rows that mix alike without being equal are settled by the exact sort: every row mixing to zero.
    monkeypatch.setattr(cleanup_module, "_ROW_MIX", np.zeros(3, np.uint64))
    assert surface_check(mesh.vertices, mesh.faces) == shuffled
    monkeypatch.setattr(cleanup_module, "ZERO_AREA_CHUNK", 50)  # the flat triangles counted in chunks on threads
    assert surface_check(mesh.vertices, mesh.faces) == shuffled


def test_the_pass_is_skipped_on_a_clean_mesh_with_the_same_result():
    outer = trimesh.creation.icosphere(subdivisions=3)
    cavity = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    cavity.invert()
    loose = trimesh.creation.icosphere(subdivisions=2, radius=0.6)
    loose.invert()
    loose.apply_translation((3.0, 0, 0))
    speck = trimesh.creation.icosphere(subdivisions=0, radius=0.001)
    speck.apply_translation((0, 3.0, 0))
    parts = trimesh.util.concatenate([outer, cavity, loose, speck])
    mesh = MeshArrays(parts.vertices, parts.faces, colors=color_of(parts.vertices))
    quick = cleanup(mesh)
    full = cleanup(mesh, checked={"closed_manifold": False, "clean": False})
    assert quick.info["cleanup"]["pymeshlab_pass"].startswith("skipped")
    assert full.info["cleanup"]["pymeshlab_pass"] == "ran"
    for key in ("components", "components_removed", "components_flipped", "nested_components", "faces_after"):
        assert quick.info["cleanup"][key] == full.info["cleanup"][key], key
    assert quick.to_trimesh().volume == pytest.approx(full.to_trimesh().volume)
    assert (quick.colors == color_of(quick.vertices)).all()


def test_non_manifold_tip_is_cleaned_by_the_full_pass():
    cones = cones_touching_at_a_tip()
    clean = cleanup(MeshArrays(cones.vertices, cones.faces))
    assert clean.info["cleanup"]["pymeshlab_pass"] == "ran"
    assert clean.info["cleanup"]["non_manifold_vertices"] >= 1
    assert surface_check(clean.vertices, clean.faces)["closed_manifold"]


def test_a_closed_mesh_keeps_a_flat_triangle_instead_of_opening_a_hole():
    """A triangle squeezed flat (a corner moved onto another, as float32 rounding does) breaks no edge."""
    sphere = trimesh.creation.icosphere(subdivisions=3)
    vertices = sphere.vertices.copy()
    a, b, c = sphere.faces[0]
    vertices[c] = vertices[a]
    found = surface_check(vertices, sphere.faces)
    assert found["closed_manifold"] and not found["clean"]
    assert found["zero_area_faces"] == 2 and found["shared_positions"] == 1  # both triangles on edge a-c
    kept = cleanup(MeshArrays(vertices, sphere.faces))
    assert kept.info["cleanup"]["pymeshlab_pass"].startswith("skipped")
    assert kept.info["cleanup"]["zero_area_faces_kept"] == 2
    assert kept.face_count == len(sphere.faces) and kept.to_trimesh().is_watertight

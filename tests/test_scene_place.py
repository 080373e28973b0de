"""server/scene/place.py without Blender: fitting a mesh to a mask drawn through the camera, hidden and clipped
edges, the smallest-move overlap resolution, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from skimage.draw import polygon
from scipy.spatial import ConvexHull

from server.errors import InputError, RefusedInput
from server.meshdata import MeshArrays
from server.scene.camera import SceneCamera
from server.scene.place import PlacedObject, place_object, place_objects, resolve_overlaps, transform_matrix
from server.scene.segment import ObjectMask

CAMERA = SceneCamera(480, 360, vfov_deg=50, camera_height_m=1.6, pitch_deg=15)


def unit_box(width=1.0, depth=1.0, height=1.0) -> MeshArrays:
    mesh = trimesh.creation.box(extents=[width, depth, height])
    return MeshArrays(mesh.vertices + [3.0, -2.0, 5.0], mesh.faces)  # origin far from the box


def drawn_mask(size, bottom_centre, yaw_deg, camera=CAMERA, hidden=(), clipped=()) -> ObjectMask:
    """The mask of a box standing at bottom_centre, drawn by filling its projected corners' hull."""
    w, d, h = size
    corners = np.array([[x, y, z] for x in (-w / 2, w / 2) for y in (-d / 2, d / 2) for z in (0, h)])
    world = corners @ transform_matrix(np.zeros(3), yaw_deg, [1, 1, 1])[:3, :3].T + bottom_centre
    rows, cols, _ = camera.project(world)
    hull = ConvexHull(np.column_stack([rows, cols]))
    mask = np.zeros((camera.height, camera.width), bool)
    rr, cc = polygon(rows[hull.vertices] - 0.5, cols[hull.vertices] - 0.5, mask.shape)
    mask[rr, cc] = True
    r, c = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    bottom = int(r[-1]) + 1
    return ObjectMask(1, mask, (int(r[0]), int(c[0]), bottom, int(c[-1]) + 1), int(mask.sum()), float(bottom),
                      float(np.flatnonzero(mask[bottom - 1]).mean() + 0.5), tuple(hidden), tuple(clipped))


def test_a_box_is_found_where_it_stands():
    where = np.array([0.8, 4.5, 0.0])
    yaw = np.degrees(np.arctan2(-0.8, 4.5))
    mask = drawn_mask((0.9, 0.6, 1.1), where, yaw)
    placed = place_object(mask, unit_box(1.0, 0.6 / 0.9, 1.0), CAMERA, "Box")
    lo, hi = placed.world_bounds()
    assert lo[2] == pytest.approx(0.0, abs=1e-9)  # standing on the ground
    assert placed.size_m == pytest.approx([0.9, 0.6, 1.1], rel=0.03)
    assert (lo[:2] + hi[:2]) / 2 == pytest.approx(where[:2], abs=0.04)
    assert placed.yaw_deg == pytest.approx(yaw, abs=0.5)
    assert placed.fit_residual_px < 0.5
    # the matrix puts the mesh's own origin at location, turned by the yaw and scaled
    assert placed.matrix @ np.array([0, 0, 0, 1.0]) == pytest.approx(np.append(placed.location, 1.0))


def test_a_hidden_side_is_left_out_and_the_scale_is_uniform():
    """With its right edge behind a neighbour (the mask cut short there), the box is placed from its other
    three edges; the cut edge would have made it narrower."""
    where = np.array([-0.5, 3.8, 0.0])
    yaw = np.degrees(np.arctan2(0.5, 3.8))
    full = drawn_mask((0.7, 0.7, 0.7), where, yaw)
    cut = full.mask.copy()
    cut[:, full.bbox[3] - 12:] = False  # the right 12 columns behind something nearer
    rows, cols = np.flatnonzero(cut.any(axis=1)), np.flatnonzero(cut.any(axis=0))
    hidden = ObjectMask(1, cut, (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1), int(cut.sum()),
                        full.base_row, full.base_col, ("right",))
    placed = place_object(hidden, unit_box(), CAMERA, "Crate")
    assert placed.size_m == pytest.approx([0.7, 0.7, 0.7], rel=0.03)
    assert any("right edge borders another object" in note for note in placed.notes)
    naive = place_object(ObjectMask(**{**hidden.__dict__, "hidden": ()}), unit_box(), CAMERA, "Crate")
    assert naive.size_m[0] < 0.9 * 0.7  # what using the cut edge would have given


def placed_box(name, lo_xy, size):
    """A PlacedObject whose world box is [lo_xy, lo_xy + size[:2]] x [0, size[2]] (no yaw)."""
    mesh = unit_box()
    lo = mesh.vertices.min(axis=0)
    location = np.array([lo_xy[0], lo_xy[1], 0.0]) - lo * np.asarray(size)
    return PlacedObject(name, mesh, location, 0.0, np.asarray(size, float), np.zeros(3), 0.0)


def test_overlaps_are_resolved_by_the_smallest_move():
    """The farther of two overlapping objects moves, by the shortest of right, left or back, plus the gap."""
    near = placed_box("near", (0.0, 3.0), (1.0, 1.0, 1.0))
    sideways = placed_box("far_side", (0.85, 3.5), (1.0, 1.0, 1.0))  # 0.15 m into near along X, 0.5 along Y
    behind = placed_box("far_back", (-0.3, 3.9), (1.5, 1.0, 1.0))  # 0.1 m into near along Y
    before = {p.name: p.location.copy() for p in (near, sideways, behind)}
    resolve_overlaps([near, sideways])
    assert near.location.tolist() == before["near"].tolist()
    assert sideways.moved_m == pytest.approx([0.15 + 0.002, 0.0, 0.0])
    resolve_overlaps([near, behind])
    assert behind.moved_m == pytest.approx([0.0, 0.1 + 0.002, 0.0])
    assert "moved 10.2 cm back out of near" in behind.notes


def test_a_crowd_ends_with_no_overlap_and_the_order_kept():
    rng = np.random.default_rng(11)
    crowd = [placed_box(f"o{i}", (rng.uniform(-1, 1), rng.uniform(3, 5)), (0.8, 0.8, rng.uniform(0.5, 1.5)))
             for i in range(8)]
    resolve_overlaps(crowd)
    boxes = [p.world_bounds() for p in crowd]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            shared = np.minimum(boxes[i][1], boxes[j][1]) - np.maximum(boxes[i][0], boxes[j][0])
            assert not np.all(shared > 0), (i, j)
    assert all(p.moved_m[1] >= 0 for p in crowd)  # nobody was pulled toward the camera


def test_bad_input_is_named():
    mask = drawn_mask((0.5, 0.5, 0.5), np.array([0.0, 4.0, 0.0]), 0.0)
    with pytest.raises(InputError, match="meshes"):
        place_objects([mask], [], CAMERA)
    with pytest.raises(InputError, match="names"):
        place_objects([mask, mask], [unit_box(), unit_box()], CAMERA, names=["A", "A"])
    with pytest.raises(InputError, match="fit"):
        place_object(mask, unit_box(), CAMERA, fit="guess")
    flat = MeshArrays(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0.0]]), np.array([[0, 1, 2]]))
    with pytest.raises(InputError, match="extent"):
        place_object(mask, flat, CAMERA, "Flat")
    with pytest.raises(InputError, match="MeshArrays"):
        place_object(mask, "mesh.glb", CAMERA)


def test_an_object_cut_by_the_bottom_edge_is_placed_from_its_other_edges():
    """A box so near that the picture cuts off its base: its top and sides, the camera height and the ground
    still give its distance and size."""
    where = np.array([0.2, 1.95, 0.0])
    yaw = np.degrees(np.arctan2(-0.2, 1.95))
    mask = drawn_mask((0.6, 0.6, 0.6), where, yaw)
    assert mask.bbox[2] == CAMERA.height  # cut by the bottom edge
    cut = ObjectMask(**{**mask.__dict__, "clipped": ("bottom",)})
    placed = place_object(cut, unit_box(), CAMERA, "Near")
    assert placed.size_m == pytest.approx([0.6, 0.6, 0.6], rel=0.03)
    lo, hi = placed.world_bounds()
    assert (lo[:2] + hi[:2]) / 2 == pytest.approx(where[:2], abs=0.03)
    assert any("bottom edge" in note for note in placed.notes)


def test_an_object_above_the_horizon_is_refused():
    """Its lowest pixels above the horizon: it cannot stand on the ground the assumed camera sees."""
    mask = np.zeros((CAMERA.height, CAMERA.width), bool)
    top = int(CAMERA.horizon_row) - 40
    mask[top:top + 20, 200:240] = True
    floating = ObjectMask(1, mask, (top, 200, top + 20, 240), int(mask.sum()), float(top + 20), 220.0)
    with pytest.raises(RefusedInput, match="horizon"):
        place_object(floating, unit_box(), CAMERA, "Bird")

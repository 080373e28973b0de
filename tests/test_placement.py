"""Pivot placement and scaling to a real-world height, with the transform recorded for other meshes."""

import numpy as np
import pytest
import trimesh

from server.errors import InputError
from server.meshdata import MeshArrays
from server.stages.placement import (HEIGHT_PRESETS, apply_placement, place, placement_record, resolve_height,
                                     scale_to_height)


def off_centre_box() -> MeshArrays:
    box = trimesh.creation.box((0.4, 0.2, 0.6))
    box.apply_translation((5.0, -3.0, 2.0))
    uv = np.random.default_rng(0).random((len(box.vertices), 2))
    return MeshArrays(box.vertices, box.faces, uv=uv, normals=np.array(box.vertex_normals))


def test_bottom_centre_moves_the_footprint_centre_and_lowest_point_to_the_origin():
    mesh = off_centre_box()
    before = mesh.vertices.copy()
    placed = place(mesh)
    low, high = placed.vertices.min(axis=0), placed.vertices.max(axis=0)
    assert np.allclose([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2]], 0, atol=1e-12)
    assert np.allclose(high - low, [0.4, 0.2, 0.6])
    record = placed.info["placement"]
    assert record["pivot"] == "bottom_centre" and record["scale"] == 1.0
    assert np.allclose(record["translation"], [-5.0, 3.0, -1.7])
    assert np.array_equal(placed.normals, mesh.normals) and np.array_equal(placed.uv, mesh.uv)
    assert np.array_equal(mesh.vertices, before) and "placement" not in mesh.info


def test_centre_and_custom_pivots():
    mesh = off_centre_box()
    centred = place(mesh, pivot="centre")
    assert np.allclose(centred.vertices.min(axis=0) + centred.vertices.max(axis=0), 0)
    custom = place(mesh, pivot="custom", custom_pivot=(5.0, -3.0, 1.7))
    assert np.allclose(custom.vertices, mesh.vertices - [5.0, -3.0, 1.7])
    with pytest.raises(InputError) as error:
        place(mesh, pivot="custom")
    assert error.value.argument == "custom_pivot"
    with pytest.raises(InputError) as error:
        place(mesh, pivot="top")
    assert error.value.argument == "pivot"


def test_scale_to_height_keeps_the_pivot_and_records_the_whole_transform():
    mesh = off_centre_box()
    scaled = scale_to_height(place(mesh), 1.8)
    assert np.ptp(scaled.vertices[:, 2]) == pytest.approx(1.8)
    assert scaled.vertices[:, 2].min() == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(np.ptp(scaled.vertices, axis=0), np.array([0.4, 0.2, 0.6]) * 3)
    assert np.array_equal(scaled.normals, mesh.normals)
    record = placement_record(scaled)
    assert record["scale"] == pytest.approx(3.0) and record["height_m"] == 1.8
    # The record replays on another mesh in the same frame (a LOD, the hulls, the high poly).
    assert np.allclose(apply_placement(mesh, record).vertices, scaled.vertices)
    assert np.allclose(record["scale"] * mesh.vertices + record["translation"], scaled.vertices)


def test_scale_to_height_rejects_bad_heights_and_flat_meshes():
    mesh = off_centre_box()
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(InputError) as error:
            scale_to_height(mesh, bad)
        assert error.value.argument == "height_m"
    flat = MeshArrays(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0.0]]), np.array([[0, 1, 2]]))
    with pytest.raises(InputError) as error:
        scale_to_height(flat, 1.0)
    assert error.value.argument == "mesh"


def test_resolve_height_takes_presets_centimetres_or_explicit_units():
    assert resolve_height("human") == 1.80
    assert resolve_height("Door") == HEIGHT_PRESETS["door"] == 2.10
    assert resolve_height("lamp post") == HEIGHT_PRESETS["lamp_post"]
    assert resolve_height(180) == pytest.approx(1.80)
    assert resolve_height(75.5) == pytest.approx(0.755)
    assert resolve_height("180cm") == pytest.approx(1.80)
    assert resolve_height("1.8 m") == pytest.approx(1.80)
    for bad in ("giant", -5, 0, "1.8 ft", None, True):
        with pytest.raises(InputError) as error:
            resolve_height(bad)
        assert error.value.argument == "height"

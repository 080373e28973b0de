"""Channel packing: each engine's channel order, round trips through uint8, and the normal-map green flip."""

import numpy as np
import pytest

from server.errors import InputError
from server.stages.packing import (normal_dx_to_gl, normal_gl_to_dx, pack_gltf_orm, pack_ue5_orm,
                                   pack_unity_hdrp_mask, pack_unity_urp_metallic_smoothness, unpack)

HALF_STEP = 0.5 / 255 + 1e-12


@pytest.fixture
def maps():
    rng = np.random.default_rng(7)
    return {name: rng.random((32, 48)) for name in ("ao", "roughness", "metallic", "detail")}


@pytest.mark.parametrize("pack", [pack_ue5_orm, pack_gltf_orm])
def test_orm_round_trip_and_channel_order(pack, maps):
    image = pack(maps["ao"], maps["roughness"], maps["metallic"])
    assert image.dtype == np.uint8 and image.shape == (32, 48, 3)
    r, g, b = unpack(image)
    for channel, name in ((r, "ao"), (g, "roughness"), (b, "metallic")):
        assert np.abs(channel - maps[name]).max() <= HALF_STEP


def test_orm_puts_each_map_in_its_own_channel():
    ones, zeros = np.ones((2, 2)), np.zeros((2, 2))
    assert pack_ue5_orm(ones, zeros, zeros)[0, 0].tolist() == [255, 0, 0]
    assert pack_ue5_orm(zeros, ones, zeros)[0, 0].tolist() == [0, 255, 0]
    assert pack_ue5_orm(zeros, zeros, ones)[0, 0].tolist() == [0, 0, 255]


def test_urp_metallic_smoothness(maps):
    image = pack_unity_urp_metallic_smoothness(maps["metallic"], maps["roughness"])
    assert image.shape == (32, 48, 4)
    r, g, b, a = unpack(image)
    assert np.abs(r - maps["metallic"]).max() <= HALF_STEP
    assert np.abs(a - (1 - maps["roughness"])).max() <= HALF_STEP
    assert (g == 1).all() and (b == 0).all()
    with_ao = unpack(pack_unity_urp_metallic_smoothness(maps["metallic"], maps["roughness"], ao=maps["ao"]))
    assert np.abs(with_ao[1] - maps["ao"]).max() <= HALF_STEP


def test_hdrp_mask_map(maps):
    r, g, b, a = unpack(pack_unity_hdrp_mask(maps["metallic"], maps["ao"], maps["detail"], maps["roughness"]))
    for channel, expected in ((r, maps["metallic"]), (g, maps["ao"]), (b, maps["detail"]),
                              (a, 1 - maps["roughness"])):
        assert np.abs(channel - expected).max() <= HALF_STEP
    no_detail = unpack(pack_unity_hdrp_mask(maps["metallic"], maps["ao"], None, maps["roughness"]))
    assert (no_detail[2] == 1).all()


def test_normal_flip_inverts_green_only():
    rng = np.random.default_rng(1)
    gl = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    dx = normal_gl_to_dx(gl)
    assert dx.dtype == np.uint8
    assert np.array_equal(dx[..., [0, 2]], gl[..., [0, 2]])
    assert np.array_equal(dx[..., 1].astype(int), 255 - gl[..., 1].astype(int))
    assert np.array_equal(normal_dx_to_gl(dx), gl)
    # Decoded, the tangent-space Y component changes sign.
    decode = lambda img: img.astype(float) / 255 * 2 - 1  # noqa: E731
    assert np.allclose(decode(dx)[..., 1], -decode(gl)[..., 1], atol=1e-12)
    rgba = np.dstack([gl, np.full((16, 16), 200, np.uint8)])
    assert np.array_equal(normal_gl_to_dx(rgba)[..., 3], rgba[..., 3])
    floats = gl.astype(np.float32) / 255
    assert np.allclose(normal_gl_to_dx(floats)[..., 1], 1 - floats[..., 1])


def test_inputs_are_validated(maps):
    with pytest.raises(InputError) as error:
        pack_ue5_orm(maps["ao"], maps["roughness"][:10], maps["metallic"])
    assert error.value.argument == "roughness"
    with pytest.raises(InputError) as error:
        pack_ue5_orm(maps["ao"] * 255, maps["roughness"], maps["metallic"])
    assert error.value.argument == "ao" and "255" in str(error.value)
    with pytest.raises(InputError) as error:
        pack_gltf_orm(maps["ao"], maps["roughness"], np.full((32, 48), np.nan))
    assert error.value.argument == "metallic"
    with pytest.raises(InputError) as error:
        pack_unity_hdrp_mask(maps["metallic"][..., None], maps["ao"], None, maps["roughness"])
    assert error.value.argument == "metallic"
    with pytest.raises(InputError) as error:
        normal_gl_to_dx(np.zeros((4, 4)))
    assert error.value.argument == "normal_rgb"
    # A tiny overshoot from filtering is clipped, not rejected.
    assert pack_ue5_orm(maps["ao"] * 0 + 1.0005, maps["roughness"], maps["metallic"])[0, 0, 0] == 255

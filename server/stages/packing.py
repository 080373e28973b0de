"""Channel packing of [0, 1] float maps into the engines' mask textures (uint8, linear), and normal-map flips."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

# Values a little outside [0, 1] (filtering, float error) are clipped; further out is a caller bug.
RANGE_SLACK = 1e-3


def pack_ue5_orm(ao: np.ndarray, roughness: np.ndarray, metallic: np.ndarray) -> np.ndarray:
    """UE5 T_<Name>_ORM: (H, W, 3) uint8, R = AO, G = roughness, B = metallic; import with sRGB off."""
    return _pack({"ao": ao, "roughness": roughness, "metallic": metallic}, ["ao", "roughness", "metallic"])


def pack_gltf_orm(ao: np.ndarray, roughness: np.ndarray, metallic: np.ndarray) -> np.ndarray:
    """glTF occlusionTexture + metallicRoughnessTexture in one image: R occlusion, G roughness, B metallic."""
    return _pack({"ao": ao, "roughness": roughness, "metallic": metallic}, ["ao", "roughness", "metallic"])


def pack_unity_urp_metallic_smoothness(metallic: np.ndarray, roughness: np.ndarray,
                                       ao: np.ndarray | None = None) -> np.ndarray:
    """Unity URP Lit metallic map: (H, W, 4) uint8, R metallic, G AO, B 0, A smoothness = 1 - roughness.

    URP Lit reads metallic from R and smoothness from A of _MetallicGlossMap, and occlusion from G of
    _OcclusionMap, so with AO in G the one texture can fill both slots. Without ao, G is 1 (no occlusion).
    """
    maps = {"metallic": metallic, "roughness": roughness}
    if ao is not None:
        maps["ao"] = ao
    channels = _validated(maps)
    shape = channels["metallic"].shape
    return _to_uint8([channels["metallic"], channels.get("ao", np.ones(shape)), np.zeros(shape),
                      1.0 - channels["roughness"]])


def pack_unity_hdrp_mask(metallic: np.ndarray, ao: np.ndarray, detail_mask: np.ndarray | None,
                         roughness: np.ndarray) -> np.ndarray:
    """Unity HDRP mask map: (H, W, 4) uint8, R metallic, G AO, B detail mask (1 when None), A smoothness."""
    maps = {"metallic": metallic, "ao": ao, "roughness": roughness}
    if detail_mask is not None:
        maps["detail_mask"] = detail_mask
    channels = _validated(maps)
    shape = channels["metallic"].shape
    return _to_uint8([channels["metallic"], channels["ao"], channels.get("detail_mask", np.ones(shape)),
                      1.0 - channels["roughness"]])


def unpack(image: np.ndarray) -> list[np.ndarray]:
    """The channels of a packed uint8 image as [0, 1] float maps, in channel order."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise InputError("image", f"{image.dtype} array of shape {image.shape}", "an (H, W, C) uint8 image")
    return [image[..., c].astype(np.float64) / 255.0 for c in range(image.shape[-1])]


def normal_gl_to_dx(normal_rgb: np.ndarray) -> np.ndarray:
    """OpenGL (+Y, green up) tangent-space normal map to DirectX (green down): invert green.

    Accepts (H, W, 3) or (H, W, 4) uint8, uint16 or float in [0, 1]; returns the same dtype and shape.
    The same flip turns a DirectX map back into OpenGL.
    """
    image = np.asarray(normal_rgb)
    if image.ndim != 3 or image.shape[-1] not in (3, 4) or image.size == 0:
        raise InputError("normal_rgb", f"array of shape {image.shape}", "an (H, W, 3) or (H, W, 4) image")
    out = image.copy()
    if image.dtype in (np.uint8, np.uint16):
        out[..., 1] = np.iinfo(image.dtype).max - image[..., 1]
    elif np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise InputError("normal_rgb", f"floats from {image.min()} to {image.max()}", "floats in [0, 1]")
        out[..., 1] = 1.0 - image[..., 1]
    else:
        raise InputError("normal_rgb", f"dtype {image.dtype}", "uint8, uint16 or float in [0, 1]")
    return out


normal_dx_to_gl = normal_gl_to_dx


def _pack(maps: dict, order: list[str]) -> np.ndarray:
    channels = _validated(maps)
    return _to_uint8([channels[name] for name in order])


def _validated(maps: dict) -> dict:
    """Float64 copies of the maps, clipped to [0, 1], after checking shape, finiteness and range."""
    shape = None
    out = {}
    for name, value in maps.items():
        array = np.asarray(value)
        if array.ndim != 2 or array.size == 0:
            raise InputError(name, f"array of shape {array.shape}", "a 2-D (H, W) map")
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)) \
                or array.dtype == np.bool_:
            raise InputError(name, f"dtype {array.dtype}", "a float map in [0, 1]")
        if shape is None:
            shape = array.shape
        elif array.shape != shape:
            raise InputError(name, f"shape {array.shape}", f"the same shape as the other maps, {shape}")
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise InputError(name, "a map with NaN or infinite values", "finite values in [0, 1]")
        low, high = float(array.min()), float(array.max())
        if low < -RANGE_SLACK or high > 1 + RANGE_SLACK:
            raise InputError(name, f"values from {low:g} to {high:g}",
                             "values in [0, 1] (divide 8-bit images by 255 first)")
        out[name] = np.clip(array, 0.0, 1.0)
    return out


def _to_uint8(channels: list[np.ndarray]) -> np.ndarray:
    return np.rint(np.stack(channels, axis=-1) * 255.0).astype(np.uint8)

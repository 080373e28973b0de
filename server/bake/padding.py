"""Edge padding and hole filling for baked maps, so mip levels and bilinear filtering never see void."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage


def inpaint_holes(image: np.ndarray, holes: np.ndarray, radius: int = 3) -> np.ndarray:
    """Fill texels inside charts that no ray reached (OpenCV Telea inpainting, per channel, in float)."""
    if not holes.any():
        return image
    mask = holes.astype(np.uint8)
    channels = image.reshape(image.shape[0], image.shape[1], -1).astype(np.float32)
    filled = np.stack([cv2.inpaint(channels[..., c], mask, radius, cv2.INPAINT_TELEA)
                       for c in range(channels.shape[-1])], axis=-1)
    return filled.reshape(image.shape)


def dilate(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Give every texel outside the charts the value of its nearest covered texel (unbounded padding)."""
    if covered.all() or not covered.any():
        return image
    _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
    return image[rows, cols]

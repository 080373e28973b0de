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


class Dilation:
    """Padding for every map of one bake: each texel outside the charts takes its nearest covered texel.

    The nearest-texel lookup is computed once and reused for all maps (it is the costly part).
    """

    def __init__(self, covered: np.ndarray):
        self.covered = covered
        self.outside = None
        if covered.any() and not covered.all():
            _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
            self.outside = np.nonzero(~covered)
            self.source = (rows[self.outside], cols[self.outside])

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.outside is None:
            return image
        image = image.copy()
        image[self.outside] = image[self.source]
        return image

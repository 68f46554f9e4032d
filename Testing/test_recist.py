"""RECIST 1.1 axes against analytic ellipsoids.

An ellipsoid with semi-axes a > b > c whose a and b axes lie in the axial plane has
RECIST long axis 2a and short axis 2b (in its central axial slice); both must come out
within one voxel, whatever the in-plane rotation, spacing or grid obliquity.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_shape import CENTRE_LPS, ellipsoid_mask

from mskai.errors import InputError
from mskai.measure import recist_axes
from mskai.measure.recist import axial_slice_axis
from phantoms.grid import make_grid, oblique_direction, rotation

A, B, C = 20.0, 14.0, 10.0

CASES = {
    "axial isotropic": ((64, 56, 40), (1.0, 1.0, 1.0), np.eye(3), 0.0),
    "axial isotropic, lesion turned 30 deg": ((64, 56, 40), (1.0, 1.0, 1.0), np.eye(3), 30.0),
    "axial anisotropic, turned 30 deg": ((64, 56, 30), (0.7, 0.9, 2.0), np.eye(3), 30.0),
    "oblique anisotropic, turned 30 deg": ((64, 56, 40), (0.8, 1.0, 1.5),
                                           oblique_direction(25), 30.0),
    "oblique thick slices": ((100, 100, 30), (0.5, 0.5, 2.5), oblique_direction(40), 0.0),
}


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def case(request):
    size, spacing, direction, turn = CASES[request.param]
    volume = make_grid(size, spacing, direction, center_lps=CENTRE_LPS)
    mask = ellipsoid_mask(volume, (A, B, C), axes_lps=rotation((0, 0, 1), turn))
    return volume, recist_axes(mask, volume)


def _voxel(volume) -> float:
    return float(np.linalg.norm(volume.spacing))


def test_long_axis_is_twice_a_within_one_voxel(case):
    volume, r = case
    assert abs(r["long_axis_mm"] - 2 * A) <= _voxel(volume)


def test_short_axis_is_twice_b_within_one_voxel(case):
    volume, r = case
    assert abs(r["short_axis_mm"] - 2 * B) <= _voxel(volume)


def test_end_points_span_the_axes_perpendicular_in_one_axial_plane(case):
    volume, r = case
    p, q = np.asarray(r["long_endpoints_ras"])
    s, t = np.asarray(r["short_endpoints_ras"])
    assert np.linalg.norm(q - p) == pytest.approx(r["long_axis_mm"])
    assert np.linalg.norm(t - s) == pytest.approx(r["short_axis_mm"])
    assert abs(np.dot((q - p) / r["long_axis_mm"], (t - s) / r["short_axis_mm"])) < 1e-6
    heights = np.array([p[2], q[2], s[2], t[2]])
    assert np.ptp(heights) < 0.1 * max(volume.spacing)  # one (near-)axial plane
    assert abs(heights.mean() - CENTRE_LPS[2]) <= max(volume.spacing)  # through the centre


def test_oblique_grids_are_resampled_and_axial_ones_are_not(case):
    volume, r = case
    assert r["resampled"] == (axial_slice_axis(volume) is None)


def test_a_grid_tilted_3_degrees_is_sliced_directly():
    volume = make_grid((64, 56, 30), (0.8, 0.8, 2.0), rotation((1, 0, 0), 3.0),
                       center_lps=CENTRE_LPS)
    mask = ellipsoid_mask(volume, (A, B, C))
    r = recist_axes(mask, volume)
    assert not r["resampled"]
    assert abs(r["long_axis_mm"] - 2 * A) <= _voxel(volume)


def test_a_lesion_longest_along_superior_is_measured_in_the_axial_plane():
    volume = make_grid((40, 40, 56), (1.0, 1.0, 1.0), center_lps=CENTRE_LPS)
    tall = ellipsoid_mask(volume, (12.0, 8.0, 25.0))  # longest axis along S
    r = recist_axes(tall, volume)
    assert abs(r["long_axis_mm"] - 24.0) <= _voxel(volume)
    assert abs(r["short_axis_mm"] - 16.0) <= _voxel(volume)


def test_a_single_voxel_has_axes_of_one_pixel():
    volume = make_grid((9, 9, 9), (0.5, 2.0, 3.0))
    mask = np.zeros(volume.array.shape, bool)
    mask[4, 4, 4] = True
    r = recist_axes(mask, volume)
    # the 0.5 contour joins the four edge midpoints: a diamond with diagonals 0.5 and 2 mm
    assert r["long_axis_mm"] == pytest.approx(2.0)
    assert r["short_axis_mm"] == pytest.approx(0.5)


def test_empty_mask_is_an_input_error():
    volume = make_grid((8, 8, 8), (1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="empty"):
        recist_axes(np.zeros(volume.array.shape, bool), volume)

"""Shape measurements against analytic ellipsoids on oblique, anisotropic grids.

Phantoms are partial-volume ellipsoids (3x3x3 supersampling, 0.5 threshold), so voxel
counts are unbiased; the truth is 4/3 pi abc for volume and Knud Thomsen's formula
(relative error < 1.1 %) for surface area.
"""

from __future__ import annotations

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.measure import shape_measurements
from mskai.measure.mesh import mask_to_mesh, mesh_area_mm2, mesh_volume_mm3, signed_volume_mm3
from mskai.measure.shape import farthest_pair
from mskai.volume import LPS_TO_RAS, Volume
from phantoms.grid import make_grid, oblique_direction, physical_points, rotation

CENTRE_LPS = (3.0, -2.0, 5.0)
SEMI_AXES = (20.0, 14.0, 10.0)

GRIDS = {
    "axial isotropic": ((64, 56, 40), (1.0, 1.0, 1.0), np.eye(3)),
    "oblique anisotropic": ((64, 56, 40), (0.8, 1.0, 1.5), oblique_direction(25)),
    "oblique thick slices": ((100, 100, 30), (0.5, 0.5, 2.5), oblique_direction(40)),
}


def ellipsoid_mask(volume: Volume, semi_axes=SEMI_AXES, axes_lps: np.ndarray | None = None,
                   centre_lps=CENTRE_LPS) -> np.ndarray:
    """Voxels at least half inside the ellipsoid; ``axes_lps`` columns are its axes (LPS)."""
    axes_lps = np.eye(3) if axes_lps is None else axes_lps
    local = (physical_points(volume, 3) - np.asarray(centre_lps)) @ axes_lps
    inside = ((local / np.asarray(semi_axes)) ** 2).sum(-1) <= 1.0
    return inside.mean(-1) >= 0.5


def thomsen_area(a: float, b: float, c: float, p: float = 1.6075) -> float:
    return 4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)


@pytest.fixture(scope="module", params=list(GRIDS), ids=list(GRIDS))
def measured(request):
    size, spacing, direction = GRIDS[request.param]
    volume = make_grid(size, spacing, direction, center_lps=CENTRE_LPS)
    mask = ellipsoid_mask(volume, axes_lps=rotation((0, 0, 1), 30))
    return volume, mask, shape_measurements(mask, volume)


def test_voxel_volume_is_within_3_percent_of_the_ellipsoid(measured):
    _, _, m = measured
    assert m["volume_ml"] * 1000 == pytest.approx(4 / 3 * np.pi * np.prod(SEMI_AXES), rel=0.03)


def test_surface_volume_is_within_3_percent_of_the_ellipsoid(measured):
    _, _, m = measured
    truth = 4 / 3 * np.pi * np.prod(SEMI_AXES)
    assert m["volume_surface_ml"] * 1000 == pytest.approx(truth, rel=0.03)


def test_surface_area_is_within_3_percent_of_thomsens_formula(measured):
    _, _, m = measured
    assert m["surface_area_mm2"] == pytest.approx(thomsen_area(*SEMI_AXES), rel=0.03)


def test_max_diameter_is_the_long_axis_within_one_voxel_diagonal(measured):
    volume, _, m = measured
    assert abs(m["max_diameter_mm"] - 2 * SEMI_AXES[0]) <= np.linalg.norm(volume.spacing)


def test_centroid_is_the_centre_in_ras_within_half_a_voxel(measured):
    volume, _, m = measured
    centre_ras = LPS_TO_RAS @ np.asarray(CENTRE_LPS)
    assert np.linalg.norm(np.asarray(m["centroid_ras"]) - centre_ras) < min(volume.spacing) / 2


def test_ellipsoid_sphericity_is_below_one_and_matches_its_definition(measured):
    _, _, m = measured
    v, a = m["volume_surface_ml"] * 1000, m["surface_area_mm2"]
    assert m["sphericity"] == pytest.approx((36 * np.pi * v**2) ** (1 / 3) / a)
    exact = (36 * np.pi * (4 / 3 * np.pi * np.prod(SEMI_AXES)) ** 2) ** (1 / 3) / thomsen_area(
        *SEMI_AXES)
    assert m["sphericity"] == pytest.approx(exact, abs=0.03)


def test_sphere_on_an_oblique_anisotropic_grid_has_sphericity_above_095():
    volume = make_grid((40, 36, 24), (0.8, 1.0, 1.5), oblique_direction(25),
                       center_lps=CENTRE_LPS)
    m = shape_measurements(ellipsoid_mask(volume, (10.0, 10.0, 10.0)), volume)
    assert 0.95 < m["sphericity"] <= 1.01


def test_mean_intensity_of_a_ramp_along_r_is_the_centroid_r():
    volume = make_grid((40, 36, 24), (0.8, 1.0, 1.5), oblique_direction(25),
                       center_lps=CENTRE_LPS)
    mask = ellipsoid_mask(volume, (10.0, 8.0, 6.0))
    r_mm = -physical_points(volume)[..., 0]  # R = -L
    m = shape_measurements(mask, volume, intensity=volume.with_array(r_mm))
    assert m["mean_intensity"] == pytest.approx(m["centroid_ras"][0], abs=1e-6)
    assert m["mean_intensity"] == pytest.approx(-CENTRE_LPS[0], abs=0.5)
    assert "mean_intensity" not in shape_measurements(mask, volume)


def test_empty_mask_is_an_input_error():
    volume = make_grid((8, 8, 8), (1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="empty"):
        shape_measurements(np.zeros(volume.array.shape, bool), volume)


def test_mask_of_another_shape_is_an_input_error():
    volume = make_grid((8, 8, 8), (1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="shape"):
        shape_measurements(np.ones((4, 4, 4), bool), volume)


def test_raw_mesh_of_a_box_lies_on_the_voxel_faces_in_ras():
    volume = make_grid((10, 10, 10), (0.5, 1.0, 2.0), center_lps=(0, 0, 0))
    mask = np.zeros(volume.array.shape, bool)
    mask[2:6, 3:8, 1:5] = True  # k 2..5, j 3..7, i 1..4
    verts, faces = mask_to_mesh(mask, volume)
    corners_ijk = np.array([[0.5, 2.5, 1.5], [4.5, 7.5, 5.5]])  # half-way to outside centres
    box_ras = np.sort(volume.index_to_ras(corners_ijk), axis=0)
    assert np.allclose(verts.min(0), box_ras[0]) and np.allclose(verts.max(0), box_ras[1])
    assert signed_volume_mm3(verts, faces) > 0  # outward-facing triangles


def test_raw_mesh_volume_and_smoothed_mesh_area_of_a_sphere():
    volume = make_grid((30, 30, 30), (1.0, 1.0, 1.0), oblique_direction(30))
    mask = ellipsoid_mask(volume, (10.0, 10.0, 10.0), centre_lps=(0, 0, 0))
    raw = mask_to_mesh(mask, volume)
    smooth = mask_to_mesh(mask, volume, smooth=True)
    assert mesh_volume_mm3(*raw) == pytest.approx(4 / 3 * np.pi * 1000, rel=0.03)
    assert mesh_area_mm2(*raw) > 1.05 * 4 * np.pi * 100  # the staircase inflates the area
    assert mesh_area_mm2(*smooth) == pytest.approx(4 * np.pi * 100, rel=0.03)


def test_farthest_pair_of_points_on_a_square():
    points = np.array([[0, 0], [3, 0], [3, 4], [0, 4], [1, 1], [2, 2]], float)
    distance, p, q = farthest_pair(points)
    assert distance == pytest.approx(5.0)
    assert np.linalg.norm(p - q) == pytest.approx(5.0)

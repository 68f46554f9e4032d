"""Volume geometry: index <-> RAS mapping agrees with SimpleITK, crops keep positions."""

import numpy as np

from mskai.volume import Volume
from phantoms.grid import make_grid, oblique_direction


def _oblique() -> Volume:
    vol = make_grid((20, 16, 9), (0.6, 0.8, 2.5), oblique_direction(30), (10.0, -5.0, 40.0))
    vol.array[:] = np.arange(vol.array.size).reshape(vol.array.shape)
    return vol


def test_index_to_ras_matches_simpleitk_with_lps_flip():
    vol = _oblique()
    img = vol.to_sitk()
    for ijk in [(0, 0, 0), (19, 15, 8), (3, 7, 2)]:
        lps = np.array(img.TransformIndexToPhysicalPoint(ijk))
        np.testing.assert_allclose(vol.index_to_ras(ijk), lps * [-1, -1, 1], atol=1e-9)


def test_ras_to_index_inverts_index_to_ras():
    vol = _oblique()
    ijk = np.array([[1.5, 2.25, 3.0], [19, 0, 8]])
    np.testing.assert_allclose(vol.ras_to_index(vol.index_to_ras(ijk)), ijk, atol=1e-9)


def test_sitk_round_trip_keeps_geometry_and_values():
    vol = _oblique()
    back = Volume.from_sitk(vol.to_sitk())
    assert back.same_geometry(vol)
    np.testing.assert_array_equal(back.array, vol.array)


def test_crop_keeps_physical_positions():
    vol = _oblique()
    box = (slice(2, 7), slice(3, 10), slice(5, 18))
    sub = vol.crop(box)
    np.testing.assert_allclose(sub.index_to_ras((0, 0, 0)), vol.index_to_ras((5, 3, 2)))
    assert sub.array[0, 0, 0] == vol.array[2, 3, 5]


def test_contains_index_accepts_grid_and_rejects_outside():
    vol = _oblique()
    assert vol.contains_index(np.array([19.4, 0, 8]))
    assert not vol.contains_index(np.array([20.6, 0, 8]))
    assert vol.size == (20, 16, 9)

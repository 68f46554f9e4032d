"""Safety margins and tumour-to-bone distances are exact in physical space."""

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.measure.margins import grow_margin, margin_summary, min_surface_distance_mm
from phantoms.grid import make_grid, oblique_direction, physical_points

SPACING = (0.7, 0.9, 2.0)


def _grid():
    return make_grid((90, 80, 40), SPACING, oblique_direction(20))


def _ball(vol, center, radius):
    pts = physical_points(vol)
    return np.linalg.norm(pts - np.asarray(center), axis=-1) <= radius


def test_margin_grows_a_sphere_by_the_margin_in_every_direction():
    vol = _grid()
    tumor = _ball(vol, (0, 0, 0), 8.0)
    grown = grow_margin(tumor, vol, 10.0)
    expected = _ball(vol, (0, 0, 0), 18.0)
    # The grown set is the set of voxels within 10 mm of a tumour voxel centre: it equals the
    # 18 mm ball up to the discretisation of the 8 mm ball's boundary (< one voxel diagonal).
    diag = float(np.linalg.norm(SPACING))
    assert grown[_ball(vol, (0, 0, 0), 18.0 - diag)].all()
    assert not grown[~_ball(vol, (0, 0, 0), 18.0 + 0.01)].any()
    assert abs(grown.sum() / expected.sum() - 1) < 0.05


def test_min_distance_between_two_spheres_matches_the_gap():
    vol = _grid()
    tumor = _ball(vol, (-12.0, 0, 0), 8.0)
    bone = _ball(vol, (12.0, 0, 0), 9.0)  # gap 24 - 17 = 7 mm
    distance = min_surface_distance_mm(tumor, bone, vol)
    assert distance == pytest.approx(7.0, abs=max(SPACING) / 2)


def test_margin_summary_flags_bone_inside_the_margin():
    vol = _grid()
    tumor = _ball(vol, (-12.0, 0, 0), 8.0)
    bone = _ball(vol, (12.0, 0, 0), 9.0)
    assert margin_summary(tumor, bone, vol, 10.0)["bone_within_margin"] is True
    assert margin_summary(tumor, bone, vol, 5.0)["bone_within_margin"] is False
    assert margin_summary(tumor, None, vol, 5.0)["min_distance_to_bone_mm"] is None


def test_empty_tumour_cannot_grow_a_margin():
    vol = _grid()
    with pytest.raises(InputError, match="empty"):
        grow_margin(np.zeros(vol.array.shape, bool), vol, 10.0)

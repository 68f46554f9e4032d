"""The cartilage and joint-space phantoms hold what their analytic truth says."""

from __future__ import annotations

import numpy as np
import pytest

from mskai.volume import LPS_TO_RAS
from phantoms.cartilage import (
    BONE,
    CARTILAGE,
    cylindrical_shell,
    joint_space,
    slab,
    spherical_shell,
)
from phantoms.grid import oblique_direction, physical_points

OBLIQUE = oblique_direction()


def _voxel_volume_ml(phantom) -> float:
    return phantom.cartilage.sum() * phantom.labels.voxel_volume_mm3 / 1000.0


@pytest.mark.parametrize("make", [
    lambda s: spherical_shell(15, 2.0, 60, spacing=(0.4, 0.4, 1.0), direction=OBLIQUE,
                              supersample=s),
    lambda s: cylindrical_shell(15, 2.5, 20, 120, spacing=(0.5, 0.5, 1.2), direction=OBLIQUE,
                                supersample=s),
    lambda s: slab(2.0, 30, 14, spacing=(0.4, 0.4, 0.8), direction=OBLIQUE, supersample=s),
])
@pytest.mark.parametrize("supersample", [1, 3])
def test_cartilage_volume_matches_analytic(make, supersample):
    phantom = make(supersample)
    assert set(np.unique(phantom.labels.array)) == {0, BONE, CARTILAGE}
    assert _voxel_volume_ml(phantom) == pytest.approx(phantom.cartilage_volume_ml, rel=0.02)


def test_spherical_shell_voxel_centres_lie_in_the_shell():
    phantom = spherical_shell(12, 2.0, 180, spacing=(0.5, 0.5, 1.0), direction=OBLIQUE)
    radius = np.linalg.norm(physical_points(phantom.labels), axis=-1)
    cart = radius[phantom.cartilage]
    assert cart.min() > 12.0 and cart.max() <= 14.0
    assert cart.min() < 12.3 and cart.max() > 13.7  # the shell is filled across its thickness
    assert radius[phantom.bone].max() <= 12.0
    # a full shell: 4/3 pi ((R+t)^3 - R^3)
    assert phantom.cartilage_volume_ml == pytest.approx(4 / 3 * np.pi * (14**3 - 12**3) / 1000)
    assert phantom.interface_area_mm2 == pytest.approx(4 * np.pi * 144)


def test_joint_space_gaps_between_voxel_centres():
    from scipy.spatial import cKDTree

    phantom = joint_space(3.0, 5.0, spacing=(0.5, 0.5, 1.0), direction=OBLIQUE)
    pts = physical_points(phantom.labels)
    femur, tibia = pts[phantom.femur], pts[phantom.tibia]
    gap, _ = cKDTree(femur).query(tibia, k=1)
    voxel_diagonal = float(np.linalg.norm(phantom.labels.spacing))
    assert 3.0 <= gap.min() <= 3.0 + voxel_diagonal
    medial = LPS_TO_RAS @ phantom.medial_direction_ras  # back to LPS
    tibia_medial = tibia @ medial > 0
    assert gap[~tibia_medial].min() >= 5.0 - 1e-9
    assert phantom.jsw_min_mm == 3.0

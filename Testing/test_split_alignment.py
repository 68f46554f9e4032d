"""Displacement and angulation of touching fragments when one of them is a short stub.

Truth: a shaft of radius 12 mm along an axis tilted 8 degrees from the slice axis, on a
1 x 1 x 2 mm grid, broken across that axis 20 mm above the image's lower edge. The distal
fragment is moved 1.5 mm sideways, not rotated: displacement 1.5 mm, angulation 0. The
proximal stub is wider (24 mm) than it is long (20 mm, cut by the field of view), as in the
5 cm sarcoma crops where the slab PCA turned across the shaft; its lateral surface still
gives the axis (:func:`mskai.fracture.split_alignment.lateral_surface_axis`).
"""

from __future__ import annotations

import numpy as np
import pytest

from mskai.fracture.split_alignment import NotAShaftError, lateral_surface_axis, split_alignment
from mskai.volume import Volume

SHAPE = (40, 80, 80)  # k, j, i
SPACING = (1.0, 1.0, 2.0)
RADIUS_MM = 12.0
BREAK_MM = 20.0
SHIFT_MM = 1.5
TILT = np.deg2rad(8.0)
AXIS = np.array([0.0, np.sin(TILT), np.cos(TILT)])
BASE_IJK = (40.0, 46.0, 0.0)  # on the lower edge; the axis leans towards lower j


def _points(volume: Volume) -> np.ndarray:
    kji = np.indices(SHAPE).reshape(3, -1).T
    return volume.index_to_ras(kji[:, ::-1].astype(float)).reshape((*SHAPE, 3))


def _shaft(points: np.ndarray, base: np.ndarray, lo: float, hi: float) -> np.ndarray:
    d = points - base
    along = d @ AXIS
    radial = np.linalg.norm(d - along[..., None] * AXIS, axis=-1)
    return (radial <= RADIUS_MM) & (along >= lo) & (along < hi)


@pytest.fixture(scope="module")
def broken() -> tuple[Volume, np.ndarray]:
    volume = Volume(np.zeros(SHAPE, dtype=np.float32), spacing=SPACING, modality="CT")
    points = _points(volume)
    base = volume.index_to_ras(BASE_IJK)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[_shaft(points, base, -50.0, BREAK_MM)] = 1
    sideways = np.cross(AXIS, [0.0, 0.0, 1.0])
    sideways /= np.linalg.norm(sideways)
    labels[_shaft(points, base + SHIFT_MM * sideways, BREAK_MM, 200.0) & (labels == 0)] = 2
    return volume, labels


def test_the_stub_is_wider_than_it_is_long(broken) -> None:
    volume, labels = broken
    k_top = np.argwhere(labels == 1)[:, 0].max()
    assert (k_top + 1) * SPACING[2] < 2 * RADIUS_MM


def test_displacement_and_angulation_with_a_short_stub(broken) -> None:
    volume, labels = broken
    al = split_alignment(labels, volume, 1, 2)
    assert al is not None
    assert abs(al.displacement_mm - SHIFT_MM) <= 0.5
    assert al.angulation_deg <= 2.0


def test_the_stub_axis_is_the_shaft_axis(broken) -> None:
    from mskai.fracture.split_alignment import contact_points

    volume, labels = broken
    surface = contact_points(labels, volume, 1, 2)
    axis = lateral_surface_axis(labels == 1, labels == 2, volume, surface, 40.0)
    assert np.degrees(np.arccos(min(1.0, abs(axis.direction_ras @ AXIS)))) <= 1.5


def test_a_ball_is_not_a_shaft() -> None:
    volume = Volume(np.zeros(SHAPE, dtype=np.float32), spacing=SPACING, modality="CT")
    points = _points(volume)
    ball = np.linalg.norm(points - volume.index_to_ras([40.0, 40.0, 20.0]), axis=-1) <= 15.0
    below = ball & (points[..., 2] < volume.index_to_ras([40.0, 40.0, 20.0])[2])
    surface = volume.index_to_ras(np.argwhere(below & ~np.roll(below, 1, axis=0))[:, ::-1]
                                  .astype(float)).reshape(-1, 3)
    with pytest.raises(NotAShaftError):
        lateral_surface_axis(below, ball & ~below, volume, surface, 40.0)


def test_a_short_fragment_behind_a_steep_cut_keeps_its_axis_along_the_bone() -> None:
    """The rod of the other tests, 45 mm long and cut 60 degrees across: beyond the whole
    surface only a disk is left, whose PCA turns across the rod; the whole fragment is the
    more rod-like and keeps the axis along it (the wedge of the cut tilts it by 9 degrees)."""
    from mskai.fracture.alignment import angle_deg, principal_axis, voxel_points_ras
    from mskai.fracture.split_alignment import axis_beyond, contact_points, non_shaft_axis

    volume = Volume(np.zeros(SHAPE, dtype=np.float32), spacing=SPACING, modality="CT")
    points = _points(volume)
    base = volume.index_to_ras((40.0, 40.0, 2.0))
    cut = TILT + np.deg2rad(60.0)
    side = (points - (base + 45.0 * AXIS)) @ np.array([0.0, np.sin(cut), np.cos(cut)])
    rod = _shaft(points, base, 0.0, 85.0)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[rod & (side < 0)] = 1
    labels[rod & (side >= 0)] = 2
    surface = contact_points(labels, volume, 1, 2)
    fragment = voxel_points_ras(labels == 1, volume)

    def off_axis(direction: np.ndarray) -> float:
        return min(angle_deg(direction, AXIS), 180.0 - angle_deg(direction, AXIS))

    slab = axis_beyond(fragment, surface, 40.0, 2.0)
    assert off_axis(slab.direction_ras) > 40.0
    chosen = non_shaft_axis(fragment, surface, 40.0, 2.0)
    assert chosen.elongation == principal_axis(fragment).elongation > 2.0
    assert off_axis(chosen.direction_ras) < 10.0


def test_the_pair_is_measured_alike_in_a_larger_image_with_other_bone(broken) -> None:
    """The measurement works in the pair's own box: 30 voxels of margin in j and i (the
    origin moved so every voxel keeps its place) holding a third bone change nothing."""
    volume, labels = broken
    pad = ((0, 0), (30, 30), (30, 30))
    big_labels = np.pad(labels, pad)
    big_labels[:, :10, :10] = 3
    origin = volume.index_to_ras([-30.0, -30.0, 0.0])
    big = Volume(np.zeros(big_labels.shape, dtype=np.float32), spacing=SPACING,
                 origin=tuple(np.asarray(origin) * [-1.0, -1.0, 1.0]), modality="CT")
    assert np.allclose(big.index_to_ras([30.0, 30.0, 0.0]), volume.index_to_ras([0.0, 0.0, 0.0]))
    small, large = split_alignment(labels, volume, 1, 2), split_alignment(big_labels, big, 1, 2)
    assert large.displacement_mm == pytest.approx(small.displacement_mm, abs=1e-9)
    assert large.angulation_deg == pytest.approx(small.angulation_deg, abs=1e-9)
    assert np.allclose(large.fracture_center_ras, small.fracture_center_ras, atol=1e-9)

"""The reliefs the split from clicks floods, and their vote: the HU valley with its marrow
kept, halved and left out (:func:`mskai.fracture.fracture_landscape.click_reliefs`,
:func:`mskai.fracture.fragment_split.majority`).

Marrow's texture reads as short valleys all through a bone at 1x1x3.3 mm. Flooding them, a
click at the deepest voxel of one fragment stops at them while the other fragment's flood
runs through the faint fracture line and takes nearly all of it. The held-out case is the
FROC benchmark's touching fracture of test patient STS_001's largest bone (seed 7 of
``Testing/benchmarks/froc_real_fracture.py``); truth is the simulation's two fragments, with
clicks at each one's deepest voxel, as ``eval_fragment_split_held_out.py`` measures.
"""

from __future__ import annotations

import numpy as np
import pytest

PATIENT, KIND, SEED = "STS_001", "touching", 7


@pytest.fixture(scope="module")
def case(shared_data):
    from benchmarks.eval_fragment_split_held_out import sarcoma_click_case

    return sarcoma_click_case(shared_data, PATIENT, KIND, SEED)


def _worst_dice(case, landscape=None) -> float:
    from mskai.fracture.fragment_split import split_from_seeds
    from phantoms.touching_fracture import matched_dice

    image, truth, seeds = case
    return min(matched_dice(truth, split_from_seeds(image, truth > 0, seeds, landscape)))


def test_flooding_the_whole_valley_leaves_one_fragment_almost_nothing(case):
    from mskai.fracture.fracture_landscape import hu_valley

    image, truth, _ = case
    assert _worst_dice(case, hu_valley(image, truth > 0)) < 0.5  # measured 0.145


def test_the_vote_of_the_click_reliefs_splits_the_touching_fracture(case):
    assert _worst_dice(case) >= 0.90  # measured 0.929


def test_marrow_valleys_are_left_out_of_the_relief() -> None:
    """A bar of cortex (1200 HU) around marrow (300 HU) with dark specks in the marrow and a
    dark line across the cortex: the reliefs keep the line and scale the specks by 1, 0.5
    and 0."""
    from mskai.fracture.fracture_landscape import click_reliefs, hu_valley
    from mskai.volume import Volume

    shape = (40, 30, 30)
    bone = np.zeros(shape, dtype=bool)
    bone[4:-4, 5:25, 5:25] = True
    marrow = np.zeros(shape, dtype=bool)
    marrow[4:-4, 10:20, 10:20] = True
    hu = np.full(shape, 40.0, dtype=np.float32)
    hu[bone] = 1200.0
    hu[marrow] = 300.0
    specks = np.zeros(shape, dtype=bool)
    for k in (9, 15, 25, 31):
        specks[k:k + 3, 12:15, 12:15] = True  # globules of fat in the marrow
    hu[specks] = 40.0
    hu[20][bone[20] & ~marrow[20]] = 300.0  # a line across the cortex
    image = Volume(hu, spacing=(1.0, 1.0, 1.0), modality="CT")
    valley = hu_valley(image, bone)
    kept, halved, left_out = click_reliefs(image, bone)
    assert valley[specks].min() > 0.3
    np.testing.assert_allclose(kept[specks], valley[specks])
    np.testing.assert_allclose(halved[specks], 0.5 * valley[specks])
    assert left_out[specks].max() == 0.0
    for relief in (kept, halved, left_out):
        assert relief[20, 6, 15] > 0.3  # the line where it crosses the cortex


def test_each_voxel_takes_the_fragment_most_reliefs_give_it() -> None:
    from mskai.fracture.fragment_split import majority

    a = np.array([1, 1, 2, 2, 3])
    b = np.array([1, 2, 2, 3, 2])
    c = np.array([2, 1, 2, 1, 1])
    # no majority in the last two voxels: the middle labelling decides
    np.testing.assert_array_equal(majority([a, b, c]), [1, 1, 2, 3, 2])
    np.testing.assert_array_equal(majority([c]), c)

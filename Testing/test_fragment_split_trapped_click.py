"""One click per fragment where the plain watershed traps a click.

A held-out hairline fracture (no motion, a 0.3-1 mm line) of test patient STS_035's largest
bone, 1x1x3.3 mm: the FROC benchmark's case (``Testing/benchmarks/froc_real_fracture.py``,
seed 51). The line is faint in places, so a plain watershed from the two clicks lets one
fragment's flood leak through it and shut the other click in its own basin: that fragment
gets almost nothing. The click split then keeps the compact watershed
(``fragment_split.TRAPPED_SHARE``). Truth: the simulation's two fragments; clicks at each
one's deepest voxel, as ``Testing/benchmarks/eval_fragment_split_held_out.py`` measures.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

PATIENT, KIND, SEED = "STS_035", "hairline", 51


@pytest.fixture(scope="module")
def case(shared_data):
    from benchmarks.eval_fragment_split_held_out import deepest_clicks, truth_fragments
    from scipy import ndimage

    from mskai.fracture.fragment_split import seeds_from_ras
    from mskai.image import read_image
    from mskai.phantoms.real_fracture import simulate_real_fracture
    from mskai.segmentation.bone_ct import segment_bone_ct

    image = read_image(shared_data / "sts_sarcoma" / PATIENT / "CT_image.nii.gz")
    comps, _ = ndimage.label(segment_bone_ct(image), structure=np.ones((3, 3, 3)))
    bone = comps == np.bincount(comps.ravel())[1:].argmax() + 1
    sim = simulate_real_fracture(image, bone, KIND, seed=SEED)
    truth = truth_fragments(sim.fragments, bone)
    seeds = seeds_from_ras(sim.image, truth > 0, deepest_clicks(truth, sim.image),
                           max_snap_mm=5.0)
    return sim.image, truth, [s[None] for s in seeds]


def _worst_dice(case, params) -> float:
    from mskai.fracture.fragment_split import split_from_seeds
    from phantoms.touching_fracture import matched_dice

    image, truth, seeds = case
    return min(matched_dice(truth, split_from_seeds(image, truth > 0, seeds, params=params)))


def test_the_plain_watershed_traps_a_click(case):
    from mskai.fracture.fragment_split import DEFAULT_PARAMS

    assert _worst_dice(case, replace(DEFAULT_PARAMS, click_compactness=0.0)) < 0.1


def test_one_click_per_fragment_splits_the_hairline(case):
    from mskai.fracture.fragment_split import DEFAULT_PARAMS

    assert _worst_dice(case, DEFAULT_PARAMS) >= 0.90

"""One click per fragment where the plain watershed traps a click.

A held-out hairline fracture (no motion, a 0.3-1 mm line) of test patient STS_035's largest
bone, 1x1x3.3 mm: the FROC benchmark's case (``Testing/benchmarks/froc_real_fracture.py``,
seed 51). The line is faint in places, so a plain watershed from the two clicks lets one
fragment's flood leak through it and shut the other click in its own basin: that fragment
gets almost nothing. The click split then keeps the compact watershed
(``fragment_split.TRAPPED_SHARE``). Truth: the simulation's two fragments; clicks at each
one's deepest voxel, as ``Testing/benchmarks/eval_fragment_split_held_out.py`` measures.
The first two tests flood the whole HU valley, as the split did before 2026-12-07; since then
its own relief leaves marrow out (``test_fragment_split_click_landscape.py``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

PATIENT, KIND, SEED = "STS_035", "hairline", 51


@pytest.fixture(scope="module")
def case(shared_data):
    from benchmarks.eval_fragment_split_held_out import sarcoma_click_case

    return sarcoma_click_case(shared_data, PATIENT, KIND, SEED)


def _worst_dice(case, params, landscape=None) -> float:
    from mskai.fracture.fragment_split import split_from_seeds
    from phantoms.touching_fracture import matched_dice

    image, truth, seeds = case
    return min(matched_dice(truth, split_from_seeds(image, truth > 0, seeds, landscape,
                                                    params=params)))


def test_the_plain_watershed_traps_a_click(case):
    """On the whole HU valley, the relief the clicks flooded before 2026-12-07."""
    from mskai.fracture.fracture_landscape import hu_valley
    from mskai.fracture.fragment_split import DEFAULT_PARAMS

    image, truth, _ = case
    plain = replace(DEFAULT_PARAMS, click_compactness=0.0)
    assert _worst_dice(case, plain, hu_valley(image, truth > 0)) < 0.1


def test_the_compact_watershed_frees_it(case):
    from mskai.fracture.fracture_landscape import hu_valley
    from mskai.fracture.fragment_split import DEFAULT_PARAMS

    image, truth, _ = case
    assert _worst_dice(case, DEFAULT_PARAMS, hu_valley(image, truth > 0)) >= 0.90


def test_one_click_per_fragment_splits_the_hairline(case):
    from mskai.fracture.fragment_split import DEFAULT_PARAMS

    assert _worst_dice(case, DEFAULT_PARAMS) >= 0.90


def test_a_click_beside_the_line_does_not_reach_across_it() -> None:
    """A square bar of cortex (1200 HU, 1 mm voxels) with a 1 mm soft-tissue line across it
    at slice 20; one click 2 mm above the line, the other far below. The 5 mm click ball
    would reach 3 mm past the line; it keeps only the part connected to the click, so every
    voxel beyond the line's partial volume goes to the far click's fragment."""
    from mskai.fracture.fragment_split import split_from_seeds
    from mskai.volume import Volume

    shape, line = (40, 24, 24), 20
    hu = np.full(shape, 40.0, dtype=np.float32)
    bone = np.zeros(shape, dtype=bool)
    bone[2:-2, 6:18, 6:18] = True
    hu[bone] = 1200.0
    hu[line, 6:18, 6:18] = 40.0
    hu += np.random.default_rng(0).normal(0.0, 10.0, shape).astype(np.float32)
    image = Volume(hu, spacing=(1.0, 1.0, 1.0), modality="CT")
    near, far = np.array([[line + 2, 12, 12]]), np.array([[5, 12, 12]])
    labels = split_from_seeds(image, bone, [near, far])
    assert np.all(labels[2:line - 1][bone[2:line - 1]] == 2)
    assert np.all(labels[line + 1:-2][bone[line + 1:-2]] == 1)

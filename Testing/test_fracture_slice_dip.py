"""One-slice HU dips on an analytic long bone scanned at 3.3 mm slices.

Truth: a hollow cylinder of cortex (1200 HU, 4 mm thick) around marrow (100 HU) in soft
tissue (40 HU), 1 x 1 x 3.3 mm voxels, noise 20 HU. A hairline of 0.6 mm soft tissue crosses
the whole bone inside slice 10, so partial volume lowers that slice by (1200 - 40) x 0.6 / 3.3
= 211 HU in the cortex, about ten noise SDs, with no in-plane valley at all. The dip region
must lie in that slice; the intact bone, its marrow and its ends give no region. An
impaction band (1.5 mm of bone 250 HU denser inside slice 10) is no dip.
"""

from __future__ import annotations

import numpy as np

from mskai.fracture.slice_dip import CLIP_SD, PEAK_SD, dip_regions, slice_dip
from mskai.noise import noise_sd
from mskai.volume import Volume

SHAPE = (20, 48, 48)  # k (z), j, i
SPACING = (1.0, 1.0, 3.3)  # x, y, z mm
LINE_K = 10
LINE_MM = 0.6
NOISE_HU = 20.0


def _bone(hairline: bool, impaction: bool = False) -> tuple[Volume, np.ndarray]:
    k, j, i = np.indices(SHAPE, dtype=float)
    r = np.hypot(j - 23.5, i - 23.5)
    inside = (r <= 12) & (k >= 3) & (k <= 16)
    hu = np.full(SHAPE, 40.0)
    hu[inside] = 1200.0
    hu[inside & (r <= 8)] = 100.0
    if hairline:
        share = LINE_MM / SPACING[2]
        line = inside & (k == LINE_K)
        hu[line] = hu[line] * (1 - share) + 40.0 * share
    if impaction:
        hu[inside & (k == LINE_K)] += 250.0 * 1.5 / SPACING[2]
    hu += np.random.default_rng(0).normal(0.0, NOISE_HU, SHAPE)
    return Volume(hu.astype(np.float32), spacing=SPACING, modality="CT"), inside


def test_the_noise_is_measured_in_soft_tissue() -> None:
    rng = np.random.default_rng(1)
    soft = Volume((40.0 + rng.normal(0.0, NOISE_HU, SHAPE)).astype(np.float32),
                  spacing=SPACING, modality="CT")
    assert abs(noise_sd(soft) - NOISE_HU) <= 1.0


def test_a_hairline_inside_one_thick_slice_is_a_dip_region_in_that_slice() -> None:
    volume, bone = _bone(hairline=True)
    dip = slice_dip(volume, bone)
    assert dip[LINE_K].max() >= 0.6 * CLIP_SD  # clipped at 6 SD, then averaged in-plane
    regions = dip_regions(dip)
    assert len(regions) == 1
    box, here = regions[0]
    slices = np.unique(np.argwhere(here)[:, 0] + box[0].start)
    assert slices.tolist() == [LINE_K]


def test_a_dip_region_candidate_says_it_comes_from_the_slice_dip() -> None:
    from mskai.fracture.candidates import SOURCE_NAME_SLICE_DIP
    from mskai.fracture.valley_candidates import dip_candidate

    volume, bone = _bone(hairline=True)
    dip = slice_dip(volume, bone)
    (box, here), = dip_regions(dip)
    candidate = dip_candidate(box, here, dip, volume)
    assert candidate.source_name == SOURCE_NAME_SLICE_DIP
    assert candidate.as_contract()["source"] == SOURCE_NAME_SLICE_DIP
    k_of_position = volume.ras_to_index(candidate.position_ras)[2]
    assert abs(k_of_position - LINE_K) < 0.5  # placed on the dark slice


def test_intact_bone_its_marrow_and_its_ends_give_no_dip_region() -> None:
    volume, bone = _bone(hairline=False)
    dip = slice_dip(volume, bone)
    assert dip.max() < PEAK_SD
    assert dip_regions(dip) == []


def test_no_bone_gives_no_dip() -> None:
    volume, bone = _bone(hairline=True)
    assert not slice_dip(volume, np.zeros_like(bone)).any()


def test_thin_slices_are_not_measured() -> None:
    volume, bone = _bone(hairline=True)
    thin = Volume(volume.array, spacing=(1.0, 1.0, 1.5), modality="CT")
    assert not slice_dip(thin, bone).any()  # the reducer never saw slices under 2.5 mm


def test_a_denser_band_inside_one_slice_is_no_dip() -> None:
    volume, bone = _bone(hairline=False, impaction=True)
    assert slice_dip(volume, bone).max() < PEAK_SD

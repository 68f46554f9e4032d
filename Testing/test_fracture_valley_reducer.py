"""The valley candidates' learned false-positive reducer on HELD-OUT real bone.

Truth: the fracture-surface mask of realistic simulated fractures
(:mod:`mskai.phantoms.real_fracture`) of STS_035's largest bone. STS_035 is a TEST patient
of ``training/fracture/split.json``: the reducer never saw its bones, and its threshold was
chosen on the training patients. The three fractures are the benchmark's own cases (same
bone, kinds and seeds as ``Testing/benchmarks/froc_real_fracture.py``: touching 49,
impacted 50, hairline 51). Touching and hairline are among the 20 of 49 held-out fractures
it finds at the default threshold (sensitivity 0.41, README); v2 finds no impacted fracture
there (v1: 2 of 9), so the impacted one is asserted at the benchmark's 1 FP/scan threshold
(score 0.297, where v2 finds 0.55 of all kinds and 4 of 9 impacted). A hit is a candidate
within 10 mm of a true surface voxel, the benchmark's criterion. On the intact CTs of
STS_035 and STS_019 the reducer keeps regions (anatomy that reads like a line) and none may
reach 0.5. Of the 9 intact test CTs one has a candidate at 0.5 (STS_008, 0.681, a valley
region at the shoulder near the field of view's edge: the 0.11 false positives per intact
test CT of the README), so it is not among them. The default pipeline (components +
reduced regions, the reducer's entry marked preferred) reports the
hairline fracture, found by the valley, and nothing on the intact STS_035; the components
alone (``valley_reducer=False``) miss it.
"""

from __future__ import annotations

import numpy as np
import pytest

PATIENT = "STS_035"
CASES = {"touching": 49, "impacted": 50, "hairline": 51}
HIT_MM = 10.0
REPORT = 0.5
ONE_FP_PER_SCAN = 0.297  # the default's score at 1 FP per fractured scan (README FROC, v2)
FOUND_AT = {"touching": REPORT, "hairline": REPORT, "impacted": ONE_FP_PER_SCAN}


def _largest_bone(image) -> np.ndarray:
    from scipy import ndimage

    from mskai.segmentation.bone_ct import segment_bone_ct

    comps, _ = ndimage.label(segment_bone_ct(image), structure=np.ones((3, 3, 3)))
    return comps == np.bincount(comps.ravel())[1:].argmax() + 1


def _read(shared_data, patient: str):
    from mskai.image import read_image

    return read_image(shared_data / "sts_sarcoma" / patient / "CT_image.nii.gz")


@pytest.fixture(scope="module")
def intact(shared_data):
    return _read(shared_data, PATIENT)


@pytest.fixture(scope="module")
def fractures(intact):
    from mskai.phantoms.real_fracture import simulate_real_fracture

    bone = _largest_bone(intact)
    return {kind: simulate_real_fracture(intact, bone, kind, seed=seed)
            for kind, seed in CASES.items()}


def _best_hit(candidates, sim) -> float:
    """Highest score of a candidate within HIT_MM of the true surface (-1 if none)."""
    from scipy.spatial import cKDTree

    kji = np.argwhere(sim.surface)[:, ::-1].astype(float)
    tree = cKDTree(np.asarray(sim.image.index_to_ras(kji)).reshape(-1, 3))
    return max((c.score for c in candidates
                if tree.query(np.asarray(c.position_ras, dtype=float))[0] <= HIT_MM),
               default=-1.0)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_held_out_fracture_is_found(fractures, kind):
    from mskai.fracture.valley_reducer import reduced_valley_candidates

    sim = fractures[kind]
    assert _best_hit(reduced_valley_candidates(sim.image), sim) >= FOUND_AT[kind]


@pytest.mark.parametrize("patient", [PATIENT, "STS_019"])
def test_intact_held_out_ct_has_no_candidate_at_threshold(shared_data, patient):
    from mskai.fracture.valley_reducer import reduced_valley_candidates

    reduced = reduced_valley_candidates(_read(shared_data, patient))
    assert reduced  # the anatomy gives valley regions: the reducer has work to do
    assert max(c.score for c in reduced) < REPORT


def test_default_pipeline_reports_the_hairline_and_nothing_on_the_intact_ct(intact,
                                                                            fractures):
    from mskai.fracture.candidates import SOURCE_NAME_VALLEY
    from mskai.fracture.valley_reducer import reducer_entry
    from mskai.tasks.fracture import run_fracture

    # the default: with the components at their own threshold, 0.11 FP per intact test CT
    # (<= 0.2), so preferred
    assert reducer_entry(preferred_only=True) is not None
    sim = fractures["hairline"]
    found = run_fracture(sim.image).measurements["fractures"]
    hit = [f for f in found if _best_hit([_Pos(f)], sim) >= REPORT]
    assert hit, f"hairline fracture not reported; fractures: {found}"
    assert {f["source"] for f in hit} == {SOURCE_NAME_VALLEY}
    assert run_fracture(intact).measurements["fractures"] == []
    assert _best_hit([_Pos(f) for f in run_fracture(sim.image, valley_reducer=False)
                      .measurements["fractures"]], sim) < REPORT  # the components alone miss it


def test_recentred_score_reads_half_at_the_threshold():
    from mskai.fracture.valley_reducer import recentred

    assert recentred(0.79, 0.79) == pytest.approx(0.5)
    assert recentred(0.9, 0.79) > 0.5 > recentred(0.7, 0.79)


class _Pos:
    """A contract ``fractures`` entry seen as a candidate (position and score)."""

    def __init__(self, entry: dict) -> None:
        self.position_ras = np.asarray(entry["position_ras"], dtype=float)
        self.score = float(entry["score"])


def test_regions_on_the_image_edge_are_dropped():
    from mskai.fracture.valley_reducer import on_image_border

    crop = (slice(2, 50), slice(0, 40), slice(5, 30))  # of a 60 x 40 x 40 image
    shape = (60, 40, 40)
    inside = (slice(0, 3), slice(5, 9), slice(5, 9))  # slices 2-4 of the image
    assert not on_image_border(inside, crop, shape)
    assert on_image_border((slice(5, 9), slice(0, 3), slice(5, 9)), crop, shape)  # row 0
    assert on_image_border((slice(5, 9), slice(36, 40), slice(5, 9)), crop, shape)  # last row
    assert not on_image_border((slice(44, 48), slice(5, 9), slice(20, 25)), crop, shape)

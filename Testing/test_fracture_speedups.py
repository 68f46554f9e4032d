"""The fracture pipeline's speed-ups change no result, and candidates name their source.

The hole filling by labelling (:func:`mskai.segmentation.bone_ct.fill_holes_all_planes`,
``fill_holes_along``) must give the voxels of ``ndimage.binary_fill_holes`` of the volume and
of every slice; the dense-bone closing of the thresholded image the voxels of the grey
closing thresholded; the steps shared between the HU masks of one image (``shared``) must give
the masks of separate calls; and the default pipeline on a fractured phantom reports
where every candidate comes from, with the component scorer's probability re-centred on
its operating threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mskai.fracture.candidates import (
    SOURCE_NAME_COMPONENTS,
    SOURCE_NAME_SLICE_DIP,
    SOURCE_NAME_SURFACE,
    SOURCE_NAME_VALLEY,
)
from mskai.segmentation.bone_ct import fill_holes_all_planes, fill_holes_along, segment_bone_ct
from phantoms.long_bone import fractured_long_bone


def _reference_fill(mask: np.ndarray) -> np.ndarray:
    """The former implementation: scipy's fill of the volume, then of every slice."""
    out = ndimage.binary_fill_holes(mask)
    filled = out.copy()
    for axis in range(3):
        for index in range(mask.shape[axis]):
            sl = [slice(None)] * 3
            sl[axis] = index
            filled[tuple(sl)] |= ndimage.binary_fill_holes(out[tuple(sl)])
    return filled


@pytest.fixture(scope="module")
def phantom():
    return fractured_long_bone(translation_mm=(4.0, 2.0, 0.0), angulation_deg=10.0,
                               gap_mm=6.0, body_radius_mm=30.0, noise_sd=15.0, supersample=2)


def test_fill_by_labelling_equals_scipy_on_random_masks():
    rng = np.random.default_rng(3)
    for n in range(25):
        shape = tuple(int(s) for s in rng.integers(3, 24, 3))
        mask = ndimage.binary_dilation(rng.random(shape) > 0.93 - 0.05 * (n % 4),
                                       iterations=int(rng.integers(0, 3)))
        mask ^= rng.random(shape) > 0.96
        np.testing.assert_array_equal(fill_holes_all_planes(mask), _reference_fill(mask))
        np.testing.assert_array_equal(fill_holes_along(mask, None),
                                      ndimage.binary_fill_holes(mask))


def test_fill_by_labelling_equals_scipy_on_a_bone_phantom(phantom):
    """Cortex rings (open marrow) of a real HU mask: the same voxels as before."""
    mask = np.asarray(phantom.image.array) >= 300
    assert not np.array_equal(_reference_fill(mask), mask)  # there are holes to fill
    np.testing.assert_array_equal(fill_holes_all_planes(mask), _reference_fill(mask))


def test_shared_steps_give_the_masks_of_separate_calls(phantom):
    image = phantom.image
    settings = [dict(), dict(low_hu=150.0, high_hu=250.0, refine=False), dict(refine=False)]
    shared: dict = {}
    together = [segment_bone_ct(image, shared=shared, **kw) for kw in settings]
    for kw, mask in zip(settings, together, strict=True):
        np.testing.assert_array_equal(mask, segment_bone_ct(image, **kw))
    assert together[0].any() and not np.array_equal(together[0], together[1])


def test_dense_bone_by_thresholded_closing_equals_the_grey_closing(phantom):
    from mskai.fracture.fracture_landscape import CLOSING_MM, DENSE_HU, _bone_box, dense_bone

    image = phantom.image
    bone = segment_bone_ct(image)
    box = _bone_box(bone, CLOSING_MM, image.spacing)
    spacing_kji = tuple(reversed(image.spacing))
    size = tuple(int(2 * max(1, round(CLOSING_MM / s)) + 1) for s in spacing_kji)
    closed = ndimage.grey_closing(np.asarray(image.array[box], dtype=np.float32), size=size)
    expected = np.zeros(bone.shape, dtype=bool)
    expected[box] = bone[box] & (closed >= DENSE_HU)
    assert expected.any()
    np.testing.assert_array_equal(dense_bone(image, bone), expected)


def test_candidates_name_their_source_and_report_at_the_scorer_threshold(phantom):
    from mskai.fracture.scorer import operating_threshold, recentred, scorer_entry
    from mskai.fracture.valley_reducer import reducer_entry
    from mskai.tasks.fracture import run_fracture

    assert reducer_entry(preferred_only=True) is not None  # the merge is the default
    result = run_fracture(phantom.image)
    candidates = result.measurements["fracture_candidates"]
    sources = {c["source"] for c in candidates}
    assert sources <= {SOURCE_NAME_COMPONENTS, SOURCE_NAME_VALLEY, SOURCE_NAME_SLICE_DIP,
                       SOURCE_NAME_SURFACE}
    truth = phantom.truth.fractures[0].center_ras
    (found,) = [f for f in result.measurements["fractures"]
                if np.linalg.norm(np.subtract(f["position_ras"], truth)) <= 10.0]
    assert found["source"] == SOURCE_NAME_COMPONENTS
    for model in (scorer_entry(), reducer_entry(preferred_only=True)):  # both ran: named
        assert f"{model.id} {model.version}" in result.provenance.method
    threshold = operating_threshold(scorer_entry())
    assert threshold > 0.9  # chosen on the intact training CTs (component_threshold.py)
    probability = found["score_terms"]["scorer_probability"]
    assert found["score"] == pytest.approx(recentred(probability, threshold))
    assert (found["score"] >= 0.5) == (probability >= threshold)

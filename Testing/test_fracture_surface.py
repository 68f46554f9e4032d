"""The learned fracture-surface model's API, and the default pipeline on an intact real CT.

The shipped ``fracture_surface_unet`` v3 responds to the fracture, not only to where bone
is: on a held-out patient its probability on the true surface of a simulated touching
fracture is clearly higher than on the same voxels of the intact CT (v1 read the same on
both). It is still not preferred: added to the default detectors it gives 0.22 false
positives per intact test CT, above the 0.2 its rule allows (model card). Also asserted:
the probability's contract (image geometry, 0..1, zero outside bone), the preference rule,
the operating threshold's scores, and that the default pipeline reports no fracture on the
intact CT of a held-out patient (STS_001, a test patient of training/fracture/split.json).
"""

from __future__ import annotations

import numpy as np
import pytest

PATIENT = "STS_001"


@pytest.fixture(scope="module")
def patient(shared_data):
    from mskai.image import read_image
    from mskai.segmentation.bone_ct import segment_bone_ct

    full = read_image(shared_data / "sts_sarcoma" / PATIENT / "CT_image.nii.gz")
    image = full.crop((slice(20, 40), slice(None), slice(None)))  # 66 mm: keeps the test fast
    return image, segment_bone_ct(image)


def test_probability_rises_on_a_touching_fracture_of_a_held_out_bone(shared_data):
    """Fragments in contact along a rough surface: no gap, so no component sees them."""
    from benchmarks.surface_response import probability
    from scipy import ndimage

    from mskai.fracture.surface_net import load_surface_net
    from mskai.image import read_image
    from mskai.phantoms.real_fracture import simulate_real_fracture
    from mskai.segmentation.bone_ct import segment_bone_ct

    full = read_image(shared_data / "sts_sarcoma" / PATIENT / "CT_image.nii.gz")
    image = full.crop((slice(10, 40), slice(None), slice(None)))  # 99 mm of the limb
    hu_bone = segment_bone_ct(image)
    labels, _ = ndimage.label(hu_bone, structure=np.ones((3, 3, 3)))
    bone = labels == np.bincount(labels.ravel())[1:].argmax() + 1
    sim = simulate_real_fracture(image, bone, "touching", seed=3)
    net = load_surface_net()
    broken = probability(sim.image, segment_bone_ct(sim.image), net)[sim.surface]
    intact = probability(image, hu_bone, net)[sim.surface]
    # measured 0.95 against 0.61 (v3 0.92 against 0.68; v2 0.89 against 0.54; v1 the same on
    # both, see the card)
    assert np.percentile(broken, 95) > np.percentile(intact, 95) + 0.15


def test_probability_is_inside_bone_on_the_image_grid(patient):
    import SimpleITK as sitk

    from mskai.fracture.surface_net import fracture_surface_probability, load_surface_net

    image, hu_bone = patient
    ct = image.to_sitk()
    mask = image.with_array(hu_bone.astype(np.uint8)).to_sitk()
    prob = fracture_surface_probability(ct, mask, net=load_surface_net())
    arr = sitk.GetArrayFromImage(prob)
    assert prob.GetSize() == ct.GetSize() and prob.GetSpacing() == ct.GetSpacing()
    assert prob.GetOrigin() == ct.GetOrigin()
    assert arr.dtype == np.float32 and arr.min() >= 0.0 and arr.max() <= 1.0
    assert arr[hu_bone].max() > 0.0 and not arr[~hu_bone].any()


def test_model_is_verified_but_not_preferred():
    from mskai.fracture.surface_net import surface_model_entry

    assert surface_model_entry() is not None
    assert surface_model_entry(preferred_only=True) is None


def test_surface_candidates_of_a_known_map():
    from mskai.fracture.surface_candidates import surface_candidates
    from mskai.volume import Volume

    prob = np.zeros((20, 20, 20), dtype=np.float32)
    prob[5:8, 5:8, 5:8] = 0.9  # 27 voxels, peak 0.9, centre (6, 6, 6)
    prob[14, 14, 14] = 0.95  # a single voxel: below MIN_VOXELS
    volume = Volume(prob, spacing=(2.0, 2.0, 2.0))
    found = surface_candidates(prob, volume)
    assert len(found) == 1
    assert found[0].score == pytest.approx(0.9)
    assert found[0].terms["surface_ml"] == pytest.approx(27 * 8 / 1000)
    assert np.allclose(found[0].position_ras, volume.index_to_ras([6.0, 6.0, 6.0]))


def test_scores_read_half_at_the_operating_threshold():
    from mskai.fracture.surface_candidates import at_operating_threshold, surface_candidates
    from mskai.volume import Volume

    prob = np.zeros((20, 20, 20), dtype=np.float32)
    prob[2:5, 2:5, 2:5] = 0.99
    prob[12:15, 12:15, 12:15] = 0.999
    found = at_operating_threshold(surface_candidates(prob, Volume(prob)), 0.995)
    assert [c.terms["surface_probability"] for c in found] == pytest.approx([0.999, 0.99])
    assert found[0].score > 0.5 > found[1].score  # 0.99 is below the operating 0.995
    assert at_operating_threshold(surface_candidates(prob, Volume(prob)), 0.99)[1].score == (
        pytest.approx(0.5))


def test_default_pipeline_reports_no_fracture_on_intact_real_ct(patient):
    from mskai.tasks.fracture import run_fracture

    image, _ = patient
    assert run_fracture(image).measurements["fractures"] == []

"""Realistic simulated fractures of real bone (mskai/phantoms/real_fracture.py) and the split.

Truths: the rough surface's analytic height, the fracture kinds' definitions (no motion
for a hairline, overlap for impaction) and partial volume (a line thinner than a voxel
never replaces a whole voxel), on a bone of a held-out (test) sarcoma patient.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_PATIENT = "STS_001"  # a test patient of training/fracture/split.json


@pytest.fixture(scope="module")
def sarcoma_bone(shared_data):
    from scipy import ndimage

    from mskai.image import read_image
    from mskai.segmentation.bone_ct import segment_bone_ct

    image = read_image(shared_data / "sts_sarcoma" / TEST_PATIENT / "CT_image.nii.gz")
    comps, _ = ndimage.label(segment_bone_ct(image), structure=np.ones((3, 3, 3)))
    largest = np.bincount(comps.ravel())[1:].argmax() + 1
    return image, comps == largest


def test_rough_surface_rms_and_height():
    from mskai.phantoms.rough_surface import random_surface

    rng = np.random.default_rng(3)
    s = random_surface(np.zeros(3), np.array([0.0, 0.0, 1.0]), rng, rms_mm=1.5, radius_mm=40)
    uv = rng.uniform(-200, 200, (20000, 2))
    pts = np.column_stack([uv, np.zeros(len(uv))])
    h = -s.height(pts)  # points on the plane z=0: height = -h(u, v)
    assert np.sqrt(np.mean(h ** 2)) == pytest.approx(1.5, rel=0.15)
    up = s.height(np.array([[5.0, -3.0, 10.0], [5.0, -3.0, 0.0]]))
    assert up[0] - up[1] == pytest.approx(10.0, abs=1e-9)  # exact along the normal


def test_hairline_is_partial_volume_only(sarcoma_bone):
    from mskai.phantoms.real_fracture import FILL_HU, HAIRLINE, simulate_real_fracture

    image, bone = sarcoma_bone
    sim = simulate_real_fracture(image, bone, HAIRLINE, seed=1)
    before = np.asarray(image.array, dtype=np.float32)
    after = np.asarray(sim.image.array, dtype=np.float32)
    changed = np.abs(after - before) > 0
    assert sim.surface.sum() > 50
    assert not (changed & ~sim.surface).any()  # nothing moves in a hairline fracture
    contrast = before[changed] - FILL_HU
    drop = (before - after)[changed]
    # a line of 0.3-1 mm fills at most a third of a 1x1x3.3 mm voxel on average
    assert 0.0 < np.median(drop / np.maximum(contrast, 1.0)) < 1.0 / 3
    assert set(np.unique(sim.fragments)) >= {0, 1, 2}


def test_impaction_raises_density(sarcoma_bone):
    from mskai.phantoms.real_fracture import IMPACTED, simulate_real_fracture

    image, bone = sarcoma_bone
    sim = simulate_real_fracture(image, bone, IMPACTED, seed=2)
    before = np.asarray(image.array, dtype=np.float32)
    after = np.asarray(sim.image.array, dtype=np.float32)
    raised = after[sim.surface] - before[sim.surface]
    assert np.percentile(raised, 90) > 100.0  # the overlap is denser than either fragment
    assert np.linalg.norm(sim.motions[0].translation) >= 1.5


def test_touching_fragments_move_rigidly(sarcoma_bone):
    from mskai.phantoms.real_fracture import TOUCHING, simulate_real_fracture

    image, bone = sarcoma_bone
    sim = simulate_real_fracture(image, bone, TOUCHING, seed=3)
    m = sim.motions[0]
    assert np.allclose(m.rotation @ m.rotation.T, np.eye(3), atol=1e-9)
    angle = np.degrees(np.arccos((np.trace(m.rotation) - 1) / 2))
    assert 1.0 <= angle <= 4.0
    assert np.count_nonzero(sim.fragments == 2) > 100


def test_unknown_kind_is_refused(sarcoma_bone):
    from mskai.phantoms.real_fracture import simulate_real_fracture

    image, bone = sarcoma_bone
    with pytest.raises(ValueError, match="unknown fracture kind"):
        simulate_real_fracture(image, bone, "greenstick")


def test_split_is_by_patient_and_avoids_reserved_cases():
    split = json.loads((REPO / "training" / "fracture" / "split.json").read_text())
    assert not set(split["train"]) & set(split["test"])
    reserved = {f"STS_{n:03d}" for n in (*range(4, 7), *range(40, 52))}
    assert not (set(split["train"]) | set(split["test"])) & reserved
    assert TEST_PATIENT in split["test"]

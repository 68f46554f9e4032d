"""The learned fracture-candidate scorer: shipped parameters, safety checks, use in the task."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mskai.errors import ModelError
from mskai.fracture.scorer import (
    FEATURES,
    LogisticScorer,
    fit_logistic,
    load_scorer,
    mean_hu_near,
    scorer_entry,
)
from mskai.volume import Volume


@pytest.fixture(scope="module")
def entry():
    found = scorer_entry()
    if found is None:
        pytest.skip("no verified fracture_score model in the manifest")
    return found


def test_shipped_scorer_verifies_and_loads(entry):
    assert entry.task == "fracture_score" and entry.modality == "CT"
    assert entry.architecture["kwargs"]["features"] == list(FEATURES)
    scorer = load_scorer(entry)
    assert scorer.weight.shape == (len(FEATURES),)
    p = scorer(np.zeros((3, len(FEATURES))))
    assert p.shape == (3,) and np.all((p > 0) & (p < 1))


def test_altered_parameters_are_refused(entry, tampered_copy):
    with pytest.raises(ModelError, match="sha256"):
        load_scorer(tampered_copy(entry))


def test_feature_list_mismatch_is_refused(entry):
    other = replace(entry, architecture={"type": "mskai.logistic_regression",
                                         "kwargs": {"features": ["gap"]}})
    with pytest.raises(ModelError, match="features"):
        load_scorer(other)


def test_logistic_fit_separates_two_clusters():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (200, 3)), rng.normal(3, 1, (20, 3))])
    y = np.r_[np.zeros(200), np.ones(20)]
    scorer = LogisticScorer(fit_logistic(x, y, positive_weight=10.0))
    p = scorer(x)
    assert p[y == 1].mean() > 0.8 and p[y == 0].mean() < 0.2


def test_mean_hu_near_a_point():
    array = np.zeros((20, 20, 20), dtype=np.float32)
    array[8:13, 8:13, 8:13] = 100.0
    volume = Volume(array, spacing=(1.0, 1.0, 1.0))
    centre = volume.index_to_ras(np.array([10.0, 10.0, 10.0]))
    assert mean_hu_near(volume, centre, 2.0) == pytest.approx(100.0)
    assert mean_hu_near(volume, volume.index_to_ras(np.array([2.0, 2.0, 2.0])), 1.0) == 0.0


def test_task_uses_the_learned_score_on_a_held_out_rib(entry, shared_data):
    """A right rib (a held-out bone) cut with a held-out seed: learned score reported."""
    from mskai.image import read_image
    from mskai.tasks.fracture import run_fracture
    from phantoms.simulated_fracture import simulate_fracture

    folder = shared_data / "ts_example"
    image = read_image(folder / "example_ct.nii.gz")
    seg = read_image(folder / "example_seg_fast_force_split.nii.gz").array
    sim = simulate_fracture(image, seg == 114, seed=114, gap_mm=(5.0, 9.0))
    candidates = run_fracture(sim.image).measurements["fracture_candidates"]
    assert all("heuristic_score" in c["score_terms"] for c in candidates)
    distances = [np.linalg.norm(np.subtract(c["position_ras"], sim.center_ras))
                 for c in candidates]
    assert min(distances) <= 10.0

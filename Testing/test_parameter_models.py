"""Models that are no network (the two fracture logistic regressions) are plain arrays.

Their parameters live in ``npz`` files (manifest format ``npz``), read with
``numpy.load(allow_pickle=False)`` after the sha256 check, so the default CT fracture
pipeline, which runs no network, never imports torch (2-4 s and about 200 MB saved).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mskai.errors import ModelError
from mskai.fracture.scorer import FEATURES, load_scorer, save_logistic, scorer_entry
from mskai.fracture.valley_reducer import load_reducer, reducer_entry
from mskai.models.loaders import load_model, read_arrays
from mskai.models.manifest import PARAMETER_FORMAT, parse_entry, sha256_path

REPO = Path(__file__).resolve().parents[1]
CT = REPO / "Testing" / "Data" / "sts_sarcoma" / "STS_001_CT_image.nii.gz"


def logistic_entry(path: Path, features=FEATURES):
    return parse_entry({"id": "tiny_logreg", "version": "1", "task": "fracture_score",
                        "modality": "CT", "format": PARAMETER_FORMAT, "file": path.name,
                        "sha256": sha256_path(path),
                        "architecture": {"type": "mskai.logistic_regression",
                                         "kwargs": {"features": list(features)}}},
                       path.parent)


def test_the_shipped_logistic_models_are_npz_and_load():
    for entry, load in ((scorer_entry(), load_scorer),
                        (reducer_entry(preferred_only=True), load_reducer)):
        assert entry is not None and entry.format == PARAMETER_FORMAT
        scorer = load(entry)
        assert scorer.weight.shape == scorer.mean.shape == scorer.scale.shape


def test_saved_parameters_score_as_the_formula_says(tmp_path):
    n = len(FEATURES)
    params = {"mean": np.arange(n, dtype=float), "scale": np.full(n, 2.0),
              "weight": np.linspace(-1, 1, n), "bias": np.array([0.25])}
    path = tmp_path / "logreg.npz"
    save_logistic(params, path)
    scorer = load_scorer(logistic_entry(path))
    x = np.ones(n)
    z = ((x - params["mean"]) / 2.0) @ params["weight"] + 0.25
    assert scorer(x)[0] == pytest.approx(1.0 / (1.0 + np.exp(-z)), rel=1e-12)


def test_a_parameter_file_with_pickled_objects_is_refused_not_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, mean=np.array([{"not": "an array"}], dtype=object))
    with pytest.raises(ModelError, match="plain arrays"):
        read_arrays(logistic_entry(path))


def test_a_parameter_file_changed_after_the_manifest_is_refused(tmp_path):
    path = tmp_path / "logreg.npz"
    save_logistic({"mean": np.zeros(2)}, path)
    entry = logistic_entry(path)
    save_logistic({"mean": np.ones(2)}, path)
    with pytest.raises(ModelError, match="sha256"):
        read_arrays(entry)


def test_a_parameter_entry_is_not_a_network(tmp_path):
    path = tmp_path / "logreg.npz"
    save_logistic({"mean": np.zeros(2)}, path)
    with pytest.raises(ModelError, match="no network"):
        load_model(logistic_entry(path))


def test_the_default_ct_fracture_run_never_imports_torch():
    script = f"""
import sys
from mskai.fracture.scorer import load_scorer, scorer_entry
from mskai.fracture.valley_reducer import load_reducer, reducer_entry
from mskai.image import read_image
from mskai.tasks.fracture import run_fracture
run_fracture(read_image({str(CT)!r}))
load_reducer(reducer_entry(preferred_only=True)); load_scorer(scorer_entry())
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=REPO / "MSKAIExtension")
    assert out.stdout.strip() == "False"

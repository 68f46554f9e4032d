"""The tumour click model's cross-validation set-up: folds, inputs, training samples, results.

No training here (seconds on CPU). The folds file must split by patient and never list the
patients reserved for independent evaluation; the MR input must not depend on the scanner's
units; the reported cross-validation results must back the default method.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

TUMOR = Path(__file__).resolve().parents[1] / "training" / "tumor"
RESERVED = {"STS_004", "STS_005", "STS_006", *(f"STS_{n:03d}" for n in range(40, 52))}


def _folds() -> list[list[str]]:
    return json.loads((TUMOR / "folds.json").read_text())["folds"]


def test_folds_split_by_patient_without_reserved_cases() -> None:
    folds = _folds()
    patients = [p for f in folds for p in f]
    assert len(folds) == 5 and len(patients) == len(set(patients)) == 36
    expected = {"STS_001", "STS_002", "STS_003", *(f"STS_{n:03d}" for n in range(7, 40))}
    assert set(patients) == expected and not set(patients) & RESERVED
    assert all(7 <= len(f) <= 8 for f in folds)


def test_mr_input_ignores_the_scanners_units() -> None:
    from mskai.interactive.learned import image_channels

    rng = np.random.default_rng(0)
    image = rng.gamma(4.0, 100.0, (16, 24, 24)).astype(np.float32)   # "fat-normalised" MR
    click = np.array([8, 12, 12])
    a = image_channels(image, False, click)
    b = image_channels(image * 7.3 + 250.0, False, click)          # raw scanner units
    assert a.shape == (3, 16, 24, 24)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.all(a[2] == -1.0) and np.all(image_channels(image, True, click)[2] == 1.0)


def test_ct_input_uses_fixed_hounsfield_windows() -> None:
    from mskai.interactive.learned import normalise_absolute

    hu = np.array([-1000.0, -100.0, 50.0, 300.0, 1500.0], np.float32).reshape(1, 1, 5)
    np.testing.assert_allclose(normalise_absolute(hu, True).ravel(),
                               [-2.0, -1.2, 0.0, 2.0, 2.0], atol=1e-6)


def test_training_batch_simulates_clicks() -> None:
    sys.path.insert(0, str(TUMOR))
    import torch
    from train import PATCH, make_batch

    from mskai.interactive.learned import ARCHITECTURE
    from mskai.models.loaders import build_network

    k, j, i = np.mgrid[:40, :60, :60]
    mask = ((k - 20) / 8.0) ** 2 + ((j - 30) / 12.0) ** 2 + ((i - 30) / 10.0) ** 2 < 1
    rng = np.random.default_rng(1)
    pool = [{"case": "X", "modality": m, "mask": mask,
             "image": (np.where(mask, 60.0, 20.0) + rng.normal(0, 5, mask.shape)
                       ).astype(np.float32)} for m in ("CT", "MR")]
    torch.manual_seed(0)
    model = build_network(ARCHITECTURE)
    x, y = make_batch(pool, rng, 3, model, own=1.0, device=torch.device("cpu"))
    assert tuple(x.shape) == (3, 6, *PATCH) and tuple(y.shape) == (3, 1, *PATCH)
    assert float(y.sum()) > 0
    assert torch.all(x[:, 3].amax(dim=(1, 2, 3)) > 0.99)   # a positive click in every sample
    assert torch.all(x[:, 5].amax(dim=(1, 2, 3)) >= 0.0)


def test_auto_threshold_is_the_median_of_the_nested_choices() -> None:
    from mskai.interactive.auto_method import AUTO_THRESHOLD_ML

    per_fold = json.loads((TUMOR / "cv_results.json").read_text())["auto_threshold_ml_per_fold"]
    assert len(per_fold) == 5
    assert float(np.median(list(per_fold.values()))) == AUTO_THRESHOLD_ML


def test_local_removal_ratio_is_the_median_of_the_nested_choices() -> None:
    from mskai.interactive.refine import LOCAL_REMOVAL_RATIO

    per_fold = json.loads((TUMOR / "cv_results.json").read_text())["local_removal_ratio_per_fold"]
    assert len(per_fold) == 5
    assert float(np.median(list(per_fold.values()))) == LOCAL_REMOVAL_RATIO


def test_cross_validation_backs_the_auto_default() -> None:
    """``mskai tumor`` defaults to "auto" only where its mean Dice after 1, 2, 3 and 5 clicks
    is at least the classic method's on CT and on MR (the worst case is reported, not gated)."""
    import argparse

    from mskai.cli import build_parser
    from mskai.click_methods import AUTO, CLASSIC, DEFAULT_METHOD

    summary = json.loads((TUMOR / "cv_results.json").read_text())["summary"]
    better = all(summary["auto"][m]["all"][c]["dice_mean"]
                 >= summary["classic"][m]["all"][c]["dice_mean"]
                 for m in ("CT", "MR") for c in ("1", "2", "3", "5"))
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    method = next(a for a in sub.choices["tumor"]._actions if "--method" in a.option_strings)
    expected = AUTO if better else CLASSIC
    assert method.default == expected
    assert expected == DEFAULT_METHOD   # the API, TumorSeg and the web page share it

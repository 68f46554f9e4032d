"""The learned click model (tumor_refine_unet v6) with its shipped weights only.

No training here: the packaged TorchScript file is sha256-verified before it is loaded.
Latency is measured in Testing/benchmarks/bench_tumor.py, not here.
The cross-validation set-up is tested in test_tumor_cv.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.interactive import Prompts, segment_with_method
from mskai.interactive.clicks import deepest_voxel, next_click
from mskai.interactive.evaluate import dice
from phantoms.lesion import ellipsoid_lesion

REGRESSION = Path(__file__).resolve().parents[1] / "training" / "tumor" / "regression.py"

LEARNED_ONE_CLICK = 0.797   # measured mean (v6), see test_one_click_on_training_cases_regression


def _ras(volume, kji) -> tuple[float, float, float]:
    return tuple(float(v) for v in volume.index_to_ras(np.asarray(kji, float)[::-1]))


def _three_clicks(volume, truth) -> list[float]:
    """Dice after the centre click and two corrective clicks (run_click_protocol's rule)."""
    spacing = tuple(reversed(volume.spacing))
    prompts = Prompts(positive_ras=[_ras(volume, deepest_voxel(truth, spacing))])
    mask = segment_with_method(volume, prompts, method="learned")
    out = [dice(mask, truth)]
    for _ in range(2):
        click = next_click(mask, truth, spacing)
        if click is None:
            break
        prompts = prompts.with_click(_ras(volume, click[0]), positive=click[1])
        mask = segment_with_method(volume, prompts, current_mask=mask, method="learned")
        out.append(dice(mask, truth))
    return out


def test_packaged_weights_verify_and_load() -> None:
    from mskai.interactive.learned import MODEL_ID, load_refine_model
    from mskai.models.manifest import sha256_path, verify
    from mskai.models.registry import find_model, models_for_task

    entry = find_model(MODEL_ID)
    verify(entry)
    assert sha256_path(entry.path) == entry.sha256
    assert entry.format == "onnx" and entry.labels == {1: "tumor"}   # no torch to load
    assert entry.card_path is not None and entry.card_path.is_file()
    assert entry.path.stat().st_size < 3 * 2**20
    assert [(e.id, e.version) for e in models_for_task("tumor_refine")] == [(MODEL_ID, "6")]
    assert entry.architecture["kwargs"]["in_channels"] == 6
    assert load_refine_model() is not None


def test_a_learned_click_imports_neither_torch_nor_monai() -> None:
    """The network ships as ONNX, run by onnxruntime on numpy arrays, so a new process loads
    it and segments from a click without importing torch or MONAI (0.24 s to load instead
    of 2.3-2.4 s as TorchScript, most of it ``import torch``; make bench)."""
    import subprocess
    import sys

    script = ("import sys\n"
              f"sys.path.insert(0, {str(REGRESSION.parent)!r})\n"
              "from regression import one_click_dice, training_cases\n"
              "volume, truth = next(training_cases())   # STS_001's CT\n"
              "dice = one_click_dice(volume, truth, 'learned')\n"
              "print(round(dice, 3), 'torch' in sys.modules, 'monai' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1] / "MSKAIExtension")
    dice, torch_imported, monai_imported = out.stdout.split()
    assert abs(float(dice) - 0.796) < 0.005   # the network's Dice there (regression.py)
    assert (torch_imported, monai_imported) == ("False", "False")


# measured (1 / 2 / 3 clicks) with v3, the network from the first click: CT 0.182 / 0.227 /
# 0.335, MR 0.134 / 0.134 / 0.134 (v2 with the classic first guess: 0.718 / 0.598 after 3;
# the classic method alone: 0.938 / 0.984). A 15 mL lesion: the network, trained on real
# sarcomas only, over-segments small tumours (model card, known failure modes)
@pytest.mark.parametrize(("modality", "floor"), [("CT", 0.30), ("MR", 0.11)])
def test_held_out_synthetic_lesion(modality: str, floor: float) -> None:
    # phantoms.lesion is not the training generator: an oblique, anisotropic ellipsoid
    phantom = ellipsoid_lesion(semi_axes_mm=(22.0, 15.0, 11.0), spacing=(0.9, 0.9, 3.0),
                               modality=modality, with_bone=True, seed=3)
    dices = _three_clicks(phantom.image, phantom.mask)
    assert dices[-1] >= floor, dices


def _regression():
    """training/tumor/regression.py, which writes the figures register.py records."""
    spec = importlib.util.spec_from_file_location("tumor_regression", REGRESSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_click_dices(test_data, method: str | None = None) -> list[float]:
    regression = _regression()
    return [regression.one_click_dice(volume, truth, method or regression.NETWORK)
            for volume, truth in regression.training_cases(test_data / "sts_sarcoma")]


def test_one_click_on_training_cases_regression(test_data) -> None:
    """Mean one-click Dice of the shipped weights on STS_001-003 (CT and T1 MR, cropped
    copies in Testing/Data): training cases, so a regression check, not an accuracy claim.

    The issue asks >= 0.85 here with the shipped weights; it is NOT met: measured 0.797
    with v6 (STS_001 0.80 / 0.72, STS_002 0.72 / 0.85, STS_003 0.86 / 0.82, CT / MR; v5
    0.782, v3 0.564, v2 0.536); held-out (cross-validation) numbers are in the model card
    (0.699 CT / 0.699 MR).
    """
    dices = _one_click_dices(test_data)
    assert np.mean(dices) >= LEARNED_ONE_CLICK - 0.03, dices


def test_classic_one_click_on_sts_001_003(test_data) -> None:
    """The classic method's mean one-click Dice on the same six volumes (measured 0.801)."""
    dices = _one_click_dices(test_data, "classic")
    assert np.mean(dices) >= 0.78, dices


def test_negative_click_removes_a_false_positive_region() -> None:
    phantom = ellipsoid_lesion(semi_axes_mm=(18.0, 14.0, 10.0), spacing=(0.9, 0.9, 3.0),
                               modality="CT", seed=5)
    volume, truth = phantom.image, phantom.mask
    spacing = np.array(tuple(reversed(volume.spacing)))
    centre = deepest_voxel(truth, tuple(spacing))
    # a hand-painted / leaked box stuck to the tumour, beside it in-plane
    found = np.argwhere(truth)
    extra = np.zeros_like(truth)
    k0, k1 = centre[0] - 2, centre[0] + 3
    j0 = found[:, 1].max() - 2
    extra[k0:k1, j0:j0 + 20, centre[2] - 10:centre[2] + 10] = True
    extra &= ~truth
    current = truth | extra
    click = np.array([centre[0], j0 + 12, centre[2]])
    assert extra[tuple(click)]
    prompts = Prompts(positive_ras=[_ras(volume, centre)]).with_click(_ras(volume, click), False)
    refined = segment_with_method(volume, prompts, current_mask=current, method="learned")
    assert (refined & extra).sum() < 0.5 * extra.sum()
    assert not refined[tuple(click)]
    assert dice(refined, truth) > dice(current, truth)


def test_methods_dispatch() -> None:
    phantom = ellipsoid_lesion(modality="CT", seed=1)
    centre = deepest_voxel(phantom.mask, tuple(reversed(phantom.image.spacing)))
    prompts = Prompts(positive_ras=[_ras(phantom.image, centre)])
    from mskai.interactive import segment_from_prompts

    classic = segment_with_method(phantom.image, prompts, method="classic")
    assert np.array_equal(classic, segment_from_prompts(phantom.image, prompts))
    with pytest.raises(InputError, match="unknown interactive method"):
        segment_with_method(phantom.image, prompts, method="magic")


def test_default_auto_one_click_on_sts_001_003(test_data) -> None:
    """The default method ("auto", the size gate) on the same six volumes: the classic mask
    where the tumour is small, the shipped network's where it is large (measured 0.842 with
    v6, 0.841 with v5, 0.835 with v3: STS_001 CT and MR go to the network, the others stay
    classic). The issue's 0.85 is not met.
    """
    from mskai.click_methods import DEFAULT_METHOD

    dices = _one_click_dices(test_data, DEFAULT_METHOD)
    print(f"auto one-click Dice on STS_001-003: {np.round(dices, 3)} mean {np.mean(dices):.3f}")
    assert np.mean(dices) >= 0.80, dices

"""The learned click-refinement model (tumor_refine_unet) with its shipped weights only.

No training here: the packaged state dict is sha256-verified and loaded with
``weights_only=True``. Latency is measured in Testing/benchmarks/bench_tumor.py, not here.
"""

from __future__ import annotations

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.interactive import Prompts, segment_with_method
from mskai.interactive.clicks import deepest_voxel, next_click
from mskai.interactive.evaluate import dice
from phantoms.lesion import ellipsoid_lesion


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
    assert entry.format == "state_dict" and entry.labels == {1: "tumor"}
    assert entry.card_path is not None and entry.card_path.is_file()
    assert entry.path.stat().st_size < 3 * 2**20
    assert [e.id for e in models_for_task("tumor_refine")] == [MODEL_ID]
    assert load_refine_model() is not None


# measured (3 clicks): CT 0.925, MR 0.791 (the MR phantom's 2.6x tumour/muscle contrast is
# beyond the training range; the second click drops 0.984 to 0.721 there, see the card)
@pytest.mark.parametrize(("modality", "floor"), [("CT", 0.88), ("MR", 0.74)])
def test_held_out_synthetic_lesion(modality: str, floor: float) -> None:
    # phantoms.lesion is not the training generator: an oblique, anisotropic ellipsoid
    phantom = ellipsoid_lesion(semi_axes_mm=(22.0, 15.0, 11.0), spacing=(0.9, 0.9, 3.0),
                               modality=modality, with_bone=True, seed=3)
    dices = _three_clicks(phantom.image, phantom.mask)
    assert dices[-1] >= floor, dices


def test_real_sts_case_three_clicks(test_data) -> None:
    from mskai.image import read_image
    from mskai.labels import read_labels

    folder = test_data / "sts_sarcoma"
    volume = read_image(folder / "STS_002_CT_image.nii.gz")
    truth = read_labels(folder / "STS_002_CT_mask.nii.gz", volume, {"tumor": 1})["tumor"]
    dices = _three_clicks(volume, truth)
    assert dices[-1] >= 0.85, dices   # measured 0.900 (classic first guess 0.911)


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

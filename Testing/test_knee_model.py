"""The shipped knee MRI model (knee_unet_v1): integrity, and accuracy on a held-out case.

The held-out case is a synthetic DESS knee made by mskai/phantoms/knee_mr.py with a seed
(cases.TEST_SEED) that training never uses. Dice floors sit a little below what was
measured when the weights were made (see the model card). No training happens here.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from mskai.errors import ModelError

REPO = Path(__file__).resolve().parents[1]
KNEE_TRAINING = REPO / "training" / "knee"
MODEL_ID = "knee_unet_v1"

# Per-class Dice floors on the network grid (1 mm) for the seed-TEST_SEED DESS case.
# Measured with the shipped weights on this case: femur 0.93, tibia 0.90, patella 0.88,
# femoral cartilage 0.72, tibial cartilage 0.59, patellar cartilage 0.57 (network grid);
# 0.89 0.87 0.84 0.71 0.53 0.56 after run_segmentation onto the oblique grid.
FLOORS = {"femur": 0.88, "tibia": 0.85, "patella": 0.80, "femoral_cartilage": 0.66,
          "tibial_cartilage": 0.53, "patellar_cartilage": 0.50}
OBLIQUE_MARGIN = 0.05  # the oblique grid is compared after resampling labels twice


def _training_modules():
    if str(KNEE_TRAINING) not in sys.path:
        sys.path.insert(0, str(KNEE_TRAINING))
    import cases

    from mskai.phantoms import knee_anatomy, knee_mr

    return knee_anatomy, cases, knee_mr


@pytest.fixture(scope="module")
def entry():
    from mskai.models.registry import find_model

    return find_model(MODEL_ID)


@pytest.fixture(scope="module")
def model(entry):
    from mskai.models.loaders import load_model

    return load_model(entry, "cpu")


@pytest.fixture(scope="module")
def heldout_case():
    anatomy, cases, synthesize = _training_modules()
    return synthesize.synthesize(anatomy.build_anatomy(cases.REFERENCE), cases.TEST_SEED,
                                 "DESS")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def test_shipped_weights_verify_and_are_small(entry):
    from mskai.models.manifest import verify

    verify(entry)
    assert entry.format == "state_dict" and entry.modality == "MR"
    assert entry.path.stat().st_size < 5_000_000
    assert set(entry.labels.values()) == set(FLOORS)
    assert entry.card_path is not None and "synthetic" in entry.card_path.read_text().lower()


def test_test_seed_is_never_a_training_or_heldout_seed():
    _, cases, _ = _training_modules()
    used = {seed for _, seed in cases.training_seeds(100) + cases.heldout_seeds(100)}
    assert cases.TEST_SEED not in used


def test_heldout_dess_knee_dice_above_floor(entry, model, heldout_case):
    import torch

    from mskai.inference.postprocess import keep_largest_components
    from mskai.inference.sliding import sliding_window

    tensor = torch.from_numpy(heldout_case.image)[None, None]
    output = sliding_window(model, tensor, entry.input.patch_size, entry.input.overlap)
    pred = keep_largest_components(output[0].argmax(0).numpy(), entry.labels)
    scores = {name: _dice(pred == value, heldout_case.labels == value)
              for value, name in entry.labels.items()}
    low = {k: round(v, 3) for k, v in scores.items() if v < FLOORS[k]}
    assert not low, f"Dice below floor: {low} (all: {scores})"


def test_pipeline_segments_onto_the_original_oblique_grid(entry, model, heldout_case):
    """run_segmentation on the image resampled to the reference's oblique sagittal grid."""
    import SimpleITK as sitk

    from mskai.inference.pipeline import run_segmentation
    from mskai.volume import Volume

    _, cases, synthesize = _training_modules()
    ref = sitk.ReadImage(str(cases.REFERENCE))
    grid = sitk.Image([192, 192, 160], sitk.sitkFloat32)  # the reference grid, 2x coarser
    grid.SetSpacing([2 * ref.GetSpacing()[0], 2 * ref.GetSpacing()[1], ref.GetSpacing()[2]])
    grid.SetOrigin(ref.GetOrigin())
    grid.SetDirection(ref.GetDirection())
    image = sitk.Resample(synthesize.to_volume(heldout_case).to_sitk(), grid,
                          sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    truth = sitk.GetArrayFromImage(sitk.Resample(
        synthesize.to_volume(heldout_case, image=False).to_sitk(), grid, sitk.Transform(),
        sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8))
    volume = Volume.from_sitk(image, modality="MR")
    assert abs(volume.direction[0, 0]) < 0.2  # oblique sagittal, not the network's frame
    masks = run_segmentation(volume, entry, device="cpu", model=model)
    assert set(masks) == set(entry.labels)
    assert all(m.shape == truth.shape for m in masks.values())
    for value, name in entry.labels.items():
        floor = FLOORS[name] - OBLIQUE_MARGIN
        score = _dice(masks[value], truth == value)
        assert score > floor, f"{name}: Dice {score:.3f} on the oblique grid"


def test_tampered_weights_are_refused(entry, tmp_path):
    from mskai.models.loaders import load_model

    copy = tmp_path / "weights" / Path(entry.file).name
    copy.parent.mkdir()
    shutil.copy2(entry.path, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    tampered = dataclasses.replace(entry, root=tmp_path)
    with pytest.raises(ModelError, match="sha256"):
        load_model(tampered, "cpu")

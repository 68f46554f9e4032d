"""The knee model sees a sagittal, anisotropic DESS-like acquisition in its training frame.

Diagnosis of issue 14's DESS failure (knee_unet_v2 on the bench's 512x512x80, 0.31x0.31x1.5
mm sagittal volume): preprocessing puts the knee in the frame the training anatomy uses
(``knee_anatomy``: tensor axis 2 superior, axis 1 anterior, femur above tibia, patella in
front of the femur), resamples it without shifting it, and maps the labels back onto the
acquisition grid. Truth: the real pymskt label map, resampled onto a DESS-like grid with the
same axis order and slice direction as the bench (coarser in-plane here, to stay fast).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

KNEE = Path(__file__).resolve().parent / "Data" / "knee" / \
    "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
SHAPE_IJK = (160, 160, 80)          # the bench: 512 x 512 x 80 at 0.3125 mm in-plane
SPACING = (1.0, 1.0, 1.5)           # mm; k is the sagittal slice direction
FEMUR, TIBIA, PATELLA = 5, 6, 7     # pymskt label values


@pytest.fixture(scope="module")
def dess_labels():
    import SimpleITK as sitk

    from mskai.image import sitk_to_volume

    ref = sitk.ReadImage(str(KNEE))
    direction = np.asarray(ref.GetDirection()).reshape(3, 3)
    centre = ref.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in ref.GetSize()])
    origin = np.asarray(centre) - direction @ ((np.asarray(SHAPE_IJK) - 1) / 2 * SPACING)
    image = sitk.Resample(ref, SHAPE_IJK, sitk.Transform(), sitk.sitkNearestNeighbor,
                          origin.tolist(), SPACING, ref.GetDirection(), 0, sitk.sitkUInt8)
    return sitk_to_volume(image)


@pytest.fixture(scope="module")
def spec():
    from mskai.models.registry import models_for_task

    return models_for_task("knee_seg", "MR")[-1].input


def _model_grid_centroid(volume, value: int, spec) -> np.ndarray:
    from mskai.inference.preprocess import preprocess
    from mskai.models.manifest import InputSpec

    plain = InputSpec(**{**spec.__dict__, "intensity": {"type": "none"}})
    tensor, _ = preprocess(volume.with_array((volume.array == value).astype(np.float32)), plain)
    return np.argwhere(tensor[0, 0].numpy() > 0.5).mean(0)


def test_the_dess_grid_is_sagittal_with_thick_slices_along_k(dess_labels):
    # The slice axis (k) runs left-right: the patient's R-L axis is the direction's 3rd column.
    assert abs(dess_labels.direction[0, 2]) > 0.9
    assert dess_labels.spacing == SPACING


def test_preprocessing_puts_the_knee_in_the_training_frame(dess_labels, spec):
    femur = _model_grid_centroid(dess_labels, FEMUR, spec)
    tibia = _model_grid_centroid(dess_labels, TIBIA, spec)
    patella = _model_grid_centroid(dess_labels, PATELLA, spec)
    assert femur[2] - tibia[2] > 40      # superior is +axis 2 (mm on the 1 mm grid)
    assert patella[1] - femur[1] > 30    # anterior is +axis 1
    assert abs(femur[0] - tibia[0]) < 15  # left-right is axis 0


def test_labels_come_back_onto_the_dess_grid_unshifted(dess_labels, spec):
    import torch

    from mskai.inference.postprocess import postprocess
    from mskai.inference.preprocess import preprocess
    from mskai.models.manifest import InputSpec

    plain = InputSpec(**{**spec.__dict__, "intensity": {"type": "none"}})
    femur = dess_labels.array == FEMUR
    tensor, context = preprocess(dess_labels.with_array(femur.astype(np.float32)), plain)
    probs = torch.cat([1 - tensor[0], tensor[0]])       # a perfect two-class "model"
    back = postprocess(probs, context, dess_labels) == 1
    dice = 2 * np.count_nonzero(back & femur) / (back.sum() + femur.sum())
    assert dice > 0.97
    shift = np.argwhere(back).mean(0) - np.argwhere(femur).mean(0)
    assert np.all(np.abs(shift * np.asarray(SPACING)[::-1]) < 0.3)   # mm, k j i

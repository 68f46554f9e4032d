"""Click-driven local correction of one label of a knee label map (mskai.interactive.multilabel)
and its CartilageQuant entry point, on the real knee labels with a synthetic DESS-like MR.

There is no real image for these labels: the MR is made from the ORIGINAL labels (per-tissue
intensity, bright fluid along the cartilage, light blur, noise); the labels are then damaged
and one click must repair them locally.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.interactive.multilabel import refine_label
from mskai.interactive.region import seed_ball_mask

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "CartilageQuant") not in sys.path:
    sys.path.insert(0, str(REPO / "CartilageQuant"))

KNEE_FILE = "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
PATCH_CENTRE = (115, 187, 135)   # [k, j, i]: thick femoral cartilage, far from other plates
BLOB_NEAR = (106, 192, 152)      # a femoral cartilage area facing the joint space
HALF_MM = 30.0                   # the test crop around PATCH_CENTRE
RADIUS_MM = 15.0
# DESS-like relative signal: background soft tissue, 4 cartilages, 4 bones, 2 menisci
INTENSITY = np.array([0.30, 0.60, 0.60, 0.60, 0.60, 0.15, 0.15, 0.15, 0.15, 0.06, 0.06],
                     dtype=np.float32)
FLUID, FLUID_MM, NOISE, BLUR_MM = 0.9, 1.0, 0.03, 0.3


class Knee:
    """Cropped real labels, the synthetic MR on their grid and index/RAS helpers."""

    def __init__(self, labels, image):
        self.labels, self.image = labels, image
        self.spacing = tuple(float(s) for s in image.spacing[::-1])

    def ras(self, kji) -> list[float]:
        return [float(v) for v in self.image.index_to_ras(np.asarray(kji, float)[::-1])]

    def ball(self, kji, radius_mm: float) -> np.ndarray:
        return seed_ball_mask(self.labels.shape, np.asarray(kji)[None], radius_mm, self.spacing)


def synthetic_mr(labels: np.ndarray, spacing_kji: tuple[float, ...]) -> np.ndarray:
    from scipy import ndimage

    image = INTENSITY[labels]
    sp = np.asarray(spacing_kji)
    near_cartilage = ndimage.distance_transform_edt(~np.isin(labels, [1, 2, 3, 4]), sampling=sp)
    image[(labels == 0) & (near_cartilage <= FLUID_MM)] = FLUID
    image = ndimage.gaussian_filter(image, BLUR_MM / sp)
    return image + np.random.default_rng(0).normal(0, NOISE, image.shape).astype(np.float32)


@pytest.fixture(scope="module")
def knee(test_data) -> Knee:
    from mskai.image import read_image

    full = read_image(test_data / "knee" / KNEE_FILE)
    spacing = np.array(full.spacing[::-1])
    centre = np.array(PATCH_CENTRE)
    half = np.ceil(HALF_MM / spacing).astype(int)
    lo, hi = np.maximum(centre - half, 0), np.minimum(centre + half + 1, full.array.shape)
    labels = full.crop(tuple(slice(a, b) for a, b in zip(lo, hi, strict=True)))
    array = labels.array.astype(np.uint8)
    image = labels.with_array(synthetic_mr(array, tuple(spacing)), modality="MR")
    knee = Knee(array, image)
    knee.patch_centre, knee.blob_near = centre - lo, np.array(BLOB_NEAR) - lo
    return knee


def erased_patch(knee: Knee, radius_mm: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels with femoral cartilage within ``radius_mm`` of the patch centre set to 0."""
    patch = knee.ball(knee.patch_centre, radius_mm) & (knee.labels == 1)
    erased = knee.labels.copy()
    erased[patch] = 0
    return erased, patch


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1)


def test_positive_click_restores_erased_cartilage(knee):
    erased, patch = erased_patch(knee)
    assert knee.labels[tuple(knee.patch_centre)] == 1 and patch.sum() > 2000
    out = refine_label(knee.image, erased, 1, positive_ras=[knee.ras(knee.patch_centre)],
                       radius_mm=RADIUS_MM)
    inside = knee.ball(knee.patch_centre, 5.0)
    score = dice((out == 1) & inside, (knee.labels == 1) & inside)
    assert score > 0.8, score
    changed = out != erased
    assert not (changed & ~knee.ball(knee.patch_centre, RADIUS_MM)).any()
    assert np.count_nonzero(changed & ~patch) < 0.5 * patch.sum()   # a thin rim at most
    assert out.dtype == erased.dtype


def test_negative_click_removes_false_blob(knee):
    from scipy import ndimage

    sp = np.asarray(knee.spacing)
    labels = knee.labels
    d_fc = ndimage.distance_transform_edt(labels != 1, sampling=sp)
    d_femur = ndimage.distance_transform_edt(labels != 5, sampling=sp)
    d_other = ndimage.distance_transform_edt(np.isin(labels, [0, 1, 5]), sampling=sp)
    cand = np.argwhere((labels == 0) & (np.abs(d_fc - 2.0) < 0.2) & (d_femur > 3.5)
                       & (d_other > 6.0))
    click = cand[np.argmin((((cand - knee.blob_near) * sp) ** 2).sum(1))]
    blob = knee.ball(click, 3.0) & (labels == 0)           # grown from the cartilage surface
    assert blob.sum() > 500 and (ndimage.binary_dilation(blob) & (labels == 1)).any()
    grown = labels.copy()
    grown[blob] = 1
    out = refine_label(knee.image, grown, 1, negative_ras=[knee.ras(click)], radius_mm=RADIUS_MM)
    assert np.mean(out[blob] != 1) > 0.8
    changed = out != grown
    assert not (changed & ~knee.ball(click, RADIUS_MM)).any()
    assert np.count_nonzero(changed & ~blob) < 0.05 * blob.sum()


def test_locked_labels_keep_every_voxel(knee):
    erased, patch = erased_patch(knee)
    half = patch & (np.arange(patch.shape[0]) < knee.patch_centre[0])[:, None, None]
    erased[half] = 6                               # part of the hole "painted" as tibia
    out = refine_label(knee.image, erased, 1, positive_ras=[knee.ras(knee.patch_centre)],
                       locked_labels=[5, 6])
    for label in (5, 6):
        assert np.array_equal(out == label, erased == label)
    assert np.count_nonzero((out == 1) & patch & ~half) > 0.5 * np.count_nonzero(patch & ~half)
    with pytest.raises(InputError, match="locked"):
        refine_label(knee.image, erased, 1, positive_ras=[knee.ras(np.argwhere(half)[0])],
                     locked_labels=[6])
    with pytest.raises(InputError, match="locked"):
        refine_label(knee.image, erased, 1, positive_ras=[knee.ras(knee.patch_centre)],
                     locked_labels=[1])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"positive_ras": [[900.0, 900.0, 900.0]]}, "outside the image"),
    ({"negative_ras": [[-900.0, 0.0, 0.0]]}, "outside the image"),
    ({"target_label": 42}, "does not occur"),
    ({"target_label": 0}, "background"),
    ({"positive_ras": []}, "at least one click"),
    ({"radius_mm": 500.0}, "radius"),
    ({"labels": "bad"}, "integer"),
])
def test_bad_input_is_one_clear_sentence(knee, kwargs, match):
    args = {"labels": knee.labels, "target_label": 1,
            "positive_ras": [knee.ras(knee.patch_centre)], **kwargs}
    if isinstance(args["labels"], str):
        args["labels"] = knee.labels.astype(np.float32)
    with pytest.raises(InputError, match=match) as info:
        refine_label(knee.image, **args)
    message = str(info.value)
    assert "\n" not in message and ". " not in message and len(message) < 300


def test_cartilagequant_refine_segment(mrml, knee):
    from CartilageQuantLib.refine import refineSegment

    from mskai.segments import STATUS_EDITED
    from mskai.slicer_io import (
        points_to_markups,
        segment_status,
        segmentation_to_masks,
        volume_to_node,
    )
    from mskai.slicer_io.segmentation import add_segment, write_mask

    erased, patch = erased_patch(knee)
    volume_node = volume_to_node(mrml.scene, knee.image, "knee")
    node = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "knee seg")
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    ids = {1: "femoral_cartilage", 5: "femur", 6: "tibia", 2: "medial_tibial_cartilage"}
    for value, segment_id in ids.items():
        add_segment(node, segment_id, segment_id, (0.5, 0.5, 0.5))
        write_mask(node, segment_id, erased == value, knee.image)
    before = segmentation_to_masks(node, knee.image)
    clicks = points_to_markups(mrml.scene, [knee.ras(knee.patch_centre)], ["positive"], "clicks")
    outcome = refineSegment(volume_node, node, "femoral_cartilage", clicks, None,
                            radiusMm=RADIUS_MM, lockedSegmentIds=["femur"])
    after = segmentation_to_masks(node, knee.image)
    assert outcome.added_voxels > 0.8 * patch.sum() and outcome.removed_voxels == 0
    inside = knee.ball(knee.patch_centre, 5.0)
    assert dice(after["femoral_cartilage"] & inside, (knee.labels == 1) & inside) > 0.8
    changed = after["femoral_cartilage"] != before["femoral_cartilage"]
    assert not (changed & ~knee.ball(knee.patch_centre, RADIUS_MM)).any()
    for segment_id in ("femur", "tibia", "medial_tibial_cartilage"):
        assert np.array_equal(after[segment_id], before[segment_id])
    assert segment_status(node, "femoral_cartilage") == STATUS_EDITED
    with pytest.raises(InputError, match="not in"):
        refineSegment(volume_node, node, "femoral_cartilage", clicks, None,
                      lockedSegmentIds=["menisci"])

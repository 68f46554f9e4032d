"""The faster array steps of the bone and fracture pipelines give the former code's voxels.

Each step of :mod:`mskai.segmentation.bone_ct_filters`, and each pipeline function that now
uses them or works on the mask's bounding box, is checked against the scipy code it
replaced (copied here as the reference) on random arrays of odd shapes and on a fractured
long-bone phantom's CT: equal voxel for voxel, equal values to the bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mskai.crop import mask_bbox, padded_bbox
from mskai.fracture.fracture_landscape import _bone_box, dense_bone, hu_valley
from mskai.fracture.fragments import label_components
from mskai.fracture.valley_candidates import fill_holes_in_plane, outer_rim, valley_response
from mskai.segmentation.bone_boundary import drop_weak_regions, trim_partial_volume, window
from mskai.segmentation.bone_ct import fill_holes_along, remove_small_components, segment_bone_ct
from mskai.segmentation.bone_ct_filters import (
    box_closing,
    box_max,
    box_min,
    dilate_cross,
    erode_cross,
)
from phantoms.long_bone import fractured_long_bone

IN_PLANE = np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], dtype=bool)


@pytest.fixture(scope="module")
def phantom():
    return fractured_long_bone(translation_mm=(4.0, 2.0, 0.0), angulation_deg=10.0,
                               gap_mm=6.0, body_radius_mm=30.0, noise_sd=15.0, supersample=2)


def _random_cases(n: int = 30):
    rng = np.random.default_rng(7)
    for _ in range(n):
        shape = tuple(int(s) for s in rng.integers(1, 18, 3))
        size = tuple(int(2 * s + 1) for s in rng.integers(0, 9, 3))
        values = rng.normal(0.0, 300.0, shape).astype(np.float32)
        yield values, values > rng.uniform(-400, 400), size, int(rng.integers(1, 4))


def test_box_filters_equal_scipy_on_random_arrays():
    for values, mask, size, _ in _random_cases():
        np.testing.assert_array_equal(box_max(values, size),
                                      ndimage.maximum_filter(values, size=size))
        np.testing.assert_array_equal(box_min(values, size),
                                      ndimage.minimum_filter(values, size=size))
        np.testing.assert_array_equal(box_closing(values, size),
                                      ndimage.grey_closing(values, size=size))
        np.testing.assert_array_equal(box_closing(mask, size), ndimage.grey_closing(
            mask.astype(np.uint8), size=size) > 0)
    with pytest.raises(ValueError, match="odd"):
        box_max(np.zeros((3, 3, 3)), (2, 3, 3))


def test_cross_morphology_and_bbox_equal_scipy_on_random_arrays():
    for _, mask, _, iterations in _random_cases():
        np.testing.assert_array_equal(erode_cross(mask), ndimage.binary_erosion(mask))
        np.testing.assert_array_equal(dilate_cross(mask), ndimage.binary_dilation(mask))
        np.testing.assert_array_equal(
            erode_cross(mask, (1, 2), iterations),
            ndimage.binary_erosion(mask, IN_PLANE, iterations=iterations))
        if mask.any():
            idx = np.argwhere(mask)
            assert [(s.start, s.stop) for s in mask_bbox(mask)] == list(
                zip(idx.min(axis=0), idx.max(axis=0) + 1, strict=True))
        else:
            assert mask_bbox(mask) is None


def _former_label_components(mask, volume, min_ml):
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n == 0:
        return labels.astype(np.int32)
    sizes = np.bincount(labels.ravel())[1:]
    order = [int(i) for i in np.argsort(-sizes, kind="stable")
             if sizes[i] >= min_ml * 1000.0 / volume.voxel_volume_mm3]
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[np.asarray(order, dtype=int) + 1] = np.arange(1, len(order) + 1)
    return lut[labels]


def _former_fill_in_plane(mask):
    labels, _ = ndimage.label(~mask, structure=np.pad(IN_PLANE, ((1, 1), (0, 0), (0, 0))))
    border = np.concatenate([labels[:, 0, :].ravel(), labels[:, -1, :].ravel(),
                             labels[:, :, 0].ravel(), labels[:, :, -1].ravel()])
    outside = np.zeros(int(labels.max()) + 1, dtype=bool)
    outside[border] = True
    outside[0] = False
    return ~outside[labels]


def test_bbox_cropped_labelling_and_filling_equal_the_whole_grid(phantom):
    """Components (same numbers, ties in size included), small-component removal and the
    hole fills on the mask's bounding box give the whole grid's voxels."""
    image = phantom.image
    masks = [segment_bone_ct(image, refine=False), np.asarray(image.array) >= 300]
    rng = np.random.default_rng(1)
    masks += [ndimage.binary_dilation(rng.random((14, 17, 19)) > 0.9) for _ in range(8)]
    for mask in masks:
        np.testing.assert_array_equal(label_components(mask, image, 0.01),
                                      _former_label_components(mask, image, 0.01))
        comps, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
        sizes = np.bincount(comps.ravel())
        min_ml = float(np.median(sizes[1:]) if n else 1) * image.voxel_volume_mm3 / 1000.0
        keep = sizes >= min_ml * 1000.0 / image.voxel_volume_mm3
        keep[0] = False
        np.testing.assert_array_equal(remove_small_components(mask, image, min_ml),
                                      keep[comps])
        np.testing.assert_array_equal(fill_holes_in_plane(mask), _former_fill_in_plane(mask))
        np.testing.assert_array_equal(fill_holes_along(mask, None),
                                      ndimage.binary_fill_holes(mask))
    assert label_components(masks[0], image).max() == 2  # the two fragments
    mask = masks[0]
    idx = np.argwhere(mask)  # the former padded_bbox
    pad = np.ceil(7.0 / np.asarray(tuple(reversed(image.spacing)))).astype(int)
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + 1 + pad, mask.shape)
    assert padded_bbox(mask, image, 7.0) == tuple(
        slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    with pytest.raises(ValueError, match="empty"):
        padded_bbox(np.zeros_like(mask), image, 7.0)


def test_bone_boundary_steps_equal_the_former_scipy_code(phantom):
    image = phantom.image
    values = np.asarray(image.array, dtype=np.float32)
    mask = segment_bone_ct(image, refine=False)
    spacing_kji = tuple(reversed(image.spacing))
    nearby = ndimage.maximum_filter(np.where(mask, values, -np.inf),
                                    size=window(spacing_kji, 6.0))
    weak = drop_weak_regions(mask, values, spacing_kji)
    np.testing.assert_array_equal(weak, mask & (nearby >= 200.0))
    np.testing.assert_array_equal(drop_weak_regions(mask, values, spacing_kji, min_hu=1200.0),
                                  mask & (nearby >= 1200.0))
    trimmed = trim_partial_volume(mask, values, spacing_kji)
    np.testing.assert_array_equal(trimmed, _former_trim(mask, values, spacing_kji))
    assert trimmed.sum() < mask.sum()  # the trim removes partial-volume voxels


def _former_trim(mask, values, spacing_kji):
    from mskai.segmentation.bone_boundary import _masked_mean

    size = window(spacing_kji, 6.0)
    interior = ndimage.binary_erosion(mask)
    soft = ~mask & (values > -400.0)
    outside = soft & ~ndimage.binary_dilation(mask)
    bone, has_bone = _masked_mean(values, interior, size)
    tissue, has_tissue = _masked_mean(values, outside, size)
    threshold = tissue + 0.5 * (bone - tissue)
    surface = mask & ~interior & ndimage.binary_dilation(soft)
    faint = surface & (has_bone > 0) & (has_tissue > 0) & (values < threshold)
    return ndimage.binary_fill_holes(mask & ~faint)


def test_valley_steps_equal_the_former_scipy_code(phantom):
    """The HU valley, dense bone, response and outer rim with scipy's closing and erosions."""
    image = phantom.image
    bone = segment_bone_ct(image)
    box = _bone_box(bone, 2.0, image.spacing)
    spacing_kji = np.asarray(tuple(reversed(image.spacing)))
    size = tuple(int(2 * max(1, round(2.0 / s)) + 1) for s in spacing_kji)
    hu = ndimage.gaussian_filter(np.asarray(image.array[box], dtype=np.float32),
                                 0.35 / spacing_kji, truncate=2.5)
    closed = ndimage.grey_closing(hu, size=size)
    valley = np.clip((closed - hu) / np.clip(closed - 40.0, 150.0, 400.0), 0.0, 1.0)
    valley = ndimage.gaussian_filter(valley, 0.8 / spacing_kji, truncate=2.5)
    former = np.zeros(bone.shape, dtype=np.float32)
    former[box] = np.where(bone[box], valley, 0.0)
    np.testing.assert_array_equal(hu_valley(image, bone), former)
    above = (np.asarray(image.array[box]) >= 600.0).astype(np.uint8)
    dense = np.zeros(bone.shape, dtype=bool)
    dense[box] = bone[box] & (ndimage.grey_closing(above, size=size) > 0)
    np.testing.assert_array_equal(dense_bone(image, bone), dense)
    inner = ndimage.binary_erosion(bone, structure=IN_PLANE)
    np.testing.assert_array_equal(valley_response(image, bone),
                                  np.where(inner & dense, former, 0.0).astype(np.float32))
    steps = max(1, int(round(2.0 / min(image.spacing[:2]))))
    rim = bone & ~ndimage.binary_erosion(_former_fill_in_plane(bone), IN_PLANE,
                                         iterations=steps)
    np.testing.assert_array_equal(outer_rim(bone, image.spacing), rim)
    assert former.max() > 0.5 and rim.any()  # the gap reads as a valley

"""Where a fracture surface runs through bone: the landscape the fragment watershed floods.

A fracture line is darker than the bone on both sides of it, even where the fragments touch:
after partial volume a 0.3-1 mm line of blood and fibrin in a cortex of 1200 HU still reads a
few hundred HU lower. :func:`hu_valley` measures that as a black top-hat: the grey closing of
the lightly smoothed image (a box of ``closing_mm`` half-width fills every dark line up to
about twice that wide) minus the image, divided by how far the closing lies above soft
tissue (at most ``FULL_LINE_HU``), so 1 is a line as dark as soft tissue and 0 no line.
Wide dark regions (the medullary canal) are not filled by the closing and read 0; the
texture of trabecular and fatty marrow does read as short valleys, which is why the split
counts only lines through cortex-like bone as evidence (:func:`dense_bone`).

:func:`fracture_landscape` combines that valley with the learned fracture-surface
probability of :mod:`mskai.fracture.surface_net` when that model verifies and is marked
preferred (the larger of the two per voxel), and falls back to the valley alone otherwise.

:func:`click_reliefs` are the reliefs the split from clicks floods and takes the vote of: the
valley with its marrow kept, halved and left out (chosen with
``training/fracture/tune_click_landscape.py``, see there).
"""

from __future__ import annotations

import numpy as np

from mskai.volume import Volume

SOFT_TISSUE_HU = 40.0
MIN_CONTRAST_HU = 150.0  # a closing less than this above soft tissue is not bone contrast
DENSE_HU = 600.0  # closing at or above: cortex-like bone where a line is evidence
FULL_LINE_HU = 400.0  # a line this much darker than the closing is a full line (cortex)
CLOSING_MM = 2.0
SMOOTHING_MM = 0.35
SHEET_MM = 0.8  # Gaussian averaging of the top-hat: keeps sheets, flattens noise specks
MARROW_WEIGHTS = (1.0, 0.5, 0.0)  # the valley in marrow, scaled: the reliefs clicks vote over


def hu_valley(image: Volume, bone: np.ndarray, closing_mm: float = CLOSING_MM,
              smoothing_mm: float = SMOOTHING_MM, sheet_mm: float = SHEET_MM) -> np.ndarray:
    """Black top-hat of the CT inside ``bone``, 0..1 (float32, 0 outside bone).

    The closing is :func:`mskai.segmentation.bone_ct_filters.box_closing` (the values of
    ``ndimage.grey_closing``, twice as fast)."""
    from scipy import ndimage

    from mskai.segmentation.bone_ct_filters import box_closing

    out = np.zeros(bone.shape, dtype=np.float32)
    if not bone.any():
        return out
    box = _bone_box(bone, closing_mm, image.spacing)
    spacing_kji = np.asarray(tuple(reversed(image.spacing)), dtype=float)
    hu = np.asarray(image.array[box], dtype=np.float32)
    if smoothing_mm > 0:
        hu = ndimage.gaussian_filter(hu, smoothing_mm / spacing_kji, truncate=2.5)
    size = tuple(int(2 * max(1, round(closing_mm / s)) + 1) for s in spacing_kji)
    closed = box_closing(hu, size)
    contrast = np.clip(closed - SOFT_TISSUE_HU, MIN_CONTRAST_HU, FULL_LINE_HU)
    valley = np.clip((closed - hu) / contrast, 0.0, 1.0)
    if sheet_mm > 0:
        valley = ndimage.gaussian_filter(valley, sheet_mm / spacing_kji, truncate=2.5)
    out[box] = np.where(bone[box], valley, 0.0)
    return out


def dense_bone(image: Volume, bone: np.ndarray, closing_mm: float = CLOSING_MM,
               dense_hu: float = DENSE_HU) -> np.ndarray:
    """Bone voxels whose grey closing reaches ``dense_hu``: cortex, and any line across it.

    A fracture line shows best where it crosses cortex; trabecular and fatty marrow have a
    texture of their own that a line cannot be told from.
    """
    from mskai.segmentation.bone_ct_filters import box_closing

    out = np.zeros(bone.shape, dtype=bool)
    if not bone.any():
        return out
    box = _bone_box(bone, closing_mm, image.spacing)
    spacing_kji = np.asarray(tuple(reversed(image.spacing)), dtype=float)
    size = tuple(int(2 * max(1, round(closing_mm / s)) + 1) for s in spacing_kji)
    # the closing commutes with the threshold (flat box, max and min filters), so the
    # closing of the thresholded image gives the same voxels, faster
    above = np.asarray(image.array[box]) >= dense_hu
    out[box] = bone[box] & box_closing(above, size)
    return out


def learned_probability(image: Volume, bone: np.ndarray,
                        preferred_only: bool = True) -> np.ndarray | None:
    """The learned fracture-surface probability inside bone, or None unless the model's
    manifest entry verifies and, with ``preferred_only``, is marked preferred by its held-out
    measurement (the same rule as its candidates in :func:`mskai.tasks.fracture.run_fracture`).
    """
    try:
        from mskai.fracture.surface_net import fracture_surface_probability, surface_model_entry
    except ImportError:
        return None
    import SimpleITK as sitk

    from mskai.errors import ModelError

    try:
        entry = surface_model_entry(preferred_only=preferred_only)
        if entry is None:
            return None
        mask = image.with_array(bone.astype(np.uint8)).to_sitk()
        probability = fracture_surface_probability(image.to_sitk(), mask, entry=entry)
    except (NotImplementedError, FileNotFoundError, ModelError):
        return None
    array = sitk.GetArrayFromImage(probability).astype(np.float32)
    if array.shape != bone.shape:
        return None
    return np.where(bone, np.clip(array, 0.0, 1.0), 0.0).astype(np.float32)


def fracture_landscape(image: Volume, bone: np.ndarray,
                       probability: np.ndarray | None = None,
                       use_model: bool = True) -> np.ndarray:
    """Valley, or the larger of valley and fracture probability per voxel (0..1, float32).

    ``probability`` given is used as is; else, with ``use_model``, the learned one is tried.
    """
    valley = hu_valley(image, bone)
    if probability is None and use_model:
        probability = learned_probability(image, bone)
    if probability is None:
        return valley
    return np.maximum(valley, np.where(bone, probability, 0.0)).astype(np.float32)


def click_reliefs(image: Volume, bone: np.ndarray) -> list[np.ndarray]:
    """The reliefs the floods from clicks vote over (0..1, float32 each): :func:`hu_valley`,
    with its marrow (bone outside :func:`dense_bone`) scaled by each of ``MARROW_WEIGHTS``.

    Why: marrow's texture reads as short valleys all through a bone at 1x1x3.3 mm; a flood
    from one click can stop at them while the other click's flood runs through a faint
    fracture line and takes its fragment. Without marrow, a line that shows only in marrow is
    lost. Each relief fails on different cases, so the split takes their vote.
    """
    valley = hu_valley(image, bone)
    dense = dense_bone(image, bone)
    return [np.where(dense, valley, weight * valley).astype(np.float32)
            for weight in MARROW_WEIGHTS]


def _bone_box(bone: np.ndarray, pad_mm: float,
              spacing: tuple[float, float, float]) -> tuple[slice, slice, slice]:
    """(k, j, i) slices of the bone's bounding box, padded by ``pad_mm`` plus two voxels."""
    from mskai.crop import mask_bbox

    tight = mask_bbox(bone)
    pad = [int(np.ceil(pad_mm / s)) + 2 for s in reversed(spacing)]
    lo = np.maximum(np.array([b.start for b in tight]) - pad, 0)
    hi = np.minimum(np.array([b.stop for b in tight]) + pad, bone.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))

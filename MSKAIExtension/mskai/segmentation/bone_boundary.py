"""Two corrections to a thresholded bone mask, each measured on the TotalSegmentator CTs.

A fixed Hounsfield threshold cannot be right everywhere. Thin cortex blurred over 3 mm
voxels, dense cortex, and marrow each need a different cut-off. So the mask is first grown
generously (hysteresis from 110 HU) and then corrected locally:

* :func:`drop_weak_regions` removes soft structures that only touch bone. Costal cartilage
  is the example: 110-140 HU, joined to the rib ends, with no voxel of real bone density
  nearby.
* :func:`trim_partial_volume` treats a voxel on the surface of the mask as bone only
  when its value is at least halfway between the bone inside it and the tissue around it.
  This is the half-maximum rule for an edge blurred by partial volume.

Windows are given in millimetres, so 1 mm and 3 mm voxels are treated alike.
"""

from __future__ import annotations

import numpy as np

WEAK_HU = 200.0
WEAK_RADIUS_MM = 6.0
TRIM_RADIUS_MM = 6.0
TRIM_FRACTION = 0.5
AIR_HU = -400.0


def window(spacing_kji: tuple[float, float, float], radius_mm: float) -> list[int]:
    """Odd box widths (k, j, i) that reach ``radius_mm`` from the centre, at least 3."""
    return [2 * max(1, int(round(radius_mm / s))) + 1 for s in spacing_kji]


def drop_weak_regions(mask: np.ndarray, values: np.ndarray,
                      spacing_kji: tuple[float, float, float], min_hu: float = WEAK_HU,
                      radius_mm: float = WEAK_RADIUS_MM) -> np.ndarray:
    """The mask without voxels that have no value >= ``min_hu`` within ``radius_mm``.

    Run this before hole filling. Marrow removed here, deep inside a vertebral body, comes
    back when the holes are filled. The box maximum of the mask's values reaches ``min_hu``
    exactly where the box holds a mask voxel of ``min_hu``, so the boolean box dilation
    (:func:`mskai.segmentation.bone_ct_filters.box_max`) gives the same voxels, faster.
    """
    from mskai.segmentation.bone_ct_filters import box_max

    strong = mask & (np.asarray(values) >= min_hu)
    return mask & box_max(strong, window(spacing_kji, radius_mm))


def _masked_mean(values: np.ndarray, where: np.ndarray,
                 size: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` over ``where`` in a box, and the fraction of the box in ``where``."""
    from scipy import ndimage

    weight = ndimage.uniform_filter(where.astype(np.float32), size)
    total = ndimage.uniform_filter(np.where(where, values, 0.0).astype(np.float32), size)
    return total / np.maximum(weight, 1e-6), weight


def trim_partial_volume(mask: np.ndarray, values: np.ndarray,
                        spacing_kji: tuple[float, float, float],
                        fraction: float = TRIM_FRACTION,
                        radius_mm: float = TRIM_RADIUS_MM) -> np.ndarray:
    """Surface voxels of the mask kept only where they are mostly bone.

    Bone level is the mean of the mask's interior (the mask eroded by one voxel). Tissue
    level is the mean of the soft tissue at least one voxel outside it (air excluded).
    Both are taken over a box of ``radius_mm``. Only surface voxels that touch soft tissue
    are judged. Voxels that face air or the image border are kept, and so are voxels
    without both levels nearby. Bone cut off by a region of interest (set to air outside)
    therefore keeps its cut face. The result is hole-filled again in 3D. The erosion and
    dilations are :mod:`mskai.segmentation.bone_ct_filters`' (scipy's voxels, faster).
    """
    from mskai.segmentation.bone_ct_filters import dilate_cross, erode_cross

    values = np.asarray(values, dtype=np.float32)
    size = window(spacing_kji, radius_mm)
    interior = erode_cross(mask)
    soft = ~mask & (values > AIR_HU)
    outside = soft & ~dilate_cross(mask)
    bone, has_bone = _masked_mean(values, interior, size)
    tissue, has_tissue = _masked_mean(values, outside, size)
    threshold = tissue + fraction * (bone - tissue)
    surface = mask & ~interior & dilate_cross(soft)
    faint = surface & (has_bone > 0) & (has_tissue > 0) & (values < threshold)
    from mskai.segmentation.bone_ct import fill_holes_along

    return fill_holes_along(mask & ~faint, None)  # = binary_fill_holes, by one labelling

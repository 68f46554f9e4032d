"""Euclidean distance maps in millimetres, computed by ITK.

``scipy.ndimage.distance_transform_edt`` runs on one core and always builds the feature
transform; ITK's Maurer transform gives the same distances (to float32 rounding, under
1e-4 mm) threaded, 3x faster on a 2-core machine for a pelvis-sized box. Used where a whole
CT's bone is measured (the fragment splits); small crops keep scipy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def depth_mm(mask: np.ndarray, spacing_kji: Sequence[float]) -> np.ndarray:
    """Distance (mm, float64) from each True voxel to the nearest False voxel of the array,
    0 on False voxels: what ``distance_transform_edt(mask, sampling=spacing_kji)`` gives.

    With no False voxel at all there is nothing to measure to; scipy's answer is kept."""
    import SimpleITK as sitk

    mask = np.asarray(mask, dtype=bool)
    if mask.all() or not mask.any():
        from scipy import ndimage

        return ndimage.distance_transform_edt(mask, sampling=spacing_kji)
    outside = sitk.GetImageFromArray((~mask).astype(np.uint8))
    outside.SetSpacing(tuple(float(s) for s in reversed(spacing_kji)))
    dist = sitk.SignedMaurerDistanceMap(outside, insideIsPositive=False, squaredDistance=False,
                                        useImageSpacing=True)
    return np.where(mask, sitk.GetArrayFromImage(dist), 0.0).astype(np.float64)

"""Bone on CT from Hounsfield units: cortical and trabecular bone, holes filled, specks removed.

The method: light Gaussian smoothing (suppresses noise without moving edges much),
threshold at ``threshold_hu`` (cortex is > 400 HU, trabecular bone 100-400 HU; 120 HU maximised Dice against
TotalSegmentator's bone classes on the 3 mm example CT), a closing of
``closing_mm`` to bridge thin cortex, 3D and slice-wise hole filling so marrow inside the
cortex joins the bone, and removal of components smaller than ``min_component_ml``.
"""

from __future__ import annotations

import numpy as np

from mskai.errors import InputError
from mskai.volume import Volume


def require_ct(volume: Volume) -> None:
    """Refuse images whose intensities are not Hounsfield units."""
    arr = volume.array
    if volume.modality not in (None, "CT") or float(np.min(arr)) > -500:
        raise InputError("this needs a CT in Hounsfield units (the image looks like MR or has "
                         "no air below -500 HU); give a CT, or a bone segment with --labels")


def _ball(radius_mm: float, spacing_kji: tuple[float, float, float]) -> np.ndarray:
    half = [max(1, int(np.ceil(radius_mm / s))) for s in spacing_kji]
    grids = np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, spacing_kji,
                                                                     strict=True)],
                        indexing="ij")
    return sum(g**2 for g in grids) <= radius_mm**2


def segment_bone_ct(volume: Volume, threshold_hu: float = 120.0, closing_mm: float = 1.5,
                    min_component_ml: float = 0.5, smoothing_mm: float = 0.5) -> np.ndarray:
    """Boolean bone mask on the volume grid."""
    from scipy import ndimage

    require_ct(volume)
    spacing_kji = tuple(reversed(volume.spacing))
    sigma = [smoothing_mm / s for s in spacing_kji]
    smooth = ndimage.gaussian_filter(volume.array.astype(np.float32), sigma)
    bone = smooth >= threshold_hu
    if not bone.any():
        return bone
    bone = ndimage.binary_closing(bone, structure=_ball(closing_mm, spacing_kji), iterations=1)
    bone = ndimage.binary_fill_holes(bone)
    for k in range(bone.shape[0]):
        bone[k] = ndimage.binary_fill_holes(bone[k])
    return remove_small_components(bone, volume, min_component_ml)


def remove_small_components(mask: np.ndarray, volume: Volume, min_ml: float) -> np.ndarray:
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    min_voxels = min_ml * 1000.0 / volume.voxel_volume_mm3
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[labels]

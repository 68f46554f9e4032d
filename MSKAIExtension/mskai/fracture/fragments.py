"""Bone fragments: connected components of a bone mask, optionally split at narrow necks.

Components are 26-connected, so two fragments are separate only where a gap of at least one
voxel of non-bone divides them. Fragments that touch (an undisplaced or impacted fracture,
or 3 mm voxels bridging a thin gap) can be split by :func:`split_at_necks`: a watershed on
the distance transform separates blobs joined by a neck much thinner than themselves.
"""

from __future__ import annotations

import numpy as np

from mskai.terminology import BONE_FRAGMENT_PREFIX
from mskai.volume import Volume


def fragment_id(n: int) -> str:
    """Canonical segment id of the n-th fragment (1-based): ``bone_fragment_n``."""
    return f"{BONE_FRAGMENT_PREFIX}{n}"


def is_fragment_id(segment_id: str) -> bool:
    """Whether a segment id is one :func:`fragment_id` makes (``bone_fragment_<n>``)."""
    prefix = fragment_id(0)[:-1]
    return segment_id.startswith(prefix) and segment_id[len(prefix):].isdigit()


def label_components(mask: np.ndarray, volume: Volume, min_ml: float = 0.5) -> np.ndarray:
    """26-connected components of ``mask`` larger than ``min_ml``, labelled 1..n by size.

    Labelled on the mask's bounding box: the same components, numbered in the same (raster)
    order, so ties in size keep their order."""
    from scipy import ndimage

    from mskai.crop import mask_bbox

    out = np.zeros(np.shape(mask), dtype=np.int32)
    box = mask_bbox(np.asarray(mask))
    if box is None:
        return out
    labels, n = ndimage.label(np.asarray(mask)[box], structure=np.ones((3, 3, 3)))
    sizes = np.bincount(labels.ravel())[1:]
    min_voxels = min_ml * 1000.0 / volume.voxel_volume_mm3
    order = [int(i) for i in np.argsort(-sizes, kind="stable") if sizes[i] >= min_voxels]
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[np.asarray(order, dtype=int) + 1] = np.arange(1, len(order) + 1)
    out[box] = lut[labels]
    return out


def split_at_necks(mask: np.ndarray, volume: Volume, min_radius_mm: float = 3.0,
                   neck_ratio: float = 0.6) -> np.ndarray:
    """Split one mask into parts joined only by necks; labels 1..n (0 outside).

    Markers are the regional maxima of the (physical) distance transform, merged when the
    path between them never drops below ``neck_ratio`` times the smaller maximum (the
    h-maxima criterion), so only necks clearly thinner than both sides split the mask.
    Maxima below ``min_radius_mm`` are ignored (they are surface noise).

    Worked on the mask's bounding box plus one voxel: the same distances, maxima and
    watershed as on the whole grid (every voxel beyond that layer is farther from the mask
    than one in it), 10-60x faster for a small bone in a large CT.
    """
    from mskai.crop import padded_bbox

    out = np.zeros(np.shape(mask), dtype=np.int32)
    if not np.any(mask):
        return out
    box = padded_bbox(mask, volume, pad_mm=min(volume.spacing))
    out[box] = _split_box(np.asarray(mask, dtype=bool)[box], volume, min_radius_mm, neck_ratio)
    return out


def _split_box(mask: np.ndarray, volume: Volume, min_radius_mm: float,
               neck_ratio: float) -> np.ndarray:
    from scipy import ndimage
    from skimage.segmentation import watershed

    dist = ndimage.distance_transform_edt(mask, sampling=tuple(reversed(volume.spacing)))
    peak = float(dist.max())
    if peak < min_radius_mm:
        return mask.astype(np.int32)
    h = (1.0 - neck_ratio) * peak
    maxima = h_maxima(dist, h) & (dist >= min_radius_mm)
    markers, n = ndimage.label(maxima, structure=np.ones((3, 3, 3)))
    if n <= 1:
        return mask.astype(np.int32)
    return watershed(-dist, markers, mask=mask).astype(np.int32)


def h_maxima(image: np.ndarray, h: float) -> np.ndarray:
    """The maxima of height at least ``h`` (26-connected), as ``skimage.morphology.h_maxima``
    gives them for a float image, with the greyscale reconstruction done by ITK: the same
    voxels (the reconstruction only compares values), 3.5x faster on a pelvis."""
    import SimpleITK as sitk

    image = np.asarray(image, dtype=np.float64)
    if h > np.ptp(image):
        return np.zeros(image.shape, dtype=bool)
    shifted = image - h - 2 * np.finfo(image.dtype).resolution * np.abs(image)
    rec = sitk.ReconstructionByDilation(sitk.GetImageFromArray(shifted),
                                        sitk.GetImageFromArray(image), fullyConnected=True)
    return (image - sitk.GetArrayFromImage(rec)) >= h

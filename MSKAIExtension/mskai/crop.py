"""Bounding boxes in voxels around a mask, padded by a physical distance.

Low level (it needs only :class:`mskai.volume.Volume`), so segmentation, tasks and phantoms
can all use it.
"""

from __future__ import annotations

import numpy as np

from mskai.volume import Volume


def padded_bbox(mask: np.ndarray, volume: Volume, pad_mm: float) -> tuple[slice, slice, slice]:
    """Slices (k, j, i) of the mask's bounding box grown by ``pad_mm``, clipped to the grid."""
    idx = np.argwhere(mask)
    lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
    pad = np.ceil(pad_mm / np.asarray(tuple(reversed(volume.spacing)))).astype(int)
    lo = np.maximum(lo - pad, 0)
    hi = np.minimum(hi + pad, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))

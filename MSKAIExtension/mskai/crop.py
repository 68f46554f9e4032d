"""Bounding boxes in voxels around a mask, padded by a physical distance.

Low level (it needs only :class:`mskai.volume.Volume`), so segmentation, tasks and phantoms
can all use it.
"""

from __future__ import annotations

import numpy as np

from mskai.volume import Volume


def mask_bbox(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Tight bounding box of the True voxels (one slice per axis), None when there are none.

    From the mask's projections, not a list of every voxel's index (``np.argwhere``): 12x
    faster on a 512x512x300 bone mask."""
    out = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        if len(hits) == 0:
            return None
        out.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(out)


def padded_bbox(mask: np.ndarray, volume: Volume, pad_mm: float) -> tuple[slice, slice, slice]:
    """Slices (k, j, i) of the mask's bounding box grown by ``pad_mm``, clipped to the grid
    (:func:`mask_bbox`); an empty mask raises ValueError."""
    box = mask_bbox(mask)
    if box is None:
        raise ValueError("the mask is empty: it has no bounding box")
    lo = np.array([s.start for s in box])
    hi = np.array([s.stop for s in box])
    pad = np.ceil(pad_mm / np.asarray(tuple(reversed(volume.spacing)))).astype(int)
    lo = np.maximum(lo - pad, 0)
    hi = np.minimum(hi + pad, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))

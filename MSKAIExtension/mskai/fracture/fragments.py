"""Bone fragments: connected components of a bone mask, and their segment ids.

Components are 26-connected, so two fragments are separate only where a gap of at least one
voxel of non-bone divides them. Fragments that touch (an undisplaced or impacted fracture)
are split along the fracture instead: :mod:`mskai.fracture.guided_split` at a reported
fracture, :mod:`mskai.fracture.fragment_split` from clicks.
"""

from __future__ import annotations

import numpy as np

from mskai.terminology import BONE_FRAGMENT_PREFIX
from mskai.volume import Volume


def fragment_id(n: int) -> str:
    """Canonical segment id of the n-th fragment (1-based): ``bone_fragment_n``."""
    return f"{BONE_FRAGMENT_PREFIX}{n}"


def fragment_number(segment_id: str) -> int:
    """The n of a ``bone_fragment_n`` id (or of any id ending in ``_n``): its sort key."""
    return int(segment_id.rsplit("_", 1)[1])


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

"""Simulated user clicks from the error, as in DeepGrow/DeepEdit evaluation.

The next click goes to the voxel deepest inside the largest error region (largest by
physical volume): positive when that region is missed tumour (false negative), negative
when it is wrongly included (false positive).
"""

from __future__ import annotations

import numpy as np


def deepest_voxel(region: np.ndarray, spacing_kji: tuple[float, float, float]) -> np.ndarray:
    """Index ``[k, j, i]`` of the voxel of ``region`` farthest (in mm) from its outside."""
    from scipy import ndimage

    padded = np.pad(region, 1)
    dist = ndimage.distance_transform_edt(padded, sampling=spacing_kji)[1:-1, 1:-1, 1:-1]
    return np.array(np.unravel_index(int(np.argmax(dist)), region.shape))


def next_click(prediction: np.ndarray, truth: np.ndarray,
               spacing_kji: tuple[float, float, float]) -> tuple[np.ndarray, bool] | None:
    """``(index [k, j, i], positive)`` of the next corrective click, or None without error."""
    from scipy import ndimage

    best: tuple[int, np.ndarray, bool] | None = None
    for error, positive in ((truth & ~prediction, True), (prediction & ~truth, False)):
        labels, n = ndimage.label(error)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        biggest = int(np.argmax(sizes))
        if best is None or sizes[biggest] > best[0]:
            best = (int(sizes[biggest]), labels == biggest + 1, positive)
    if best is None:
        return None
    return deepest_voxel(best[1], spacing_kji), best[2]

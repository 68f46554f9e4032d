"""Network output -> a label map on the original image grid.

Each class probability is resampled (linearly, in physical space) from the model grid onto
the input image's own grid, then the arg-max is taken there. Working in physical space
undoes reorientation and resampling in one step, whatever the input's direction.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mskai.inference.preprocess import PreprocessContext
from mskai.volume import Volume


def postprocess(probabilities, context: PreprocessContext, reference: Volume,
                keep_largest: bool | Iterable[int] = False) -> np.ndarray:
    """uint16 label map ``[k, j, i]`` on ``reference``'s grid; label = class channel index.

    ``probabilities`` is ``(K, X, Y, Z)`` or ``(1, K, X, Y, Z)``; a single channel is taken
    as the foreground probability of label 1. ``keep_largest`` keeps only the largest
    connected component of every label (True) or of the labels listed.
    """
    probs = _as_numpy(probabilities)
    if probs.shape[0] == 1:
        probs = np.concatenate([1.0 - probs, probs])
    target = _reference_image(reference)
    best = np.full(reference.array.shape[:3], -np.inf, dtype=np.float32)
    labels = np.zeros(reference.array.shape[:3], dtype=np.uint16)
    for channel in range(probs.shape[0]):
        resampled = _onto(context.grid.image(probs[channel]), target,
                          outside=1.0 if channel == 0 else 0.0)
        better = resampled > best
        labels[better] = channel
        best[better] = resampled[better]
    if keep_largest:
        wanted = range(1, probs.shape[0]) if keep_largest is True else keep_largest
        labels = keep_largest_components(labels, wanted)
    return labels


def keep_largest_components(labels: np.ndarray, values: Iterable[int]) -> np.ndarray:
    """Set to background every component of each listed label except its largest."""
    from scipy import ndimage

    out = labels.copy()
    for value in values:
        components, count = ndimage.label(labels == value)
        if count > 1:
            sizes = np.bincount(components.ravel())
            sizes[0] = 0
            out[(components != 0) & (components != int(np.argmax(sizes)))] = 0
    return out


def _as_numpy(probabilities) -> np.ndarray:
    if hasattr(probabilities, "detach"):
        probabilities = probabilities.detach().to("cpu").float().numpy()
    probs = np.asarray(probabilities, dtype=np.float32)
    if probs.ndim == 5:
        if probs.shape[0] != 1:
            raise ValueError(f"expected one batch item, got shape {probs.shape}")
        probs = probs[0]
    if probs.ndim != 4:
        raise ValueError(f"expected (K, X, Y, Z) probabilities, got shape {probs.shape}")
    return probs


def _reference_image(reference: Volume):
    """An empty float image with the reference volume's geometry (the resampling target)."""
    import SimpleITK as sitk

    image = sitk.Image([int(s) for s in reference.size], sitk.sitkFloat32)
    image.SetSpacing(reference.spacing)
    image.SetOrigin(reference.origin)
    image.SetDirection(tuple(reference.direction.ravel()))
    return image


def _onto(image, target, outside: float) -> np.ndarray:
    import SimpleITK as sitk

    resampled = sitk.Resample(image, target, sitk.Transform(), sitk.sitkLinear, outside,
                              sitk.sitkFloat32)
    return sitk.GetArrayFromImage(resampled)

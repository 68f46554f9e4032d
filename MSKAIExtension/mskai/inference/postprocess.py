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

    Only where a class can win is it resampled: the arg-max of K probabilities is at least
    1/K, and a linearly interpolated value is at most the largest of its grid neighbours,
    so class ``c`` (``c`` > 0) can only win inside the box of model voxels with
    ``p_c >= 1/K``, grown by one voxel. Background is resampled over the union of those
    boxes; outside it every voxel is background. The result equals resampling every class
    over the whole grid (up to exact ties), at a fraction of the cost on large images.
    When the model grid is the reference grid reoriented and rescaled (always, after
    :func:`preprocess`), :mod:`mskai.inference.axis_aligned` gives the same arg-max faster.
    """
    from mskai.inference.axis_aligned import argmax_onto, axis_map

    probs = _as_numpy(probabilities)
    if probs.shape[0] == 1:
        probs = np.concatenate([1.0 - probs, probs])
    shape = reference.array.shape[:3]
    aligned = axis_map(context.grid, reference) if probs.shape[0] < 255 else None
    if aligned is not None:  # what preprocess makes: the fast, equal arg-max
        labels = argmax_onto(probs, aligned, shape)
    else:
        labels = _resampled_argmax(probs, context, reference)
    if keep_largest:
        wanted = range(1, probs.shape[0]) if keep_largest is True else keep_largest
        labels = keep_largest_components(labels, wanted)
    return labels


def _resampled_argmax(probs: np.ndarray, context: PreprocessContext,
                      reference: Volume) -> np.ndarray:
    """The arg-max of every class resampled where it can win (see :func:`postprocess`)."""
    shape = reference.array.shape[:3]
    labels = np.zeros(shape, dtype=np.uint16)
    boxes = {c: box for c in range(1, probs.shape[0])
             if (box := _winning_box(probs[c] >= 1.0 / probs.shape[0], context.grid,
                                     reference)) is not None}
    if boxes:
        union = tuple(slice(min(b[a].start for b in boxes.values()),
                            max(b[a].stop for b in boxes.values())) for a in range(3))
        best = _onto(context.grid.image(probs[0]), reference, union, outside=1.0)
        region = labels[union]
        for channel, box in boxes.items():
            inner = tuple(slice(b.start - u.start, b.stop - u.start)
                          for b, u in zip(box, union, strict=True))
            resampled = _onto(context.grid.image(probs[channel]), reference, box, outside=0.0)
            better = resampled > best[inner]
            region[inner][better] = channel
            best[inner][better] = resampled[better]
    return labels


def keep_largest_components(labels: np.ndarray, values: Iterable[int]) -> np.ndarray:
    """Set to background every component of each listed label except its largest
    (labelled within each label's bounding box: the same components, far less work)."""
    from scipy import ndimage

    out = labels.copy()
    objects = ndimage.find_objects(labels)
    for value in values:
        if value < 1 or value > len(objects) or objects[value - 1] is None:
            continue
        box = objects[value - 1]
        components, count = ndimage.label(labels[box] == value)
        if count > 1:
            sizes = np.bincount(components.ravel())
            sizes[0] = 0
            out[box][(components != 0) & (components != int(np.argmax(sizes)))] = 0
    return out


def _winning_box(mask_xyz: np.ndarray, grid, reference: Volume) -> tuple[slice, ...] | None:
    """``[k, j, i]`` slices of ``reference`` holding every point within one model voxel of
    ``mask_xyz`` (an ``(X, Y, Z)`` mask on the model grid), or None for an empty mask."""
    from itertools import product

    if not mask_xyz.any():
        return None
    lo, hi = [], []
    for axis in range(3):
        hit = np.flatnonzero(mask_xyz.any(axis=tuple(a for a in range(3) if a != axis)))
        lo.append(hit[0] - 1)
        hi.append(hit[-1] + 1)
    corners = np.array(list(product(*zip(lo, hi, strict=True))), dtype=float)
    direction = np.asarray(grid.direction, dtype=float).reshape(3, 3)
    points = np.asarray(grid.origin) + (corners * np.asarray(grid.spacing)) @ direction.T
    ref_dir = np.asarray(reference.direction, dtype=float).reshape(3, 3)
    index = np.linalg.solve(ref_dir, (points - np.asarray(reference.origin)).T).T \
        / np.asarray(reference.spacing)
    size_ijk = np.asarray(reference.array.shape[:3][::-1])
    start = np.clip(np.floor(index.min(0)).astype(int) - 1, 0, size_ijk)
    stop = np.clip(np.ceil(index.max(0)).astype(int) + 2, 0, size_ijk)
    if np.any(stop <= start):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(start[::-1], stop[::-1], strict=True))


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


def _onto(image, reference: Volume, box: tuple[slice, ...], outside: float) -> np.ndarray:
    """``image`` resampled (linearly) onto the ``[k, j, i]`` box of the reference grid."""
    import SimpleITK as sitk

    start_ijk = np.array([b.start for b in box[::-1]], dtype=float)
    size_ijk = [int(b.stop - b.start) for b in box[::-1]]
    direction = np.asarray(reference.direction, dtype=float).reshape(3, 3)
    origin = np.asarray(reference.origin, dtype=float) + direction @ (
        start_ijk * np.asarray(reference.spacing))
    resampled = sitk.Resample(image, size_ijk, sitk.Transform(), sitk.sitkLinear,
                              origin.tolist(), tuple(float(s) for s in reference.spacing),
                              tuple(direction.ravel()), outside, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(resampled)

"""Perturbed current masks for training the click UNet (see train.py's make_batch).

A perturbed mask is the truth with typical segmentation errors (grown or shrunk, a leak into
a neighbouring region, a missing chunk, a stray blob); ``train.py`` then adds the clicks the
evaluation protocol would give (each at the deepest point of the largest error region).
"""

from __future__ import annotations

import numpy as np

from mskai.interactive.learned import GRID_SPACING


def _blob(shape: tuple[int, ...], centre: np.ndarray, radius_mm: float,
          rng: np.random.Generator) -> np.ndarray:
    """A lumpy ball of about ``radius_mm`` around ``centre`` (working-grid index)."""
    axes = [((np.arange(n) - c) * s).reshape([-1 if a == d else 1 for a in range(3)])
            for d, (n, c, s) in enumerate(zip(shape, centre, GRID_SPACING, strict=True))]
    scale = rng.uniform(0.6, 1.4, 3)
    r = np.sqrt(sum((a / f) ** 2 for a, f in zip(axes, scale, strict=True)))
    return r < radius_mm


def perturb(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The truth with typical segmentation errors (at least one kind, often several)."""
    from scipy import ndimage

    out = mask.copy()
    edge = np.argwhere(ndimage.binary_dilation(mask) & ~mask)
    kinds = rng.random(4) < (0.4, 0.5, 0.4, 0.2)
    if not kinds.any():
        kinds[rng.integers(4)] = True
    if kinds[0]:   # boundary too far out or in
        n = int(rng.integers(1, 4))
        op = ndimage.binary_dilation if rng.random() < 0.5 else ndimage.binary_erosion
        out = op(out, structure=np.array([[[0, 0, 0], [0, 1, 0], [0, 0, 0]],
                                          [[0, 1, 0], [1, 1, 1], [0, 1, 0]],
                                          [[0, 0, 0], [0, 1, 0], [0, 0, 0]]], bool),
                 iterations=n)
    if kinds[1] and len(edge):   # a leak out of the tumour
        c = edge[rng.integers(len(edge))]
        out |= _blob(mask.shape, c, rng.uniform(8, 30), rng)
    if kinds[2] and len(edge):   # a missing chunk
        c = edge[rng.integers(len(edge))]
        out &= ~_blob(mask.shape, c, rng.uniform(8, 25), rng)
    if kinds[3]:   # a separate false region somewhere
        c = np.array([rng.integers(n) for n in mask.shape])
        out |= _blob(mask.shape, c, rng.uniform(6, 20), rng)
    return out


def perturb_single(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The truth with exactly one local error (a leak, a missing chunk or a false blob), and
    sometimes a one-voxel in-plane boundary shift: the corrective click then marks *the*
    error, so the network learns to keep the rest of the current mask."""
    from scipy import ndimage

    out = mask.copy()
    if rng.random() < 0.3:
        plane = np.zeros((3, 3, 3), bool)
        plane[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
        op = ndimage.binary_dilation if rng.random() < 0.5 else ndimage.binary_erosion
        out = op(out, structure=plane)
    edge = np.argwhere(ndimage.binary_dilation(mask) & ~mask)
    kind = int(rng.integers(3)) if len(edge) else 2
    c = edge[rng.integers(len(edge))] if len(edge) else None
    if kind == 0:
        out |= _blob(mask.shape, c, rng.uniform(6, 25), rng)
    elif kind == 1:
        out &= ~_blob(mask.shape, c, rng.uniform(6, 20), rng)
    else:
        c = np.array([rng.integers(n) for n in mask.shape])
        out |= _blob(mask.shape, c, rng.uniform(6, 18), rng)
    return out

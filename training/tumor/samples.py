"""Training samples for the click-refinement UNet: simulated click sequences and masks.

A sample is a (4, K, J, I) input (see :func:`mskai.interactive.learned.network_input`) and
the tumour mask. Its clicks follow the evaluation protocol (DeepGrow/DeepEdit style):

- *first click*: one positive click at (or, jittered, near) the most interior voxel, no
  current mask;
- *refinement*: a current mask with typical errors (the truth grown or shrunk, a leak into
  a neighbouring region, a missing chunk; or the network's own first-click result), the
  first click, plus a corrective click at the deepest point of the largest error region
  (:func:`mskai.interactive.clicks.next_click`) and sometimes an earlier random one.
"""

from __future__ import annotations

import numpy as np

from mskai.interactive.clicks import deepest_voxel, next_click
from mskai.interactive.learned import GRID_SPACING, network_input, normalise

CROP = (40, 64, 64)


def first_click(mask: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """The most interior voxel, or (with probability ``jitter``) a deep-ish random one."""
    from scipy import ndimage

    if rng.random() >= jitter:
        return deepest_voxel(mask, GRID_SPACING)
    dist = ndimage.distance_transform_edt(mask, sampling=GRID_SPACING)
    deep = np.argwhere(dist >= 0.5 * dist.max())
    return deep[rng.integers(len(deep))]


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


def clicks_for(current: np.ndarray | None, truth: np.ndarray, c0: np.ndarray,
               rng: np.random.Generator,
               extra: float = 0.3) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Positive and negative clicks: the first one plus corrective ones from the error."""
    pos, neg = [c0], []
    if current is None:
        return pos, neg
    if rng.random() < extra:   # an earlier click somewhere in the error
        err = current ^ truth
        found = np.argwhere(err)
        if len(found):
            p = found[rng.integers(len(found))]
            (pos if truth[tuple(p)] else neg).append(p)
    click = next_click(current, truth, GRID_SPACING)
    if click is not None:
        (pos if click[1] else neg).append(click[0])
    return pos, neg


def random_crop(arrays: list[np.ndarray], anchor: np.ndarray,
                rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Crop all arrays to ``CROP``, at a random place that holds ``anchor``."""
    shape = np.array(arrays[0].shape[:3])
    size = np.minimum(CROP, shape)
    lo_min = np.clip(anchor - size + 4, 0, shape - size)
    lo_max = np.clip(anchor - 4, 0, shape - size)
    lo = np.array([rng.integers(a, max(a, b) + 1) for a, b in zip(lo_min, lo_max, strict=True)])
    box = tuple(slice(a, a + s) for a, s in zip(lo, size, strict=True))
    return [a[box] for a in arrays], lo


def make_sample(image: np.ndarray, truth: np.ndarray, is_ct: bool, rng: np.random.Generator,
                current: np.ndarray | None, c0: np.ndarray | None = None,
                crop: bool = True, extra: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """``(input (4, ...), target (1, ...))`` for one volume and simulated click state."""
    c0 = first_click(truth, rng, jitter=0.3) if c0 is None else c0
    pos, neg = clicks_for(current, truth, c0, rng, extra)
    norm = normalise(image, is_ct, c0) + rng.normal(0, 0.1)
    x = network_input(norm.astype(np.float32), np.array(pos), np.array(neg).reshape(-1, 3),
                      current)
    y = truth[None].astype(np.float32)
    if crop:
        (x_c, y_c), _ = random_crop([np.moveaxis(x, 0, -1), y[0]], c0, rng)
        x, y = np.moveaxis(x_c, -1, 0), y_c[None]
    for axis in (2, 3):
        if rng.random() < 0.5:
            x, y = np.flip(x, axis), np.flip(y, axis)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)

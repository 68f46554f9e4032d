"""Refinement of an existing (possibly hand-edited) mask with the method's new result.

Only changes *connected to a click* are applied, so voxels a person painted or erased
elsewhere survive:

- a positive click outside the current mask adds the connected part of the new result
  that holds it, within a reach that grows with the click's distance from the mask;
- a negative click inside the current mask removes the connected part of
  ``current & ~new`` that holds it (``new`` never holds a negative click, it is a hard
  background seed), which may be a leak of the method or a region painted by hand.
"""

from __future__ import annotations

import numpy as np


def _components_at(region: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The connected components of ``region`` that hold any of ``points`` ([k, j, i])."""
    from scipy import ndimage

    out = np.zeros_like(region, dtype=bool)
    if len(points) == 0 or not region.any():
        return out
    labels, _ = ndimage.label(region)
    hit = np.unique(labels[tuple(np.asarray(points).T)])
    hit = hit[hit > 0]
    return np.isin(labels, hit) if hit.size else out


def reach_limit(current: np.ndarray, positive: np.ndarray,
                spacing_kji: tuple[float, float, float], min_mm: float = 20.0) -> np.ndarray:
    """Voxels within ``max(min_mm, 2 x its distance to the current mask)`` of a positive click.

    A click just outside the mask means "a bit more here", not "grow anywhere": this bounds
    how far one click's addition may reach (a leak through a weak edge stays local).
    """
    out = np.zeros_like(current, dtype=bool)
    if len(positive) == 0:
        return out
    if not current.any():
        return ~out
    spacing = np.asarray(spacing_kji, dtype=float)
    inside_mm = np.argwhere(current) * spacing
    shape = np.array(current.shape)
    for p in positive:
        gap = float(np.sqrt(np.min(np.sum((inside_mm - p * spacing) ** 2, axis=1))))
        radius = max(min_mm, 2.0 * gap)
        half = np.ceil(radius / spacing).astype(int)
        lo, hi = np.maximum(p - half, 0), np.minimum(p + half + 1, shape)
        axes = [(np.arange(a, c) - q) * s for a, c, q, s in zip(lo, hi, p, spacing, strict=True)]
        d2 = sum(g**2 for g in np.meshgrid(*axes, indexing="ij", sparse=True))
        out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] |= d2 <= radius**2
    return out


def merge_with_current(current: np.ndarray, new: np.ndarray, positive: np.ndarray,
                       negative: np.ndarray,
                       spacing_kji: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Current mask plus the new parts at positive clicks, minus the parts at negative ones."""
    current = current.astype(bool)
    outside = positive[~current[tuple(positive.T)]] if len(positive) else positive
    added = _components_at(new & ~current & reach_limit(current, outside, spacing_kji), outside)
    removed = _components_at(current & ~new, negative)
    return (current | added) & ~removed

"""Refinement of an existing (possibly hand-edited) mask with the method's new result.

Only changes *connected to a click* are applied, so voxels a person painted or erased
elsewhere survive:

- a positive click outside the current mask adds the connected part of the new result
  that holds it, within a reach that grows with the click's distance from the mask;
- a negative click inside the current mask removes the connected part of
  ``current & ~new`` that holds it (``new`` never holds a negative click, it is a hard
  background seed), which may be a leak of the method or a region painted by hand, unless
  the click does not explain that part (below).

``current & ~new`` is also all the tumour that the method alone does not reach: it stops far
inside large heterogeneous tumours, so a negative click on a network's or a person's good
mask could wipe half of it (a real sarcoma, STS_026 CT: Dice 0.81 -> 0.43 after one negative
click). So the method also runs with the current mask as tumour seeds, except near each
negative click (:func:`kept_seeds`), and gives ``local``: the part of the mask nearer (in
edge-weighted geodesic distance) to the click than to the rest of the mask. Per negative
click the removal is the whole part only when ``local`` is at least
:data:`LOCAL_REMOVAL_RATIO` of it (the click explains that region); otherwise ``local``.
"""

from __future__ import annotations

import numpy as np

# Fraction of the unreached part a negative click's local removal must make up for the whole
# part to go. Chosen nested in the patient-level 5-fold cross-validation of the tumour click
# protocol (per held-out fold, the best of {0, 0.05, ..., 0.5, never} on the other folds'
# negative clicks: 0.2, 0.15, 0.15, 0.15, 0.2; this is their median; training/tumor/README.md).
LOCAL_REMOVAL_RATIO = 0.15
# The current mask stops being a tumour seed within max(KEEP_MIN_MM, KEEP_DEPTH_FACTOR x the
# click's depth in the mask) of a negative click, so the click has room to claim the region
# it sits in; 3 measured better than 2 on the protocol's worst cases (STS_012, STS_025 CT).
KEEP_DEPTH_FACTOR = 3.0
KEEP_MIN_MM = 10.0


def _components_at(region: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The connected components of ``region`` that hold any of ``points`` ([k, j, i])."""
    from mskai.interactive.region import components_at

    out = np.zeros_like(region, dtype=bool)
    found, box = components_at(region, points)
    out[box] = found
    return out


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


def kept_seeds(current: np.ndarray, negative: np.ndarray,
               spacing_kji: tuple[float, float, float]) -> np.ndarray:
    """The current mask (eroded by a voxel) as tumour seeds, minus a ball around each negative
    click of radius ``max(KEEP_MIN_MM, KEEP_DEPTH_FACTOR x its distance to the mask's edge)``."""
    from scipy import ndimage

    current = current.astype(bool)
    depth = ndimage.distance_transform_edt(current, sampling=spacing_kji)
    keep = ndimage.binary_erosion(current)
    grids = np.indices(current.shape, sparse=True)
    for q in negative:
        radius = max(KEEP_MIN_MM, KEEP_DEPTH_FACTOR * float(depth[tuple(q)]))
        d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, q, spacing_kji, strict=True))
        keep &= d2 > radius * radius
    return keep


def _removed(current: np.ndarray, new: np.ndarray, local: np.ndarray | None,
             negative: np.ndarray) -> np.ndarray:
    """Per negative click: the unreached part holding it, or only its local part (module doc).
    Both parts lie in the current mask, so they are labelled in its bounding box only."""
    if local is None:
        return _components_at(current & ~new, negative)
    from scipy import ndimage

    from mskai.crop import mask_bbox

    out = np.zeros_like(current)
    box = mask_bbox(current)
    if box is None:
        return out
    origin = np.array([s.start for s in box])
    inside, part = current[box], out[box]
    unreached, _ = ndimage.label(inside & ~new[box])      # labelled once for all the clicks
    nearer, _ = ndimage.label(inside & ~local[box])
    for q in negative - origin:
        if np.any(q < 0) or np.any(q >= inside.shape):
            continue  # a click outside the mask removes nothing
        q = tuple(q)
        whole, near = _component_of(unreached, q), _component_of(nearer, q)
        part |= whole if near.sum() >= LOCAL_REMOVAL_RATIO * max(int(whole.sum()), 1) else near
    return out


def _component_of(labels: np.ndarray, point: tuple[int, int, int]) -> np.ndarray:
    """The labelled component holding ``point`` (empty where it is unlabelled)."""
    return labels == labels[point] if labels[point] > 0 else np.zeros(labels.shape, dtype=bool)


def merge_with_current(current: np.ndarray, new: np.ndarray, positive: np.ndarray,
                       negative: np.ndarray,
                       spacing_kji: tuple[float, float, float] = (1.0, 1.0, 1.0),
                       local: np.ndarray | None = None) -> np.ndarray:
    """Current mask plus the new parts at positive clicks, minus the parts at negative ones.

    ``local``: the method's result with the current mask as seeds (:func:`kept_seeds`); without
    it a negative click removes the whole unreached part that holds it.
    """
    current = current.astype(bool)
    outside = positive[~current[tuple(positive.T)]] if len(positive) else positive
    added = _components_at(new & ~current & reach_limit(current, outside, spacing_kji), outside)
    return (current | added) & ~_removed(current, new, local, negative)

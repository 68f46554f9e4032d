"""The page's box prompt: a markups ROI node as the ``R1,A1,S1,R2,A2,S2`` box that
``mskai tumor --roi-ras`` takes (:class:`mskai.interactive.Prompts`' ``roi_ras``)."""

from __future__ import annotations

from typing import Any

MIN_EXTENT_MM = 1e-3   # an axis thinner than this counts as flat


def roi_ras(node: Any) -> tuple[float, ...] | None:
    """The ROI's axis-aligned RAS box (a rotated ROI is replaced by the box around it, as
    the TumorSeg module does), or None while the ROI is not placed.

    A box drawn in a slice view has no depth along the view's normal; that axis gets the
    larger of the other two extents, centred on the slice (a box drawn around a tumour's
    cross-section reaches about as far through the slices as across them).
    """
    if node is None or node.GetNumberOfControlPoints() < 1:
        return None
    bounds = [0.0] * 6
    node.GetRASBounds(bounds)
    low, high = list(bounds[0::2]), list(bounds[1::2])
    extents = [h - lo for lo, h in zip(low, high, strict=True)]
    flat = [axis for axis, e in enumerate(extents) if e < MIN_EXTENT_MM]
    if len(flat) > 1:
        return None   # a point, not yet a box
    for axis in flat:
        half = max(extents) / 2.0
        centre = (low[axis] + high[axis]) / 2.0
        low[axis], high[axis] = centre - half, centre + half
    return (*low, *high)

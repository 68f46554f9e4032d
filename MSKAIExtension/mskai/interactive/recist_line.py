"""A RECIST line as a segmentation prompt: the longest axis a radiologist draws on one slice.

The line (two RAS end points, normally on an axial slice) becomes the prompts the click
methods already take (:func:`expand_recist_line`):

* seeds (positive clicks) along the middle part of the line, ``SEED_SPAN`` of its length
  around the midpoint, the midpoint first (the learned method centres its field there);
* one background click beyond each end, ``BEYOND_FRACTION`` of the length (at least
  ``BEYOND_MIN_MM``) past the end point, when it lies inside the image;
* an ROI box around the midpoint, unless the user gave one: RECIST lesions are roughly
  ellipsoidal, so the box spans ``IN_PLANE_FACTOR`` x the length along R and A (the
  perpendicular in-plane diameter is at most the long one) and ``THROUGH_PLANE_FACTOR`` x the
  length along S (soft-tissue sarcomas of the limbs are often longer craniocaudally than
  across), plus ``PAD_MM`` on every side, cut to the image.

After segmentation :func:`compare_with_result` sets the drawn length beside the result's
RECIST long axis (:mod:`mskai.measure.recist`) and warns when they differ by more than
``LENGTH_TOLERANCE``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from mskai.errors import InputError
from mskai.volume import Volume

if TYPE_CHECKING:
    from mskai.interactive.prompts import Prompts

SEED_SPAN = 0.5            # seeds on the central half of the line
SEED_COUNT = 5
BEYOND_FRACTION = 0.15     # background click this fraction of the length past each end
BEYOND_MIN_MM = 5.0
IN_PLANE_FACTOR = 1.3      # box extent along R and A, x the line's length
THROUGH_PLANE_FACTOR = 2.0  # box extent along S, x the line's length
PAD_MM = 10.0
LENGTH_TOLERANCE = 0.20    # warn when the result's long axis differs more than this
MIN_LENGTH_MM = 5.0


def line_points(line_ras) -> tuple[np.ndarray, np.ndarray]:
    """The two end points of a line given as six numbers or two R,A,S corners."""
    items = list(line_ras)
    if len(items) == 2:
        items = [*items[0], *items[1]]
    values = np.asarray(items, dtype=float)
    return values[:3], values[3:]


def line_length_mm(line_ras) -> float:
    p, q = line_points(line_ras)
    return float(np.linalg.norm(q - p))


def line_box(line_ras) -> tuple[float, float, float, float, float, float]:
    """The ROI box built from the line (see the module doc), R1,A1,S1,R2,A2,S2."""
    p, q = line_points(line_ras)
    length = float(np.linalg.norm(q - p))
    centre = (p + q) / 2
    half = np.array([IN_PLANE_FACTOR, IN_PLANE_FACTOR, THROUGH_PLANE_FACTOR]) * length / 2
    half = np.maximum(half, np.abs(q - p) / 2) + PAD_MM
    lo, hi = centre - half, centre + half
    return (*map(float, lo), *map(float, hi))  # type: ignore[return-value]


def _inside(volume: Volume, ras: np.ndarray) -> bool:
    return bool(volume.contains_index(volume.ras_to_index(np.asarray(ras, dtype=float))))


def expand_recist_line(prompts: Prompts, volume: Volume) -> Prompts:
    """``prompts`` with its RECIST line replaced by seeds, background clicks and a box.

    Without a line the prompts are returned unchanged. The user's own clicks come first and
    are kept, as is the user's ROI box (the line's box is used only when none is given).
    """
    line = prompts.recist_line_ras
    if line is None:
        return prompts
    p, q = line_points(line)
    length = float(np.linalg.norm(q - p))
    if length < MIN_LENGTH_MM:
        raise InputError(f"the RECIST line is {length:.1f} mm long; draw it across the "
                         f"tumour's longest axis (at least {MIN_LENGTH_MM:g} mm)")
    for end in (p, q):
        if not _inside(volume, end):
            raise InputError(f"the RECIST line's end at RAS {end[0]:.1f},{end[1]:.1f},"
                             f"{end[2]:.1f} lies outside the image; draw the line on the "
                             "image, across the tumour")
    direction = (q - p) / length
    offsets = np.linspace(-SEED_SPAN / 2, SEED_SPAN / 2, SEED_COUNT)
    offsets = offsets[np.argsort(np.abs(offsets), kind="stable")]   # the midpoint first
    seeds = [tuple(map(float, (p + q) / 2 + t * length * direction)) for t in offsets]
    beyond = max(BEYOND_FRACTION * length, BEYOND_MIN_MM)
    background = [tuple(map(float, end + sign * beyond * direction))
                  for end, sign in ((p, -1.0), (q, 1.0))]
    background = [b for b in background if _inside(volume, np.array(b))]
    roi = prompts.roi_ras if prompts.roi_ras is not None else line_box(line)
    return replace(prompts, positive_ras=[*prompts.positive_ras, *seeds],
                   negative_ras=[*prompts.negative_ras, *background], roi_ras=roi,
                   recist_line_ras=None)


def compare_with_result(line_ras, result_long_axis_mm: float) -> tuple[dict, str | None]:
    """The drawn length beside the result's RECIST long axis, and a warning (or None)."""
    drawn = line_length_mm(line_ras)
    difference = (result_long_axis_mm - drawn) / drawn
    record = {"line_length_mm": drawn, "result_long_axis_mm": float(result_long_axis_mm),
              "difference_percent": 100.0 * difference}
    warning = None
    if abs(difference) > LENGTH_TOLERANCE:
        warning = (f"the drawn RECIST line is {drawn:.1f} mm but the segmented tumour's RECIST "
                   f"long axis is {result_long_axis_mm:.1f} mm ({100 * difference:+.0f} %); "
                   "check the segmentation, or add clicks")
    return record, warning

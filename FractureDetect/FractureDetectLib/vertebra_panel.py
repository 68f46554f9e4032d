"""Vertebra panel: one vertebral body segment -> anterior/middle/posterior heights, Genant grade.

The grade follows quantitative morphometry (wedge Ha/Hp, biconcave, crush; see
:mod:`mskai.fracture.vertebra`); ``genant_text`` names the deformity type with the grade.

The heights are :func:`mskai.fracture.vertebra.vertebral_heights` (column heights in the
body's own frame, so a tilted spine and an oblique, anisotropic grid give the same numbers)
on the segment's current voxels on the volume's grid.
"""

from __future__ import annotations

from typing import Any

from mskai.errors import InputError
from mskai.volume import Volume

GRADE_TEXT = {0: "normal (grade 0)", 1: "mild (grade 1)", 2: "moderate (grade 2)",
              3: "severe (grade 3)"}


def vertebraHeights(volume: Volume, segmentationNode: Any, segmentId: str) -> dict[str, Any]:
    """Heights (mm), QM height reduction (0..1) and ratios, Genant grade, deformity type and
    frame of one vertebral body."""
    from mskai.fracture.vertebra import vertebral_heights
    from mskai.slicer_io.segmentation import segment_mask

    if segmentationNode is None or not segmentId:
        raise InputError("Select the segmentation and the vertebral body segment to measure.")
    segment = segmentationNode.GetSegmentation().GetSegment(segmentId)
    if segment is None:
        raise InputError(f"{segmentationNode.GetName()} has no segment '{segmentId}': "
                         "select a vertebral body segment.")
    mask = segment_mask(segmentationNode, segmentId, volume)
    if not mask.any():
        raise InputError(f"Segment '{segment.GetName()}' is empty: paint the vertebral body "
                         "first.")
    heights = vertebral_heights(mask, volume)
    return {"segment": segmentId, "name": segment.GetName(), **heights.as_dict(),
            "genant_text": GRADE_TEXT[heights.grade] + (
                f", {heights.deformity}" if heights.deformity != "none" else ""),
            "si_axis_ras": list(heights.si_axis_ras), "ap_axis_ras": list(heights.ap_axis_ras)}

"""Fragment segments of an earlier run that the new run no longer produces.

A rerun (new ROI, new threshold, edited bone) can find fewer fragments than before; the
old ``bone_fragment_N`` segments would otherwise stay in the node, listed beside the new
ones as if they were current. Stale fragments that nobody touched are removed; one edited
by hand is kept (a person's edit is never discarded) and reported, so the user decides.
"""

from __future__ import annotations

from typing import Any


def removeStaleFragments(segmentationNode: Any, result: Any) -> list[Any]:
    """Remove unedited ``bone_fragment_N`` segments absent from ``result``; the actions."""
    from mskai.fracture.fragments import is_fragment_id
    from mskai.segments import STATUS_EDITED
    from mskai.slicer_io import segment_status
    from mskai.slicer_io.merge import SegmentAction

    current = {segment.id for segment in result.segments}
    segmentation = segmentationNode.GetSegmentation()
    actions = []
    for segmentId in list(segmentation.GetSegmentIDs()):
        if not is_fragment_id(segmentId) or segmentId in current:
            continue
        if segment_status(segmentationNode, segmentId) == STATUS_EDITED:
            actions.append(SegmentAction(segmentId, "kept",
                                         "edited by hand; not found by this run"))
        else:
            segmentation.RemoveSegment(segmentId)
            actions.append(SegmentAction(segmentId, "removed", "not found by this run"))
    return actions


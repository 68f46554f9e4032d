"""Click-driven local correction of one knee segment (the classical fallback of CartilageQuant).

A person clicks where a segment is wrong (positive: "this is femoral cartilage", negative:
"this is not"); :func:`mskai.tasks.cartilage_refine.refine_structure` (the code behind
``mskai cartilage --refine-ras``) re-decides that segment within ``radiusMm`` of the clicks,
starting from what every segment holds now. A segment the model did not find (missing or
empty, e.g. after the anatomical checks left it out) is seeded from the positive clicks and
added. Only this segment is written back and it is marked edited by hand (a person drove
the change).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple


class RefineOutcome(NamedTuple):
    segment_id: str
    added_voxels: int
    removed_voxels: int


def _points(node: Any) -> list:
    from mskai.slicer_io import markups_to_points

    return [] if node is None else [ras for _, ras in markups_to_points(node)]


def _modality(tag: str | None) -> str:
    return "CT" if (tag or "").upper().startswith("CT") else "MR"


def refineSegment(volumeNode: Any, segmentationNode: Any, segmentId: str, positiveNode: Any,
                  negativeNode: Any, radiusMm: float = 15.0,
                  lockedSegmentIds: Iterable[str] = ()) -> RefineOutcome:
    """Correct ``segmentId`` near the clicks of two point lists (either may be None).

    The other segments are the competitors; ``lockedSegmentIds`` (e.g. structures a person
    finished by hand) keep every voxel. A missing ``segmentId`` is added (it then needs a
    positive click). The scene's undo state is saved first.
    """
    import numpy as np

    from mskai.errors import InputError
    from mskai.segments import STATUS_EDITED
    from mskai.slicer_io import node_to_volume, segmentation_to_masks, tags
    from mskai.slicer_io.segmentation import get_segment, write_mask
    from mskai.tasks.cartilage_refine import refine_structure

    volume = node_to_volume(volumeNode)
    masks = segmentation_to_masks(segmentationNode, volume)
    locked = set(lockedSegmentIds)
    unknown = sorted(locked - set(masks))
    if unknown:
        raise InputError(f"Locked segments {unknown} are not in '{segmentationNode.GetName()}'; "
                         f"it has {sorted(masks)}.")
    positive, negative = _points(positiveNode), _points(negativeNode)
    before = masks.get(segmentId)
    if (before is None or not before.any()) and not positive:
        raise InputError(f"Segment '{segmentId}' is empty; place a positive point inside the "
                         "structure to seed it.")
    if not any(m.any() for name, m in masks.items() if name != segmentId) and not (
            before is not None and before.any()):
        raise InputError(f"'{segmentationNode.GetName()}' holds no segment to refine against; "
                         "run the model or paint the knee first.")
    new = refine_structure(volume, masks, segmentId, positive, negative, radius_mm=radiusMm,
                           locked=locked)
    after = new[segmentId]
    before = before if before is not None else np.zeros_like(after)
    scene = segmentationNode.GetScene()
    if scene is not None:
        scene.SaveStateForUndo()
    if segmentationNode.GetSegmentation().GetSegment(segmentId) is None:
        _add_knee_segment(segmentationNode, segmentId)
    write_mask(segmentationNode, segmentId, after, volume)
    for name, mask in new.items():  # the voxels the target took from its competitors
        if name != segmentId and name in masks and not np.array_equal(mask, masks[name]):
            write_mask(segmentationNode, name, mask, volume)
    tags.set_tags(get_segment(segmentationNode, segmentId), {tags.STATUS: STATUS_EDITED})
    return RefineOutcome(segmentId, int(np.count_nonzero(after & ~before)),
                         int(np.count_nonzero(before & ~after)))


def _add_knee_segment(segmentationNode: Any, segmentId: str) -> None:
    from mskai.slicer_io.segmentation import add_segment
    from mskai.terminology import segment_type

    kind = segment_type(segmentId)
    add_segment(segmentationNode, segmentId, kind.name, tuple(kind.color))

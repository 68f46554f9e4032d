"""Click-driven local correction of one knee segment (the classical fallback of CartilageQuant).

A person clicks where a segment is wrong (positive: "this is femoral cartilage", negative:
"this is not"); :func:`mskai.interactive.multilabel.refine_label` re-decides that segment
within ``radiusMm`` of the clicks, starting from what every segment holds now. Only this
segment is written back and it is marked edited by hand (a person drove the change).
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
    finished by hand) keep every voxel. The scene's undo state is saved first.
    """
    import numpy as np

    from mskai.errors import InputError
    from mskai.interactive.multilabel import refine_label
    from mskai.segments import STATUS_EDITED
    from mskai.slicer_io import node_to_volume, segmentation_to_masks, tags
    from mskai.slicer_io.segmentation import get_segment, write_mask

    get_segment(segmentationNode, segmentId)
    volume = node_to_volume(volumeNode)
    masks = segmentation_to_masks(segmentationNode, volume)
    locked = set(lockedSegmentIds)
    unknown = sorted(locked - set(masks))
    if unknown:
        raise InputError(f"Locked segments {unknown} are not in '{segmentationNode.GetName()}'; "
                         f"it has {sorted(masks)}.")
    # the target is painted last so that all its voxels are in the label map
    order = [sid for sid in masks if sid != segmentId] + [segmentId]
    labels = np.zeros(volume.array.shape[:3], dtype=np.uint16 if len(order) > 254 else np.uint8)
    for index, sid in enumerate(order, start=1):
        labels[masks[sid]] = index
    if not labels.any() or not masks[segmentId].any():
        raise InputError(f"Segment '{segmentId}' is empty; paint it or run the model first.")
    new = refine_label(volume, labels, len(order), _points(positiveNode), _points(negativeNode),
                       radius_mm=radiusMm, modality=_modality(volume.modality),
                       locked_labels=[order.index(sid) + 1 for sid in locked])
    before, after = masks[segmentId], new == len(order)
    scene = segmentationNode.GetScene()
    if scene is not None:
        scene.SaveStateForUndo()
    write_mask(segmentationNode, segmentId, after, volume)
    tags.set_tags(get_segment(segmentationNode, segmentId), {tags.STATUS: STATUS_EDITED})
    return RefineOutcome(segmentId, int(np.count_nonzero(after & ~before)),
                         int(np.count_nonzero(before & ~after)))

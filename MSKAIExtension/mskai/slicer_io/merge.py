"""Putting a :class:`Result` into a segmentation node without losing anyone's work.

DESIGN.md, "What editable results means": AI output goes into named segments (id = the
canonical segment id), never replaces a whole node, and never silently overwrites a segment
a person edited. Each AI segment carries a fingerprint of the voxels the AI wrote, on the
grid it wrote them on; a segment whose current voxels differ (or that has no fingerprint,
i.e. a person made it) is "edited by hand".

Policies for a segment that already exists:

- ``replace``: write the AI mask. If the segment was edited by hand, a copy of it is kept
  first as "<name> (manual backup)", so the person's work is never lost.
- ``fill_empty``: keep every voxel the segment has and add the AI voxels where it is empty
  (the union); nothing is removed from any segment.
- ``skip_edited``: edited segments are left untouched (reported as skipped); unedited AI
  segments are replaced.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from mskai.errors import InputError
from mskai.segments import STATUS_AI, STATUS_EDITED, Result, Segment
from mskai.slicer_io import tags
from mskai.slicer_io.fingerprint import geometry_string, mask_fingerprint
from mskai.slicer_io.segmentation import (
    add_segment,
    get_segment,
    new_segmentation_node,
    segment_image,
    segment_mask,
    segment_mask_on_geometry,
    write_image,
    write_mask,
)
from mskai.terminology import segment_type

POLICIES = ("replace", "fill_empty", "skip_edited")
BACKUP_SUFFIX = "_manual_backup"


class SegmentAction(NamedTuple):
    """What happened to one segment: created, replaced, filled, skipped or backup."""

    segment_id: str
    action: str
    detail: str = ""


class Applied(NamedTuple):
    """The segmentation node written to and one action per segment touched."""

    node: Any
    actions: list[SegmentAction]


def apply_result(scene: Any, result: Result, segmentation_node: Any = None,
                 policy: str = "replace", reference_node: Any = None) -> Applied:
    """Write each segment of ``result`` into its named segment, following ``policy``.

    Scene undo state is saved first (it takes effect where the scene has undo switched on).
    Without ``segmentation_node`` a new node is made on ``reference_node``'s geometry, or on
    the result image's grid.
    """
    _check_policy(policy)
    _check_masks(result)
    if segmentation_node is not None:
        _check_node(segmentation_node)
        segmentation_node.SetUndoEnabled(True)
    scene.SaveStateForUndo()
    node = segmentation_node
    if node is None:
        node = new_segmentation_node(scene, f"{result.module} segmentation", result.image,
                                     reference_node)
        node.SetUndoEnabled(True)
    actions: list[SegmentAction] = []
    for segment in result.segments:
        actions += _apply_segment(node, segment, result, policy)
    return Applied(node, actions)


def segment_status(node: Any, segment_id: str) -> str:
    """``ai_result`` while the voxels are those the AI wrote, else ``edited_by_hand``.

    The segment's MSKAI.Status tag is brought up to date as well (undoing an edit makes it an
    AI result again).
    """
    segment = get_segment(node, segment_id)
    status = STATUS_EDITED if _is_edited(node, segment_id, segment) else STATUS_AI
    if tags.get_tag(segment, tags.STATUS) != status:
        tags.set_tags(segment, {tags.STATUS: status})
    return status


def segment_statuses(node: Any) -> dict[str, str]:
    """:func:`segment_status` of every segment, keyed by segment id."""
    return {segment_id: segment_status(node, segment_id)
            for segment_id in node.GetSegmentation().GetSegmentIDs()}


def _is_edited(node: Any, segment_id: str, segment: Any) -> bool:
    fingerprint = tags.get_tag(segment, tags.FINGERPRINT)
    geometry = tags.get_tag(segment, tags.FINGERPRINT_GEOMETRY)
    if not fingerprint or not geometry:
        return True
    return mask_fingerprint(segment_mask_on_geometry(node, segment_id, geometry)) != fingerprint


def _apply_segment(node: Any, segment: Segment, result: Result,
                   policy: str) -> list[SegmentAction]:
    if node.GetSegmentation().GetSegment(segment.id) is None:
        _create(node, segment)
        _write_ai(node, segment.id, segment.mask, result)
        return [SegmentAction(segment.id, "created")]
    edited = segment_status(node, segment.id) == STATUS_EDITED
    if policy == "fill_empty":
        return [_fill(node, segment, result, edited)]
    if edited and policy == "skip_edited":
        return [SegmentAction(segment.id, "skipped", "edited by hand")]
    actions = [_backup(node, segment.id)] if edited else []
    _write_ai(node, segment.id, segment.mask, result)
    return [*actions, SegmentAction(segment.id, "replaced")]


def _create(node: Any, segment: Segment) -> None:
    created = add_segment(node, segment.id, segment.name, segment.color)
    created.SetTerminology(tags.terminology_entry(segment_type(segment.id)))


def _write_ai(node: Any, segment_id: str, mask: np.ndarray, result: Result) -> None:
    write_mask(node, segment_id, mask, result.image)
    _stamp(node, segment_id, result)


def _stamp(node: Any, segment_id: str, result: Result) -> None:
    """Provenance, status and the fingerprint of what the node now holds on the image grid."""
    written = segment_mask(node, segment_id, result.image)
    stamp = tags.provenance_tags(result.provenance, result.module)
    stamp[tags.STATUS] = STATUS_AI
    stamp[tags.FINGERPRINT] = mask_fingerprint(written)
    stamp[tags.FINGERPRINT_GEOMETRY] = geometry_string(result.image)
    tags.set_tags(get_segment(node, segment_id), stamp)


def _fill(node: Any, segment: Segment, result: Result, edited: bool) -> SegmentAction:
    """Add AI voxels where the segment is empty; an edited segment stays marked edited."""
    current = segment_mask(node, segment.id, result.image)
    added = int(np.count_nonzero(segment.mask & ~current))
    write_mask(node, segment.id, current | segment.mask, result.image)
    if edited:
        tags.set_tags(get_segment(node, segment.id),
                      tags.provenance_tags(result.provenance, result.module))
    else:
        _stamp(node, segment.id, result)
    return SegmentAction(segment.id, "filled", f"{added} voxels added")


def _backup(node: Any, segment_id: str) -> SegmentAction:
    """Copy an edited segment (its own grid, every voxel) to '<name> (manual backup)'."""
    source = get_segment(node, segment_id)
    backup_id = _free_id(node, segment_id + BACKUP_SUFFIX)
    backup = add_segment(node, backup_id, f"{source.GetName()} (manual backup)",
                         source.GetColor())
    entry = tags.get_tag(source, backup.GetTerminologyEntryTagName())
    if entry:
        backup.SetTerminology(entry)
    tags.set_tags(backup, {tags.STATUS: STATUS_EDITED, tags.BACKUP_OF: segment_id})
    write_image(node, backup_id, segment_image(node, segment_id))
    return SegmentAction(segment_id, "backup", backup_id)


def _free_id(node: Any, wanted: str) -> str:
    segmentation = node.GetSegmentation()
    candidate, n = wanted, 1
    while segmentation.GetSegment(candidate) is not None:
        n += 1
        candidate = f"{wanted}_{n}"
    return candidate


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise InputError(f"Unknown merge policy '{policy}'; use one of {', '.join(POLICIES)}.")


def _check_masks(result: Result) -> None:
    shape = result.image.array.shape[:3]
    for segment in result.segments:
        if segment.mask.shape != shape:
            raise InputError(f"Segment '{segment.id}' has mask shape {segment.mask.shape} but "
                             f"the image has {shape}; masks must lie on the image grid.")


def _check_node(node: Any) -> None:
    if not node.IsA("vtkMRMLSegmentationNode"):
        raise InputError(f"'{node.GetName()}' is a {node.GetClassName()}, not a segmentation "
                         "node; choose a segmentation node for the results.")



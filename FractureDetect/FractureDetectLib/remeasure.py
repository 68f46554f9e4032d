"""Re-measurement of what the segmentation node holds now, hand edits included.

The bone and ``bone_fragment_N`` segments are read on the volume's grid and given to
:func:`mskai.tasks.fracture.run_fracture` as ``labels``, exactly what ``mskai fracture
--labels`` does, so Slicer and the command line agree on every number: fragments, their
volumes, and displacement/angulation between them. No Qt here; the widget calls
:func:`remeasureResult` (debounced) after Segment Editor edits.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.fracture.fragments import fragment_id, fragment_number
from mskai.segments import Result
from mskai.terminology import BONE
from mskai.volume import Volume

BONE_SEGMENT = re.compile(r"^bone(_fragment_[1-9][0-9]*)?$")
FRAGMENT_KEYS = ("volume_ml", "volume_surface_ml", "surface_area_mm2", "max_diameter_mm")


def boneMasks(segmentationNode: Any, volume: Volume) -> dict[str, np.ndarray]:
    """Non-empty ``bone`` and ``bone_fragment_N`` segments on the volume's grid, by id
    (backups and other segments are left out)."""
    from mskai.slicer_io.segmentation import segment_ids, segment_mask

    masks = {}
    for segmentId in segment_ids(segmentationNode):
        if BONE_SEGMENT.match(segmentId):
            mask = segment_mask(segmentationNode, segmentId, volume)
            if mask.any():
                masks[segmentId] = mask
    return masks


def remeasureResult(volume: Volume, segmentationNode: Any, minScore: float = 0.5) -> Result:
    """The fracture result of the segments as they are now (CLI ``--labels`` code path).

    The core numbers given fragments 1..n in id order; ids with gaps (``bone_fragment_1``
    and ``_3``) are mapped back to the node's ids. Bone segments the core did not return
    (fragments no fracture joins) are measured with the same shape code and added.
    """
    from mskai.measure.shape import shape_measurements
    from mskai.segments import Segment
    from mskai.slicer_io import segment_status
    from mskai.tasks.fracture import run_fracture

    masks = boneMasks(segmentationNode, volume)
    if not masks:
        raise InputError(f"{segmentationNode.GetName()} has no bone voxels (segments 'bone' or "
                         "'bone_fragment_N'): run the detection first or paint the bone.")
    result = run_fracture(volume, labels=masks, min_score=minScore)
    rename = _coreIds(masks)
    for segment in result.segments:
        segment.id = rename.get(segment.id, segment.id)
    for key in ("fractures", "fracture_candidates"):
        for entry in result.measurements.get(key, []):
            entry["fragments"] = [rename.get(f, f) for f in entry.get("fragments", [])]
    returned = {segment.id for segment in result.segments}
    for segmentId, mask in masks.items():
        if segmentId not in returned:
            segment = Segment(segmentId, mask, len(result.segments) + 1)
            segment.measurements.update(shape_measurements(mask, volume))
            result.segments.append(segment)
    for segment in result.segments:
        segment.status = segment_status(segmentationNode, segment.id)
        segment.name = segmentationNode.GetSegmentation().GetSegment(segment.id).GetName()
    return result


def _coreIds(masks: dict[str, np.ndarray]) -> dict[str, str]:
    """Core fragment id (numbered 1..n in id order) -> the node's segment id."""
    fragments = sorted((k for k in masks if k != BONE), key=fragment_number)
    return {fragment_id(n): segmentId
            for n, segmentId in enumerate(fragments, start=1)}


def fragmentRows(result: Result) -> list[dict[str, Any]]:
    """One row per bone/fragment segment: id, name, status and the shape measurements."""
    rows = []
    for segment in result.segments:
        if BONE_SEGMENT.match(segment.id):
            row = {"segment": segment.id, "name": segment.name, "status": segment.status}
            row.update({k: segment.measurements.get(k) for k in FRAGMENT_KEYS})
            rows.append(row)
    return rows

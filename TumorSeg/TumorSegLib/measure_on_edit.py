"""Measurements of what the segmentation node holds now, hand edits included.

The module re-measures through :func:`mskai.tasks.tumor.measure_tumor_result`, the function
the ``mskai tumor --labels`` command uses, so Slicer and the command line agree on every
number. No Qt here; the widget calls :func:`remeasureResult` after Segment Editor edits.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.segments import STATUS_AI, Provenance, Result, Segment
from mskai.terminology import BONE, SAFETY_MARGIN, TUMOR
from mskai.volume import Volume

MODULE = "TumorSeg"
MEASURED_SEGMENTS = (TUMOR, SAFETY_MARGIN, BONE)
LABELS = {TUMOR: 1, SAFETY_MARGIN: 2, BONE: 3}
# Lists and nested points stay in measurements.json; the table shows one number per cell.
NOT_IN_TABLE = ("label", "centroid_ras", "recist_endpoints_ras")

PROVENANCE_ATTRIBUTE = "MSKAI.TumorSeg.Provenance"
MARGIN_ATTRIBUTE = "MSKAI.TumorSeg.MarginMm"
TABLE_ROLE = "MSKAI.TumorSeg.Measurements"
RECIST_LONG_ROLE = "MSKAI.TumorSeg.RecistLong"
RECIST_SHORT_ROLE = "MSKAI.TumorSeg.RecistShort"


def storedProvenance(segmentationNode: Any) -> Provenance:
    """The provenance the last run stored on the node (``hand edited`` when none)."""
    text = segmentationNode.GetAttribute(PROVENANCE_ATTRIBUTE)
    if not text:
        return Provenance(method="segmentation edited by hand")
    data = json.loads(text)
    model = data.get("model") or {}
    return Provenance(method=data.get("method", "unknown"), model_id=model.get("id"),
                      model_version=model.get("version"), model_sha256=model.get("sha256"),
                      mskai_version=data.get("mskai_version", ""), time=data.get("time", ""))


def storeProvenance(segmentationNode: Any, provenance: Provenance, marginMm: float) -> None:
    segmentationNode.SetAttribute(PROVENANCE_ATTRIBUTE,
                                  json.dumps({**provenance.to_json(), "time": provenance.time}))
    segmentationNode.SetAttribute(MARGIN_ATTRIBUTE, repr(float(marginMm)))


def resultFromSegmentation(volume: Volume, segmentationNode: Any,
                           provenance: Provenance | None = None) -> Result:
    """The tumour, margin and bone segments the node holds now, as an (unmeasured) Result."""
    from mskai.slicer_io import segment_status
    from mskai.slicer_io.segmentation import segment_mask

    segmentation = segmentationNode.GetSegmentation()
    result = Result(MODULE, volume, provenance or storedProvenance(segmentationNode))
    for segmentId in MEASURED_SEGMENTS:
        if segmentation.GetSegment(segmentId) is None:
            continue
        mask = segment_mask(segmentationNode, segmentId, volume)
        if mask.any():
            segment = segmentation.GetSegment(segmentId)
            result.segments.append(Segment(segmentId, mask, LABELS[segmentId],
                                           name=segment.GetName(),
                                           color=tuple(segment.GetColor()),
                                           status=segment_status(segmentationNode, segmentId)))
    if not any(s.id == TUMOR for s in result.segments):
        raise InputError(f"{segmentationNode.GetName()} has no tumour voxels (segment id "
                         "'tumor'): segment the tumour first or paint it in Segment Editor.")
    return result


def regrowMargin(scene: Any, segmentationNode: Any, result: Result, marginMm: float) -> bool:
    """Grow the safety margin again from the tumour as it is now, in ``result`` and the node.

    After a person edits the tumour the stored margin no longer surrounds it, so it is
    regrown (the same :func:`mskai.measure.margins.grow_margin` a run uses) and written back
    as an AI segment. A margin edited by hand, or one the person removed, is left alone.
    Returns True when the margin was regrown.
    """
    from mskai.measure.margins import grow_margin
    from mskai.segments import STATUS_EDITED
    from mskai.slicer_io import apply_result, segment_status

    segmentId = SAFETY_MARGIN
    segment = segmentationNode.GetSegmentation().GetSegment(segmentId)
    if segment is None or segment_status(segmentationNode, segmentId) == STATUS_EDITED:
        return False
    margin = grow_margin(result.segment(TUMOR).mask, result.image, float(marginMm))
    regrown = Segment(segmentId, margin, LABELS[segmentId], name=segment.GetName(),
                      color=tuple(segment.GetColor()), status=STATUS_AI)
    apply_result(scene, Result(MODULE, result.image, result.provenance, [regrown]),
                 segmentationNode, "replace")
    segmentationNode.SetAttribute(MARGIN_ATTRIBUTE, repr(float(marginMm)))
    ids = [s.id for s in result.segments]
    if segmentId in ids:
        result.segments[ids.index(segmentId)] = regrown
    else:  # the stored margin was empty
        result.segments.insert(ids.index(TUMOR) + 1, regrown)
    return True


def measureResult(result: Result, marginMm: float) -> Result:
    """Fill ``result``'s measurements with the CLI's code (bone from the bone segment)."""
    from mskai.tasks.tumor import measure_tumor_result

    bone = next((s.mask for s in result.segments if s.id == BONE), None)
    measure_tumor_result(result, float(marginMm), bone)
    return result


def measurementRows(result: Result) -> list[dict[str, Any]]:
    """One row per segment for the table: contract keys, status, tumour margin figures."""
    from mskai.results.tables import measurements_document

    document = measurements_document(result)
    statuses = {s.id: s.status for s in result.segments}
    rows = []
    for entry in document["segments"]:
        row = {k: v for k, v in entry.items() if k not in NOT_IN_TABLE}
        row["status"] = statuses.get(entry["id"], STATUS_AI)
        if entry["id"] == TUMOR:
            margin = document.get("margin") or {}
            row["min_distance_to_bone_mm"] = margin.get("min_distance_to_bone_mm")
            row["bone_within_margin"] = "yes" if margin.get("bone_within_margin") else "no"
        rows.append(row)
    return rows


def fillMeasurements(scene: Any, result: Result, segmentationNode: Any) -> Any:
    """Table node (reused when the node already has one) and RECIST line markups."""
    from mskai.slicer_io import line_markup, measurements_to_table

    tableNode = measurements_to_table(scene, measurementRows(result), "TumorSeg measurements",
                                      segmentationNode.GetNodeReference(TABLE_ROLE))
    segmentationNode.SetNodeReferenceID(TABLE_ROLE, tableNode.GetID())
    endpoints = result.segment(TUMOR).measurements.get("recist_endpoints_ras") or {}
    for key, role, name in (("long", RECIST_LONG_ROLE, "RECIST long axis"),
                            ("short", RECIST_SHORT_ROLE, "RECIST short axis")):
        points = endpoints.get(key)
        if points is None or len(points) != 2 or not np.all(np.isfinite(points)):
            continue
        line = line_markup(scene, points[0], points[1], name,
                           segmentationNode.GetNodeReference(role))
        segmentationNode.SetNodeReferenceID(role, line.GetID())
    return tableNode

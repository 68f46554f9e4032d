"""Response panel logic: baseline vs follow-up, from result folders or segmentation nodes.

Both paths end in :class:`mskai.response.Assessment`, the object behind ``mskai response``,
so the categories are those of the command line. No Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mskai.errors import InputError
from mskai.terminology import TUMOR


def compareFolders(scene: Any, baselineDir: str | Path, followupDir: str | Path,
                   tableNode: Any = None) -> tuple[Any, Any]:
    """``(assessment, table node)`` for two ``mskai tumor`` result folders."""
    from mskai.response import compare_folders

    assessment = compare_folders(baselineDir, followupDir)
    return assessment, responseTable(scene, assessment, tableNode)


def compareSegmentations(scene: Any, baselineVolumeNode: Any, baselineSegmentationNode: Any,
                         followupVolumeNode: Any, followupSegmentationNode: Any,
                         marginMm: float = 10.0, tableNode: Any = None) -> tuple[Any, Any]:
    """``(assessment, table node)`` for two segmentations, measured as they are now."""
    from mskai.response.compare import Assessment

    baseline = _timePoint(baselineVolumeNode, baselineSegmentationNode, marginMm)
    followup = _timePoint(followupVolumeNode, followupSegmentationNode, marginMm)
    if baseline.sum_diameters_mm <= 0:
        raise InputError("The baseline tumour has no RECIST diameter: segment it first.")
    assessment = Assessment(baseline, followup)
    return assessment, responseTable(scene, assessment, tableNode)


def _timePoint(volumeNode: Any, segmentationNode: Any, marginMm: float) -> Any:
    from mskai.response.compare import TimePoint
    from mskai.slicer_io import node_to_volume
    from TumorSegLib.measure_on_edit import measureResult, resultFromSegmentation

    if volumeNode is None or segmentationNode is None:
        raise InputError("Select a volume and a segmentation for both time points.")
    result = measureResult(resultFromSegmentation(node_to_volume(volumeNode),
                                                  segmentationNode), marginMm)
    tumour = result.segment(TUMOR).measurements
    lesion = {"id": TUMOR, "long_axis_mm": float(tumour["recist_long_axis_mm"]),
              "volume_ml": float(tumour["volume_ml"])}
    return TimePoint(segmentationNode.GetName(), "TumorSeg", volumeNode.GetName(), [lesion])


def responseTable(scene: Any, assessment: Any, tableNode: Any = None) -> Any:
    """Rows: baseline and follow-up; the follow-up row has the changes and categories."""
    from mskai.slicer_io import measurements_to_table

    changes = assessment.changes()
    rows = []
    for name, point in (("baseline", assessment.baseline), ("follow-up", assessment.followup)):
        rows.append({"time_point": name, "source": point.folder,
                     "sum_diameters_mm": point.sum_diameters_mm, "volume_ml": point.volume_ml,
                     "sum_diameters_change_pct": None, "volume_change_pct": None,
                     "recist_category": "", "volumetric_category": ""})
    rows[1].update(sum_diameters_change_pct=changes["sum_diameters_pct"],
                   volume_change_pct=changes["volume_pct"],
                   recist_category=assessment.recist_category,
                   volumetric_category=assessment.volumetric_category)
    return measurements_to_table(scene, rows, "TumorSeg response", tableNode)

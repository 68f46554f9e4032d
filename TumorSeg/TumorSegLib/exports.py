"""Exports of the TumorSeg results: seg.nrrd, DICOM SEG, STL/OBJ surfaces, CSV (no Qt).

All take what the nodes hold now, so hand edits are exported as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mskai.errors import InputError
from mskai.terminology import BONE, SAFETY_MARGIN, TUMOR

DICOM_SOURCE_ATTRIBUTE = "MSKAI.DicomSource"  # folder of the series, set by loaders
DICOM_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"  # set by Slicer's DICOM module


def exportSegNrrd(segmentationNode: Any, path: str | Path) -> Path:
    from mskai.slicer_io import save_segmentation

    return save_segmentation(segmentationNode, path)


def dicomSourceFiles(volumeNode: Any,
                     fileForInstance: Callable[[str], str] | None = None) -> list[str] | str:
    """The DICOM files (or folder) ``volumeNode`` was loaded from.

    Slicer's DICOM module stores the SOP instance UIDs on the node; ``fileForInstance``
    (``slicer.dicomDatabase.fileForInstance`` inside Slicer) turns them into files.
    """
    folder = volumeNode.GetAttribute(DICOM_SOURCE_ATTRIBUTE)
    if folder:
        return folder
    uids = (volumeNode.GetAttribute(DICOM_UIDS_ATTRIBUTE) or "").split()
    if uids and fileForInstance is not None:
        files = [fileForInstance(uid) for uid in uids]
        if all(files):
            return files
    raise InputError(f"{volumeNode.GetName()} did not come from DICOM, so a DICOM SEG cannot "
                     "reference it: load the series through the DICOM module, or export "
                     "the segmentation as .seg.nrrd.")


def exportDicomSeg(volumeNode: Any, segmentationNode: Any, path: str | Path,
                   source: str | Path | Sequence[str] | None = None,
                   fileForInstance: Callable[[str], str] | None = None) -> Path:
    """Every non-empty segment as one DICOM SEG referencing the volume's DICOM series."""
    from mskai.results.dicom_seg import write_dicom_seg
    from mskai.segments import STATUS_EDITED
    from mskai.slicer_io import node_to_volume, segment_statuses, segmentation_to_masks
    from TumorSegLib.measure_on_edit import storedProvenance

    files = source if source is not None else dicomSourceFiles(volumeNode, fileForInstance)
    volume = node_to_volume(volumeNode)
    masks = segmentation_to_masks(segmentationNode, volume)
    segmentation = segmentationNode.GetSegmentation()
    names = {sid: segmentation.GetSegment(sid).GetName() for sid in masks}
    edited = {sid for sid, status in segment_statuses(segmentationNode).items()
              if status == STATUS_EDITED}
    return write_dicom_seg(masks, volume, path, files, storedProvenance(segmentationNode),
                           names=names, edited=edited)


def exportSurfaces(volumeNode: Any, segmentationNode: Any, outDir: str | Path,
                   fmt: str = "stl",
                   segmentIds: Sequence[str] = (TUMOR, SAFETY_MARGIN, BONE)) -> list[Path]:
    """``<segment id>.stl|obj`` per present segment, in RAS mm (the CLI's mesh writer)."""
    from mskai.results import export_surfaces
    from mskai.slicer_io import node_to_volume
    from TumorSegLib.measure_on_edit import resultFromSegmentation

    result = resultFromSegmentation(node_to_volume(volumeNode), segmentationNode)
    present = [s.id for s in result.segments if s.id in segmentIds]
    return export_surfaces(result, outDir, fmt=fmt, segment_ids=present)


def exportTableCsv(tableNode: Any, path: str | Path) -> Path:
    """The measurements table as CSV (machine column names, as measurements.csv)."""
    from mskai.slicer_io import table_to_rows

    if tableNode is None:
        raise InputError("There is no measurements table yet: run the segmentation first.")
    rows = table_to_rows(tableNode)
    table = tableNode.GetTable()
    columns = [table.GetColumn(c).GetName() for c in range(table.GetNumberOfColumns())]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or ["id"])
        writer.writeheader()
        writer.writerows(rows)
    return path

"""Exports of the TumorSeg results: seg.nrrd, DICOM SEG (+ SR), STL/OBJ surfaces, CSV (no Qt).

All take what the nodes hold now, so hand edits are exported as they are. The DICOM files are
written by :func:`mskai.results.dicom_seg.write_dicom_outputs`, as ``mskai tumor --dicom-out``
writes them: the SEG, and the measurements SR when ``mskai.results.dicom_sr`` is installed.
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


def exportDicom(volumeNode: Any, segmentationNode: Any, folder: str | Path,
                source: str | Path | Sequence[str] | None = None,
                fileForInstance: Callable[[str], str] | None = None) -> list[Path]:
    """``segmentation.dcm`` and, when the SR writer is installed, ``measurements_sr.dcm`` in
    ``folder``: the files (and names) of ``mskai tumor --dicom-out``."""
    from mskai.results.dicom_seg import DICOM_SEG_FILE, DICOM_SR_FILE

    folder = Path(folder)
    paths = _writeDicom(volumeNode, segmentationNode, folder / DICOM_SEG_FILE,
                        folder / DICOM_SR_FILE, source, fileForInstance)
    return list(paths.values())


def exportDicomSeg(volumeNode: Any, segmentationNode: Any, path: str | Path,
                   source: str | Path | Sequence[str] | None = None,
                   fileForInstance: Callable[[str], str] | None = None,
                   srPath: str | Path | None = None) -> Path:
    """Every non-empty segment as one DICOM SEG referencing the volume's DICOM series; the
    measurements SR (when its writer is installed) goes to ``srPath`` (default:
    ``measurements_sr.dcm`` beside the SEG). Returns the SEG's path."""
    return _writeDicom(volumeNode, segmentationNode, Path(path), srPath, source,
                       fileForInstance)["seg"]


def _writeDicom(volumeNode: Any, segmentationNode: Any, segPath: Path,
                srPath: str | Path | None, source: Any,
                fileForInstance: Callable[[str], str] | None) -> dict[str, Path]:
    from mskai.results import dicom_seg
    from mskai.slicer_io import node_to_volume

    files = source if source is not None else dicomSourceFiles(volumeNode, fileForInstance)
    result = _dicomResult(node_to_volume(volumeNode), segmentationNode,
                          measure=dicom_seg.dicom_sr_writer() is not None)
    return dicom_seg.write_dicom_outputs(result, segPath, srPath, files)


def _dicomResult(volume: Any, segmentationNode: Any, measure: bool) -> Any:
    """Every non-empty segment the node holds now (names, colours, hand-edit status); measured
    as the module measures them when ``measure`` (the SR needs them) and there is a tumour."""
    from mskai.segments import Result, Segment
    from mskai.slicer_io import segment_statuses, segmentation_to_masks
    from TumorSegLib.measure_on_edit import (
        MARGIN_ATTRIBUTE,
        MODULE,
        measureResult,
        storedProvenance,
    )

    masks = segmentation_to_masks(segmentationNode, volume)
    segmentation = segmentationNode.GetSegmentation()
    statuses = segment_statuses(segmentationNode)
    result = Result(MODULE, volume, storedProvenance(segmentationNode))
    for label, (segmentId, mask) in enumerate(masks.items(), start=1):
        if not mask.any():
            continue  # a SEG leaves empty segments out, and they cannot be measured
        segment = segmentation.GetSegment(segmentId)
        result.segments.append(Segment(segmentId, mask, label, name=segment.GetName(),
                                       color=tuple(segment.GetColor()),
                                       status=statuses[segmentId]))
    if measure and any(s.id == TUMOR and s.mask.any() for s in result.segments):
        measureResult(result, float(segmentationNode.GetAttribute(MARGIN_ATTRIBUTE) or 10.0))
    return result


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

"""DICOM SEG export (highdicom) of a :class:`Result` or of plain masks, on the source series.

A DICOM SEG references the very images it was drawn on, so it can only be written when the
image came from a DICOM series: the series folder (or its files) must be given, or be the
path the image was read from (:func:`mskai.image.read_image` keeps it). The masks must lie
on that series' grid; each source slice becomes one frame (binary, empty frames omitted by
highdicom), each segment carries the SNOMED CT category and type of
:mod:`mskai.terminology` and, unless it was edited by hand, the algorithm that made it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.segments import STATUS_EDITED, Provenance, Result
from mskai.terminology import segment_type
from mskai.volume import Volume

MANUFACTURER = "MSK AI"
POSITION_TOLERANCE_MM = 0.05
DicomSource = str | Path | Sequence[str | Path] | None


def export_result_dicom_seg(result: Result, out_path: str | Path,
                            source: DicomSource = None, **options: Any) -> Path:
    """Write every non-empty segment of ``result`` as one DICOM SEG file.

    ``source``: the DICOM series folder or files; defaults to the folder the result's image
    was read from. ``options`` go to :func:`write_dicom_seg` (series number, description).
    """
    masks = {seg.id: seg.mask for seg in result.segments}
    names = {seg.id: seg.name or seg.id for seg in result.segments}
    edited = {seg.id for seg in result.segments if seg.status == STATUS_EDITED}
    return write_dicom_seg(masks, result.image, out_path, source, result.provenance,
                           names=names, edited=edited, **options)


def write_dicom_seg(masks: Mapping[str, np.ndarray], image: Volume, out_path: str | Path,
                    source: DicomSource = None, provenance: Provenance | None = None,
                    names: Mapping[str, str] | None = None, edited: set[str] | None = None,
                    series_number: int = 300,
                    series_description: str = "MSK AI segmentation") -> Path:
    """Write ``masks`` (segment id -> bool ``[k, j, i]`` on ``image``'s grid) as DICOM SEG."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    datasets = read_source_series(_source_files(source, image))
    frames = _frame_indices(datasets, image)
    ids = [seg_id for seg_id, mask in masks.items() if np.asarray(mask).any()]
    if not ids:
        raise InputError("every segment is empty, so there is nothing to export; segment the "
                         "structure first")
    for seg_id in ids:
        if np.shape(masks[seg_id]) != image.array.shape[:3]:
            raise InputError(f"segment '{seg_id}' has shape {np.shape(masks[seg_id])} but the "
                             f"image has {image.array.shape[:3]}; resample it onto the image")
    pixels = np.stack([np.asarray(masks[s], dtype=bool)[frames] for s in ids], axis=-1)
    provenance = provenance or Provenance(method="unknown")
    algorithm = hd.AlgorithmIdentificationSequence(
        name=(provenance.model_id or provenance.method)[:64],
        family=codes.cid7162.ArtificialIntelligence,
        version=(provenance.model_version or provenance.mskai_version)[:64],
        source=MANUFACTURER)
    descriptions = [_description(n, seg_id, (names or {}).get(seg_id),
                                 seg_id in (edited or set()), provenance, algorithm)
                    for n, seg_id in enumerate(ids, start=1)]
    seg = hd.seg.Segmentation(
        source_images=datasets, pixel_array=pixels.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(),
        series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer=MANUFACTURER, manufacturer_model_name="mskai",
        software_versions=provenance.mskai_version, device_serial_number="none",
        series_description=series_description[:64])
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    return out


def read_source_series(files: Sequence[Path]) -> list[Any]:
    """The image datasets of one series (pixels included; highdicom needs them)."""
    import pydicom

    datasets = []
    for path in files:
        try:
            ds = pydicom.dcmread(path)
        except Exception as exc:  # pydicom raises many types for broken files
            raise InputError(f"{path} is not a readable DICOM file ({type(exc).__name__}); "
                             "re-export the series") from None
        if "PixelData" in ds and "ImagePositionPatient" in ds:
            datasets.append(ds)
    if not datasets:
        raise InputError("the DICOM source holds no images with positions; give the folder "
                         "of the image series the segmentation was made on")
    uids = {ds.SeriesInstanceUID for ds in datasets}
    if len(uids) > 1:
        raise InputError(f"the DICOM source mixes {len(uids)} series; give the folder of "
                         "the one series the segmentation was made on")
    return datasets


def _source_files(source: DicomSource, image: Volume) -> list[Path]:
    if source is None:
        if not image.metadata.get("series_instance_uid") or not image.path:
            raise InputError("the image did not come from a DICOM series, so a DICOM SEG "
                             "cannot reference it; load the image from DICOM or save the "
                             "segmentation as .seg.nrrd instead")
        source = image.path
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_file():
            path = path.parent
        if not path.is_dir():
            raise InputError(f"the DICOM source {path} does not exist; give the series folder")
        files = sorted(p for p in path.iterdir() if p.is_file())
    else:
        files = [Path(p) for p in source]
    if not files:
        raise InputError("no DICOM files were given; give the folder of the image series")
    return files


def _frame_indices(datasets: list[Any], image: Volume) -> np.ndarray:
    """Slice index k of each source image; refuses a series that is not the image's grid."""
    size = image.size
    k_axis = image.direction[:, 2]
    indices = []
    for ds in datasets:
        rows, cols = int(ds.Rows), int(ds.Columns)
        if (cols, rows) != size[:2]:
            raise InputError(f"the DICOM images are {cols}x{rows} but the segmentation grid is "
                             f"{size[0]}x{size[1]}; give the series the image was loaded from")
        ijk = np.linalg.solve(image.ijk_to_lps()[:3, :3],
                              np.asarray(ds.ImagePositionPatient, float) - image.origin)
        k = int(round(ijk[2]))
        row_dir = np.asarray(ds.ImageOrientationPatient[:3], float)
        col_dir = np.asarray(ds.ImageOrientationPatient[3:], float)
        in_plane = np.abs(ijk[:2]).max() * min(image.spacing[:2])
        if (not 0 <= k < size[2] or abs(ijk[2] - k) * image.spacing[2] > POSITION_TOLERANCE_MM
                or in_plane > POSITION_TOLERANCE_MM
                or not np.allclose(row_dir, image.direction[:, 0], atol=1e-4)
                or not np.allclose(col_dir, image.direction[:, 1], atol=1e-4)
                or abs(float(np.cross(row_dir, col_dir) @ k_axis)) < 1 - 1e-4):
            raise InputError(f"the DICOM image {ds.SOPInstanceUID} does not lie on the "
                             "segmentation grid; give the series the image was loaded from")
        indices.append(k)
    if len(set(indices)) != len(indices):
        raise InputError("several DICOM images share a slice position; give one series only")
    return np.asarray(indices)


def _description(number: int, seg_id: str, name: str | None, edited: bool,
                 provenance: Provenance, algorithm: Any) -> Any:
    import highdicom as hd

    kind = segment_type(seg_id)
    if edited:
        algorithm_type, identification = hd.seg.SegmentAlgorithmTypeValues.MANUAL, None
    else:
        algorithm_type = (hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if provenance.model_id
                          else hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC)
        identification = algorithm
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=(name or kind.name)[:64],
        segmented_property_category=_code(kind.category),
        segmented_property_type=_code(kind.type),
        algorithm_type=algorithm_type, algorithm_identification=identification,
        tracking_uid=hd.UID(), tracking_id=seg_id,
        display_color=hd.color.CIELabColor.from_rgb(*(round(255 * c) for c in kind.color)))


def _code(code: tuple[str, str, str]) -> Any:
    from highdicom.sr import CodedConcept

    value, scheme, meaning = code
    return CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)

"""DICOM SEG export (highdicom) of a :class:`Result` or of plain masks, on the source series.

A DICOM SEG references the very images it was drawn on, so it can only be written when the
image came from a DICOM series: the series folder (or its files) must be given, or the image
must have been read from DICOM (:func:`mskai.image.read_image` keeps the series' files in
``metadata["dicom_files"]``). The masks must lie on that series' grid; each source slice
becomes one frame (binary, empty frames omitted by highdicom), each segment carries the
SNOMED CT category and type of :mod:`mskai.terminology` and, unless it was edited by hand,
the algorithm that made it. The SEG keeps the source's patient, study and frame of reference
in a new series.

``mskai ... --dicom-out`` and the Slicer modules write through :func:`write_dicom_outputs`:
``segmentation.dcm`` and, when :mod:`mskai.results.dicom_sr` is installed,
``measurements_sr.dcm`` (a TID 1500 SR referencing the SEG's segments).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping, Sequence
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
DICOM_SEG_FILE = "segmentation.dcm"
DICOM_SR_FILE = "measurements_sr.dcm"
SR_MODULE = "mskai.results.dicom_sr"
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                 "FrameOfReferenceUID")
# Short-string VRs the SEG copies from the source (patient, study); over-long values there
# would make the SEG invalid, so they are cut to the VR's maximum length.
COPIED_MAX_LENGTH = {"SH": 16, "LO": 64, "CS": 16}
# Type 2 patient/study attributes highdicom copies from the source; many exports leave them
# out, so they are added empty (in memory only) rather than failing.
TYPE2_COPIED = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                "AccessionNumber", "StudyID", "StudyDate", "StudyTime",
                "ReferringPhysicianName")


def dicom_sr_writer() -> Callable[..., Any] | None:
    """``mskai.results.dicom_sr.write_dicom_sr`` when that module is installed, else None."""
    if importlib.util.find_spec(SR_MODULE) is None:
        return None
    return getattr(importlib.import_module(SR_MODULE), "write_dicom_sr", None)


def dicom_output_files() -> tuple[str, ...]:
    """The file names ``--dicom-out`` writes into the output folder."""
    return (DICOM_SEG_FILE, DICOM_SR_FILE) if dicom_sr_writer() else (DICOM_SEG_FILE,)


def require_dicom_input(image_path: str | Path | None, option: str = "--dicom-out") -> None:
    """Refuse (before any work) an input that is not a DICOM series: a SEG needs one."""
    from mskai.image import _is_dicom_file

    path = Path(image_path) if image_path is not None else None
    if path is not None and (path.is_dir() or not path.exists() or _is_dicom_file(path)):
        return  # a folder, or a missing path the reader reports itself
    name = path.name if path is not None else "the image"
    raise InputError(f"{option} needs a DICOM series as input, but {name} is an image file "
                     "(a DICOM SEG must reference the source DICOM images): give the DICOM "
                     f"folder, not a NIfTI/NRRD file, or leave {option} out")


def check_dicom_source(image: Volume) -> None:
    """Refuse, right after reading, a DICOM series a SEG cannot reference (no UIDs)."""
    import pydicom

    for path in _source_files(None, image):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # pydicom raises many types for broken files
            continue  # the writer names an unreadable file itself
        _require_uids(header, path)


def write_dicom_outputs(result: Result, seg_path: str | Path, sr_path: str | Path | None = None,
                        source: DicomSource = None, **options: Any) -> dict[str, Path]:
    """``{"seg": path}`` and, when the SR writer is installed, ``{"sr": path}`` as well.

    The SEG (:func:`build_result_dicom_seg`) goes to ``seg_path``; the SR, made by
    ``mskai.results.dicom_sr.write_dicom_sr(result, seg, source_images, path)``, to
    ``sr_path`` (default: ``measurements_sr.dcm`` beside the SEG).
    """
    seg, datasets = build_result_dicom_seg(result, source, **options)
    paths = {"seg": _save(seg, seg_path)}
    writer = dicom_sr_writer()
    if writer is not None:
        sr_path = Path(sr_path) if sr_path is not None else paths["seg"].with_name(DICOM_SR_FILE)
        sr_path.parent.mkdir(parents=True, exist_ok=True)
        sr = writer(result, seg, datasets, sr_path)
        if not sr_path.is_file():  # the writer may return the dataset without saving it
            sr.save_as(sr_path)
        paths["sr"] = sr_path
    return paths


def export_result_dicom_seg(result: Result, out_path: str | Path,
                            source: DicomSource = None, **options: Any) -> Path:
    """Write every non-empty segment of ``result`` as one DICOM SEG file.

    ``source``: the DICOM series folder or files; defaults to the series the result's image
    was read from. ``options`` go to :func:`write_dicom_seg` (series number, description).
    """
    return _save(build_result_dicom_seg(result, source, **options)[0], out_path)


def build_result_dicom_seg(result: Result, source: DicomSource = None,
                           **options: Any) -> tuple[Any, list[Any]]:
    """The SEG of ``result`` (a ``highdicom.seg.Segmentation``) and the source datasets."""
    masks = {seg.id: seg.mask for seg in result.segments}
    names = {seg.id: seg.name or seg.id for seg in result.segments}
    edited = {seg.id for seg in result.segments if seg.status == STATUS_EDITED}
    return build_dicom_seg(masks, result.image, source, result.provenance, names=names,
                           edited=edited, **options)


def write_dicom_seg(masks: Mapping[str, np.ndarray], image: Volume, out_path: str | Path,
                    source: DicomSource = None, provenance: Provenance | None = None,
                    names: Mapping[str, str] | None = None, edited: set[str] | None = None,
                    series_number: int = 300,
                    series_description: str = "MSK AI segmentation") -> Path:
    """Write ``masks`` (segment id -> bool ``[k, j, i]`` on ``image``'s grid) as DICOM SEG."""
    seg, _ = build_dicom_seg(masks, image, source, provenance, names, edited, series_number,
                             series_description)
    return _save(seg, out_path)


def build_dicom_seg(masks: Mapping[str, np.ndarray], image: Volume, source: DicomSource = None,
                    provenance: Provenance | None = None, names: Mapping[str, str] | None = None,
                    edited: set[str] | None = None, series_number: int = 300,
                    series_description: str = "MSK AI segmentation") -> tuple[Any, list[Any]]:
    """The ``highdicom.seg.Segmentation`` of ``masks`` and the source datasets it references.

    Same patient, study and frame of reference as the source series; a new series.
    """
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
    _cut_copied_values(seg)
    _segment_identification_per_frame(seg)
    return seg, datasets


def _save(dataset: Any, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(out)
    return out


def _segment_identification_per_frame(seg: Any) -> None:
    """Each frame names its segment. highdicom moves the Segment Identification of a SEG
    with one segment into the shared functional groups, which is valid DICOM but which
    some readers (and ``highdicom.sr.ReferencedSegment.from_segmentation``) do not look at.
    """
    from copy import deepcopy

    shared = seg.SharedFunctionalGroupsSequence[0]
    if "SegmentIdentificationSequence" not in shared:
        return
    identification = shared.SegmentIdentificationSequence
    for item in seg.PerFrameFunctionalGroupsSequence:
        item.SegmentIdentificationSequence = deepcopy(identification)
    del shared.SegmentIdentificationSequence


def _cut_copied_values(seg: Any) -> None:
    """Over-long SH/LO/CS values copied from the source (e.g. a 17-character Study ID)."""
    for element in seg:
        limit = COPIED_MAX_LENGTH.get(element.VR)
        if limit and isinstance(element.value, str) and len(element.value) > limit:
            element.value = element.value[:limit]


def _require_uids(ds: Any, path: Path | str) -> None:
    missing = [key for key in REQUIRED_UIDS if not str(ds.get(key, "") or "").strip()]
    if missing:
        raise InputError(f"the DICOM file {Path(path).name} has no {', '.join(missing)} "
                         "(removed by anonymisation?), so a DICOM SEG cannot reference it; "
                         "re-export the series with its UIDs, or leave the DICOM output out")


def read_source_series(files: Sequence[Path]) -> list[Any]:
    """The image datasets of one series. Pixel data (which a SEG does not copy) is left on
    disk until something reads it, so a long series costs headers only."""
    import pydicom

    datasets = []
    for path in files:
        try:
            ds = pydicom.dcmread(path, defer_size="64 KB")
        except Exception as exc:  # pydicom raises many types for broken files
            raise InputError(f"{path} is not a readable DICOM file ({type(exc).__name__}); "
                             "re-export the series") from None
        if "PixelData" in ds and "ImagePositionPatient" in ds:
            _require_uids(ds, path)
            for keyword in TYPE2_COPIED:
                if keyword not in ds:
                    setattr(ds, keyword, None)
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
    if source is None and image.metadata.get("dicom_files"):
        source = image.metadata["dicom_files"]
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

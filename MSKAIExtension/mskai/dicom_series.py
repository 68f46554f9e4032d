"""Reading one DICOM series from a folder: choosing the series and checking its slices.

A folder with several series is never read by guessing: the caller names the series
(``series_uid``, the CLI's ``--series``). A multi-echo series (every slice position once per
EchoTime, e.g. a multi-echo spin-echo T2 series) is read as one echo: ``echo`` (1 = the
shortest echo time, the default), with a warning naming the echoes. Other slices at the same
position are refused; missing or unevenly spaced slices are read with the median slice gap
as spacing and a warning in ``volume.metadata["warnings"]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mskai.errors import InputError
from mskai.image import SUPPORTED, _first_line, _is_dicom_file, _quiet_itk, sitk_to_volume
from mskai.volume import Volume

DUPLICATE_GAP_MM = 1e-3
UNEVEN_FRACTION = 0.01
MAX_TILT_DEGREES = 0.5


def read_dicom_series(path: Path, series_uid: str | None = None,
                      echo: int | None = None) -> Volume:
    """The series ``series_uid`` of a folder, its only series, or the series of a given file;
    of a multi-echo series the echo ``echo`` (1-based, by echo time; default 1)."""
    import SimpleITK as sitk

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    series = _series_files(folder)
    if not series:
        raise InputError(_no_series_message(folder))
    uid = _choose_series(path, folder, series, series_uid)
    files = series[uid]
    _reject_unreadable_slices(folder, series, uid)
    files, echo_warning = _one_echo(files, folder, echo)
    _check_memory(folder, files)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        with _quiet_itk():
            image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"cannot read the DICOM series in {folder} ({_first_line(exc)}); "
                         "the files may be corrupt or mix different images: re-export "
                         "the series") from None
    volume = sitk_to_volume(image)
    _add_dicom_metadata(volume, reader, uid, files)
    _check_slice_positions(volume, reader, files, folder)
    if echo_warning:
        volume.metadata["warnings"].append(echo_warning)
    return volume


def _echo_times(files: list[str]) -> list[float | None]:
    import pydicom

    out: list[float | None] = []
    for name in files:
        try:
            value = pydicom.dcmread(name, stop_before_pixels=True,
                                    specific_tags=["EchoTime"]).get("EchoTime")
            out.append(round(float(value), 3) if value not in (None, "") else None)
        except Exception:  # an unreadable header is reported by the reader itself
            out.append(None)
    return out


def _one_echo(files: list[str], folder: Path, echo: int | None) -> tuple[list[str], str | None]:
    """The files of one echo of a multi-echo series (same slice count per echo time), and
    the warning that says so; a single-echo series is returned whole."""
    times = _echo_times(files)
    distinct = sorted({t for t in times if t is not None})
    groups = {t: [f for f, tt in zip(files, times, strict=True) if tt == t] for t in distinct}
    multi = (len(distinct) > 1 and None not in times
             and len({len(g) for g in groups.values()}) == 1)
    if not multi:
        if echo not in (None, 1):
            raise InputError(f"--echo {echo} chooses an echo of a multi-echo series, but the "
                             f"DICOM series in {folder} has one echo; leave --echo out")
        return files, None
    chosen = echo or 1
    shown = ", ".join(f"{t:g}" for t in distinct)
    if chosen > len(distinct):
        raise InputError(f"--echo {chosen}: the DICOM series in {folder} has {len(distinct)} "
                         f"echoes (TE {shown} ms); choose 1 to {len(distinct)}")
    how = "" if echo else "; choose another with --echo N"
    return groups[distinct[chosen - 1]], (
        f"the DICOM series in {folder} holds {len(distinct)} echoes (TE {shown} ms); echo "
        f"{chosen} (TE {distinct[chosen - 1]:g} ms) was read{how}")


def _choose_series(path: Path, folder: Path, series: dict[str, list[str]],
                   series_uid: str | None) -> str:
    if series_uid is not None:
        uid = series_uid.strip()
        if uid not in series:
            raise InputError(f"{folder} holds no DICOM series {uid}; the series there: "
                             f"{_describe_series(series)}; give one of these UIDs")
        return uid
    if not path.is_dir():
        uid = next((u for u, files in series.items() if path.resolve() in _resolved(files)),
                   None)
        if uid is None:
            raise InputError(f"{path.name} is not a readable DICOM image (truncated or "
                             "corrupt); re-export the series")
        return uid
    if len(series) > 1:
        raise InputError(f"{folder} holds {len(series)} DICOM series: "
                         f"{_describe_series(series)}; add --series UID to choose one")
    return next(iter(series))


def _describe_series(series: dict[str, list[str]]) -> str:
    """'UID (CT, "description", 48 files)' for each series, largest first, on one line."""
    import pydicom

    parts = []
    for uid, files in sorted(series.items(), key=lambda item: -len(item[1])):
        try:
            header = pydicom.dcmread(files[0], stop_before_pixels=True)
            modality = str(header.get("Modality", "") or "") or "unknown modality"
            description = " ".join(str(header.get("SeriesDescription", "") or "").split())
        except Exception:  # pydicom raises many types for broken files
            modality, description = "unknown modality", ""
        shown = f', "{description}"' if description else ""
        parts.append(f"{uid or '(empty UID)'} ({modality}{shown}, {len(files)} files)")
    return "; ".join(parts)


def _check_memory(folder: Path, files: list[str]) -> None:
    """Refuse a series whose voxels (as the first file states them) cannot fit in memory."""
    import pydicom

    from mskai.image_checks import check_memory
    from mskai.image_headers import RawLayout

    try:
        header = pydicom.dcmread(files[0], stop_before_pixels=True)
        shape = (int(header.Columns), int(header.Rows), int(header.get("NumberOfFrames", 1) or 1),
                 int(header.get("SamplesPerPixel", 1) or 1), len(files))
        itemsize = max(int(header.get("BitsAllocated", 16) or 16) // 8, 1)
    except Exception:  # an unreadable header is reported by the reader itself
        return
    check_memory(folder, RawLayout(shape, itemsize, "dicom", None))


def _series_files(folder: Path) -> dict[str, list[str]]:
    import SimpleITK as sitk

    with _quiet_itk():
        uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
        return {uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
                for uid in uids}


def _resolved(files: list[str]) -> set[Path]:
    return {Path(f).resolve() for f in files}


def _no_series_message(folder: Path) -> str:
    candidates = [p for p in folder.iterdir() if p.is_file() and _is_dicom_file(p)]
    if candidates:
        return (f"the DICOM files in {folder} cannot be read (truncated or corrupt, e.g. "
                f"{candidates[0].name}); re-export the series")
    return (f"{folder} holds no DICOM image series; give the folder that directly contains "
            f"the DICOM slices (subfolders are not searched) or an image file ({SUPPORTED})")


def _reject_unreadable_slices(folder: Path, series: dict[str, list[str]], uid: str) -> None:
    """GDCM silently skips truncated slices; a series with a hole must not load."""
    import pydicom

    taken = {p for files in series.values() for p in _resolved(files)}
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.resolve() in taken or not _is_dicom_file(path) or path.name.upper() == "DICOMDIR":
            continue
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
            same_series = header.get("SeriesInstanceUID", "") == uid
            has_pixels = "Rows" in header
        except Exception:  # pydicom raises many types for broken files
            same_series, has_pixels = True, True
        if same_series and has_pixels:
            raise InputError(f"the DICOM file {path.name} in {folder} is truncated or corrupt, "
                             "so the series is incomplete; re-export the series")


def _add_dicom_metadata(volume: Volume, reader, uid: str, files: list[str]) -> None:
    """Modality, the source UIDs (:data:`SOURCE_UID_KEYS`) and ``dicom_files``: the series'
    files in reading order, so file ``k`` is slice ``k`` (what a DICOM SEG references)."""
    def tag(key: str) -> str | None:
        if not reader.HasMetaDataKey(0, key):
            return None
        return reader.GetMetaData(0, key).strip().rstrip("\0") or None

    volume.modality = tag("0008|0060")
    volume.metadata.update({
        "study_instance_uid": tag("0020|000d"),
        "series_instance_uid": uid,
        "frame_of_reference_uid": tag("0020|0052"),
        "series_description": tag("0008|103e"),
        "number_of_files": len(files),
        "dicom_files": [str(Path(f).resolve()) for f in files],
    })


SOURCE_UID_KEYS = ("study_instance_uid", "series_instance_uid", "frame_of_reference_uid")


def source_uids(volume: Volume) -> dict[str, str | None] | None:
    """``{study_instance_uid, series_instance_uid, frame_of_reference_uid}`` of the DICOM
    series ``volume`` was read from (measurements.json's ``source``); ``None`` otherwise."""
    if not volume.metadata.get("series_instance_uid"):
        return None
    return {key: volume.metadata.get(key) for key in SOURCE_UID_KEYS}


# ----- slice positions ----------------------------------------------------------------------
def _slice_geometry(reader, n_files: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Slice positions (LPS mm, reading order) and the slice normal, when all files give them."""
    keys = ("0020|0032", "0020|0037")
    if not all(reader.HasMetaDataKey(i, key) for i in range(n_files) for key in keys):
        return None
    try:
        positions = np.array([[float(v) for v in reader.GetMetaData(i, keys[0]).split("\\")]
                              for i in range(n_files)])
        orientation = np.array([float(v) for v in reader.GetMetaData(0, keys[1]).split("\\")])
    except ValueError:
        return None
    if positions.shape[1] != 3 or orientation.size != 6 or not np.all(np.isfinite(positions)):
        return None
    normal = np.cross(orientation[:3], orientation[3:])
    norm = np.linalg.norm(normal)
    return (positions, normal / norm) if norm > 0.5 else None


def _check_slice_positions(volume: Volume, reader, files: list[str], folder: Path) -> None:
    """Refuse duplicated slices and tilted stacks; fix the spacing across missing slices."""
    geometry = _slice_geometry(reader, len(files))
    if len(files) < 2 or geometry is None:
        return
    positions, normal = geometry
    heights = positions @ normal
    gaps = np.abs(np.diff(heights))
    names = [Path(f).name for f in files]
    order = np.argsort(heights, kind="stable")  # duplicates need not be read one after another
    duplicates = [(names[order[i]], names[order[i + 1]], heights[order[i]])
                  for i in np.flatnonzero(np.diff(heights[order]) < DUPLICATE_GAP_MM)]
    if duplicates:
        shown = ", ".join(f"{a} and {b} (at {h:.3f} mm)" for a, b, h in duplicates[:3])
        more = f" and {len(duplicates) - 3} more pairs" if len(duplicates) > 3 else ""
        raise InputError(f"the DICOM series in {folder} has {len(duplicates)} slice(s) at the "
                         f"same position as another: {shown}{more}; remove the duplicated "
                         "files, or split the series if it mixes acquisitions (e.g. echoes)")
    _check_tilt(positions, normal, folder)
    if len(files) < 3:
        return
    median = float(np.median(gaps))
    if gaps.max() - gaps.min() <= UNEVEN_FRACTION * median:
        return
    spacing = list(volume.spacing)
    stated = spacing[2]
    spacing[2] = median
    volume.spacing = tuple(spacing)
    volume.metadata["warnings"].append(_uneven_warning(gaps, heights, names, median, stated))


def _uneven_warning(gaps: np.ndarray, heights: np.ndarray, names: list[str], median: float,
                    stated: float) -> str:
    head = f"DICOM slice spacing is uneven ({gaps.min():.3f} to {gaps.max():.3f} mm)"
    holes = [(i, int(round(g / median)) - 1) for i, g in enumerate(gaps) if g > 1.5 * median]
    tail = (f"the slice spacing is set to the median gap {median:.3f} mm (not the average "
            f"{stated:.3f} mm)")
    if not holes:
        return f"{head}; {tail}; distances along the slice axis are approximate"
    missing = sum(n for _, n in holes)
    where = "; ".join(f"{n} between {names[i]} and {names[i + 1]} ({heights[i]:.2f} to "
                      f"{heights[i + 1]:.2f} mm along the slice normal)" for i, n in holes[:5])
    more = f"; and {len(holes) - 5} more gaps" if len(holes) > 5 else ""
    return (f"{head}: {missing} slice(s) seem to be missing: {where}{more}; {tail}, so "
            "distances within each block of slices are right but distances across a gap are "
            "too short")


def _check_tilt(positions: np.ndarray, normal: np.ndarray, folder: Path) -> None:
    """Slices stacked off their normal (gantry tilt) make a sheared grid ITK cannot hold."""
    offset = positions[-1] - positions[0]
    length = np.linalg.norm(offset)
    if length < DUPLICATE_GAP_MM:
        return
    angle = np.degrees(np.arccos(min(1.0, abs(float(offset @ normal)) / length)))
    if angle > MAX_TILT_DEGREES:
        raise InputError(f"the DICOM slices in {folder} are stacked {angle:.1f} degrees off "
                         "their normal (gantry tilt): the voxel grid is sheared and would be "
                         "read with wrong positions; resample the series to an orthogonal "
                         "grid first (e.g. dcm2niix, or Slicer's DICOM acquisition geometry "
                         "regularization)")

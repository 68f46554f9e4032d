"""Reading and writing images: NRRD, NIfTI, MetaImage and DICOM series folders.

Geometry is kept exactly as the file states it (LPS, oblique directions, anisotropic
spacing). Library errors become :class:`InputError` with one sentence, never a traceback.
2D, 4D and multi-component images are read as they are; :mod:`mskai.validate` rejects them.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mskai.errors import InputError
from mskai.volume import Volume

FILE_FORMATS = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
SUPPORTED = "NRRD, NIfTI, MHA/MHD or a DICOM series folder"


def image_suffix(path: str | Path) -> str:
    """The format suffix, lower case: '.nii.gz' counts as one suffix."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def read_image(path: str | Path) -> Volume:
    """Read an image file or a DICOM series folder into a :class:`Volume`.

    Sets ``path`` and ``modality`` (DICOM Modality tag, else :func:`detect_modality`).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"the image {path} does not exist; check the path")
    if path.is_dir() or _is_dicom_file(path):
        volume = read_dicom_series(path)
    elif image_suffix(path) in FILE_FORMATS:
        volume = _read_file(path)
    else:
        raise InputError(f"{path.name} is not a supported image format; give {SUPPORTED}")
    volume.path = str(path)
    if volume.modality is None:
        volume.modality = detect_modality(volume)
    return volume


def write_image(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` in the format its extension names (compressed); returns the path."""
    import SimpleITK as sitk

    path = Path(path)
    if image_suffix(path) not in FILE_FORMATS:
        raise InputError(f"cannot write {path.name}: use one of {', '.join(FILE_FORMATS)}")
    array = volume.array.astype(np.uint8) if volume.array.dtype == bool else volume.array
    image = volume.with_array(array).to_sitk()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        sitk.WriteImage(image, str(path), useCompression=True)
    except RuntimeError as exc:
        raise InputError(f"cannot write {path}: {_first_line(exc)}; check the folder is "
                         "writable") from None
    return path


def detect_modality(volume: Volume) -> str | None:
    """'CT' or 'MR' from the intensity distribution, None when it is unclear.

    CT: air near -1000 HU, or values below -500 together with bone above 300 HU.
    MR: (almost) non-negative arbitrary units with many distinct values.
    PET and other non-negative images also look like MR; trust the DICOM tag where present.
    """
    values = np.asarray(volume.array, dtype=float).ravel()
    if values.size > 2_000_000:
        values = values[:: values.size // 2_000_000 + 1]
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() == values.max():
        return None
    air = np.mean((values > -1100) & (values < -900))
    below = np.mean(values < -500)
    bone = np.mean(values > 300)
    if air > 0.01 or (below > 0.001 and bone > 0.001):
        return "CT"
    if below == 0 and np.mean(values < 0) < 0.05 and np.unique(values[::7]).size > 16:
        return "MR"
    return None


# ----- files ------------------------------------------------------------------------------
def _read_file(path: Path) -> Volume:
    import SimpleITK as sitk

    try:
        with _quiet_itk():
            image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"cannot read {path.name}: the file is corrupt or not a valid "
                         f"{image_suffix(path)[1:].upper()} image ({_first_line(exc)}); "
                         "re-export it") from None
    return sitk_to_volume(image)


def sitk_to_volume(image) -> Volume:
    """Any SimpleITK image as a Volume; 2D, 4D and vector images are marked in ``metadata``.

    2D images get one slice (array [1, j, i]); 4D images keep their first three axes'
    geometry and put time last (array [k, j, i, t]); vector images are [k, j, i, c].
    """
    import SimpleITK as sitk

    dim = image.GetDimension()
    array = sitk.GetArrayFromImage(image)
    spacing, origin = list(image.GetSpacing()), list(image.GetOrigin())
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(dim, dim)
    components = image.GetNumberOfComponentsPerPixel()
    if dim == 2:
        array = array[np.newaxis]
        spacing, origin = [*spacing, 1.0], [*origin, 0.0]
        direction = np.pad(direction, (0, 1))
        direction[2, 2] = 1.0
    elif dim == 4:
        array = np.moveaxis(array, 0, -1) if components == 1 else array
        spacing, origin, direction = spacing[:3], origin[:3], direction[:3, :3]
    elif dim != 3:
        raise InputError(f"the image has {dim} dimensions; a 3D volume is required")
    metadata = {"dimension": dim, "components": components, "warnings": []}
    return Volume(array, spacing=tuple(spacing), origin=tuple(origin), direction=direction,
                  metadata=metadata)


# ----- DICOM ------------------------------------------------------------------------------
def read_dicom_series(path: Path) -> Volume:
    """The largest series of a folder (or the series a given DICOM file belongs to)."""
    import SimpleITK as sitk

    folder = path if path.is_dir() else path.parent
    series = _series_files(folder)
    if not series:
        raise InputError(_no_series_message(folder))
    if path.is_dir():
        uid = max(series, key=lambda u: len(series[u]))
    else:
        uid = next((u for u, files in series.items() if path.resolve() in _resolved(files)),
                   None)
        if uid is None:
            raise InputError(f"{path.name} is not a readable DICOM image (truncated or "
                             "corrupt); re-export the series")
    files = series[uid]
    _reject_unreadable_slices(folder, series, uid)
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
    _add_dicom_metadata(volume, reader, uid, len(files))
    if len(series) > 1:
        volume.metadata["warnings"].append(
            f"{folder} holds {len(series)} DICOM series; read the largest "
            f"({len(files)} files, SeriesInstanceUID {uid or 'empty'})")
    spacing_warning = _slice_spacing_warning(reader, len(files))
    if spacing_warning:
        volume.metadata["warnings"].append(spacing_warning)
    return volume


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


def _add_dicom_metadata(volume: Volume, reader, uid: str, n_files: int) -> None:
    def tag(key: str) -> str | None:
        if not reader.HasMetaDataKey(0, key):
            return None
        return reader.GetMetaData(0, key).strip() or None

    volume.modality = tag("0008|0060")
    volume.metadata.update({
        "series_instance_uid": uid,
        "series_description": tag("0008|103e"),
        "number_of_files": n_files,
    })


def _slice_spacing_warning(reader, n_files: int) -> str | None:
    """A warning when slice positions are not evenly spaced (missing or uneven slices)."""
    key = "0020|0032"
    if n_files < 3 or not all(reader.HasMetaDataKey(i, key) for i in range(n_files)):
        return None
    try:
        positions = np.array([[float(v) for v in reader.GetMetaData(i, key).split("\\")]
                              for i in range(n_files)])
    except ValueError:
        return None
    gaps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    if gaps.max() - gaps.min() > 0.01 * max(gaps.mean(), 1e-6):
        return (f"DICOM slice spacing is uneven ({gaps.min():.3f} to {gaps.max():.3f} mm): "
                "slices may be missing; distances along the slice axis are approximate")
    return None


def _is_dicom_file(path: Path) -> bool:
    if not path.is_file():
        return False
    if path.suffix.lower() in (".dcm", ".dicom", ".ima"):
        return True
    try:
        with path.open("rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


@contextmanager
def _quiet_itk():
    """Silence ITK's warnings on stderr while reading; the caller reports problems itself."""
    import SimpleITK as sitk

    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = next((line for line in reversed(lines) if "Exception" not in line), "")
    return message[:200] or type(exc).__name__

"""Reading and writing images: NRRD, NIfTI, MetaImage and DICOM series folders.

Geometry is kept exactly as the file states it (LPS, oblique directions, anisotropic
spacing). Library errors become :class:`InputError` with one sentence, never a traceback.
Headers are checked against the data before the voxels are read (:mod:`mskai.image_checks`);
DICOM folders are read by :mod:`mskai.dicom_series`.
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


def read_image(path: str | Path, *, series_uid: str | None = None,
               echo: int | None = None) -> Volume:
    """Read an image file or a DICOM series folder into a :class:`Volume`.

    Sets ``path`` and ``modality`` (DICOM Modality tag, else :func:`detect_modality`).
    ``series_uid`` picks one series of a DICOM folder that holds several; ``echo`` one echo
    (1-based) of a multi-echo series, whose first echo is read by default.
    The file's header is checked against its data first (see :mod:`mskai.image_checks`).
    """
    from mskai.image_checks import check_regular

    path = Path(path)
    if not path.exists():
        raise InputError(f"the image {path} does not exist; check the path")
    check_regular(path)
    if path.is_dir() or _is_dicom_file(path):
        volume = read_dicom_series(path, series_uid, echo)
    elif image_suffix(path) in FILE_FORMATS:
        if series_uid is not None:
            raise InputError(f"--series chooses a series of a DICOM folder, but {path.name} is "
                             "an image file; leave --series out")
        if echo is not None:
            raise InputError(f"--echo chooses an echo of a multi-echo DICOM series, but "
                             f"{path.name} is an image file; leave --echo out")
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

    from mskai.image_checks import check_image_file, read_float_nifti, restore_nifti_non_finite

    check_image_file(path, image_suffix(path))
    if image_suffix(path) in (".nii", ".nii.gz"):
        volume = read_float_nifti(path)  # ITK's NIfTI reader turns NaN/inf into 0
        if volume is not None:
            return volume
    try:
        with _quiet_itk():
            image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"cannot read {path.name}: the file is corrupt or not a valid "
                         f"{image_suffix(path)[1:].upper()} image ({_first_line(exc)}); "
                         "re-export it") from None
    volume = sitk_to_volume(image)
    if image_suffix(path) in (".nii", ".nii.gz"):
        restore_nifti_non_finite(volume, path)
    return volume


def sitk_to_volume(image) -> Volume:
    """Any SimpleITK image as a Volume; 2D, 4D and vector images are marked in ``metadata``.

    2D images get one slice (array [1, j, i]); 4D images keep their first three axes'
    geometry and put time last (array [k, j, i, t]); vector images are [k, j, i, c].
    """
    import SimpleITK as sitk

    dim = image.GetDimension()
    if "complex" in image.GetPixelIDTypeAsString():
        raise InputError(f"the image holds complex values ({image.GetPixelIDTypeAsString()}); "
                         "give a real-valued image, e.g. the magnitude of the complex data")
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
def read_dicom_series(path: str | Path, series_uid: str | None = None,
                      echo: int | None = None) -> Volume:
    """One DICOM series: ``series_uid``, a folder's only series, or a given file's series
    (of a multi-echo series, echo ``echo``, default the first).

    A folder with several series and no ``series_uid`` is an :class:`InputError` listing them.
    """
    from mskai.dicom_series import read_dicom_series as read_series

    return read_series(Path(path), series_uid, echo)


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

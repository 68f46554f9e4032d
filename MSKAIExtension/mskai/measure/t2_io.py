"""Reading multi-echo series for T2 mapping: one 4D :class:`Volume` ``[k, j, i, echo]``.

Three inputs are accepted by :func:`read_multi_echo`:

- a DICOM folder holding one multi-echo series (all echoes in one series, as most
  multi-echo spin-echo "T2 map" protocols store them): files are grouped by EchoTime
  (0018,0081), each group is sorted along the slice normal and read as one 3D volume, and
  every echo must share the first echo's grid;
- a list of 3D files (or DICOM folders), one per echo, plus the echo times;
- one 4D NRRD/NIfTI/MHA (or a vector image, e.g. a Slicer sequence) plus the echo times.
  A Slicer MultiVolume NRRD that names its frames by EchoTime gives the times itself.

Echo times must increase strictly and at least three echoes are needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mskai.errors import InputError
from mskai.image import read_image, sitk_to_volume
from mskai.validate import geometry_mismatch
from mskai.volume import Volume

MIN_ECHOES = 3
PathLike = str | Path


def read_multi_echo(path_or_paths: PathLike | Sequence[PathLike],
                    echo_times_ms: Sequence[float] | None = None) -> tuple[Volume, np.ndarray]:
    """The echoes as one Volume with array ``[k, j, i, e]`` (float32) and their times in ms."""
    if isinstance(path_or_paths, str | Path):
        path = Path(path_or_paths)
        if not path.exists():
            raise InputError(f"the multi-echo input {path} does not exist; check the path")
        if path.is_dir():
            if echo_times_ms is not None:
                raise InputError("a DICOM folder states its own echo times (EchoTime tags); "
                                 "leave out the echo times")
            echoes, times = _read_dicom_echoes(path)
        else:
            echoes, times = _read_4d_file(path, echo_times_ms)
    else:
        echoes, times = _read_echo_files([Path(p) for p in path_or_paths], echo_times_ms)
    check_echo_times(times, echoes.array.shape[-1])
    echoes.metadata["echo_times_ms"] = [float(t) for t in times]
    return echoes, times


def check_echo_times(echo_times_ms: Sequence[float] | np.ndarray, n_echoes: int) -> np.ndarray:
    """The echo times as a float array; InputError unless one per echo, >= 3, increasing."""
    times = np.asarray(echo_times_ms, dtype=float).ravel()
    if times.size != n_echoes:
        raise InputError(f"{times.size} echo times were given for {n_echoes} echoes; give one "
                         "echo time (ms) per echo")
    if n_echoes < MIN_ECHOES:
        raise InputError(f"only {n_echoes} echo(es) were given; T2 mapping needs at least "
                         f"{MIN_ECHOES} echoes of a multi-echo series")
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise InputError(f"the echo times {times.tolist()} ms are not all finite and >= 0")
    if np.any(np.diff(times) <= 0):
        raise InputError(f"the echo times {times.tolist()} ms do not increase strictly; give "
                         "the echoes in order of increasing echo time, each time once")
    return times


# ----- list of 3D files and 4D files -------------------------------------------------------
def _read_echo_files(paths: list[Path], echo_times_ms) -> tuple[Volume, np.ndarray]:
    if echo_times_ms is None:
        raise InputError("echo times are needed for a list of echo images; give one echo "
                         "time (ms) per file")
    times = check_echo_times(echo_times_ms, len(paths))
    volumes = [read_image(p) for p in paths]
    for path, volume in zip(paths, volumes, strict=True):
        if volume.array.ndim != 3 or volume.metadata.get("dimension", 3) != 3:
            raise InputError(f"the echo image {path.name} is not a 3D volume; give one 3D "
                             "image per echo")
    return stack_echoes(volumes, [p.name for p in paths]), times


def stack_echoes(volumes: list[Volume], names: list[str]) -> Volume:
    """One 4D Volume from 3D echo volumes on the same grid (InputError naming the odd one)."""
    first = volumes[0]
    for name, volume in zip(names[1:], volumes[1:], strict=True):
        diff = geometry_mismatch(volume, first)
        if diff is not None:
            raise InputError(f"the echo {name} is not on the grid of the first echo "
                             f"{names[0]} ({diff}); all echoes must come from one acquisition")
    array = np.stack([np.asarray(v.array, dtype=np.float32) for v in volumes], axis=-1)
    return Volume(array, spacing=first.spacing, origin=first.origin,
                  direction=first.direction, modality=first.modality or "MR", path=first.path,
                  metadata={"dimension": 4})


def _read_4d_file(path: Path, echo_times_ms) -> tuple[Volume, np.ndarray]:
    import SimpleITK as sitk

    volume = read_image(path)  # clear errors for missing, unsupported and corrupt files
    if volume.array.ndim != 4:
        raise InputError(f"{path.name} holds a single 3D volume; give a 4D image with one "
                         "frame per echo, a list of echo files, or a DICOM folder")
    if echo_times_ms is None:
        echo_times_ms = _multivolume_echo_times(sitk.ReadImage(str(path)))
        if echo_times_ms is None:
            raise InputError(f"{path.name} does not state its echo times; give one echo "
                             "time (ms) per frame")
    volume.array = np.asarray(volume.array, dtype=np.float32)
    volume.metadata["dimension"] = 4
    return volume, check_echo_times(echo_times_ms, volume.array.shape[-1])


def _multivolume_echo_times(image) -> list[float] | None:
    """Echo times from a Slicer MultiVolume NRRD header, if its frames are echo times."""
    keys = set(image.GetMetaDataKeys())
    tag_key, labels_key = "MultiVolume.FrameIdentifyingDICOMTagName", "MultiVolume.FrameLabels"
    if tag_key not in keys or labels_key not in keys:
        return None
    if image.GetMetaData(tag_key).strip() != "EchoTime":
        return None
    try:
        return [float(v) for v in image.GetMetaData(labels_key).split(",")]
    except ValueError:
        return None


# ----- DICOM ---------------------------------------------------------------------------------
def _read_dicom_echoes(folder: Path) -> tuple[Volume, np.ndarray]:
    headers = _dicom_headers(folder)
    groups = _group_by_echo_time(headers, folder)
    times = np.array(sorted(groups), dtype=float)
    if len(times) < MIN_ECHOES:
        raise InputError(f"the DICOM series in {folder} has {len(times)} echo time(s) "
                         f"({', '.join(f'{t:g}' for t in times)} ms); T2 mapping needs at "
                         f"least {MIN_ECHOES} echoes")
    counts = {t: len(groups[t]) for t in times}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{t:g} ms: {n}" for t, n in counts.items())
        raise InputError(f"the echoes in {folder} have different numbers of slices ({shown}); "
                         "the series is incomplete: re-export it")
    volumes = [_read_echo_group(groups[t], folder) for t in times]
    echoes = stack_echoes(volumes, [f"at TE {t:g} ms" for t in times])
    echoes.path = str(folder)
    echoes.metadata["series_instance_uid"] = next(iter(headers.values())).get(
        "SeriesInstanceUID", "")
    return echoes, times


def _dicom_headers(folder: Path) -> dict[Path, object]:
    """Headers of the image files in ``folder`` (non-DICOM files are skipped)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    headers = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError):
            continue
        if "Rows" in header:
            headers[path] = header
    if not headers:
        raise InputError(f"{folder} holds no DICOM images; give the folder that directly "
                         "contains the multi-echo series")
    series = {h.get("SeriesInstanceUID", "") for h in headers.values()}
    if len(series) > 1:
        raise InputError(f"{folder} holds {len(series)} DICOM series; put the multi-echo "
                         "series alone in a folder, or give one image per echo with echo times")
    if any(int(h.get("NumberOfFrames", 1) or 1) > 1 for h in headers.values()):
        raise InputError(f"{folder} holds multi-frame (enhanced) DICOM; export the series as "
                         "classic single-frame MR images")
    return headers


def _group_by_echo_time(headers: dict[Path, object], folder: Path) -> dict[float, list[Path]]:
    groups: dict[float, list[Path]] = {}
    for path, header in headers.items():
        value = header.get("EchoTime")
        if value is None or str(value).strip() == "":
            raise InputError(f"the DICOM file {path.name} in {folder} has no EchoTime "
                             "(0018,0081); give one image per echo with the echo times instead")
        groups.setdefault(round(float(value), 3), []).append(path)
    return {t: _sorted_along_normal(files, headers) for t, files in groups.items()}


def _sorted_along_normal(files: list[Path], headers: dict[Path, object]) -> list[Path]:
    """Slices in order of their position along the slice normal; duplicates are an error."""
    try:
        positions = np.array([[float(v) for v in headers[f].ImagePositionPatient] for f in files])
        orientation = np.array([float(v) for v in headers[files[0]].ImageOrientationPatient])
    except (AttributeError, TypeError, ValueError):
        raise InputError(f"the DICOM file {files[0].name} lacks a valid ImagePositionPatient "
                         "or ImageOrientationPatient; the slices cannot be ordered") from None
    normal = np.cross(orientation[:3], orientation[3:6])
    heights = positions @ normal
    order = np.argsort(heights, kind="stable")
    if np.any(np.diff(heights[order]) < 1e-3):
        raise InputError(f"two DICOM files of echo time {headers[files[0]].EchoTime} ms lie at "
                         "the same slice position; the folder mixes acquisitions: re-export "
                         "the series")
    return [files[i] for i in order]


def _read_echo_group(files: list[Path], folder: Path) -> Volume:
    import SimpleITK as sitk

    from mskai.image import _first_line, _quiet_itk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    try:
        with _quiet_itk():
            image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"cannot read the DICOM echo images in {folder} ({_first_line(exc)}); "
                         "re-export the series") from None
    volume = sitk_to_volume(image)
    volume.modality = "MR"
    return volume

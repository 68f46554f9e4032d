"""Damaged image files are refused with one InputError line, never read as a wrong answer.

Each test builds a small image in tmp_path, damages its bytes or header the way real files
get damaged (cut downloads, hand-edited headers, copied slices) and states what the reader
does with it. DICOM series are built from the bundled five-slice STS_002 CT series.
"""

from __future__ import annotations

import gzip
import os
import shutil
import zlib

import numpy as np
import pytest

from mskai import image_checks
from mskai.errors import InputError
from mskai.image import read_image, write_image
from mskai.validate import validate_image
from mskai.volume import Volume
from phantoms.grid import make_grid, oblique_direction

DICOM_5 = ("sts_sarcoma", "STS_002_CT_dicom_5slices")
NBYTES = 20 * 20 * 10 * 4  # the float32 test image's voxel data


def image(spacing=(0.8, 0.8, 2.0), direction=None) -> Volume:
    volume = make_grid((20, 20, 10), spacing, direction)
    volume.array[:] = np.random.default_rng(0).normal(100, 20, volume.array.shape)
    volume.array = volume.array.astype(np.float32)
    return volume


def write_sitk(volume: Volume, path, compress=False):
    import SimpleITK as sitk

    sitk.WriteImage(volume.to_sitk(), str(path), useCompression=compress)
    return path


def refused(path, match: str, **kwargs) -> str:
    """The one-line message read_image (and validation) gives for ``path``."""
    with pytest.raises(InputError, match=match) as error:
        validate_image(read_image(path, **kwargs))
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def nrrd_with_header_line(tmp_path, key: str, line: str, name="edited.nrrd"):
    """An uncompressed NRRD whose header line starting with ``key`` is replaced by ``line``."""
    data = write_sitk(image(), tmp_path / "source.nrrd").read_bytes()
    header, voxels = data.split(b"\n\n", 1)
    lines = [line.encode() if row.startswith(key.encode()) else row
             for row in header.split(b"\n")]
    if not any(row.startswith(key.encode()) for row in header.split(b"\n")):
        lines.append(line.encode())
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n\n" + voxels)
    return path


def nifti(tmp_path, name="x.nii", array=None, affine=None, edit=None):
    """A NIfTI written with nibabel; ``edit(header)`` changes the header before saving
    (nibabel rewrites pixdim from the affine on saving: use :func:`set_pixdim` for that)."""
    import nibabel as nib

    array = image().array.T if array is None else array
    img = nib.Nifti1Image(array, np.diag([0.8, 0.8, 2.0, 1.0]) if affine is None else affine)
    if edit is not None:
        edit(img.header)
    path = tmp_path / name
    nib.save(img, path)
    return path


def set_pixdim(path, axis: int, value: float):
    """Overwrite pixdim[axis] in an uncompressed NIfTI-1 file (pixdim is float32 at byte 76)."""
    data = bytearray(path.read_bytes())
    data[76 + 4 * axis: 80 + 4 * axis] = np.float32(value).tobytes()
    path.write_bytes(bytes(data))
    return path


# ----- 1. truncated files: the data the header describes must all be there --------------------
@pytest.mark.parametrize("name, compress", [("cut.nii", False), ("cut.nii.gz", True)])
def test_truncated_nifti_is_refused_instead_of_read_with_zeros(tmp_path, name, compress):
    full = write_sitk(image(), tmp_path / f"full_{name}", compress).read_bytes()
    (tmp_path / name).write_bytes(full[: len(full) * 2 // 3])
    message = refused(tmp_path / name, f"the image {name} is truncated: its header describes "
                                       f"{NBYTES} bytes of voxel data but")
    assert message.endswith("re-export or re-download it")


def test_truncated_raw_nifti_says_how_many_bytes_it_holds(tmp_path):
    full = write_sitk(image(), tmp_path / "full.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(full[:-1000])
    refused(tmp_path / "cut.nii", f"describes {NBYTES} bytes of voxel data but the file holds "
                                  f"{NBYTES - 1000}; re-export")


def test_nifti_gzip_with_a_bad_checksum_is_refused_as_corrupt(tmp_path):
    data = bytearray(write_sitk(image(), tmp_path / "full.nii.gz", True).read_bytes())
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    (tmp_path / "crc.nii.gz").write_bytes(bytes(data))
    refused(tmp_path / "crc.nii.gz", "the image crc.nii.gz is corrupt: its compressed voxel "
                                     "data cannot be decompressed")


@pytest.mark.parametrize("name, compress", [("cut.nrrd", False), ("cut.nrrd", True),
                                            ("cut.mha", False), ("cut.mha", True)])
def test_truncated_nrrd_and_metaimage_are_refused_before_reading(tmp_path, name, compress):
    full = write_sitk(image(), tmp_path / f"full_{name}", compress).read_bytes()
    (tmp_path / name).write_bytes(full[: len(full) * 2 // 3])
    refused(tmp_path / name, f"the image {name} is truncated: its header describes")


@pytest.mark.parametrize("header, data", [("cut.mhd", "cut.raw"), ("cut.nhdr", "cut.raw")])
def test_truncated_detached_data_file_is_refused(tmp_path, header, data):
    write_sitk(image(), tmp_path / header)
    raw = (tmp_path / data).read_bytes()
    (tmp_path / data).write_bytes(raw[:-400])
    refused(tmp_path / header, f"describes {NBYTES} bytes of voxel data but the file holds "
                               f"{NBYTES - 400}")


def test_missing_detached_data_file_is_named(tmp_path):
    write_sitk(image(), tmp_path / "x.mhd")
    (tmp_path / "x.raw").unlink()
    refused(tmp_path / "x.mhd", "the data file x.raw named in the header of x.mhd is missing")


def test_a_large_intact_nifti_gz_passes_the_cheap_trailer_check(tmp_path, monkeypatch):
    path = write_sitk(image(), tmp_path / "ok.nii.gz", True)
    monkeypatch.setattr(image_checks, "STREAM_CHECK_MAX_BYTES", 10)  # pretend it is huge
    monkeypatch.setattr(image_checks, "_inflated_size", lambda layout: pytest.fail("inflated"))
    np.testing.assert_array_equal(read_image(path).array, image().array)


# ----- 2. NaN and infinite voxels in NIfTI are refused as in NRRD --------------------------------
@pytest.mark.parametrize("name", ["nan.nii", "nan.nii.gz", "nan.nrrd"])
def test_nan_and_infinite_voxels_are_refused_in_every_format(tmp_path, name):
    volume = image()
    volume.array[3, 4, 5] = np.nan
    volume.array[2, 2, 2] = -np.inf
    write_sitk(volume, tmp_path / name, name.endswith(".gz"))
    read = read_image(tmp_path / name)  # ITK's NIfTI reader makes them 0; they are put back
    assert np.isnan(read.array[3, 4, 5]) and read.array[2, 2, 2] == -np.inf
    refused(tmp_path / name, "the image has 2 NaN and infinite voxel")


def test_nan_survives_nifti_intensity_scaling(tmp_path):
    data = image().array.T.copy()
    data[1, 2, 3] = np.nan

    def scale(header):
        header.set_data_dtype(np.float32)
        header["scl_slope"], header["scl_inter"] = 2.0, 10.0

    read = read_image(nifti(tmp_path, "scaled.nii.gz", data, edit=scale))
    assert np.isnan(read.array[3, 2, 1])
    assert read.array[0, 0, 0] == pytest.approx(2 * data[0, 0, 0] + 10, rel=1e-6)


# ----- 3. invalid spacing is refused, not read as 1 mm -------------------------------------------
@pytest.mark.parametrize("line", [
    "spacings: 0.8 nan 2", "spacings: 0.8 0 2", "spacings: 0.8 -1 2",
    "space directions: (nan,nan,nan) (0,0.8,0) (0,0,2)",
    "space directions: (0.8,0,0) (0,0,0) (0,0,2)",
])
def test_invalid_nrrd_spacing_is_refused(tmp_path, line):
    key = line.split(":")[0]
    path = nrrd_with_header_line(tmp_path, "space directions" if key == "spacings" else key,
                                 line)
    if key == "spacings":  # spacings replace the space directions (and the space)
        text = path.read_bytes().replace(b"space: left-posterior-superior\n", b"")
        text = text.replace(b"space origin: (0,0,0)\n", b"")
        path.write_bytes(text)
    refused(path, r"has invalid voxel spacing in its NRRD header \(.*\); fix the spacing in the "
                  "file header")


@pytest.mark.parametrize("value", [0.0, np.nan, -2.0])
def test_invalid_nifti_pixdim_is_refused(tmp_path, value):
    refused(set_pixdim(nifti(tmp_path), 3, value),
            r"has invalid voxel spacing \(0.8, 0.8, .*\) in its NIfTI header \(pixdim\); fix the "
            "spacing")


@pytest.mark.parametrize("value", ["nan", "0", "-1"])
def test_invalid_metaimage_spacing_is_refused(tmp_path, value):
    data = write_sitk(image(), tmp_path / "source.mha").read_bytes()
    start = data.index(b"ElementSpacing")
    end = data.index(b"\n", start)
    path = tmp_path / "edited.mha"
    path.write_bytes(data[:start] + f"ElementSpacing = 0.8 {value} 2".encode() + data[end:])
    refused(path, r"invalid voxel spacing in its MetaImage header \(elementspacing")


def test_nifti_whose_pixdim_and_sform_disagree_is_refused(tmp_path):
    path = set_pixdim(nifti(tmp_path), 3, 1.0)  # the sform says 2 mm
    refused(path, r"states two different voxel spacings .*\(0.8, 0.8, 1\) "
                                        r"mm \(pixdim\) and \(0.8, 0.8, 2\) mm \(sform\)")


# ----- 4. sheared axes are refused; oblique ones are fine ----------------------------------------
def test_sheared_nrrd_directions_are_refused(tmp_path):
    path = nrrd_with_header_line(tmp_path, "space directions",
                                 "space directions: (0.8,0,0) (0.3,0.8,0) (0,0,2)")
    refused(path, "the image has sheared axes: its direction matrix is not orthonormal")


def test_sheared_metaimage_transform_is_refused(tmp_path):
    data = write_sitk(image(), tmp_path / "source.mha").read_bytes()
    path = tmp_path / "sheared.mha"
    path.write_bytes(data.replace(b"TransformMatrix = 1 0 0 0 1 0 0 0 1",
                                  b"TransformMatrix = 1 0.2 0 0 1 0 0 0 1"))
    refused(path, "sheared axes")


def test_nifti_with_a_sheared_sform_is_refused_even_with_a_valid_qform(tmp_path):
    sheared = np.diag([0.8, 0.8, 2.0, 1.0])
    sheared[0, 1] = 0.3

    def keep_straight_qform(header):
        header.set_qform(np.diag([0.8, 0.8, 2.0, 1.0]), code=1)
        header["pixdim"][1:4] = np.linalg.norm(sheared[:3, :3], axis=0)

    refused(nifti(tmp_path, affine=sheared, edit=keep_straight_qform),
            "has sheared axes in its NIfTI sform")


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz", ".mha"])
def test_oblique_orthonormal_images_still_read(tmp_path, suffix):
    volume = image(direction=oblique_direction(25.0))
    validate_image(read_image(write_image(volume, tmp_path / f"oblique{suffix}")))


# ----- 5. complex voxels are refused up front -----------------------------------------------------
def test_complex_nifti_is_refused_before_reading(tmp_path):
    path = nifti(tmp_path, "complex.nii.gz", image().array.T.astype(np.complex64))
    refused(path, r"the image complex.nii.gz holds complex values \(complex64\); give a "
                  "real-valued image, e.g. the magnitude")


def test_complex_arrays_are_refused_by_validation():
    volume = image()
    with pytest.raises(InputError, match="holds complex values"):
        validate_image(volume.with_array(volume.array.astype(np.complex64)))


# ----- 6. absurd headers are refused before anything is allocated ---------------------------------
def test_nrrd_claiming_8_gb_with_64_bytes_of_data_is_refused_at_once(tmp_path):
    header = (b"NRRD0004\ntype: short\ndimension: 3\nsizes: 1600 1600 1600\n"
              b"encoding: raw\nendian: little\n\n")
    (tmp_path / "huge.nrrd").write_bytes(header + bytes(64))
    refused(tmp_path / "huge.nrrd", f"describes {1600**3 * 2} bytes of voxel data but the file "
                                    "holds 64")


def test_compressed_nrrd_claiming_far_more_than_it_can_hold_is_refused(tmp_path):
    header = (b"NRRD0004\ntype: short\ndimension: 3\nsizes: 1600 1600 1600\n"
              b"encoding: gzip\nendian: little\n\n")
    (tmp_path / "huge.nrrd").write_bytes(header + gzip.compress(bytes(4096)))
    refused(tmp_path / "huge.nrrd", "is truncated or corrupt: its header describes "
                                    f"{1600**3 * 2} bytes of voxel data, far more than its")


def test_image_too_big_for_the_available_memory_is_refused(tmp_path, monkeypatch):
    path = write_sitk(image(), tmp_path / "x.nrrd", True)
    monkeypatch.setattr(image_checks, "available_memory_bytes", lambda: 10_000)
    refused(path, r"would need about 0.0 GB of memory to read \(20 x 20 x 10 values of 4 bytes\) "
                  "but only 0.0 GB is available")


def test_compressed_metaimage_whose_zlib_stream_ends_early_is_refused(tmp_path):
    data = write_sitk(image(), tmp_path / "full.mha", True).read_bytes()
    start = data.index(b"ElementDataFile = LOCAL\n") + len(b"ElementDataFile = LOCAL\n")
    short = zlib.compress(bytes(100))  # a complete stream, but of 100 bytes, not 16000
    header = data[:start].replace(b"CompressedDataSize = ", b"OldSize = ")
    (tmp_path / "short.mha").write_bytes(header + short)
    refused(tmp_path / "short.mha", "its compressed data ends after 100")


# ----- 7. FIFOs and devices are refused instead of blocking forever -------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("name", ["pipe.nrrd", "pipe.nii.gz", "pipe.dcm"])
def test_a_fifo_is_refused_without_opening_it(tmp_path, name):
    os.mkfifo(tmp_path / name)
    refused(tmp_path / name, r"is a FIFO \(named pipe\), not a regular file; give an image file")


def test_a_device_is_refused():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(InputError, match="/dev/zero is a device, not a regular file"):
        read_image("/dev/zero")


def test_a_detached_nrrd_whose_data_file_is_a_fifo_is_refused(tmp_path):
    write_sitk(image(), tmp_path / "x.nhdr")
    (tmp_path / "x.raw").unlink()
    os.mkfifo(tmp_path / "x.raw")
    refused(tmp_path / "x.nhdr", "the data file x.raw .* is missing or not a regular file")


# ----- 8. a folder with several DICOM series: the caller chooses ---------------------------------
def dicom_copy(test_data, folder, skip=(), rename=None):
    folder.mkdir(exist_ok=True)
    for f in sorted(test_data.joinpath(*DICOM_5).iterdir()):
        if f.name not in skip:
            shutil.copy(f, folder / (rename(f.name) if rename else f.name))
    return folder


def restamp_series(folder, uid: str, modality: str, description: str) -> None:
    import pydicom

    for path in folder.glob("b_*.dcm"):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.Modality, ds.SeriesDescription = uid, modality, description
        ds.save_as(path)


def test_two_series_in_one_folder_are_listed_and_none_is_guessed(test_data, tmp_path):
    folder = dicom_copy(test_data, tmp_path / "two")
    dicom_copy(test_data, folder, skip=("000004.dcm",), rename=lambda n: f"b_{n}")
    restamp_series(folder, "1.2.3.4", "MR", "T1 axial")
    message = refused(folder, r"holds 2 DICOM series: .*5168\S* \(CT, "
                              r"\"IBSI_1_STS_002_CT_image\", 5 files\); 1.2.3.4 \(MR, \"T1 "
                              r"axial\", 4 files\); add --series UID to choose one")
    assert message.count(";") == 2


def test_the_series_named_by_series_uid_is_read(test_data, tmp_path):
    folder = dicom_copy(test_data, tmp_path / "two")
    dicom_copy(test_data, folder, skip=("000004.dcm",), rename=lambda n: f"b_{n}")
    restamp_series(folder, "1.2.3.4", "MR", "T1 axial")
    mr = read_image(folder, series_uid="1.2.3.4")
    assert mr.modality == "MR" and mr.size == (161, 143, 4)
    assert mr.metadata["series_instance_uid"] == "1.2.3.4"


def test_an_unknown_series_uid_lists_the_ones_there(test_data, tmp_path):
    folder = dicom_copy(test_data, tmp_path / "one")
    refused(folder, r"holds no DICOM series 9.9.9; the series there: .* \(CT, .*5 files\); "
                    "give one of these UIDs", series_uid="9.9.9")


def test_a_single_dicom_file_still_reads_its_own_series(test_data, tmp_path):
    folder = dicom_copy(test_data, tmp_path / "two")
    dicom_copy(test_data, folder, skip=("000004.dcm",), rename=lambda n: f"b_{n}")
    restamp_series(folder, "1.2.3.4", "MR", "T1 axial")
    assert read_image(folder / "b_000001.dcm").metadata["series_instance_uid"] == "1.2.3.4"
    assert read_image(folder / "000001.dcm").size == (161, 143, 5)


def test_series_uid_for_an_image_file_is_refused(tmp_path):
    path = write_image(image(), tmp_path / "x.nrrd")
    refused(path, "--series chooses a series of a DICOM folder", series_uid="1.2.3")


# ----- 9. duplicated and missing DICOM slices -----------------------------------------------------
def test_a_duplicated_slice_is_refused_naming_the_files(test_data, tmp_path):
    folder = dicom_copy(test_data, tmp_path / "dup")
    shutil.copy(folder / "000002.dcm", folder / "000002_copy.dcm")
    refused(folder, r"has 1 slice\(s\) at the same position as another: 000002.*\.dcm and "
                    r"000002.*\.dcm \(at .* mm\); remove the duplicated files")


def test_a_missing_slice_keeps_the_slice_spacing_and_says_where_it_is(test_data, tmp_path):
    folder = dicom_copy(test_data, tmp_path / "gap", skip=("000002.dcm",))
    ct = read_image(folder)
    assert ct.size == (161, 143, 4)
    assert ct.spacing[2] == pytest.approx(3.27, abs=1e-3), "the median gap, not the average"
    (warning,) = ct.metadata["warnings"]
    assert "1 slice(s) seem to be missing: 1 between 000001.dcm and 000003.dcm" in warning
    assert "slice spacing is set to the median gap 3.270 mm" in warning


def test_unevenly_spaced_slices_are_read_with_the_median_gap_and_a_warning(test_data, tmp_path):
    import pydicom

    folder = dicom_copy(test_data, tmp_path / "uneven")
    path = folder / "000004.dcm"
    ds = pydicom.dcmread(path)
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 0.5  # 3.77 mm, not 3.27
    ds.save_as(path)
    ct = read_image(folder)
    assert ct.spacing[2] == pytest.approx(3.27, abs=1e-3)
    (warning,) = ct.metadata["warnings"]
    assert "slice spacing is uneven (3.270 to 3.770 mm)" in warning
    assert "distances along the slice axis are approximate" in warning


def test_gantry_tilted_slices_are_refused_as_sheared(test_data, tmp_path):
    import pydicom

    folder = dicom_copy(test_data, tmp_path / "tilt")
    for i, path in enumerate(sorted(folder.iterdir())):
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient[1] = float(ds.ImagePositionPatient[1]) + 0.5 * i  # ~9 degrees
        ds.save_as(path)
    refused(folder, r"stacked .* degrees off their normal \(gantry tilt\)")


def test_an_even_series_reads_without_warnings(test_data, tmp_path):
    ct = read_image(dicom_copy(test_data, tmp_path / "even"))
    assert ct.metadata["warnings"] == []
    assert ct.spacing[2] == pytest.approx(3.27, abs=1e-3)


def test_a_dicom_series_too_big_for_the_available_memory_is_refused(test_data, tmp_path,
                                                                    monkeypatch):
    folder = dicom_copy(test_data, tmp_path / "big")
    monkeypatch.setattr(image_checks, "available_memory_bytes", lambda: 10_000)
    refused(folder, r"the image big would need about .* GB of memory to read \(161 x 143 x 1 x 1 "
                    r"x 5 values of 2 bytes\)")

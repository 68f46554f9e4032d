"""Every kind of bad input gives one InputError sentence saying what is wrong and what to do."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.image import read_image, write_image
from mskai.labels import read_labels
from mskai.validate import ras_bounds, validate_image, validate_mask, validate_point_ras
from mskai.volume import Volume
from phantoms.grid import make_grid, oblique_direction


def textured(size=(12, 10, 8), spacing=(0.8, 0.8, 2.0), direction=None) -> Volume:
    volume = make_grid(size, spacing, direction)
    volume.array[:] = np.random.default_rng(0).normal(0, 1, volume.array.shape)
    return volume


def one_sentence(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def write_sitk(image, path):
    import SimpleITK as sitk

    sitk.WriteImage(image, str(path))
    return path


def test_a_good_image_passes():
    validate_image(textured())


# ----- image structure --------------------------------------------------------------------
def test_2d_image_is_rejected_as_not_3d(tmp_path):
    import SimpleITK as sitk

    path = write_sitk(sitk.GetImageFromArray(np.arange(100.0).reshape(10, 10)), tmp_path / "x.nrrd")
    with pytest.raises(InputError, match="a 3D volume is required") as error:
        validate_image(read_image(path))
    assert "2D image" in one_sentence(error)


def test_single_slice_volume_is_rejected_as_not_3d():
    volume = Volume(np.random.default_rng(0).normal(size=(1, 10, 10)))
    with pytest.raises(InputError, match="single slice; a 3D volume is required"):
        validate_image(volume)


def test_single_dicom_slice_is_rejected_as_not_3d(test_data, tmp_path):
    shutil.copy(test_data / "sts_sarcoma" / "STS_002_CT_dicom_5slices" / "000000.dcm", tmp_path)
    volume = read_image(tmp_path)
    assert volume.size == (161, 143, 1)
    with pytest.raises(InputError, match="a 3D volume is required"):
        validate_image(volume)


def test_4d_image_asks_to_pick_one_time_point(tmp_path):
    import SimpleITK as sitk

    frames = [sitk.GetImageFromArray(np.full((4, 5, 6), t, np.float32) + np.arange(6))
              for t in range(3)]
    path = write_sitk(sitk.JoinSeries(frames), tmp_path / "dynamic.nii.gz")
    volume = read_image(path)
    assert volume.metadata["dimension"] == 4 and volume.array.shape == (4, 5, 6, 3)
    with pytest.raises(InputError, match="is a 4D image; pick one time point") as error:
        validate_image(volume)
    assert "Sequences" in one_sentence(error)


def test_vector_image_asks_to_pick_one_channel(tmp_path):
    import SimpleITK as sitk

    channels = [sitk.GetImageFromArray(np.random.default_rng(c).normal(size=(4, 5, 6)))
                for c in range(3)]
    path = write_sitk(sitk.Compose(channels), tmp_path / "rgb.mha")
    with pytest.raises(InputError, match=r"multi-component image \(3 values per voxel\)"):
        validate_image(read_image(path))


# ----- voxel values and spacing ----------------------------------------------------------
def test_nan_voxels_are_rejected():
    volume = textured()
    volume.array[3, 4, 5] = np.nan
    with pytest.raises(InputError, match="has 1 NaN voxel"):
        validate_image(volume)


def test_infinite_voxels_are_rejected():
    volume = textured()
    volume.array[0, 0, :2] = np.inf
    with pytest.raises(InputError, match="has 2 infinite voxel"):
        validate_image(volume)


def test_zero_spacing_is_rejected():
    volume = textured(spacing=(0.8, 0.8, 2.0))
    volume.spacing = (0.8, 0.0, 2.0)
    with pytest.raises(InputError, match="invalid voxel spacing"):
        validate_image(volume)


def test_1000_mm_spacing_read_from_a_file_is_rejected(tmp_path):
    path = write_image(textured(spacing=(1.0, 1.0, 1000.0)), tmp_path / "huge.nrrd")
    with pytest.raises(InputError, match=r"implausible voxel spacing \(1.0, 1.0, 1000.0\) mm"):
        validate_image(read_image(path))


def test_micrometre_spacing_is_rejected():
    with pytest.raises(InputError, match="units must be millimetres"):
        validate_image(textured(spacing=(0.001, 0.001, 0.002)))


def test_constant_image_is_rejected_as_empty():
    with pytest.raises(InputError, match="the image is empty: every voxel has the value 0"):
        validate_image(make_grid((8, 8, 8), (1.0, 1.0, 1.0)))


# ----- files -----------------------------------------------------------------------------
def test_missing_file_says_it_does_not_exist(tmp_path):
    with pytest.raises(InputError, match="does not exist; check the path"):
        read_image(tmp_path / "nothing.nii.gz")


def test_unsupported_format_lists_the_supported_ones(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG....")
    with pytest.raises(InputError, match="not a supported image format; give NRRD, NIfTI"):
        read_image(path)


def test_garbage_nifti_is_reported_as_corrupt(tmp_path):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"this is not an image" * 50)
    with pytest.raises(InputError, match="cannot read broken.nii.gz: the file is corrupt") as e:
        read_image(path)
    one_sentence(e)


def test_truncated_nrrd_is_reported_as_corrupt(tmp_path):
    volume = textured()
    volume.array[:] = np.random.default_rng(3).normal(size=volume.array.shape)
    full = write_image(volume, tmp_path / "full.nrrd").read_bytes()
    path = tmp_path / "cut.nrrd"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(InputError, match="the file is corrupt"):
        read_image(path)


def test_folder_of_non_dicom_files_says_no_series(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="holds no DICOM image series"):
        read_image(tmp_path)


def test_folder_of_truncated_dicom_files_is_reported_as_corrupt(test_data, tmp_path):
    for f in sorted((test_data / "sts_sarcoma" / "STS_002_CT_dicom_5slices").iterdir()):
        (tmp_path / f.name).write_bytes(f.read_bytes()[:3000])
    with pytest.raises(InputError, match="cannot be read \\(truncated or corrupt"):
        read_image(tmp_path)


def test_one_truncated_slice_makes_the_series_incomplete_not_silently_shorter(test_data,
                                                                              tmp_path):
    for f in sorted((test_data / "sts_sarcoma" / "STS_002_CT_dicom_5slices").iterdir()):
        data = f.read_bytes()
        (tmp_path / f.name).write_bytes(data[:40000] if f.name == "000004.dcm" else data)
    with pytest.raises(InputError, match="000004.dcm .* is truncated or corrupt, so the series "
                                         "is incomplete"):
        read_image(tmp_path)


def test_a_text_file_named_dcm_next_to_a_series_is_reported(test_data, tmp_path):
    for f in (test_data / "sts_sarcoma" / "STS_002_CT_dicom_5slices").iterdir():
        shutil.copy(f, tmp_path)
    (tmp_path / "zzz.dcm").write_text("not dicom")
    with pytest.raises(InputError, match="zzz.dcm"):
        read_image(tmp_path)


def test_writing_an_unknown_format_is_refused(tmp_path):
    with pytest.raises(InputError, match="cannot write out.png"):
        write_image(textured(), tmp_path / "out.png")


# ----- masks -----------------------------------------------------------------------------
def test_empty_mask_is_rejected():
    image = textured()
    with pytest.raises(InputError, match="the mask is empty: no voxel is labelled"):
        validate_mask(image.with_array(np.zeros(image.array.shape, np.uint8)), image)


def test_non_binary_mask_is_rejected_with_its_values():
    image = textured()
    labels = np.zeros(image.array.shape, np.uint8)
    labels[1, 1, 1], labels[2, 2, 2] = 1, 3
    with pytest.raises(InputError, match=r"not binary \(values 0, 1, 3\)"):
        validate_mask(image.with_array(labels), image)
    validate_mask(image.with_array(labels), image, binary=False)


@pytest.mark.parametrize("change, what", [
    (lambda v: Volume(np.ones((8, 10, 13), np.uint8), v.spacing, v.origin, v.direction), "size"),
    (lambda v: v.with_array(v.array, spacing=(0.8, 0.8, 2.5)), "spacing"),
    (lambda v: v.with_array(v.array, origin=(0.0, 1.0, 0.0)), "origin"),
    (lambda v: v.with_array(v.array, direction=oblique_direction(10.0)), "axis directions"),
])
def test_mask_off_the_image_grid_says_to_resample(change, what):
    image = textured()
    mask = change(image.with_array(np.ones(image.array.shape, np.uint8)))
    with pytest.raises(InputError, match=f"not on the image grid \\({what}") as error:
        validate_mask(mask, image)
    assert "Resample Scalar/Vector/DWI Volume" in one_sentence(error)


def test_mask_within_nifti_precision_of_the_grid_is_accepted():
    image = textured(direction=oblique_direction(20.0))
    mask = image.with_array(np.ones(image.array.shape, np.uint8),
                            origin=tuple(np.asarray(image.origin) + 2e-5),
                            direction=image.direction + 1e-6)
    validate_mask(mask, image)


def test_label_file_on_another_grid_is_rejected_by_read_labels(tmp_path):
    image = textured()
    other = make_grid((12, 10, 8), (1.0, 1.0, 1.0), dtype=np.uint8)
    other.array[2:4, 2:4, 2:4] = 1
    path = write_image(other, tmp_path / "labels.nii.gz")
    with pytest.raises(InputError, match="not on the image grid \\(spacing"):
        read_labels(path, image, {"tumor": 1})


# ----- points ----------------------------------------------------------------------------
def test_point_outside_the_image_reports_the_image_bounds():
    image = textured(direction=oblique_direction(15.0))
    low, high = ras_bounds(image)
    outside = high + np.array([5.0, 0.0, 0.0])
    with pytest.raises(InputError, match="the seed point .* lies outside the image") as error:
        validate_point_ras(image, outside)
    message = one_sentence(error)
    assert f"R {low[0]:.1f}..{high[0]:.1f}" in message
    assert f"S {low[2]:.1f}..{high[2]:.1f}" in message


def test_point_inside_returns_its_voxel_index():
    image = textured(direction=oblique_direction(15.0))
    ras = image.index_to_ras([3.0, 4.0, 5.0])
    np.testing.assert_allclose(validate_point_ras(image, ras, what="background"), [3, 4, 5],
                               atol=1e-9)


def test_malformed_point_is_rejected():
    with pytest.raises(InputError, match="not three finite numbers"):
        validate_point_ras(textured(), [1.0, np.nan, 2.0])

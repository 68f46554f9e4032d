"""Reading and writing images keeps geometry and values; DICOM series and modality detection."""

from __future__ import annotations

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.image import detect_modality, read_image, write_image
from mskai.volume import Volume
from phantoms.grid import make_grid, oblique_direction

# Geometry stated in ../shared/data/*/SOURCE.txt (rounded there to 3-4 digits).
KNEE_DIRECTION = np.array([-0.087, 0.0, -0.996, 0.996, 0.0, -0.087, 0.0, -1.0, -0.0]).reshape(3, 3)
STS_CT_SPACING = (0.9766, 0.9766, 3.27)


def oblique_anisotropic_volume() -> Volume:
    volume = make_grid((13, 11, 7), (0.37, 0.52, 2.9), oblique_direction(31.0),
                       center_lps=(12.5, -40.25, 77.125))
    rng = np.random.default_rng(0)
    volume.array[:] = rng.normal(100.0, 40.0, volume.array.shape).astype(np.float32)
    return volume


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".nhdr"])
def test_nrrd_and_metaimage_round_trip_keeps_oblique_geometry_and_values_exactly(tmp_path, suffix):
    original = oblique_anisotropic_volume()
    read = read_image(write_image(original, tmp_path / f"vol{suffix}"))
    assert read.size == original.size == (13, 11, 7)
    np.testing.assert_array_equal(read.array, original.array)
    np.testing.assert_allclose(read.spacing, original.spacing, rtol=0, atol=1e-12)
    np.testing.assert_allclose(read.origin, original.origin, rtol=0, atol=1e-9)
    np.testing.assert_allclose(read.direction, original.direction, rtol=0, atol=1e-12)
    assert read.path == str(tmp_path / f"vol{suffix}")


def test_nifti_round_trip_keeps_geometry_within_its_float32_header_precision(tmp_path):
    # NIfTI stores qform/sform as float32: about 1e-7 relative, so ~1e-5 mm at 100 mm.
    original = oblique_anisotropic_volume()
    read = read_image(write_image(original, tmp_path / "vol.nii.gz"))
    np.testing.assert_array_equal(read.array, original.array)
    np.testing.assert_allclose(read.spacing, original.spacing, atol=1e-5)
    np.testing.assert_allclose(read.origin, original.origin, atol=1e-4)
    np.testing.assert_allclose(read.direction, original.direction, atol=1e-5)
    assert read.same_geometry(original)


def test_ras_positions_survive_a_round_trip(tmp_path):
    original = oblique_anisotropic_volume()
    read = read_image(write_image(original, tmp_path / "vol.nrrd"))
    corner = [12, 10, 6]
    np.testing.assert_allclose(read.index_to_ras(corner), original.index_to_ras(corner),
                               atol=1e-9)


def test_boolean_masks_are_written_as_unsigned_bytes(tmp_path):
    volume = oblique_anisotropic_volume()
    mask = volume.with_array(volume.array > 100)
    read = read_image(write_image(mask, tmp_path / "mask.nrrd"))
    assert read.array.dtype == np.uint8
    np.testing.assert_array_equal(read.array, mask.array)


def test_compression_is_on(tmp_path):
    volume = oblique_anisotropic_volume().with_array(np.zeros((7, 11, 13), np.int16))
    volume.array[2:4, 3:5, 4:9] = 1
    path = write_image(volume, tmp_path / "labels.nrrd")
    assert path.stat().st_size < volume.array.nbytes / 2


def test_reads_real_sts_ct_nifti_with_its_source_geometry(test_data):
    ct = read_image(test_data / "sts_sarcoma" / "STS_002_CT_image.nii.gz")
    assert ct.size == (161, 143, 48)
    np.testing.assert_allclose(ct.spacing, STS_CT_SPACING, atol=1e-4)
    np.testing.assert_allclose(ct.direction, np.eye(3), atol=1e-6)
    assert (ct.array.min(), ct.array.max()) == (-1000.0, 1156.0)
    assert ct.modality == "CT"


def test_reads_pymskt_knee_label_map_in_oblique_pir_orientation(test_data):
    knee = read_image(test_data / "knee" / "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd")
    assert knee.size == (384, 384, 160)
    np.testing.assert_allclose(knee.spacing, (0.3646, 0.3646, 0.7), atol=1e-4)
    np.testing.assert_allclose(knee.direction, KNEE_DIRECTION, atol=1e-3)
    assert abs(knee.direction[0, 0]) > 0.05, "the sagittal axes must stay oblique"
    assert sorted(np.unique(knee.array).tolist()) == list(range(11))
    assert knee.modality is None, "a label map is neither CT nor MR"


def test_reads_jpeg2000_ct_dicom_series(shared_data):
    ct = read_image(shared_data / "ts_example" / "example_ct_dicom")
    assert ct.size == (512, 512, 20)
    np.testing.assert_allclose(ct.spacing, (0.9766, 0.9766, 2.0), atol=1e-4)
    assert ct.modality == "CT"
    assert (ct.array.min(), ct.array.max()) == (-1024, 1839)
    assert ct.metadata["number_of_files"] == 20
    assert ct.metadata["warnings"] == []


def test_dicom_series_equals_the_nifti_made_from_it(shared_data, test_data):
    dicom = read_image(shared_data / "sts_sarcoma" / "dicom" / "STS_002" / "CT" / "image")
    nifti = read_image(test_data / "sts_sarcoma" / "STS_002_CT_image.nii.gz")
    assert dicom.modality == "CT"
    assert dicom.size == nifti.size == (161, 143, 48)
    assert dicom.same_geometry(nifti, tol_mm=1e-3)
    np.testing.assert_array_equal(dicom.array.astype(np.float32), nifti.array)


def test_small_bundled_dicom_series_reads_with_positions_from_the_headers(test_data):
    ct = read_image(test_data / "sts_sarcoma" / "STS_002_CT_dicom_5slices")
    nifti = read_image(test_data / "sts_sarcoma" / "STS_002_CT_image.nii.gz")
    assert ct.size == (161, 143, 5)
    np.testing.assert_allclose(ct.spacing, STS_CT_SPACING, atol=1e-4)
    np.testing.assert_allclose(ct.origin, nifti.origin, atol=1e-3)
    np.testing.assert_array_equal(ct.array, nifti.array[:5])


def test_missing_middle_slice_is_read_with_a_warning(test_data, tmp_path):
    for f in (test_data / "sts_sarcoma" / "STS_002_CT_dicom_5slices").iterdir():
        if f.name != "000002.dcm":
            (tmp_path / f.name).symlink_to(f)
    ct = read_image(tmp_path)
    assert ct.size == (161, 143, 4)
    assert any("slice spacing is uneven (3.270 to 6.540 mm)" in w
               for w in ct.metadata["warnings"])


def test_one_dicom_file_reads_the_series_it_belongs_to(test_data):
    one = test_data / "sts_sarcoma" / "STS_002_CT_dicom_5slices" / "000002.dcm"
    ct = read_image(one)
    assert ct.size == (161, 143, 5)
    assert ct.path == str(one)


def test_folder_with_several_series_lists_them_and_reads_the_one_chosen(shared_data, tmp_path):
    # Formerly the largest series was read with a warning; now the caller must choose.
    folder = tmp_path / "mixed"
    folder.mkdir()
    for kind in ("CT", "MR_T1"):  # 48 CT slices, 35 MR slices
        for f in (shared_data / "sts_sarcoma" / "dicom" / "STS_002" / kind / "image").iterdir():
            (folder / f"{kind}_{f.name}").symlink_to(f)
    with pytest.raises(InputError, match=r"holds 2 DICOM series: .*\(CT, .*48 files\); .*"
                                         r"\(MR, .*35 files\); add --series UID to choose one"):
        read_image(folder)
    mr_uid = read_image(folder / "MR_T1_000000.dcm").metadata["series_instance_uid"]
    volume = read_image(folder, series_uid=mr_uid)
    assert volume.modality == "MR"
    assert volume.size == (115, 90, 35)
    assert volume.metadata["warnings"] == []


def test_dicom_modality_tag_wins_over_intensity_guess(shared_data):
    pet = read_image(shared_data / "sts_sarcoma" / "dicom" / "STS_002" / "PET" / "image")
    assert pet.modality == "PT"
    assert detect_modality(pet) == "MR", "intensities alone cannot tell PET from MR"


def test_detects_ct_on_real_ct_and_mr_on_real_mr(test_data, shared_data):
    sts = test_data / "sts_sarcoma"
    assert detect_modality(read_image(sts / "STS_002_CT_image.nii.gz")) == "CT"
    assert detect_modality(read_image(sts / "STS_002_MR_T1_image.nii.gz")) == "MR"
    ts = shared_data / "ts_example"
    assert detect_modality(read_image(ts / "example_ct_sm.nii.gz")) == "CT"
    mr = read_image(ts / "example_mr_sm.nii.gz")  # abdominal MR with a few negative voxels
    assert mr.modality == "MR"


def test_modality_is_unknown_for_constant_images_and_masks():
    volume = make_grid((8, 8, 8), (1.0, 1.0, 1.0))
    assert detect_modality(volume) is None
    volume.array[2:5, 2:5, 2:5] = 1
    assert detect_modality(volume) is None


def test_modality_needs_air_or_bone_with_negative_values_for_ct():
    volume = make_grid((10, 10, 10), (1.0, 1.0, 1.0))
    rng = np.random.default_rng(1)
    volume.array[:] = rng.uniform(-100, 100, volume.array.shape)  # soft tissue only
    assert detect_modality(volume) is None
    volume.array[:2] = -1000.0  # add air
    assert detect_modality(volume) == "CT"

"""Inputs the ``mskai`` command refuses: exit code 2 and one line saying what to do.

Each class of bad input below came from an independent corpus of bad inputs; every test
drives ``mskai.cli.main`` in-process with small images written to ``tmp_path``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli

STS = Path(__file__).parent / "Data" / "sts_sarcoma"
IBSI = Path(__file__).parent / "Data" / "ibsi" / "digital_phantom"




def _refused(capsys, *argv: object) -> str:
    """Run the command, check exit 2 and a single line on stderr; return that line."""
    code, _, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


def _write(array: np.ndarray, path: Path, spacing=(1.0, 1.0, 1.0)) -> Path:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))
    return path


# ----- fracture: bone must have surroundings ----------------------------------------------
def test_fracture_refuses_a_ct_where_bone_fills_the_image(capsys, tmp_path):
    rng = np.random.default_rng(0)
    ct = 700 + rng.normal(0, 20, (40, 40, 40))
    ct[:, :, :2] = -1000  # a little air, so it passes as a CT
    path = _write(ct.astype(np.int16), tmp_path / "bone.nrrd")
    line = _refused(capsys, "fracture", path, "--out", tmp_path / "out")
    assert "bone fills" in line and "includes the bone's surroundings" in line
    assert not (tmp_path / "out").exists()


def test_fracture_refuses_a_crop_inside_a_bone_without_air(capsys, tmp_path):
    rng = np.random.default_rng(1)
    ct = (700 + rng.normal(0, 20, (30, 30, 30))).astype(np.int16)
    line = _refused(capsys, "fracture", _write(ct, tmp_path / "inside.nrrd"),
                    "--out", tmp_path / "out")
    assert "crop inside bone" in line and "bone's surroundings" in line
    assert "needs a CT in Hounsfield units" in line


def test_fracture_refuses_a_given_bone_segment_that_labels_the_whole_image(capsys, tmp_path):
    rng = np.random.default_rng(2)
    ct = rng.normal(40, 20, (30, 30, 30)).astype(np.int16)
    ct[0] = -1000
    image = _write(ct, tmp_path / "ct.nrrd")
    labels = _write(np.ones(ct.shape, np.uint8), tmp_path / "bone.nrrd")
    line = _refused(capsys, "fracture", image, "--labels", labels, "--label-names", "bone=1",
                    "--out", tmp_path / "out")
    assert "cover 100% of the image" in line and "--label-names" in line


def test_fracture_measures_a_bone_with_soft_tissue_around_it(capsys, tmp_path):
    rng = np.random.default_rng(3)
    ct = np.full((30, 60, 60), -1000.0)
    yy, xx = np.mgrid[:60, :60]
    radius2 = (yy - 30) ** 2 + (xx - 30) ** 2
    ct[:, radius2 < 28**2] = 40
    ct[:, radius2 < 10**2] = 1200
    ct[:, radius2 < 6**2] = 0
    ct += rng.normal(0, 20, ct.shape)
    code, _, err = run_cli(capsys, "fracture", _write(ct.astype(np.int16), tmp_path / "leg.nrrd"),
                     "--out", tmp_path / "out")
    assert code == 0, err


def test_cartilage_refuses_knee_segments_that_fill_the_image(capsys, tmp_path):
    rng = np.random.default_rng(4)
    image = _write(rng.normal(300, 50, (20, 20, 20)).astype(np.int16), tmp_path / "mr.nrrd")
    labels = np.ones((20, 20, 20), np.uint8)  # femur
    labels[:, :9] = 3  # tibia
    labels[:, 9:11] = 2  # femoral cartilage between them
    line = _refused(capsys, "cartilage", image,
                    "--labels", _write(labels, tmp_path / "knee.nrrd"),
                    "--label-names", "femur=1,femoral_cartilage=2,tibia=3",
                    "--out", tmp_path / "out")
    assert "cover 100% of the image" in line and "background is labelled" in line


# ----- radiomics: a mask must be a label image --------------------------------------------
def test_radiomics_refuses_a_ct_given_as_its_own_mask(capsys, tmp_path):
    ct = STS / "STS_002_CT_image.nii.gz"
    line = _refused(capsys, "radiomics", ct, ct, "--out", tmp_path / "out")
    assert "negative values" in line and "binary (0/1) or label mask" in line


def test_radiomics_refuses_a_probability_map_as_mask(capsys, tmp_path):
    import SimpleITK as sitk

    phantom = sitk.ReadImage(str(IBSI / "phantom.nii.gz"))
    prob = sitk.Cast(phantom, sitk.sitkFloat32) / 10.0  # values 0.1 .. 0.9
    sitk.WriteImage(prob, str(tmp_path / "prob.nrrd"))
    line = _refused(capsys, "radiomics", IBSI / "phantom.nii.gz", tmp_path / "prob.nrrd",
                    "--out", tmp_path / "out")
    assert "fractional values" in line and "binary (0/1) or label mask" in line


def _like_phantom(array: np.ndarray, path: Path) -> Path:
    import SimpleITK as sitk

    phantom = sitk.ReadImage(str(IBSI / "phantom.nii.gz"))
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(phantom)
    sitk.WriteImage(image, str(path))
    return path


def test_radiomics_refuses_a_mask_with_more_labels_than_a_label_map_holds(capsys, tmp_path):
    rng = np.random.default_rng(5)
    image = _write(rng.normal(0, 1, (20, 20, 20)).astype(np.float32), tmp_path / "img.nrrd")
    values = np.arange(20 * 20 * 20, dtype=np.int32).reshape(20, 20, 20) % 1000
    line = _refused(capsys, "radiomics", image, _write(values, tmp_path / "many.nrrd"),
                    "--out", tmp_path / "out")
    assert "999 distinct values" in line and "not a mask" in line


def test_radiomics_refuses_a_mask_that_labels_every_voxel(capsys, tmp_path):
    shape = (4, 4, 5)
    mask = _like_phantom(np.ones(shape, np.uint8), tmp_path / "all.nrrd")
    line = _refused(capsys, "radiomics", IBSI / "phantom.nii.gz", mask,
                    "--out", tmp_path / "out")
    assert "labels 100% of the image" in line and "no background" in line


def test_radiomics_keeps_label_maps_with_several_labels(capsys, tmp_path):
    import SimpleITK as sitk

    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(IBSI / "mask.nii.gz"))).astype(np.int16)
    labels[labels == 0] = 7  # another structure around the tumour (label 1)
    code, _, err = run_cli(capsys, "radiomics", IBSI / "phantom.nii.gz",
                     _like_phantom(labels, tmp_path / "labels.nrrd"),
                     "--out", tmp_path / "out")
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "measurements.json").read_text())
    assert doc["segments"][0]["volume_ml"] == pytest.approx(0.592)


# ----- tumour: prompts must agree with each other -----------------------------------------
@pytest.fixture
def blob(tmp_path) -> Path:
    """40 mm cube of noise with a bright 10 mm cube at voxel (20, 20, 20) = RAS -20,-20,20."""
    rng = np.random.default_rng(6)
    array = rng.normal(100, 10, (40, 40, 40)).astype(np.float32)
    array[15:25, 15:25, 15:25] += 200
    return _write(array, tmp_path / "blob.nrrd")


def test_tumor_refuses_a_seed_and_background_click_at_the_same_point(capsys, tmp_path, blob):
    line = _refused(capsys, "tumor", blob, "--seed-ras", "-20,-20,20",
                    "--background-ras", "-20,-20,20", "--out", tmp_path / "out")
    assert "within one voxel of each other" in line


def test_tumor_refuses_a_background_click_closer_than_a_voxel_to_a_seed(capsys, tmp_path,
                                                                         blob):
    line = _refused(capsys, "tumor", blob, "--seed-ras", "-20,-20,20",
                    "--background-ras", "-20.4,-20.4,20.4", "--out", tmp_path / "out")
    assert "within one voxel of each other" in line


def test_tumor_refuses_a_box_that_does_not_contain_the_seed(capsys, tmp_path, blob):
    line = _refused(capsys, "tumor", blob, "--seed-ras", "-20,-20,20",
                    "--roi-ras", "-1,-1,1,-10,-10,10", "--out", tmp_path / "out")
    assert "lies outside the ROI box" in line


def test_tumor_refuses_a_box_without_extent(capsys, tmp_path, blob):
    line = _refused(capsys, "tumor", blob, "--seed-ras", "-20,-20,20",
                    "--roi-ras", "-8,-8,20,-32,-32,20", "--out", tmp_path / "out")
    assert "no extent along S" in line


def test_tumor_with_a_box_around_the_seed_runs_end_to_end(capsys, tmp_path, blob):
    code, _, err = run_cli(capsys, "tumor", blob, "--seed-ras", "-20,-20,20",
                     "--roi-ras", "-6,-6,6,-34,-34,34", "--out", tmp_path / "out")
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "measurements.json").read_text())
    tumor = next(s for s in doc["segments"] if s["id"] == "tumor")
    assert tumor["volume_ml"] == pytest.approx(1.0, rel=0.35)


# ----- tumour: images too small for segmentation from clicks ------------------------------
def test_tumor_refuses_a_tiny_image_and_gives_the_minimum_size(capsys, tmp_path):
    rng = np.random.default_rng(7)
    tiny = _write(rng.normal(0, 10, (2, 2, 2)).astype(np.float32), tmp_path / "tiny.nrrd")
    line = _refused(capsys, "tumor", tiny, "--seed-ras", "0,0,0", "--out", tmp_path / "out")
    assert "at least 5 voxels along every axis" in line


def test_tumor_refuses_an_image_without_room_for_background_around_the_seed(capsys,
                                                                            tmp_path):
    rng = np.random.default_rng(8)
    array = rng.normal(0, 10, (9, 9, 9)).astype(np.float32)
    array[3:6, 3:6, 3:6] += 200
    small = _write(array, tmp_path / "small.nrrd")
    line = _refused(capsys, "tumor", small, "--seed-ras", "-4,-4,4", "--out", tmp_path / "out")
    assert "no background to tell the tumour from" in line


# ----- response: values read from result folders ------------------------------------------
def _folder(path: Path, axis_text: str = "50.0", volume_text: str = "20.0",
            module: str = "TumorSeg") -> Path:
    path.mkdir(parents=True)
    segment = ('{"id": "tumor", "name": "Tumor", "label": 1, "volume_ml": ' + volume_text
               + ', "recist_long_axis_mm": ' + axis_text + "}")
    (path / "measurements.json").write_text(
        '{"schema": "mskai.measurements/1", "module": "' + module + '", '
        '"image": {"path": "x.nrrd"}, "segments": [' + segment + "]}")
    return path


@pytest.mark.parametrize("axis_text", ["Infinity", "NaN", "-12.5", "1e308", "1e999", '"50"'])
def test_response_refuses_a_diameter_that_is_not_a_plausible_length(capsys, tmp_path,
                                                                    axis_text):
    base = _folder(tmp_path / "base")
    follow = _folder(tmp_path / "follow", axis_text=axis_text)
    line = _refused(capsys, "response", base, follow, "--out", tmp_path / "out")
    assert str(follow / "measurements.json") in line
    assert "recist_long_axis_mm =" in line and "not a number from 0 to 2000 mm" in line


@pytest.mark.parametrize("volume_text", ["-Infinity", "-1", "1e308"])
def test_response_refuses_a_baseline_volume_that_is_not_plausible(capsys, tmp_path,
                                                                  volume_text):
    base = _folder(tmp_path / "base", volume_text=volume_text)
    line = _refused(capsys, "response", base, _folder(tmp_path / "follow"),
                    "--out", tmp_path / "out")
    assert str(base / "measurements.json") in line and "volume_ml =" in line


def test_response_refuses_garbled_missing_and_foreign_measurements(capsys, tmp_path):
    base = _folder(tmp_path / "base")
    garbled = tmp_path / "garbled"
    garbled.mkdir()
    (garbled / "measurements.json").write_text('{"schema": "mskai.meas')
    assert "is not valid JSON" in _refused(capsys, "response", base, garbled,
                                           "--out", tmp_path / "o1")
    (tmp_path / "bare").mkdir()
    assert "has no measurements.json" in _refused(capsys, "response", base, tmp_path / "bare",
                                                  "--out", tmp_path / "o2")
    other = tmp_path / "other"
    other.mkdir()
    (other / "measurements.json").write_text('{"schema": "other/2", "segments": []}')
    assert "not a mskai.measurements/1 document" in _refused(
        capsys, "response", base, other, "--out", tmp_path / "o3")


def test_response_refuses_folders_of_another_module(capsys, tmp_path):
    knee = _folder(tmp_path / "knee", module="CartilageQuant")
    line = _refused(capsys, "response", _folder(tmp_path / "base"), knee,
                    "--out", tmp_path / "o1")
    assert "different modules" in line
    rad1 = _folder(tmp_path / "rad1", module="Radiomics")
    rad2 = _folder(tmp_path / "rad2", module="Radiomics")
    line = _refused(capsys, "response", rad1, rad2, "--out", tmp_path / "o2")
    assert "Radiomics module, not TumorSeg" in line

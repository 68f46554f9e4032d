"""What the ``mskai`` command tells the user about its inputs (docs/contract.md).

- The reader's warnings (uneven DICOM slices, ...) reach stderr as ``warning: ...`` lines and
  the ``warnings`` list of measurements.json.
- A DICOM folder with several series needs ``--series UID``; the command reads that series.
- Library loggers (pykwalify, pyradiomics) never print on stderr: one line per problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli

SPHERE_RADIUS_MM = 6.0




def write_dicom_series(folder: Path, array: np.ndarray, series_uid: str,
                       slice_positions_mm: list[float], spacing_mm: float = 1.0,
                       prefix: str = "s") -> list[Path]:
    """A synthetic CT series (one file per slice, uncompressed) written with pydicom.

    ``array`` is (slices, rows, columns); slice ``k`` lies at z = ``slice_positions_mm[k]``.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study = "1.2.826.0.1.3680043.8.498.1"
    paths = []
    for k, (plane, z) in enumerate(zip(array, slice_positions_mm, strict=True)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series_uid
        ds.FrameOfReferenceUID = study + ".9"
        ds.PatientID, ds.PatientName, ds.Modality = "SYNTH", "Synthetic^Phantom", "CT"
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(z)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [spacing_mm, spacing_mm]
        ds.SliceThickness = spacing_mm
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = plane.astype(np.int16).tobytes()
        path = folder / f"{prefix}{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _sphere(shape: tuple[int, int, int], centre: tuple[float, float, float]) -> np.ndarray:
    k, j, i = np.indices(shape)
    return ((i - centre[2]) ** 2 + (j - centre[1]) ** 2 + (k - centre[0]) ** 2
            <= SPHERE_RADIUS_MM**2)


def _ct(mask: np.ndarray) -> np.ndarray:
    """Soft tissue (40 HU) with a brighter tumour (80 HU) and air (-1000 HU) at the border."""
    ct = np.where(mask, 80, 40).astype(np.int16)
    ct[:, :2] = -1000
    return ct


def _mask_like(image_folder: Path, mask: np.ndarray, path: Path, series_uid: str) -> Path:
    """``mask`` saved as NIfTI on the grid mskai reads for one series of ``image_folder``."""
    from mskai.image import read_image, write_image

    image = read_image(image_folder, series_uid=series_uid)
    return write_image(image.with_array(mask.astype(np.uint8)), path)


# ----- warnings reach the user ----------------------------------------------------------------
def test_uneven_dicom_slices_are_reported_on_stderr_and_in_measurements_json(capsys,
                                                                             tmp_path):
    """One slice missing from a series: the reader warns, the command passes it on."""
    shape = (12, 32, 32)
    tumour = _sphere(shape, (6, 16, 16))
    positions = [float(z) for z in range(13) if z != 9]  # slice at z = 9 mm is missing
    uid = "1.2.826.0.1.3680043.8.498.100"
    write_dicom_series(tmp_path / "ct", _ct(tumour), uid, positions)
    mask = _mask_like(tmp_path / "ct", tumour, tmp_path / "mask.nii.gz", uid)
    out = tmp_path / "out"
    code, summary, err = run_cli(capsys, "tumor", tmp_path / "ct", "--labels", mask,
                              "--label-names", "tumor=1", "--out", out)
    assert code == 0, err
    assert len(summary.strip().splitlines()) == 1
    warned = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert any("slice spacing is uneven" in line for line in warned), err
    doc = json.loads((out / "measurements.json").read_text())
    assert any("slice spacing is uneven" in w for w in doc["warnings"])


def test_a_clean_image_has_an_empty_warnings_list(capsys, tmp_path):
    shape = (12, 32, 32)
    tumour = _sphere(shape, (6, 16, 16))
    uid = "1.2.826.0.1.3680043.8.498.101"
    write_dicom_series(tmp_path / "ct", _ct(tumour), uid, [float(z) for z in range(12)])
    mask = _mask_like(tmp_path / "ct", tumour, tmp_path / "mask.nii.gz", uid)
    code, _, err = run_cli(capsys, "tumor", tmp_path / "ct", "--labels", mask,
                        "--label-names", "tumor=1", "--out", tmp_path / "out")
    assert code == 0, err
    assert "warning:" not in err
    doc = json.loads((tmp_path / "out" / "measurements.json").read_text())
    assert doc["warnings"] == []


# ----- --series -------------------------------------------------------------------------------
@pytest.fixture
def two_series(tmp_path) -> tuple[Path, dict[str, str], Path]:
    """One folder, two series: a large 'scout' (16 slices) and the small study series
    (8 slices of 24 x 28) with the tumour mask on the small one's geometry."""
    folder = tmp_path / "dicom"
    uids = {"scout": "1.2.826.0.1.3680043.8.498.201", "study": "1.2.826.0.1.3680043.8.498.202"}
    write_dicom_series(folder, _ct(np.zeros((16, 20, 20), bool)), uids["scout"],
                       [2.0 * z for z in range(16)], spacing_mm=2.0, prefix="scout")
    tumour = _sphere((8, 24, 28), (4, 12, 14))
    write_dicom_series(folder, _ct(tumour), uids["study"], [float(z) for z in range(8)],
                       prefix="study")
    mask = _mask_like(folder, tumour, tmp_path / "mask.nii.gz", uids["study"])
    return folder, uids, mask


def test_series_picks_one_series_of_a_dicom_folder(capsys, tmp_path, two_series):
    folder, uids, mask = two_series
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "tumor", folder, "--series", uids["study"], "--labels", mask,
                        "--label-names", "tumor=1", "--out", out)
    assert code == 0, err
    doc = json.loads((out / "measurements.json").read_text())
    assert doc["image"]["size"] == [28, 24, 8]


def test_several_series_without_series_is_bad_input_listing_them(capsys, tmp_path,
                                                                 two_series):
    folder, uids, mask = two_series
    code, _, err = run_cli(capsys, "tumor", folder, "--labels", mask, "--label-names",
                        "tumor=1", "--out", tmp_path / "out")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "--series" in lines[0]
    assert uids["scout"] in lines[0] and uids["study"] in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["tumor", "cartilage", "fracture", "radiomics"])
def test_every_command_that_reads_an_image_takes_series(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    assert "--series UID" in out


# ----- library loggers stay quiet -------------------------------------------------------------
def test_a_wrong_type_in_the_radiomics_params_is_one_line(capsys, test_data, tmp_path):
    folder = test_data / "ibsi" / "digital_phantom"
    params = tmp_path / "wrong.yaml"
    params.write_text("setting:\n  binWidth: wide\n")
    code, _, err = run_cli(capsys, "radiomics", folder / "phantom.nii.gz", folder / "mask.nii.gz",
                        "--params", params, "--out", tmp_path / "out")
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("mskai radiomics: ")


NOISY_COMMAND = """
import logging, sys
from mskai import cli, commands

def noisy(args):
    logging.getLogger("pykwalify.core").error("validation.invalid")
    logging.getLogger("radiomics").warning("a pyradiomics warning")
    return "done"

commands.run_fracture = noisy
code = cli.main(sys.argv[1:])
logging.getLogger("mskai.after").error("after the command: logging works again")
raise SystemExit(code)
"""


@pytest.mark.parametrize("debug", [False, True])
def test_library_log_records_reach_stderr_only_with_debug(tmp_path, debug):
    """Python prints records of unconfigured loggers on stderr; the command must not."""
    import subprocess
    import sys

    flags = ["--debug"] if debug else []
    proc = subprocess.run([sys.executable, "-c", NOISY_COMMAND, *flags, "fracture",
                           str(tmp_path / "x.nrrd"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[1] / "MSKAIExtension")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    library_lines = [line for line in proc.stderr.splitlines()
                     if "validation.invalid" in line or "pyradiomics warning" in line]
    assert bool(library_lines) == debug, proc.stderr
    assert "logging works again" in proc.stderr

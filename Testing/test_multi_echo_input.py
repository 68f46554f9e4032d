"""A multi-echo DICOM series as IMAGE: one echo is read (the first by default, ``--echo N``),
with a warning; slices duplicated within one echo are still refused.

The series is the real 5-slice STS_002 CT series (Testing/dicom_samples.py) restamped as a
3-echo MR series: every slice written once per echo time with a new SOP Instance UID and
its pixels scaled by exp(-TE / 40 ms), so which echo was read is known exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dicom_samples import SERIES, read_series

from mskai.errors import InputError
from mskai.image import read_image

TIMES_MS = (10.0, 20.0, 30.0)
T2_MS = 40.0
REAL_MULTI_ECHO = Path(__file__).resolve().parents[2] / "shared" / "data" / "pymskt_knee" \
    / "MESE_T2_dicom_anon"


def write_echoes(folder: Path, times_ms=TIMES_MS) -> Path:
    """The 5-slice series once per echo time (see the module docstring)."""
    import pydicom
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    for e, te in enumerate(times_ms):
        for source in sorted(SERIES.glob("*.dcm")):
            ds = pydicom.dcmread(source)
            pixels = ds.pixel_array.astype(np.float64) - float(ds.pixel_array.min())
            ds.PixelData = np.round(pixels * np.exp(-te / T2_MS)).astype(
                ds.pixel_array.dtype).tobytes()
            ds.RescaleIntercept, ds.RescaleSlope = 0, 1
            ds.Modality, ds.EchoTime, ds.EchoNumbers = "MR", te, e + 1
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(folder / f"e{e + 1}_{source.name}")
    return folder


@pytest.fixture(scope="module")
def echoes(tmp_path_factory) -> Path:
    return write_echoes(tmp_path_factory.mktemp("echoes"))


def _first_echo_scale(volume) -> float:
    reference = read_series().array.astype(float)
    reference -= reference.min()
    return float(np.median(volume.array[reference > 100] / reference[reference > 100]))


def test_a_multi_echo_series_reads_its_first_echo_with_a_warning(echoes):
    volume = read_image(echoes)
    assert volume.array.shape == read_series().array.shape
    assert _first_echo_scale(volume) == pytest.approx(np.exp(-10 / T2_MS), abs=0.01)
    (warning,) = volume.metadata["warnings"]
    assert "holds 3 echoes (TE 10, 20, 30 ms); echo 1 (TE 10 ms) was read" in warning
    assert "--echo N" in warning


def test_echo_chooses_another_echo(echoes):
    volume = read_image(echoes, echo=3)
    assert _first_echo_scale(volume) == pytest.approx(np.exp(-30 / T2_MS), abs=0.01)
    with pytest.raises(InputError, match="has 3 echoes .*choose 1 to 3"):
        read_image(echoes, echo=4)


def test_duplicates_within_one_echo_are_still_refused(tmp_path):
    folder = write_echoes(tmp_path / "same", times_ms=(10.0, 10.0))
    with pytest.raises(InputError, match="at the same position as another"):
        read_image(folder)


def test_echo_on_a_single_echo_series_or_a_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="has one echo; leave --echo out"):
        read_image(SERIES, echo=2)
    from mskai.image import write_image

    path = write_image(read_series(), tmp_path / "ct.nrrd")
    with pytest.raises(InputError, match="--echo chooses an echo"):
        read_image(path, echo=1)


def test_cli_reads_the_first_echo_and_says_so(echoes, tmp_path, capsys):
    from mskai.cli import main

    with pytest.raises(SystemExit) as usage:
        main(["cartilage", str(echoes), "--echo", "0", "--out", str(tmp_path / "o")])
    assert usage.value.code == 2 and "--echo" in capsys.readouterr().err
    from mskai.cli import build_parser
    from mskai.commands import read_input_image

    args = build_parser().parse_args(["cartilage", str(echoes), "--echo", "2", "--out",
                                      str(tmp_path / "p")])
    volume = read_input_image(args)
    assert _first_echo_scale(volume) == pytest.approx(np.exp(-20 / T2_MS), abs=0.01)


@pytest.mark.skipif(not REAL_MULTI_ECHO.is_dir(), reason="the real pymskt T2 series is absent")
def test_the_real_knee_multi_echo_series_reads_its_first_echo():
    volume = read_image(REAL_MULTI_ECHO)
    assert volume.array.shape == (24, 256, 256)
    (warning,) = volume.metadata["warnings"]
    assert "holds 8 echoes" in warning and "echo 1 (TE 6.312 ms) was read" in warning

"""``--dicom-out``: DICOM SEG (and SR, when its writer is installed) next to the results.

On a real CT series (STS_002, 5 slices): the files, the marker, the source UIDs in
measurements.json, the SEG read back with highdicom (labels, SNOMED codes, voxel masks on the
source grid), dciodvfy; an oblique series stored in reverse slice order; refusals (an image
file, an anonymised series without UIDs: the real ts_example CT); the TumorSeg export.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli
from dicom_samples import SERIES, STS, ball, read_series
from dicom_validation import dciodvfy_errors

from mskai.cli import main
from mskai.errors import InputError
from mskai.results import dicom_seg
from mskai.results.dicom_seg import DICOM_SEG_FILE, DICOM_SR_FILE
from mskai.segments import Provenance, Result, Segment
from mskai.terminology import segment_type

hd = pytest.importorskip("highdicom")
import pydicom  # noqa: E402  (after highdicom, which needs it)

REPO = Path(__file__).resolve().parent.parent
NIFTI = STS / "STS_002_CT_image.nii.gz"








def headers(files):
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]


def read_back(path, image):
    """{segment number: (segment item, bool [k, j, i] mask on ``image``)} via highdicom."""
    seg = hd.seg.segread(path)
    uids = [h.SOPInstanceUID for h in headers(image.metadata["dicom_files"])]
    pixels = seg.get_pixels_by_source_instance(uids, assert_missing_frames_are_empty=True)
    return seg, {int(item.SegmentNumber): (item, pixels[..., n] > 0)
                 for n, item in enumerate(seg.SegmentSequence)}


def assert_codes(item, seg_id):
    kind = segment_type(seg_id)
    for sequence, code in ((item.SegmentedPropertyCategoryCodeSequence, kind.category),
                           (item.SegmentedPropertyTypeCodeSequence, kind.type)):
        assert (sequence[0].CodeValue, sequence[0].CodingSchemeDesignator) == code[:2]


@pytest.fixture(scope="module")
def ct():
    return read_series(SERIES)


@pytest.fixture(scope="module")
def tumor_run(ct, tmp_path_factory):
    """``mskai tumor SERIES --labels L --dicom-out``: (output folder, label map, stdout, err)."""
    from mskai.image import write_image

    root = tmp_path_factory.mktemp("dicom_out")
    labels = ball(ct, (80, 70, 2), 6.0).astype(np.uint8)
    write_image(ct.with_array(labels), root / "labels.nrrd")
    out = root / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):  # no capsys in a module fixture
        code = main(["tumor", str(SERIES), "--labels", str(root / "labels.nrrd"),
                     "--label-names", "tumor=1", "--dicom-out", "--out", str(out)])
    assert code == 0, stderr.getvalue()
    return out, labels.astype(bool), stdout.getvalue(), stderr.getvalue()


# ----- the command -----------------------------------------------------------------------
def test_dicom_out_writes_a_seg_of_the_result_on_the_source_series(ct, tumor_run):
    from mskai.labels import read_labels

    out, tumour, _, _ = tumor_run
    assert (out / DICOM_SEG_FILE).is_file()
    seg, segments = read_back(out / DICOM_SEG_FILE, ct)
    result = read_labels(out / "segmentation.seg.nrrd", ct)
    doc = json.loads((out / "measurements.json").read_text())
    ids = [s["id"] for s in doc["segments"] if s["volume_ml"] > 0]
    assert [item.TrackingID for item, _ in segments.values()] == ids
    for seg_id, (item, mask) in zip(ids, segments.values(), strict=True):
        assert item.SegmentLabel == segment_type(seg_id).name
        assert_codes(item, seg_id)
        assert np.array_equal(mask, result[seg_id]), seg_id
    assert np.array_equal(segments[1][1], tumour)  # the tumour is exactly the given labels

    source = headers(ct.metadata["dicom_files"])[0]
    assert seg.StudyInstanceUID == source.StudyInstanceUID
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert seg.SeriesInstanceUID != source.SeriesInstanceUID
    assert seg.PatientID == source.PatientID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    assert doc["source"] == {"study_instance_uid": source.StudyInstanceUID,
                             "series_instance_uid": source.SeriesInstanceUID,
                             "frame_of_reference_uid": source.FrameOfReferenceUID}


def test_dicom_files_are_in_the_marker_and_a_rerun_replaces_them(tumor_run, capsys, tmp_path):
    from mskai.results.out_folder import read_marker

    out, _, summary, err = tumor_run
    assert len(summary.strip().splitlines()) == 1 and "Traceback" not in err
    files = read_marker(out)["files"]
    expected = {DICOM_SEG_FILE} | ({DICOM_SR_FILE} if dicom_seg.dicom_sr_writer() else set())
    assert expected <= set(files) and all(files[name] for name in expected)

    again = tmp_path / "again"
    shutil.copytree(out, again)
    code, _, err = run_cli(capsys, "tumor", SERIES, "--labels", out.parent / "labels.nrrd",
                        "--label-names", "tumor=1", "--dicom-out", "--out", again)
    assert code == 0, err  # the earlier DICOM files are mskai's: replaced without --overwrite
    before = (again / DICOM_SEG_FILE).read_bytes()
    code, _, err = run_cli(capsys, "tumor", SERIES, "--labels", out.parent / "labels.nrrd",
                        "--label-names", "tumor=1", "--out", again)
    assert code == 0, err  # without --dicom-out the earlier SEG is kept, with a warning
    assert (again / DICOM_SEG_FILE).read_bytes() == before
    assert f"warning: {DICOM_SEG_FILE}" in err and "add --dicom-out to rewrite them" in err
    (again / DICOM_SEG_FILE).write_bytes(b"changed by the user")
    code, _, err = run_cli(capsys, "tumor", SERIES, "--labels", out.parent / "labels.nrrd",
                        "--label-names", "tumor=1", "--dicom-out", "--out", again)
    assert code == 2 and f"{DICOM_SEG_FILE} was changed" in err


def test_dicom_outputs_validate_with_dciodvfy(tumor_run):
    out = tumor_run[0]
    assert dciodvfy_errors(out / DICOM_SEG_FILE) == []
    assert dciodvfy_errors(out / DICOM_SR_FILE) == []


def test_sr_is_written_when_the_sr_writer_is_installed(ct, tumor_run):
    out = tumor_run[0]
    sr = pydicom.dcmread(out / DICOM_SR_FILE)
    seg = pydicom.dcmread(out / DICOM_SEG_FILE)
    assert sr.Modality == "SR"
    assert sr.StudyInstanceUID == seg.StudyInstanceUID == ct.metadata["study_instance_uid"]
    assert sr.SeriesInstanceUID not in (seg.SeriesInstanceUID,
                                        ct.metadata["series_instance_uid"])
    evidence = {item.ReferencedSOPInstanceUID
                for study in sr.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence
                for item in series.ReferencedSOPSequence}
    assert seg.SOPInstanceUID in evidence
    # each volumetric group points at the SEG segment of its tracking id, with its volume
    numbers = {item.TrackingID: int(item.SegmentNumber) for item in seg.SegmentSequence}
    doc = json.loads((out / "measurements.json").read_text())
    volumes = {s["id"]: s["volume_ml"] for s in doc["segments"]}
    report = hd.sr.Comprehensive3DSR.from_dataset(sr).content
    measured = set()
    for group in report.get_volumetric_roi_measurement_groups():
        reference = group.referenced_segment
        segment_id = str(group.tracking_identifier).split(":")[0]
        assert reference.referenced_sop_instance_uid == seg.SOPInstanceUID
        assert list(reference.referenced_segment_numbers) == [numbers[segment_id]]
        for measurement in group.get_measurements():
            if measurement.name.value == "118565006":  # SCT Volume, in mL
                assert str(measurement.unit.value) == "mL"
                assert float(measurement.value) == pytest.approx(volumes[segment_id], rel=1e-4)
                measured.add(segment_id)
    assert "tumor" in measured


def test_sr_writer_gets_the_result_the_seg_and_the_sources(ct, tmp_path, monkeypatch):
    calls = []

    def fake_writer(result, seg, source_images, path):
        calls.append((result, seg, source_images, path))
        Path(path).write_bytes(b"SR")
        return None

    monkeypatch.setattr(dicom_seg, "dicom_sr_writer", lambda: fake_writer)
    result = Result("TumorSeg", ct, Provenance("test"),
                    [Segment("tumor", ball(ct, (80, 70, 2), 6.0), 1)])
    paths = dicom_seg.write_dicom_outputs(result, tmp_path / DICOM_SEG_FILE)
    assert paths == {"seg": tmp_path / DICOM_SEG_FILE, "sr": tmp_path / DICOM_SR_FILE}
    (got, seg, sources, path), = calls
    assert got is result and isinstance(seg, hd.seg.Segmentation)
    assert path == tmp_path / DICOM_SR_FILE and (tmp_path / DICOM_SR_FILE).read_bytes() == b"SR"
    assert len(sources) == 5 and {s.SeriesInstanceUID for s in sources} == {
        ct.metadata["series_instance_uid"]}


def toy_knee_series(folder: Path) -> tuple[Path, Path, str]:
    """A minimal synthetic knee series (no birth date, sex, study ID: type 2 left out) and
    its label map: (series folder, labels file, --label-names)."""
    from test_cartilage_task import _toy_knee
    from test_cli_inputs import write_dicom_series

    from mskai.image import write_image

    _, labels = _toy_knee(gap_voxels=0)
    array = np.where(labels["femur"] | labels["tibia"], 800, 0).astype(np.int16)
    write_dicom_series(folder / "knee", array, pydicom.uid.generate_uid(),
                       [float(z) for z in range(len(array))])
    label_map = np.zeros(array.shape, np.uint8)
    names = ("femur", "tibia", "femoral_cartilage")
    for value, name in enumerate(names, start=1):
        label_map[labels[name]] = value
    write_image(read_series(folder / "knee").with_array(label_map), folder / "knee_labels.nrrd")
    return (folder / "knee", folder / "knee_labels.nrrd",
            ",".join(f"{name}={value}" for value, name in enumerate(names, start=1)))


@pytest.mark.parametrize("command", ["cartilage", "fracture", "radiomics"])
def test_every_command_writes_the_seg_of_its_result(capsys, ct, tmp_path, command):
    from mskai.image import write_image
    from mskai.labels import read_labels
    from mskai.results.out_folder import read_marker

    if command == "cartilage":
        series, labels, names = toy_knee_series(tmp_path)
        argv = [series, "--labels", labels, "--label-names", names, "--knee-side", "right"]
    else:
        series = SERIES
        mask = ball(ct, (80, 70, 2), 6.0) if command == "radiomics" else ct.array > 300
        write_image(ct.with_array(mask.astype(np.uint8)), tmp_path / "mask.nrrd")
        argv = ([series, tmp_path / "mask.nrrd"] if command == "radiomics"
                else [series, "--labels", tmp_path / "mask.nrrd", "--label-names", "bone=1"])
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, command, *argv, "--dicom-out", "--out", out)
    assert code == 0, err
    image = read_series(series)
    _, segments = read_back(out / DICOM_SEG_FILE, image)
    expected = read_labels(out / "segmentation.seg.nrrd", image)
    assert {item.TrackingID for item, _ in segments.values()} == {
        k for k, v in expected.items() if v.any()}
    for item, mask in segments.values():
        assert_codes(item, item.TrackingID)
        assert np.array_equal(mask, expected[item.TrackingID]), item.TrackingID
    assert read_marker(out)["files"][DICOM_SEG_FILE]
    frames = pydicom.dcmread(out / DICOM_SEG_FILE).PerFrameFunctionalGroupsSequence
    assert all("SegmentIdentificationSequence" in item for item in frames)  # one segment too
    assert dciodvfy_errors(out / DICOM_SEG_FILE) == []


# ----- refusals --------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["tumor", "cartilage", "fracture", "radiomics"])
def test_dicom_out_of_an_image_file_is_refused_before_any_work(capsys, tmp_path, command,
                                                               monkeypatch):
    from mskai import commands

    monkeypatch.setattr(commands, "read_input_image", lambda args: pytest.fail("read"))
    extra = [NIFTI] if command == "radiomics" else []
    code, _, err = run_cli(capsys, command, NIFTI, *extra, "--dicom-out", "--out",
                        tmp_path / "out")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "needs a DICOM series" in err and "give the DICOM folder, not a NIfTI" in err
    assert not (tmp_path / "out").exists()


def test_an_anonymised_series_without_uids_is_refused_before_the_work(capsys, tmp_path,
                                                                      shared_data,
                                                                      monkeypatch):
    """The real ts_example CT has its Study/Series/SOP Instance UIDs removed."""
    from mskai import commands

    series = shared_data / "ts_example" / "example_ct_dicom"
    if not series.is_dir():
        pytest.skip("ts_example/example_ct_dicom is not in the shared data")
    monkeypatch.setattr(commands, "load_inputs", lambda args: (
        commands.read_input_image(args), pytest.fail("went on to the work")))
    code, _, err = run_cli(capsys, "fracture", series, "--dicom-out", "--out", tmp_path / "out")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "has no SOPClassUID, SOPInstanceUID, StudyInstanceUID, SeriesInstanceUID" in err
    assert not (tmp_path / "out").exists()


def test_without_dicom_out_nothing_dicom_is_written_or_recorded(capsys, tmp_path):
    from mskai.results.out_folder import read_marker

    code, _, err = run_cli(capsys, "tumor", NIFTI, "--labels", STS / "STS_002_CT_mask.nii.gz",
                        "--label-names", "tumor=1", "--out", tmp_path / "out")
    assert code == 0, err
    assert not (tmp_path / "out" / DICOM_SEG_FILE).exists()
    assert DICOM_SEG_FILE not in read_marker(tmp_path / "out")["files"]
    assert "source" not in json.loads((tmp_path / "out" / "measurements.json").read_text())


# ----- geometry: an oblique series stored in reverse order --------------------------------
def oblique_reversed_series(folder: Path) -> Path:
    """The 5 STS slices re-stacked on an oblique plane (25 degrees about two axes), their
    positions running against the file order (file 0 is the last slice)."""
    from scipy.spatial.transform import Rotation

    out = folder / "oblique"
    out.mkdir()
    rotation = Rotation.from_euler("xz", [25, 25], degrees=True).as_matrix()
    row, col = rotation[:, 0], rotation[:, 1]
    normal = np.cross(row, col)
    sources = sorted(SERIES.iterdir())
    series_uid = pydicom.uid.generate_uid()
    for n, path in enumerate(sources):
        ds = pydicom.dcmread(path)
        k = len(sources) - 1 - n
        ds.ImageOrientationPatient = [round(float(v), 6) for v in (*row, *col)]
        ds.ImagePositionPatient = [round(float(v), 4) for v in (
            np.array([10.0, -20.0, 30.0]) + k * 3.27 * normal)]
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = n + 1
        ds.save_as(out / f"{n:06d}.dcm")
    return out


def test_oblique_reversed_series_reads_back_to_the_same_masks(tmp_path):
    from mskai.results.dicom_seg import export_result_dicom_seg

    series = oblique_reversed_series(tmp_path)
    image = read_series(series)
    assert not np.allclose(image.direction, np.eye(3), atol=0.1)
    files = image.metadata["dicom_files"]
    assert [f.name for f in map(Path, files)] == [f"{n:06d}.dcm" for n in range(4, -1, -1)]
    tumour = ball(image, (80, 70, 1), 6.0)
    margin = ball(image, (60, 90, 3), 4.0)
    result = Result("TumorSeg", image, Provenance("test"),
                    [Segment("tumor", tumour, 1), Segment("safety_margin", margin, 2)])
    path = export_result_dicom_seg(result, tmp_path / "seg.dcm")
    seg, segments = read_back(path, image)
    assert [item.TrackingID for item, _ in segments.values()] == ["tumor", "safety_margin"]
    assert np.array_equal(segments[1][1], tumour)
    assert np.array_equal(segments[2][1], margin)
    orientation = seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
    assert np.allclose([float(v) for v in orientation.ImageOrientationPatient],
                       np.ravel(image.direction[:, :2].T), atol=1e-5)
    assert dciodvfy_errors(path) == []


def test_a_folder_with_two_series_uses_only_the_chosen_one(ct, tmp_path):
    """``--series UID``: the SEG references the files of that series, not the whole folder."""
    folder = tmp_path / "two"
    shutil.copytree(SERIES, folder)
    oblique = oblique_reversed_series(tmp_path)
    for path in oblique.iterdir():
        shutil.copy(path, folder / f"other_{path.name}")
    from mskai.image import read_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = read_image(folder, series_uid=ct.metadata["series_instance_uid"])
    result = Result("TumorSeg", image, Provenance("test"),
                    [Segment("tumor", ball(image, (80, 70, 2), 6.0), 1)])
    path = dicom_seg.write_dicom_outputs(result, tmp_path / DICOM_SEG_FILE)["seg"]
    assert np.array_equal(read_back(path, image)[1][1][1], result.segments[0].mask)


def test_require_dicom_input_accepts_folders_and_dicom_files():
    dicom_seg.require_dicom_input(SERIES)
    dicom_seg.require_dicom_input(next(SERIES.iterdir()))
    with pytest.raises(InputError, match="needs a DICOM series"):
        dicom_seg.require_dicom_input(NIFTI)


# ----- the TumorSeg module ---------------------------------------------------------------
def test_tumorseg_export_writes_the_seg_and_the_sr_through_the_same_writer(mrml, ct, tmp_path,
                                                                          monkeypatch):
    if str(REPO / "TumorSeg") not in sys.path:
        sys.path.insert(0, str(REPO / "TumorSeg"))
    from TumorSegLib.exports import DICOM_SOURCE_ATTRIBUTE
    from TumorSegLib.logic import TumorSegLogic

    from mskai.slicer_io import apply_result, volume_to_node

    volume_node = volume_to_node(mrml.scene, ct, "STS_002 CT")
    volume_node.SetAttribute(DICOM_SOURCE_ATTRIBUTE, str(SERIES))
    tumour = ball(ct, (80, 70, 2), 6.0)
    result = Result("TumorSeg", ct, Provenance("test"), [Segment("tumor", tumour, 1)])
    node = apply_result(mrml.scene, result, reference_node=volume_node).node
    logic = TumorSegLogic(mrml.scene)

    written = []
    real = dicom_seg.write_dicom_outputs
    monkeypatch.setattr(dicom_seg, "write_dicom_outputs",
                        lambda *a, **k: written.append(a) or real(*a, **k))
    paths = logic.exportDicom(volume_node, node, tmp_path)
    assert written, "the module must write through mskai.results.dicom_seg"
    assert paths[0] == tmp_path / DICOM_SEG_FILE
    assert (tmp_path / DICOM_SR_FILE in paths) == (dicom_seg.dicom_sr_writer() is not None)
    seg, segments = read_back(paths[0], ct)
    assert segments[1][0].TrackingID == "tumor"
    assert np.array_equal(segments[1][1], tumour)
    assert seg.FrameOfReferenceUID == headers([next(SERIES.iterdir())])[0].FrameOfReferenceUID
    assert [e for p in paths for e in dciodvfy_errors(p)] == []

    def fake_writer(result, seg, source_images, path):
        assert [s.id for s in result.segments] == ["tumor"]
        assert "volume_ml" in result.segments[0].measurements  # measured, as the table
        Path(path).write_bytes(b"SR")

    monkeypatch.setattr(dicom_seg, "dicom_sr_writer", lambda: fake_writer)
    paths = logic.exportDicom(volume_node, node, tmp_path / "with_sr")
    assert [p.name for p in paths] == [DICOM_SEG_FILE, DICOM_SR_FILE]
    assert (tmp_path / "with_sr" / DICOM_SR_FILE).read_bytes() == b"SR"

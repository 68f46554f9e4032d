"""DICOM SR (TID 1500 Measurement Report) of a result on a real CT series (STS_002, 5 slices):
codes and UCUM units per measurement, groups per SEG segment, references to the SEG and the
source series, dciodvfy validation, and a highdicom round trip to the same values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from dicom_samples import PROVENANCE, SERIES, ball, read_series
from dicom_validation import dciodvfy_errors, dciodvfy_report

from mskai.segments import Result, Segment

hd = pytest.importorskip("highdicom")



@pytest.fixture(scope="module")
def series():
    """The CT volume as mskai reads it, and its source datasets in slice (k) order."""
    import pydicom

    volume = read_series()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom: an over-long SH value in the source
        datasets = [pydicom.dcmread(p) for p in sorted(SERIES.iterdir())]
    lps = volume.ijk_to_lps()
    k_of = [int(round(np.linalg.solve(lps[:3, :3], np.asarray(ds.ImagePositionPatient, float)
                                      - volume.origin)[2])) for ds in datasets]
    return volume, [ds for _, ds in sorted(zip(k_of, datasets, strict=True),
                                           key=lambda pair: pair[0])]




def make_result(volume) -> Result:
    """A tumour result (shape, RECIST, margin) plus, to cover every group the SR writes, a
    cartilage plate with thickness, subregions and T2, joint space width, a fracture and
    radiomics features."""
    from mskai.measure import recist_axes, shape_measurements

    tumor = ball(volume, (80, 70, 2), 6.0)
    margin = ball(volume, (80, 70, 2), 11.0) & ~tumor
    plate = ball(volume, (40, 40, 2), 4.0)
    tumor_seg = Segment("tumor", tumor, 1, measurements=shape_measurements(
        tumor, volume, intensity=volume.array))
    axes = recist_axes(tumor, volume)
    tumor_seg.measurements.update(recist_long_axis_mm=axes["long_axis_mm"],
                                  recist_short_axis_mm=axes["short_axis_mm"])
    cartilage = Segment("femoral_cartilage", plate, 3, measurements={
        "mean_thickness_mm": 2.25, "median_thickness_mm": 2.1, "sd_thickness_mm": 0.4,
        "max_thickness_mm": 3.6, "thickness_method": "nearest", "area_mm2": 812.5,
        "thickness_points": 1200, "denuded_area_fraction": 0.01,
        "subregions": [{"name": "central_medial", "area_mm2": 200.0,
                        "mean_thickness_mm": 2.4, "denuded_area_fraction": 0.0},
                       {"name": "trochlea", "area_mm2": 150.0, "mean_thickness_mm": None,
                        "denuded_area_fraction": None}],
        "t2": {"mean_t2_ms": 35.5, "median_t2_ms": 34.0, "sd_t2_ms": 6.25, "n_voxels": 900,
               "rejected_fraction": 0.05}})
    features = {"original_shape_MeshVolume": 900.5, "original_shape_Maximum2DDiameterRow": 12.5,
                "original_firstorder_Mean": 41.25, "original_firstorder_Kurtosis": 3.5,
                "original_glcm_MCC": 0.5, "original_glcm_JointAverage": 7.75}
    return Result("TumorSeg", volume, PROVENANCE,
                  [tumor_seg, Segment("safety_margin", margin, 2), cartilage],
                  measurements={
                      "margin": {"margin_mm": 5.0, "min_distance_to_bone_mm": 7.5,
                                 "bone_within_margin": False},
                      "joint_space_width_mm": {"min": 3.25, "medial": 3.25, "lateral": 4.5,
                                               "medial_mean": 5.0, "lateral_mean": None},
                      "fractures": [{"position_ras": [1.0, 2.0, 3.0], "score": 0.75,
                                     "bone": "bone", "fragments": ["bone_fragment_1"],
                                     "displacement_mm": 2.5, "angulation_deg": 12.0,
                                     "gap_mm": 1.5, "score_terms": {"gap": 0.5}}],
                      "features": features,
                      "feature_standard": {"ibsi_values": {"morph_volume": 900.5,
                                                           "stat_mean": 41.25,
                                                           "stat_kurt": 0.5,
                                                           "cm_joint_avg_3D_avg": 7.75}}})


def make_seg(result, datasets):
    """The DICOM SEG of ``result`` built with highdicom (one frame per source slice)."""
    from pydicom.sr.codedict import codes

    from mskai.terminology import segment_type

    ids = [s.id for s in result.segments]
    pixels = np.stack([result.segment(s).mask for s in ids], axis=-1).astype(np.uint8)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="mskai", family=codes.cid7162.ArtificialIntelligence, version="1")
    descriptions = []
    for number, seg_id in enumerate(ids, start=1):
        kind = segment_type(seg_id)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=kind.name,
            segmented_property_category=hd.sr.CodedConcept(*kind.category),
            segmented_property_type=hd.sr.CodedConcept(*kind.type),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm, tracking_uid=hd.UID(), tracking_id=seg_id))
    return hd.seg.Segmentation(
        source_images=datasets, pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=300,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="MSK AI",
        manufacturer_model_name="mskai", software_versions="test", device_serial_number="1")


@pytest.fixture(scope="module")
def written(series, tmp_path_factory):
    from mskai.results.dicom_sr import write_dicom_sr

    volume, datasets = series
    result = make_result(volume)
    seg = make_seg(result, datasets)
    folder = tmp_path_factory.mktemp("sr")
    seg.save_as(folder / "segmentation.dcm")
    path = folder / "measurements_sr.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sr = write_dicom_sr(result, seg, datasets, path)
    return result, seg, datasets, sr, path


def test_sr_reads_back_with_the_same_values_units_and_codes(written):
    from mskai.measurement_codes import quantity
    from mskai.results.dicom_sr import read_dicom_sr, sr_rows
    from mskai.results.tables import measurements_document

    result, seg, _, _, path = written
    document = measurements_document(result)
    expected = sr_rows(document)
    read = read_dicom_sr(path)
    assert len(read) == len(expected)

    def key(row):
        derivation = row["derivation"][0] if row["derivation"] else None
        return row["tracking_id"], row["code"][1], row["code"][0], derivation

    by_key = {key(r): r for r in read}
    assert len(by_key) == len(read), "two NUMs of one group share concept and derivation"
    for row in expected:
        got = by_key[key(row)]
        assert got["unit"] == row["unit"], row["path"]
        assert math.isclose(got["value"], row["value"], rel_tol=1e-9), row["path"]
    tumour = document["segments"][0]
    numbers = {s.TrackingID: int(s.SegmentNumber) for s in seg.SegmentSequence}
    for path_key, unit in (("volume_ml", "mL"), ("surface_area_mm2", "mm2"),
                           ("max_diameter_mm", "mm"), ("recist_long_axis_mm", "mm"),
                           ("sphericity", "1"), ("mean_intensity", "[hnsf'U]")):
        q = quantity(f"segments[].{path_key}", "CT")
        got = by_key[("tumor", q.code[1], q.code[0], None)]
        assert got["unit"] == unit and got["segment_number"] == numbers["tumor"]
        assert math.isclose(got["value"], tumour[path_key], rel_tol=1e-9)
    volume = by_key[("tumor", "SCT", "118565006", None)]
    assert volume["code"] == ("118565006", "SCT", "Volume")
    # statistics of one quantity: one concept, told apart by the derivation
    thickness = {r["derivation"][2]: r["value"] for r in read
                 if r["tracking_id"] == "femoral_cartilage" and r["code"][0] == "CARTTHICK"}
    assert thickness == {"Mean": 2.25, "Median": 2.1, "Standard Deviation": 0.4,
                         "Maximum": 3.6}
    t2 = {r["derivation"][2]: (r["value"], r["unit"]) for r in read
          if r["tracking_id"] == "femoral_cartilage" and r["code"][:2] == ("113065", "DCM")}
    assert t2 == {"Mean": (35.5, "ms"), "Median": (34.0, "ms"),
                  "Standard Deviation": (6.25, "ms")}


def test_sr_groups_follow_the_seg_segments_and_the_other_findings(written):
    from mskai.measurement_codes import pyradiomics_code
    from mskai.results.dicom_sr import read_dicom_sr

    _, seg, _, _, path = written
    read = read_dicom_sr(path)
    numbers = {s.TrackingID: int(s.SegmentNumber) for s in seg.SegmentSequence}
    groups = {}
    for row in read:
        groups.setdefault(row["tracking_id"], set()).add(row["segment_number"])
    assert groups == {
        "tumor": {numbers["tumor"]}, "safety_margin": {numbers["safety_margin"]},
        "femoral_cartilage": {numbers["femoral_cartilage"]},
        "tumor:radiomics": {numbers["tumor"]},
        "femoral_cartilage/central_medial": {None}, "femoral_cartilage/trochlea": {None},
        "joint_space_width": {None}, "fracture_1": {None}}
    radiomics = {r["code"]: r["value"] for r in read if r["tracking_id"] == "tumor:radiomics"}
    # IBSI codes carry the IBSI definition (excess kurtosis), pyradiomics-only features 99MSKAI
    assert radiomics[("IPH6", "IBSI", "Kurtosis")] == 0.5
    assert radiomics[("RNU0", "IBSI", "Volume (mesh)")] == 900.5
    assert radiomics[pyradiomics_code("original_glcm_MCC")] == 0.5
    assert radiomics[pyradiomics_code("original_shape_Maximum2DDiameterRow")] == 12.5
    assert pyradiomics_code("original_firstorder_Kurtosis") not in radiomics
    trochlea = [r for r in read if r["tracking_id"] == "femoral_cartilage/trochlea"]
    assert [(r["code"][0], r["value"]) for r in trochlea] == [("CBIAREA", 150.0)]  # no nulls
    fracture = {r["code"][0]: (r["value"], r["unit"]) for r in read
                if r["tracking_id"] == "fracture_1"}
    assert fracture["FXANGULATION"] == (12.0, "deg")
    assert fracture["FXDISPLACEMENT"] == (2.5, "mm")


def test_sr_references_the_seg_and_the_source_series_and_carries_their_uids(written):
    import pydicom

    _, seg, datasets, sr, path = written
    ds = pydicom.dcmread(path)
    source = datasets[0]
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert ds.StudyInstanceUID == source.StudyInstanceUID == seg.StudyInstanceUID
    assert ds.PatientID == source.PatientID
    assert ds.SeriesInstanceUID not in (source.SeriesInstanceUID, seg.SeriesInstanceUID)
    evidence = {item.SeriesInstanceUID: {r.ReferencedSOPInstanceUID
                                         for r in item.ReferencedSOPSequence}
                for study in ds.CurrentRequestedProcedureEvidenceSequence
                for item in study.ReferencedSeriesSequence}
    assert evidence[seg.SeriesInstanceUID] == {seg.SOPInstanceUID}
    assert evidence[source.SeriesInstanceUID] == {d.SOPInstanceUID for d in datasets}
    text = str(ds)
    assert source.FrameOfReferenceUID in text  # image library: the source frame of reference
    assert isinstance(sr, hd.sr.Comprehensive3DSR)
    groups = hd.sr.srread(path).content.get_volumetric_roi_measurement_groups()
    tumour = next(g for g in groups if str(g.tracking_identifier) == "tumor")
    ref = tumour.referenced_segment
    assert ref.referenced_segment_numbers == [next(int(s.SegmentNumber) for s in seg.SegmentSequence
                                               if s.TrackingID == "tumor")]
    segment_item = next(s for s in seg.SegmentSequence if s.TrackingID == "tumor")
    assert tumour.tracking_uid == segment_item.TrackingUID
    assert ref.referenced_sop_instance_uid == seg.SOPInstanceUID
    assert ref.referenced_sop_class_uid == seg.SOPClassUID
    if ref.source_series_for_segmentation is not None:
        assert ref.source_series_for_segmentation.value == source.SeriesInstanceUID
    else:  # the source images the segment was drawn on
        images = {i.referenced_sop_instance_uid for i in ref.source_images_for_segmentation}
        assert images and images <= {d.SOPInstanceUID for d in datasets}
    schemes = {item.CodingSchemeDesignator for item in ds.CodingSchemeIdentificationSequence}
    assert {"99MSKAI", "IBSI"} <= schemes


def test_sr_validates_with_dciodvfy(written):
    _, _, _, _, path = written
    output = dciodvfy_report(path)
    assert "Comprehensive3DSR" in output  # dciodvfy recognised the IOD
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert not errors, output


def test_a_seg_with_one_segment_is_referenced_too(series, tmp_path):
    """highdicom keeps a lone segment's identification in the shared functional groups."""
    from mskai.results.dicom_sr import read_dicom_sr, write_dicom_sr

    volume, datasets = series
    full = make_result(volume)
    result = Result("Radiomics", volume, PROVENANCE, [full.segment("tumor")],
                    measurements={k: full.measurements[k]
                                  for k in ("features", "feature_standard")})
    seg = make_seg(result, datasets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dicom_sr(result, seg, datasets, tmp_path / "sr.dcm")
    rows = read_dicom_sr(tmp_path / "sr.dcm")
    assert {(r["tracking_id"], r["segment_number"]) for r in rows} == {
        ("tumor", 1), ("tumor:radiomics", 1)}
    assert dciodvfy_errors(tmp_path / "sr.dcm") == []

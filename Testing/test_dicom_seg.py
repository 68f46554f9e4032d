"""DICOM SEG export on a real CT series (STS_002, 5 slices): segments, SNOMED codes,
algorithm identification, frames and geometry against the source series; refusals."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from dicom_samples import PROVENANCE, SERIES, ball, read_series

from mskai.errors import InputError
from mskai.segments import STATUS_EDITED, Result, Segment

pytest.importorskip("highdicom")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ct():
    return read_series()




def tumour_result(ct):
    tumour = ball(ct, (80, 70, 2), 6.0)
    margin = ball(ct, (80, 70, 2), 11.0)
    empty = np.zeros_like(tumour)
    return Result("TumorSeg", ct, PROVENANCE,
                  [Segment("tumor", tumour, 1, status=STATUS_EDITED),
                   Segment("safety_margin", margin, 2), Segment("bone", empty, 3)])


def read_back(path, n_slices):
    """Per segment number: the mask rebuilt from frames, placed by ImagePositionPatient."""
    import pydicom

    from mskai.results.dicom_seg import read_source_series

    seg = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sources = read_source_series(sorted(SERIES.iterdir()))
    z_of = {round(float(ds.ImagePositionPatient[2]), 3): ds for ds in sources}
    zs = sorted(z_of)
    pixels = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
    masks: dict[int, np.ndarray] = {}
    for frame, item in zip(pixels, seg.PerFrameFunctionalGroupsSequence, strict=True):
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        position = item.PlanePositionSequence[0].ImagePositionPatient
        z = round(float(position[2]), 3)
        source = z_of[z]  # KeyError: a frame that lies on no source slice
        assert np.allclose([float(v) for v in position], source.ImagePositionPatient,
                           atol=1e-3)
        ref = item.DerivationImageSequence[0].SourceImageSequence[0]
        assert ref.ReferencedSOPInstanceUID == source.SOPInstanceUID
        mask = masks.setdefault(number, np.zeros((n_slices, seg.Rows, seg.Columns), bool))
        mask[zs.index(z)] = frame > 0
    return seg, masks


def test_result_as_dicom_seg_reopens_with_codes_and_geometry(ct, tmp_path):
    from mskai.results.dicom_seg import export_result_dicom_seg

    result = tumour_result(ct)
    path = export_result_dicom_seg(result, tmp_path / "seg.dcm")  # source: image's folder
    seg, masks = read_back(path, ct.size[2])

    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert len(seg.SegmentSequence) == 2  # the empty bone segment is left out
    tumour, margin = seg.SegmentSequence
    assert tumour.SegmentLabel == "Tumor" and tumour.TrackingID == "tumor"
    assert tumour.SegmentedPropertyTypeCodeSequence[0].CodeValue == "108369006"
    assert tumour.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert tumour.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert margin.SegmentedPropertyTypeCodeSequence[0].CodeValue == "228793007"
    assert tumour.SegmentAlgorithmType == "MANUAL"  # edited by hand
    assert margin.SegmentAlgorithmType == "AUTOMATIC"  # made by a model
    algorithm = margin.SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "mskai-tumor" and algorithm.AlgorithmVersion == "1.2"

    expected = {1: result.segments[0].mask, 2: result.segments[1].mask}
    slices_with_voxels = sum(int(m.any(axis=(1, 2)).sum()) for m in expected.values())
    assert int(seg.NumberOfFrames) == slices_with_voxels
    for number, mask in expected.items():
        assert np.array_equal(masks[number], mask)

    source = next(SERIES.iterdir())
    import pydicom

    header = pydicom.dcmread(source, stop_before_pixels=True)
    assert seg.StudyInstanceUID == header.StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == header.SeriesInstanceUID
    assert seg.PatientID == header.PatientID
    spacing = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    assert np.allclose([float(v) for v in spacing], header.PixelSpacing)


def test_image_not_from_dicom_is_refused(ct, tmp_path):
    from mskai.results.dicom_seg import export_result_dicom_seg

    result = tumour_result(ct)
    result.image = ct.with_array(ct.array)
    result.image.path, result.image.metadata = "lesion.nrrd", {}
    with pytest.raises(InputError, match="did not come from a DICOM series"):
        export_result_dicom_seg(result, tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_a_mask_on_another_grid_is_refused(ct, tmp_path):
    from mskai.results.dicom_seg import write_dicom_seg

    shifted = ct.with_array(ct.array)
    shifted.origin = (ct.origin[0], ct.origin[1], ct.origin[2] + 1.0)
    mask = ball(ct, (80, 70, 2), 6.0)
    with pytest.raises(InputError, match="does not lie on the segmentation grid"):
        write_dicom_seg({"tumor": mask}, shifted, tmp_path / "seg.dcm", SERIES)
    with pytest.raises(InputError, match="nothing to export"):
        write_dicom_seg({"tumor": np.zeros_like(mask)}, ct, tmp_path / "seg.dcm", SERIES)


def test_module_exports_dicom_seg_of_the_segmentation_node(mrml, ct, tmp_path):
    if str(REPO / "TumorSeg") not in sys.path:
        sys.path.insert(0, str(REPO / "TumorSeg"))
    from TumorSegLib.exports import DICOM_SOURCE_ATTRIBUTE
    from TumorSegLib.logic import TumorSegLogic

    from mskai.slicer_io import apply_result, volume_to_node

    volume_node = volume_to_node(mrml.scene, ct, "STS_002 CT")
    result = tumour_result(ct)
    node = apply_result(mrml.scene, result, reference_node=volume_node).node
    logic = TumorSegLogic(mrml.scene)
    with pytest.raises(InputError, match="did not come from DICOM"):
        logic.exportDicomSeg(volume_node, node, tmp_path / "seg.dcm")

    volume_node.SetAttribute(DICOM_SOURCE_ATTRIBUTE, str(SERIES))
    path = logic.exportDicomSeg(volume_node, node, tmp_path / "seg.dcm")
    seg, masks = read_back(path, ct.size[2])
    assert [s.TrackingID for s in seg.SegmentSequence] == ["tumor", "safety_margin"]
    assert np.array_equal(masks[1], result.segments[0].mask)
    assert np.array_equal(masks[2], result.segments[1].mask)

    uids = volume_node.GetAttribute(DICOM_SOURCE_ATTRIBUTE)
    volume_node.RemoveAttribute(DICOM_SOURCE_ATTRIBUTE)
    files = {}
    import pydicom

    for file in SERIES.iterdir():
        files[pydicom.dcmread(file, stop_before_pixels=True).SOPInstanceUID] = str(file)
    volume_node.SetAttribute("DICOM.instanceUIDs", " ".join(files))
    assert uids
    path = logic.exportDicomSeg(volume_node, node, tmp_path / "seg2.dcm",
                                fileForInstance=files.get)
    assert read_back(path, ct.size[2])[0].NumberOfFrames == seg.NumberOfFrames

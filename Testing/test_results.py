"""The output folder (CONTRACT.md): seg.nrrd read back by Slicer and SimpleITK, JSON, CSV,
self-contained HTML report, and STL/OBJ surfaces — on an oblique, anisotropic grid with
overlapping segments (a safety margin that contains the tumour)."""

from __future__ import annotations

import base64
import csv
import json

import numpy as np
import pytest
from test_shape import CENTRE_LPS, ellipsoid_mask

from mskai.errors import InputError
from mskai.measure import recist_axes, shape_measurements
from mskai.measure.mesh import mask_to_mesh, mesh_volume_mm3
from mskai.results import export_surfaces, write_results
from mskai.results.segnrrd import read_seg_nrrd
from mskai.results.surfaces import read_stl
from mskai.segments import Provenance, Result, Segment
from phantoms.grid import make_grid, oblique_direction, physical_points

EXTRA_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
TUMOR_AXES = (9.0, 7.0, 5.0)


def make_result() -> Result:
    image = make_grid((44, 40, 24), (0.8, 1.0, 1.5), oblique_direction(25),
                      center_lps=CENTRE_LPS)
    tumor = ellipsoid_mask(image, TUMOR_AXES)
    margin = ellipsoid_mask(image, (14.0, 12.0, 10.0))
    image.array[:] = 100 + 200 * tumor - physical_points(image)[..., 2]
    image.modality, image.path = "MR", "/data/knee.nrrd"
    tumor_seg = Segment("tumor", tumor, 1)
    tumor_seg.measurements = {**shape_measurements(tumor, image, image)}
    recist = recist_axes(tumor, image)
    tumor_seg.measurements.update(recist_long_axis_mm=recist["long_axis_mm"],
                                  recist_short_axis_mm=recist["short_axis_mm"])
    return Result("TumorSeg", image, Provenance("seeded region growing", model_id="demo-unet",
                                                model_version="1", model_sha256="ab" * 32),
                  segments=[tumor_seg, Segment("safety_margin", margin, 2)],
                  measurements={"margin": {"margin_mm": 5.0, "min_distance_to_bone_mm": None,
                                           "bone_within_margin": False}},
                  warnings=["demo data"])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    (out / "notes.txt").write_text("mine")
    result = make_result()
    paths = write_results(result, out, figures=[("Thickness map", EXTRA_PNG)])
    return result, out, paths


def test_all_contract_files_are_written_and_other_files_untouched(written):
    _, out, paths = written
    assert {p.name for p in paths.values()} == {"segmentation.seg.nrrd", "measurements.json",
                                                "measurements.csv", "measurement_units.csv",
                                                "report.html"}
    assert all(p.parent == out and p.is_file() for p in paths.values())
    assert (out / "notes.txt").read_text() == "mine"


def test_seg_nrrd_loads_in_slicer_with_names_labels_layers_geometry_and_voxels(written):
    slicer = pytest.importorskip("slicer")
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    result, _, paths = written
    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(paths["segmentation"]))
    assert storage.ReadData(node)
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 2
    for seg in result.segments:
        loaded = segmentation.GetSegment(seg.id)
        assert (loaded.GetName(), loaded.GetLabelValue()) == (seg.name, seg.label)
        assert np.allclose(loaded.GetColor(), seg.color, atol=1e-5)
        labelmap = loaded.GetRepresentation("Binary labelmap")
        voxels = vtk_to_numpy(labelmap.GetPointData().GetScalars())
        assert int((voxels == seg.label).sum()) == int(seg.mask.sum())
        matrix = vtk.vtkMatrix4x4()
        labelmap.GetImageToWorldMatrix(matrix)
        ijk_to_ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
        assert np.allclose(ijk_to_ras, result.image.ijk_to_ras(), atol=1e-6)
        tag = vtk.reference("")
        loaded.GetTag("TerminologyEntry", tag)
        assert "SCT^" in tag.get()
        loaded.GetTag("MSKAI.ModelId", tag)
        assert tag.get() == "demo-unet"
    layers = {segmentation.GetLayerIndex(s.id) for s in result.segments}
    assert layers == {0, 1}  # the margin overlaps the tumour, so it needs its own layer


def test_seg_nrrd_reads_in_simpleitk_on_the_image_geometry(written):
    import SimpleITK as sitk

    result, _, paths = written
    img = sitk.ReadImage(str(paths["segmentation"]))
    assert img.GetNumberOfComponentsPerPixel() == 2  # two layers
    assert np.allclose(img.GetSpacing(), result.image.spacing)
    assert np.allclose(img.GetOrigin(), result.image.origin)
    assert np.allclose(np.reshape(img.GetDirection(), (3, 3)), result.image.direction)
    layers = sitk.GetArrayFromImage(img)
    assert (layers[..., 0] == 1).sum() == result.segment("tumor").mask.sum()
    assert (layers[..., 1] == 2).sum() == result.segment("safety_margin").mask.sum()


def test_seg_nrrd_round_trips_through_read_seg_nrrd(written):
    result, _, paths = written
    grid, records = read_seg_nrrd(paths["segmentation"])
    assert grid.same_geometry(result.image)
    for seg, record in zip(result.segments, records, strict=True):
        assert (record.id, record.name, record.label) == (seg.id, seg.name, seg.label)
        assert np.array_equal(record.mask, seg.mask)
        assert record.tags["MSKAI.Method"] == "seeded region growing"


def test_measurements_json_follows_the_contract(written):
    result, _, paths = written
    doc = json.loads(paths["json"].read_text())
    assert doc["schema"] == "mskai.measurements/1" and doc["module"] == "TumorSeg"
    assert doc["image"] == {"path": "/data/knee.nrrd", "modality": "MR", "size": [44, 40, 24],
                            "spacing_mm": [0.8, 1.0, 1.5]}
    assert doc["provenance"]["model"] == {"id": "demo-unet", "version": "1",
                                          "sha256": "ab" * 32}
    assert doc["margin"]["bone_within_margin"] is False and doc["warnings"] == ["demo data"]
    tumor, margin = doc["segments"]
    assert list(tumor)[:8] == ["id", "name", "label", "volume_ml", "surface_area_mm2",
                               "max_diameter_mm", "centroid_ras", "volume_surface_ml"]
    assert tumor["recist_long_axis_mm"] == pytest.approx(18.0, abs=1.6)
    assert tumor["volume_ml"] == pytest.approx(4 / 3 * np.pi * np.prod(TUMOR_AXES) / 1000,
                                               rel=0.05)
    # the margin carried no measurements: the writer computed the contract keys
    assert margin["volume_ml"] == pytest.approx(
        result.segment("safety_margin").mask.sum() * result.image.voxel_volume_mm3 / 1000)
    assert len(margin["centroid_ras"]) == 3 and margin["max_diameter_mm"] > 0


def test_measurements_csv_has_one_row_per_segment(written):
    result, _, paths = written
    with paths["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == [s.id for s in result.segments]
    tumor = result.segment("tumor").measurements
    assert float(rows[0]["volume_ml"]) == pytest.approx(tumor["volume_ml"])
    assert float(rows[0]["centroid_ras_s"]) == pytest.approx(tumor["centroid_ras"][2])
    assert rows[1]["recist_long_axis_mm"] == ""  # not measured on the margin


def test_report_is_self_contained_with_figures_and_values(written):
    result, _, paths = written
    page = paths["report"].read_text()
    assert page.count("data:image/png;base64,") == 5  # 3 slices, 3D view, 1 extra figure
    assert "src=\"http" not in page and "<script" not in page
    first = page.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(first).startswith(b"\x89PNG")
    for plane in ("Axial", "Coronal", "Sagittal", "3D surfaces", "Thickness map"):
        assert plane in page
    tumor = result.segment("tumor").measurements
    assert f"{tumor['volume_ml']:.2f}" in page and f"{tumor['max_diameter_mm']:.2f}" in page
    assert "demo-unet" in page and "Warning: demo data" in page


def test_stl_surfaces_parse_and_enclose_the_segment_volume(written, tmp_path):
    result, _, _ = written
    paths = export_surfaces(result, tmp_path, "stl", segment_ids=["tumor"])
    assert [p.name for p in paths] == ["tumor.stl"]
    verts, faces = read_stl(paths[0])
    mesh = mask_to_mesh(result.segment("tumor").mask, result.image, smooth=True)
    assert mesh_volume_mm3(verts, faces) == pytest.approx(mesh_volume_mm3(*mesh), rel=1e-4)
    assert mesh_volume_mm3(verts, faces) == pytest.approx(
        4 / 3 * np.pi * np.prod(TUMOR_AXES), rel=0.05)
    centre_ras = np.array([-CENTRE_LPS[0], -CENTRE_LPS[1], CENTRE_LPS[2]])
    assert np.allclose(verts.mean(0), centre_ras, atol=1.0)  # RAS, not LPS


def test_obj_surfaces_list_vertices_and_faces_for_every_segment(written, tmp_path):
    result, _, _ = written
    paths = export_surfaces(result, tmp_path, "obj")
    assert [p.name for p in paths] == ["tumor.obj", "safety_margin.obj"]
    lines = paths[0].read_text().splitlines()
    faces = np.array([[int(v) for v in ln.split()[1:]] for ln in lines if ln.startswith("f ")])
    n_verts = sum(ln.startswith("v ") for ln in lines)
    assert faces.min() == 1 and faces.max() == n_verts


def test_unknown_surface_format_or_segment_is_an_input_error(written, tmp_path):
    result, _, _ = written
    with pytest.raises(InputError, match="format"):
        export_surfaces(result, tmp_path, "ply")
    with pytest.raises(InputError, match="no segment"):
        export_surfaces(result, tmp_path, "stl", segment_ids=["femur"])


def test_matplotlib_3d_fallback_and_empty_segments_still_write_a_report(tmp_path):
    result = make_result()
    result.segments.append(Segment("bone", np.zeros(result.image.array.shape, bool), 3))
    paths = write_results(result, tmp_path / "new" / "folder", render_3d=False)
    doc = json.loads(paths["json"].read_text())
    assert doc["segments"][2]["volume_ml"] == 0.0
    assert doc["segments"][2]["max_diameter_mm"] is None
    page = paths["report"].read_text()
    assert "3D surfaces (matplotlib" in page and page.count("data:image/png;base64,") == 4

"""Existing segmentations (label maps, Slicer .seg.nrrd) become boolean masks on the image grid."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.image import read_image, write_image
from mskai.labels import canonical_id, parse_label_names, read_labels, read_seg_nrrd
from mskai.volume import Volume
from phantoms.grid import make_grid, oblique_direction

KNEE_FILE = "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
# pymskt's label convention (shared/data/pymskt_knee/SOURCE.txt).
KNEE_NAMES = ("femoral_cartilage=1,medial_tibial_cartilage=2,lateral_tibial_cartilage=3,"
              "patellar_cartilage=4,femur=5,tibia=6,patella=7,fibula=8")
FEMORAL_CARTILAGE_ML = 11.8  # SOURCE.txt, rounded to 0.1 mL


# ----- parse_label_names ------------------------------------------------------------------
def test_label_names_parse_into_canonical_ids_and_values():
    assert parse_label_names("femur=1,femoral_cartilage=2") == {"femur": 1,
                                                                "femoral_cartilage": 2}
    assert parse_label_names(" Femoral Cartilage = 2 , tibia=3,") == {"femoral_cartilage": 2,
                                                                     "tibia": 3}


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("femur", "is not NAME=VALUE"),
    ("=3", "is not NAME=VALUE"),
    ("femur=one", "must be a whole number"),
    ("femur=1.5", "must be a whole number"),
    ("femur=0", "must be positive"),
    ("femur=1,tibia=1", "gives label value 1 to both 'femur' and 'tibia'"),
    ("femur=1,Femur=2", "gives 'femur' twice"),
])
def test_malformed_label_names_are_explained(text, message):
    with pytest.raises(InputError, match=message):
        parse_label_names(text)


def test_canonical_ids_are_lower_case_with_underscores():
    assert canonical_id("Medial Tibial  cartilage") == "medial_tibial_cartilage"
    assert canonical_id("bone-fragment 2") == "bone_fragment_2"


# ----- plain label maps -------------------------------------------------------------------
@pytest.fixture(scope="module")
def knee(test_data) -> Volume:
    return read_image(test_data / "knee" / KNEE_FILE)


def test_knee_label_map_gives_one_mask_per_named_structure(knee, test_data):
    masks = read_labels(test_data / "knee" / KNEE_FILE, knee, parse_label_names(KNEE_NAMES))
    assert list(masks) == ["femoral_cartilage", "medial_tibial_cartilage",
                           "lateral_tibial_cartilage", "patellar_cartilage", "femur", "tibia",
                           "patella", "fibula"]
    for name, value in parse_label_names(KNEE_NAMES).items():
        np.testing.assert_array_equal(masks[name], knee.array == value)
    volume_ml = masks["femoral_cartilage"].sum() * knee.voxel_volume_mm3 / 1000
    assert volume_ml == pytest.approx(FEMORAL_CARTILAGE_ML, abs=0.05)


def test_missing_label_values_are_named_with_the_values_present(knee, test_data):
    with pytest.raises(InputError, match=r"no voxels with label value\(s\) meniscus=11; the "
                                         r"values present are 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"):
        read_labels(test_data / "knee" / KNEE_FILE, knee, {"femur": 5, "meniscus": 11})


def test_label_map_without_names_asks_for_label_names(knee, test_data):
    with pytest.raises(InputError, match="has no segment names; give --label-names"):
        read_labels(test_data / "knee" / KNEE_FILE, knee, None)


def test_expert_tumour_mask_reads_on_its_ct(test_data):
    ct = read_image(test_data / "sts_sarcoma" / "STS_002_CT_image.nii.gz")
    mask = read_labels(test_data / "sts_sarcoma" / "STS_002_CT_mask.nii.gz", ct, {"tumor": 1})
    assert mask["tumor"].shape == ct.array.shape and mask["tumor"].dtype == bool
    assert mask["tumor"].sum() > 1000


def test_probability_map_is_not_a_label_map(tmp_path):
    image = make_grid((6, 6, 6), (1.0, 1.0, 1.0))
    image.array[:] = 0.25
    path = write_image(image, tmp_path / "prob.nrrd")
    with pytest.raises(InputError, match="fractional values"):
        read_labels(path, image, {"tumor": 1})


def test_missing_labels_file_is_reported(tmp_path):
    with pytest.raises(InputError, match="labels file .* does not exist"):
        read_labels(tmp_path / "none.seg.nrrd", make_grid((4, 4, 4), (1.0, 1.0, 1.0)))


# ----- Slicer .seg.nrrd -------------------------------------------------------------------
SEGMENTS = [("Femur", 1, 0, (2, 7, 3, 9, 1, 5)),          # name, label, layer, i0 i1 j0 j1 k0 k1
            ("Tibial cartilage", 2, 0, (5, 9, 5, 9, 5, 9))]


def reference_grid() -> Volume:
    """Oblique, anisotropic image grid, as for a sagittal knee MRI."""
    return make_grid((20, 15, 12), (0.4, 0.55, 1.7), oblique_direction(28.0),
                     center_lps=(-12.0, 30.0, 55.0))


def box_mask(reference: Volume, box) -> np.ndarray:
    i0, i1, j0, j1, k0, k1 = box
    mask = np.zeros(reference.array.shape, bool)
    mask[k0:k1, j0:j1, i0:i1] = True
    return mask


def write_slicer_seg_nrrd(path, layers: np.ndarray, grid: Volume, segments, offset=(0, 0, 0),
                          space="left-posterior-superior") -> None:
    """A .seg.nrrd as Slicer's vtkMRMLSegmentationStorageNode writes it (header keys, gzip).

    ``layers`` is [k, j, i] or [k, j, i, layer]; ``grid`` is the stored (cropped) grid.
    """
    flip = np.diag([-1.0, -1.0, 1.0]) if space.startswith("right") else np.eye(3)
    axes = flip @ grid.direction @ np.diag(grid.spacing)
    vectors = " ".join("(" + ",".join(f"{v:.17g}" for v in axes[:, c]) + ")" for c in range(3))
    origin = flip @ np.asarray(grid.origin)
    layered = layers.ndim == 4
    sizes = " ".join(str(n) for n in (layers.shape[::-1] if not layered
                                      else (layers.shape[3], *layers.shape[2::-1])))
    lines = ["NRRD0004", "# Complete NRRD file format specification at:",
             "# http://teem.sourceforge.net/nrrd/format.html", "type: unsigned char",
             f"dimension: {4 if layered else 3}", f"space: {space}", f"sizes: {sizes}",
             f"space directions: {'none ' if layered else ''}{vectors}",
             f"kinds: {'list ' if layered else ''}domain domain domain", "encoding: gzip",
             "space origin: (" + ",".join(f"{v:.17g}" for v in origin) + ")"]
    for n, (name, label, layer, _box) in enumerate(segments):
        lines += [f"Segment{n}_Color:=0.5 0.68 0.5", f"Segment{n}_ColorAutoGenerated:=1",
                  f"Segment{n}_Extent:=0 {layers.shape[2] - 1} 0 {layers.shape[1] - 1} 0 "
                  f"{layers.shape[0] - 1}",
                  f"Segment{n}_ID:=Segment_{n + 1}", f"Segment{n}_LabelValue:={label}",
                  f"Segment{n}_Layer:={layer}", f"Segment{n}_Name:={name}",
                  f"Segment{n}_NameAutoGenerated:=0",
                  f"Segment{n}_Tags:=Segmentation.Status:inprogress|TerminologyEntry:"
                  "Segmentation category and type - 3D Slicer General Anatomy list"
                  "~SCT^85756007^Tissue~SCT^85756007^Tissue~^^~Anatomic codes - DICOM master "
                  "list~^^~^^|"]
    lines += ["Segmentation_ContainedRepresentationNames:=Binary labelmap|",
              "Segmentation_ConversionParameters:=",
              "Segmentation_MasterRepresentation:=Binary labelmap",
              "Segmentation_ReferenceImageExtentOffset:=" + " ".join(str(o) for o in offset)]
    header = ("\n".join(lines) + "\n\n").encode("ascii")
    data = gzip.compress(np.ascontiguousarray(layers, dtype=np.uint8).tobytes())
    path.write_bytes(header + data)


def cropped_labels(reference: Volume, segments, layered: bool = False):
    """Label layers cropped to the painted extent, as Slicer saves them; and the crop start."""
    n_layers = 1 + max(layer for *_, layer, _box in segments)
    full = np.zeros((*reference.array.shape, n_layers), np.uint8)
    for _name, label, layer, box in segments:
        full[..., layer][box_mask(reference, box)] = label
    nz = np.nonzero(full.any(axis=-1))
    box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in nz)
    cropped = reference.crop(box)
    layers = full[box] if layered else full[box][..., 0]
    return layers, cropped, (box[2].start, box[1].start, box[0].start)


@pytest.mark.parametrize("space", ["left-posterior-superior", "right-anterior-superior"])
def test_cropped_seg_nrrd_is_padded_back_onto_the_image_grid(tmp_path, space):
    reference = reference_grid()
    layers, cropped, offset = cropped_labels(reference, SEGMENTS)
    assert layers.shape != reference.array.shape and offset == (2, 3, 1)
    path = tmp_path / "knee.seg.nrrd"
    write_slicer_seg_nrrd(path, layers, cropped, SEGMENTS, offset, space=space)
    masks = read_labels(path, reference)
    assert sorted(masks) == ["femur", "tibial_cartilage"]
    np.testing.assert_array_equal(masks["femur"],
                                  box_mask(reference, SEGMENTS[0][3])
                                  & ~box_mask(reference, SEGMENTS[1][3]))
    np.testing.assert_array_equal(masks["tibial_cartilage"], box_mask(reference, SEGMENTS[1][3]))


def test_layered_seg_nrrd_keeps_overlapping_segments(tmp_path):
    reference = reference_grid()
    segments = [("Femur", 1, 0, (2, 7, 3, 9, 1, 5)), ("Tumor", 1, 1, (5, 9, 5, 9, 2, 9))]
    layers, cropped, offset = cropped_labels(reference, segments, layered=True)
    assert layers.ndim == 4 and layers.shape[-1] == 2
    path = tmp_path / "overlap.seg.nrrd"
    write_slicer_seg_nrrd(path, layers, cropped, segments, offset)
    masks = read_labels(path, reference)
    for name, *_rest, box in segments:
        np.testing.assert_array_equal(masks[name.lower()], box_mask(reference, box))
    assert (masks["femur"] & masks["tumor"]).sum() == 2 * 4 * 3


def test_label_names_select_seg_nrrd_segments_by_label_value(tmp_path):
    reference = reference_grid()
    layers, cropped, offset = cropped_labels(reference, SEGMENTS)
    path = tmp_path / "knee.seg.nrrd"
    write_slicer_seg_nrrd(path, layers, cropped, SEGMENTS, offset)
    masks = read_labels(path, reference, {"femoral_cartilage": 2})
    np.testing.assert_array_equal(masks["femoral_cartilage"],
                                  box_mask(reference, SEGMENTS[1][3]))
    with pytest.raises(InputError, match="label value\\(s\\) tibia=3; the values present are 1, 2"):
        read_labels(path, reference, {"tibia": 3})


def test_seg_nrrd_sharing_no_grid_with_the_image_says_to_resample(tmp_path):
    reference = reference_grid()
    layers, cropped, offset = cropped_labels(reference, SEGMENTS)
    half_voxel = cropped.with_array(cropped.array,
                                    origin=tuple(np.asarray(cropped.origin) + 0.2))
    path = tmp_path / "shifted.seg.nrrd"
    write_slicer_seg_nrrd(path, layers, half_voxel, SEGMENTS, offset)
    with pytest.raises(InputError, match="not on the image grid .* resample the labels"):
        read_labels(path, reference)


def test_seg_nrrd_reaching_outside_the_image_is_rejected(tmp_path):
    reference = reference_grid()
    layers, cropped, _ = cropped_labels(reference, SEGMENTS)
    moved = cropped.with_array(cropped.array, origin=tuple(
        cropped.ijk_to_lps()[:3, :3] @ [15.0, 0, 0] + np.asarray(cropped.origin)))
    path = tmp_path / "outside.seg.nrrd"
    write_slicer_seg_nrrd(path, layers, moved, SEGMENTS)
    with pytest.raises(InputError, match="extends outside the image"):
        read_labels(path, reference)


def test_empty_seg_nrrd_is_rejected(tmp_path):
    reference = reference_grid()
    path = tmp_path / "empty.seg.nrrd"
    write_slicer_seg_nrrd(path, np.zeros((1, 1, 1), np.uint8), reference.crop(
        (slice(0, 1), slice(0, 1), slice(0, 1))), SEGMENTS[:1])
    with pytest.raises(InputError, match="is empty: no segment has labelled voxels"):
        read_labels(path, reference)


def test_read_seg_nrrd_lists_segments_from_the_header(tmp_path):
    reference = reference_grid()
    layers, cropped, offset = cropped_labels(reference, SEGMENTS)
    path = tmp_path / "knee.seg.nrrd"
    write_slicer_seg_nrrd(path, layers, cropped, SEGMENTS, offset)
    stored, infos = read_seg_nrrd(path)
    assert [(s.id, s.name, s.label_value, s.layer) for s in infos] == [
        ("Segment_1", "Femur", 1, 0), ("Segment_2", "Tibial cartilage", 2, 0)]
    assert stored.same_geometry(cropped)


def test_seg_nrrd_written_by_slicer_itself_reads_back(tmp_path):
    slicer = pytest.importorskip("slicer")
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    reference = reference_grid()
    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    ijk_to_ras = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            ijk_to_ras.SetElement(r, c, reference.ijk_to_ras()[r, c])
    for name, _label, _layer, box in SEGMENTS:
        labelmap = slicer.vtkOrientedImageData()
        labelmap.SetDimensions(*reference.size)
        labelmap.SetImageToWorldMatrix(ijk_to_ras)
        labelmap.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
        scalars = vtk_to_numpy(labelmap.GetPointData().GetScalars())
        scalars[:] = box_mask(reference, box).ravel()
        segment = slicer.vtkSegment()
        segment.SetName(name)
        segment.AddRepresentation("Binary labelmap", labelmap)
        node.GetSegmentation().AddSegment(segment)
    converter = slicer.vtkSegmentationConverter
    node.GetSegmentation().SetConversionParameter(
        converter.GetReferenceImageGeometryParameterName(),
        converter.SerializeImageGeometry(labelmap))
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(tmp_path / "slicer.seg.nrrd"))
    storage.SetCropToMinimumExtent(True)
    assert storage.WriteData(node)
    stored, _ = read_seg_nrrd(tmp_path / "slicer.seg.nrrd")
    assert stored.array.shape[:3] != reference.array.shape, "Slicer cropped the extent"
    masks = read_labels(tmp_path / "slicer.seg.nrrd", reference)
    for name, _label, _layer, box in SEGMENTS:
        np.testing.assert_array_equal(masks[canonical_id(name)], box_mask(reference, box))

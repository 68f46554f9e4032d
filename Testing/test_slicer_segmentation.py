"""Result -> segmentation node: named segments, tags, hand-edit detection and merge policies."""

from __future__ import annotations

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.segments import STATUS_AI, STATUS_EDITED, Provenance, Result, Segment
from mskai.slicer_io import tags
from mskai.slicer_io.fingerprint import geometry_string, mask_fingerprint
from mskai.slicer_io.merge import apply_result, segment_status, segment_statuses
from mskai.slicer_io.segmentation import (
    closed_surface,
    segment_ids,
    segment_mask,
    segmentation_to_masks,
)
from mskai.slicer_io.segmentation_files import load_segmentation, save_segmentation
from mskai.slicer_io.volumes import image_data_from_array, to_vtk_matrix, volume_to_node
from mskai.terminology import segment_type
from mskai.volume import Volume
from phantoms.grid import make_grid, oblique_direction, physical_points

PROVENANCE = Provenance("unet", "mskai-tumor", "1.2", "ab" * 32, time="2026-01-02T03:04:05+00:00")


def grid() -> Volume:
    """Oblique, anisotropic: what a sagittal knee or tilted tumour MR looks like."""
    return make_grid((40, 36, 20), (0.8, 0.9, 1.6), oblique_direction(25.0), (20.0, -15.0, 40.0))


def ball(volume: Volume, center_lps, radius_mm: float) -> np.ndarray:
    distance = np.linalg.norm(physical_points(volume) - np.asarray(center_lps), axis=-1)
    return distance <= radius_mm


def tumor_and_bone(volume: Volume, shift_mm: float = 0.0) -> Result:
    """Two overlapping structures (a tumour eroding bone); ``shift_mm`` moves the tumour."""
    tumor = ball(volume, (20.0 + shift_mm, -15.0, 40.0), 7.0)
    bone = ball(volume, (26.0, -12.0, 40.0), 8.0)
    return Result("TumorSeg", volume, PROVENANCE,
                  [Segment("tumor", tumor, 1), Segment("bone", bone, 2)])


def hand_edit(node, segment_id: str, mask: np.ndarray, volume: Volume) -> None:
    """What a Segment Editor effect does: write a modified labelmap through the logic."""
    import slicer

    image = slicer.vtkOrientedImageData()
    image.ShallowCopy(image_data_from_array(mask.astype(np.uint8)))
    image.SetImageToWorldMatrix(to_vtk_matrix(volume.ijk_to_ras()))
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    assert logic.SetBinaryLabelmapToSegment(image, node, segment_id, logic.MODE_REPLACE)


def erase_slab(mask: np.ndarray) -> np.ndarray:
    edited = mask.copy()
    edited[:, :, : mask.shape[2] // 2] = False
    return edited


def test_each_result_segment_becomes_a_named_segment_with_its_exact_voxels(mrml):
    volume = grid()
    result = tumor_and_bone(volume)
    node, actions = apply_result(mrml.scene, result)
    assert segment_ids(node) == ("tumor", "bone")
    assert [(a.segment_id, a.action) for a in actions] == [("tumor", "created"),
                                                           ("bone", "created")]
    tumor = node.GetSegmentation().GetSegment("tumor")
    assert tumor.GetName() == "Tumor"
    assert np.allclose(tumor.GetColor(), segment_type("tumor").color)
    masks = segmentation_to_masks(node, volume)
    assert np.array_equal(masks["tumor"], result.segment("tumor").mask)
    assert np.array_equal(masks["bone"], result.segment("bone").mask)
    assert np.any(masks["tumor"] & masks["bone"])  # the overlap survives in separate layers


def test_segments_carry_provenance_status_and_a_fingerprint_of_what_was_written(mrml):
    volume = grid()
    result = tumor_and_bone(volume)
    node, _ = apply_result(mrml.scene, result)
    segment = node.GetSegmentation().GetSegment("tumor")
    assert tags.get_tag(segment, "MSKAI.Method") == "unet"
    assert tags.get_tag(segment, "MSKAI.ModelId") == "mskai-tumor"
    assert tags.get_tag(segment, "MSKAI.ModelVersion") == "1.2"
    assert tags.get_tag(segment, "MSKAI.ModelSha256") == "ab" * 32
    assert tags.get_tag(segment, "MSKAI.Time") == "2026-01-02T03:04:05+00:00"
    assert tags.get_tag(segment, "MSKAI.Version") == PROVENANCE.mskai_version
    assert tags.get_tag(segment, "MSKAI.Status") == STATUS_AI
    assert tags.get_tag(segment, "MSKAI.Fingerprint") == mask_fingerprint(
        result.segment("tumor").mask)


def test_terminology_tag_is_slicers_format_and_parses_back_to_the_snomed_codes(mrml):
    node, _ = apply_result(mrml.scene, tumor_and_bone(grid()))
    entry = node.GetSegmentation().GetSegment("tumor").GetTerminology()
    assert entry == ("Segmentation category and type - DICOM master list"
                     "~SCT^49755003^Morphologically Altered Structure~SCT^108369006^Neoplasm"
                     "~^^~Anatomic codes - DICOM master list~^^~^^")
    parsed = tags.parse_terminology(entry)
    kind = segment_type("tumor")
    assert parsed == {"category": kind.category, "type": kind.type}


def test_masks_on_the_reference_grid_agree_with_slicers_label_map_export(mrml):
    import slicer
    import slicer.util

    volume = grid()
    node, _ = apply_result(mrml.scene, tumor_and_bone(volume))
    reference = volume_to_node(mrml.scene, volume, "reference")
    exported = mrml.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "export")
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        node, ["bone"], exported, reference)
    assert np.array_equal(slicer.util.arrayFromVolume(exported) > 0,
                          segmentation_to_masks(node, volume)["bone"])


def test_masks_can_be_read_on_another_grid_by_nearest_neighbour(mrml):
    volume = grid()
    result = tumor_and_bone(volume)
    node, _ = apply_result(mrml.scene, result)
    # Every second voxel centre of the segmentation's grid: sampling must pick exactly those.
    coarse = Volume(np.zeros((10, 18, 20)), spacing=tuple(2 * s for s in volume.spacing),
                    origin=volume.origin, direction=volume.direction)
    expected = result.segment("tumor").mask[::2, ::2, ::2]
    assert np.array_equal(segment_mask(node, "tumor", coarse), expected)


def test_a_hand_edit_through_the_logic_is_detected_and_undoing_it_clears_the_flag(mrml):
    volume = grid()
    result = tumor_and_bone(volume)
    node, _ = apply_result(mrml.scene, result)
    original = result.segment("tumor").mask
    hand_edit(node, "tumor", erase_slab(original), volume)
    assert segment_statuses(node) == {"tumor": STATUS_EDITED, "bone": STATUS_AI}
    assert tags.get_tag(node.GetSegmentation().GetSegment("tumor"), "MSKAI.Status") == STATUS_EDITED
    hand_edit(node, "tumor", original, volume)
    assert segment_status(node, "tumor") == STATUS_AI


def test_a_hand_edit_of_the_shared_labelmap_voxels_is_detected(mrml):
    from vtkmodules.util.numpy_support import vtk_to_numpy

    node, _ = apply_result(mrml.scene, tumor_and_bone(grid()))
    internal = node.GetBinaryLabelmapInternalRepresentation("bone")
    voxels = vtk_to_numpy(internal.GetPointData().GetScalars())
    label = node.GetSegmentation().GetSegment("bone").GetLabelValue()
    voxels[np.flatnonzero(voxels == label)[:25]] = 0  # erase 25 voxels in place
    internal.Modified()
    assert segment_status(node, "bone") == STATUS_EDITED


def test_a_segment_a_person_made_counts_as_edited_by_hand(mrml):
    node = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "manual")
    node.GetSegmentation().AddEmptySegment("tumor", "Tumor", [1.0, 0.0, 0.0])
    assert segment_status(node, "tumor") == STATUS_EDITED


def test_replace_overwrites_unedited_ai_segments(mrml):
    volume = grid()
    node, _ = apply_result(mrml.scene, tumor_and_bone(volume))
    second = tumor_and_bone(volume, shift_mm=3.0)
    _, actions = apply_result(mrml.scene, second, node, policy="replace")
    assert [(a.segment_id, a.action) for a in actions] == [("tumor", "replaced"),
                                                           ("bone", "replaced")]
    assert np.array_equal(segment_mask(node, "tumor", volume), second.segment("tumor").mask)
    assert segment_ids(node) == ("tumor", "bone")


def hand_edited_then_rerun(mrml, stroke=None):
    """(volume, node, edited tumour, second result): an AI run, then a hand edit that erases
    a slab of the tumour (and paints ``stroke``), then a second result shifted by 3 mm."""
    volume = grid()
    first = tumor_and_bone(volume)
    node, _ = apply_result(mrml.scene, first)
    edited = erase_slab(first.segment("tumor").mask)
    if stroke is not None:
        edited |= stroke
    hand_edit(node, "tumor", edited, volume)
    return volume, node, edited, tumor_and_bone(volume, shift_mm=3.0)


def test_replace_keeps_a_manual_backup_of_an_edited_segment_before_overwriting(mrml):
    volume, node, edited, second = hand_edited_then_rerun(mrml)
    _, actions = apply_result(mrml.scene, second, node, policy="replace")
    assert ("tumor", "backup", "tumor_manual_backup") in [tuple(a) for a in actions]
    backup = node.GetSegmentation().GetSegment("tumor_manual_backup")
    assert backup.GetName() == "Tumor (manual backup)"
    assert np.array_equal(segment_mask(node, "tumor_manual_backup", volume), edited)
    assert segment_status(node, "tumor_manual_backup") == STATUS_EDITED
    assert np.array_equal(segment_mask(node, "tumor", volume), second.segment("tumor").mask)
    assert segment_status(node, "tumor") == STATUS_AI


def test_fill_empty_adds_ai_voxels_and_keeps_every_hand_painted_voxel(mrml):
    stroke = np.zeros(grid().array.shape, dtype=bool)
    stroke[10, 5:9, 30:34] = True  # a stroke outside the AI's tumour
    volume, node, painted, second = hand_edited_then_rerun(mrml, stroke)
    _, actions = apply_result(mrml.scene, second, node, policy="fill_empty")
    ai = second.segment("tumor").mask
    assert np.array_equal(segment_mask(node, "tumor", volume), painted | ai)
    assert actions[0] == ("tumor", "filled", f"{np.count_nonzero(ai & ~painted)} voxels added")
    assert segment_status(node, "tumor") == STATUS_EDITED
    assert segment_status(node, "bone") == STATUS_AI


def test_skip_edited_leaves_edited_segments_alone_and_reports_them(mrml):
    volume, node, edited, second = hand_edited_then_rerun(mrml)
    _, actions = apply_result(mrml.scene, second, node, policy="skip_edited")
    assert [(a.segment_id, a.action) for a in actions] == [("tumor", "skipped"),
                                                           ("bone", "replaced")]
    assert np.array_equal(segment_mask(node, "tumor", volume), edited)
    assert segment_ids(node) == ("tumor", "bone")


def test_segments_outside_the_result_are_never_touched(mrml):
    volume = grid()
    node, _ = apply_result(mrml.scene, tumor_and_bone(volume))
    note = ball(volume, (10.0, -20.0, 38.0), 3.0)
    node.GetSegmentation().AddEmptySegment("note", "Radiologist note", [0.0, 1.0, 0.0])
    hand_edit(node, "note", note, volume)
    apply_result(mrml.scene, tumor_and_bone(volume, shift_mm=2.0), node, policy="replace")
    assert np.array_equal(segment_mask(node, "note", volume), note)


def test_scene_undo_restores_the_segmentation_from_before_the_ai_run(mrml):
    volume = grid()
    node = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "made by a person")
    node.GetSegmentation().AddEmptySegment("tumor", "Tumor", [1.0, 0.0, 0.0])
    painted = ball(volume, (22.0, -15.0, 40.0), 5.0)
    hand_edit(node, "tumor", painted, volume)
    mrml.scene.SetUndoOn()
    apply_result(mrml.scene, tumor_and_bone(volume), node)
    assert not np.array_equal(segment_mask(node, "tumor", volume), painted)
    mrml.scene.Undo()
    assert np.array_equal(segment_mask(node, "tumor", volume), painted)
    assert segment_ids(node) == ("tumor",)


def test_bad_policy_and_misshapen_masks_are_refused(mrml):
    volume = grid()
    with pytest.raises(InputError, match="merge policy"):
        apply_result(mrml.scene, tumor_and_bone(volume), policy="overwrite")
    wrong = Result("TumorSeg", volume, PROVENANCE, [Segment("tumor", np.zeros((2, 2, 2)), 1)])
    with pytest.raises(InputError, match="mask shape"):
        apply_result(mrml.scene, wrong)
    volume_node = volume_to_node(mrml.scene, volume, "not a segmentation")
    with pytest.raises(InputError, match="not a segmentation"):
        apply_result(mrml.scene, tumor_and_bone(volume), volume_node)


def test_a_new_node_takes_the_reference_volume_nodes_geometry(mrml):
    import slicer

    volume = grid()
    reference = volume_to_node(mrml.scene, volume, "reference")
    node, _ = apply_result(mrml.scene, tumor_and_bone(volume), reference_node=reference)
    parameter = slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()
    stored = node.GetSegmentation().GetConversionParameter(parameter)
    ours, theirs = slicer.vtkOrientedImageData(), slicer.vtkOrientedImageData()
    slicer.vtkSegmentationConverter.DeserializeImageGeometry(stored, theirs, False)
    slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometry_string(volume), ours, False)
    assert theirs.GetExtent() == ours.GetExtent()
    assert np.allclose(theirs.GetSpacing(), ours.GetSpacing())
    assert np.allclose(theirs.GetOrigin(), ours.GetOrigin())


def test_closed_surface_volume_of_a_sphere_is_close_to_its_voxel_volume(mrml):
    from vtkmodules.vtkFiltersCore import vtkMassProperties

    volume = grid()
    sphere = ball(volume, (20.0, -15.0, 40.0), 9.0)
    result = Result("TumorSeg", volume, PROVENANCE, [Segment("tumor", sphere, 1)])
    node, _ = apply_result(mrml.scene, result)
    mass = vtkMassProperties()
    mass.SetInputData(closed_surface(node, "tumor"))
    mass.Update()
    voxel_mm3 = np.count_nonzero(sphere) * volume.voxel_volume_mm3
    assert mass.GetVolume() == pytest.approx(voxel_mm3, rel=0.05)
    assert voxel_mm3 == pytest.approx(4 / 3 * np.pi * 9.0**3, rel=0.05)


def test_seg_nrrd_round_trip_keeps_ids_names_colours_tags_and_voxels(mrml, tmp_path):
    volume = grid()
    result = tumor_and_bone(volume)
    node, _ = apply_result(mrml.scene, result)
    path = save_segmentation(node, tmp_path / "result.seg.nrrd")
    loaded = load_segmentation(mrml.scene, path)
    assert segment_ids(loaded) == ("tumor", "bone")
    segment = loaded.GetSegmentation().GetSegment("bone")
    assert segment.GetName() == "Bone"
    assert np.allclose(segment.GetColor(), segment_type("bone").color)
    assert tags.get_tag(segment, "MSKAI.Time") == "2026-01-02T03:04:05+00:00"
    assert segment.GetTerminology() == node.GetSegmentation().GetSegment("bone").GetTerminology()
    masks = segmentation_to_masks(loaded, volume)
    for original in result.segments:
        assert np.array_equal(masks[original.id], original.mask)
    assert segment_status(loaded, "tumor") == STATUS_AI  # fingerprints survive the file


def test_loading_a_missing_or_unreadable_segmentation_file_is_refused(mrml, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_segmentation(mrml.scene, tmp_path / "none.seg.nrrd")
    garbage = tmp_path / "garbage.seg.nrrd"
    garbage.write_text("not a nrrd")
    with pytest.raises(InputError, match="not a readable segmentation"):
        load_segmentation(mrml.scene, garbage)

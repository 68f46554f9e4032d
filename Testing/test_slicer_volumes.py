"""Volume nodes <-> Volume: oblique, anisotropic geometry must pass through exactly."""

from __future__ import annotations

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.slicer_io.volumes import from_vtk_matrix, node_to_volume, volume_to_node
from mskai.volume import Volume
from phantoms.grid import make_grid, oblique_direction

SPACING = (0.4, 0.7, 2.5)


def oblique_volume() -> Volume:
    volume = make_grid((9, 7, 5), SPACING, oblique_direction(30.0), center_lps=(12.0, -30.0, 7.0))
    volume.array[:] = np.arange(volume.array.size, dtype=np.float32).reshape(volume.array.shape)
    volume.modality = "MR"
    return volume


def node_matrix(node, getter: str) -> np.ndarray:
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    matrix = vtkMatrix4x4()
    getattr(node, getter)(matrix)
    return from_vtk_matrix(matrix)


def test_oblique_anisotropic_volume_survives_a_round_trip_through_a_node(mrml):
    volume = oblique_volume()
    back = node_to_volume(volume_to_node(mrml.scene, volume, "oblique"))
    assert back.same_geometry(volume, tol_mm=1e-9)
    assert np.array_equal(back.array, volume.array)
    assert back.array.dtype == np.float32
    assert back.modality == "MR"


def test_node_ijk_to_ras_is_the_volume_geometry_flipped_from_lps(mrml):
    volume = oblique_volume()
    node = volume_to_node(mrml.scene, volume, "oblique")
    ijk_to_ras = node_matrix(node, "GetIJKToRASMatrix")
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    expected = np.eye(4)
    expected[:3, :3] = lps_to_ras @ volume.direction @ np.diag(SPACING)
    expected[:3, 3] = lps_to_ras @ np.asarray(volume.origin)
    assert np.allclose(ijk_to_ras, expected, atol=1e-12)
    assert np.allclose(node.GetSpacing(), SPACING)
    image = node.GetImageData()
    assert image.GetOrigin() == (0.0, 0.0, 0.0) and image.GetSpacing() == (1.0, 1.0, 1.0)


def test_a_ras_point_lands_in_the_same_voxel_in_the_core_and_in_slicer(mrml):
    import slicer.util

    volume = oblique_volume()
    node = volume_to_node(mrml.scene, volume, "oblique")
    ijk = np.array([6, 2, 3])
    ras = volume.index_to_ras(ijk)
    slicer_ijk = node_matrix(node, "GetRASToIJKMatrix") @ np.r_[ras, 1.0]
    assert np.allclose(slicer_ijk[:3], ijk, atol=1e-9)
    assert np.allclose(node_matrix(node, "GetIJKToRASMatrix") @ np.r_[ijk, 1.0], np.r_[ras, 1])
    i, j, k = ijk
    assert slicer.util.arrayFromVolume(node)[k, j, i] == volume.array[k, j, i]
    off_grid = ras + np.array([0.3, -0.2, 0.9])
    assert np.allclose((node_matrix(node, "GetRASToIJKMatrix") @ np.r_[off_grid, 1.0])[:3],
                       volume.ras_to_index(off_grid), atol=1e-9)


def test_boolean_masks_become_uint8_label_map_nodes(mrml):
    volume = oblique_volume()
    mask = volume.with_array(volume.array > 100)
    node = volume_to_node(mrml.scene, mask, "mask", labelmap=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    assert node.GetDisplayNode() is not None
    back = node_to_volume(node)
    assert back.array.dtype == np.uint8
    assert np.array_equal(back.array, mask.array.astype(np.uint8))
    assert back.same_geometry(volume, tol_mm=1e-9)


def test_updating_a_node_keeps_the_node_and_replaces_voxels_and_geometry(mrml):
    node = volume_to_node(mrml.scene, oblique_volume(), "reused")
    other = make_grid((4, 3, 2), (1.0, 1.5, 3.0), center_lps=(5.0, 5.0, 5.0), dtype=np.int16)
    other.array[:] = 7
    assert volume_to_node(mrml.scene, other, "ignored", node=node) is node
    back = node_to_volume(node)
    assert back.same_geometry(other, tol_mm=1e-9) and np.all(back.array == 7)
    assert back.array.dtype == np.int16


def test_a_linear_parent_transform_moves_the_volume_in_world_space(mrml):
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    volume = oblique_volume()
    node = volume_to_node(mrml.scene, volume, "moved")
    transform = mrml.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    shift = vtkMatrix4x4()
    shift.SetElement(0, 3, 10.0)  # 10 mm to the patient's right (R)
    transform.SetMatrixTransformToParent(shift)
    node.SetAndObserveTransformNodeID(transform.GetID())
    back = node_to_volume(node)
    assert np.allclose(np.subtract(back.origin, volume.origin), [-10.0, 0.0, 0.0])  # LPS x = -R
    assert np.allclose(back.direction, volume.direction)


def test_a_node_without_voxels_is_refused_with_a_clear_message(mrml):
    node = mrml.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(InputError, match="no image data"):
        node_to_volume(node)


def test_a_four_dimensional_array_is_refused(mrml):
    volume = Volume(np.zeros((2, 3, 4, 3), dtype=np.float32))
    with pytest.raises(InputError, match="3D scalar volume"):
        volume_to_node(mrml.scene, volume, "rgb")


def test_the_real_oblique_knee_label_map_matches_slicers_own_reader(mrml, test_data):
    import SimpleITK as sitk
    import slicer

    path = test_data / "knee" / "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
    ours = volume_to_node(mrml.scene, Volume.from_sitk(sitk.ReadImage(str(path))), "ours",
                          labelmap=True)
    theirs = mrml.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "theirs")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    assert storage.ReadData(theirs)
    assert np.allclose(node_matrix(ours, "GetIJKToRASMatrix"),
                       node_matrix(theirs, "GetIJKToRASMatrix"), atol=1e-6)
    assert np.array_equal(slicer.util.arrayFromVolume(ours), slicer.util.arrayFromVolume(theirs))

"""Volume nodes <-> :class:`mskai.volume.Volume`.

The core keeps geometry in LPS (as files do); Slicer nodes keep an IJK-to-RAS matrix. The
conversion is one flip of the first two rows, so oblique directions and anisotropic
spacing pass through exactly. The node's ``vtkImageData`` keeps origin 0 and spacing 1,
as Slicer expects: all geometry lives in the node.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.volume import Volume

FLIP_LPS_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
MODALITY_ATTRIBUTE = "DICOM.Modality"


def volume_to_node(scene: Any, volume: Volume, name: str, *, labelmap: bool = False,
                   node: Any = None) -> Any:
    """Add (or update) a scalar or label map volume node holding ``volume``.

    With ``node`` given its voxels and geometry are replaced in place, so views and
    observers stay connected; otherwise a new node with display nodes is added to ``scene``.
    """
    if node is None:
        cls = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
        node = scene.AddNewNodeByClass(cls, name)
        fill_node(node, volume)
        node.CreateDefaultDisplayNodes()
        return node
    fill_node(node, volume)
    return node


def fill_node(node: Any, volume: Volume) -> None:
    """Copy voxels and geometry of ``volume`` into an existing volume node."""
    node.SetIJKToRASMatrix(to_vtk_matrix(volume.ijk_to_ras()))
    node.SetAndObserveImageData(image_data_from_array(volume.array))
    if volume.modality:
        node.SetAttribute(MODALITY_ATTRIBUTE, volume.modality)


def node_to_volume(node: Any) -> Volume:
    """The node's voxels and world (RAS) geometry as a :class:`Volume` (copied, LPS)."""
    image = node.GetImageData() if node is not None else None
    if image is None or image.GetPointData().GetScalars() is None:
        raise InputError("The volume node holds no image data; load or select a volume first.")
    ijk_to_ras = _parent_to_world(node) @ from_vtk_matrix(_ijk_to_ras_matrix(node))
    ijk_to_lps = FLIP_LPS_RAS @ ijk_to_ras
    spacing = np.linalg.norm(ijk_to_lps[:3, :3], axis=0)
    return Volume(
        array=array_from_image_data(image),
        spacing=tuple(spacing),
        origin=tuple(ijk_to_lps[:3, 3]),
        direction=ijk_to_lps[:3, :3] / spacing,
        modality=node.GetAttribute(MODALITY_ATTRIBUTE),
        metadata={"node_name": node.GetName()},
    )


def image_data_from_array(array: np.ndarray) -> Any:
    """A ``vtkImageData`` (origin 0, spacing 1) deep-copying a ``[k, j, i]`` array."""
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData

    if array.ndim != 3:
        raise InputError(f"Expected a 3D scalar volume but the array has shape {array.shape}; "
                         "pass one channel at a time.")
    array = _vtk_compatible(array)
    image = vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.GetPointData().SetScalars(numpy_to_vtk(array.ravel(order="C"), deep=True))
    return image


def array_from_image_data(image: Any) -> np.ndarray:
    """A ``[k, j, i]`` copy of a single-component ``vtkImageData``'s scalars."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    i, j, k = image.GetDimensions()
    scalars = image.GetPointData().GetScalars()
    if scalars.GetNumberOfComponents() != 1:
        raise InputError("The volume has several components per voxel (e.g. RGB); "
                         "convert it to a scalar volume first.")
    return vtk_to_numpy(scalars).reshape(k, j, i).copy()


def to_vtk_matrix(matrix: np.ndarray) -> Any:
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    vtk_matrix = vtkMatrix4x4()
    for row in range(4):
        for col in range(4):
            vtk_matrix.SetElement(row, col, float(matrix[row, col]))
    return vtk_matrix


def from_vtk_matrix(vtk_matrix: Any) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _vtk_compatible(array: np.ndarray) -> np.ndarray:
    """Types VTK can hold: bool becomes uint8, float16 becomes float32."""
    if array.dtype == bool:
        return np.ascontiguousarray(array, dtype=np.uint8)
    if array.dtype == np.float16:
        return np.ascontiguousarray(array, dtype=np.float32)
    return np.ascontiguousarray(array)


def _ijk_to_ras_matrix(node: Any) -> Any:
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    matrix = vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return matrix


def _parent_to_world(node: Any) -> np.ndarray:
    """Identity, or the linear transform the node sits under (Slicer applies it on display)."""
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    parent = node.GetParentTransformNode()
    if parent is None:
        return np.eye(4)
    if not parent.IsTransformToWorldLinear():
        raise InputError(f"Volume '{node.GetName()}' is under a non-linear transform; "
                         "harden the transform (Data module) before running MSK AI.")
    matrix = vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(matrix)
    return from_vtk_matrix(matrix)

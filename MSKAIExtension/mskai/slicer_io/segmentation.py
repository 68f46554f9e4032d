"""Segmentation nodes: segments in and out as boolean masks on a reference grid.

Uses ``vtkSlicerSegmentationsModuleLogic`` static methods and ``vtkOrientedImageData``
directly (no ``slicer.util`` helpers, which need the Slicer application). Overlapping
segments are fine: Slicer keeps them in separate labelmap layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.slicer_io.volumes import array_from_image_data, image_data_from_array, to_vtk_matrix
from mskai.volume import Volume


def new_segmentation_node(scene: Any, name: str, reference: Volume,
                          reference_node: Any = None) -> Any:
    """An empty segmentation node (with display) whose labelmap geometry is the reference's."""
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    if reference_node is not None:
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    else:
        set_reference_geometry(node, reference)
    return node


def set_reference_geometry(node: Any, reference: Volume) -> None:
    """Make ``reference``'s grid the geometry new labelmaps and editing use."""
    import slicer

    converter = slicer.vtkSegmentationConverter
    node.GetSegmentation().SetConversionParameter(
        converter.GetReferenceImageGeometryParameterName(),
        converter.SerializeImageGeometry(oriented_image(None, reference)))


def oriented_image(mask: np.ndarray | None, reference: Volume) -> Any:
    """A ``vtkOrientedImageData`` on the reference grid: 0/1 from ``mask``, or geometry only."""
    import slicer

    image = slicer.vtkOrientedImageData()
    if mask is None:
        i, j, k = reference.size
        image.SetExtent(0, i - 1, 0, j - 1, 0, k - 1)
    else:
        image.ShallowCopy(image_data_from_array(np.asarray(mask, dtype=bool).astype(np.uint8)))
    image.SetImageToWorldMatrix(to_vtk_matrix(reference.ijk_to_ras()))
    return image


def add_segment(node: Any, segment_id: str, name: str,
                color: tuple[float, float, float]) -> Any:
    """Add an empty segment with this id; the id must be free."""
    segmentation = node.GetSegmentation()
    if segmentation.GetSegment(segment_id) is not None:
        raise InputError(f"Segment id '{segment_id}' is already used in '{node.GetName()}'; "
                         "choose another id or update the existing segment.")
    segmentation.AddEmptySegment(segment_id, name, list(color))
    return segmentation.GetSegment(segment_id)


def get_segment(node: Any, segment_id: str) -> Any:
    segment = node.GetSegmentation().GetSegment(segment_id)
    if segment is None:
        raise InputError(f"Segmentation '{node.GetName()}' has no segment '{segment_id}'; "
                         f"it has {list(segment_ids(node))}.")
    return segment


def segment_ids(node: Any) -> tuple[str, ...]:
    return tuple(node.GetSegmentation().GetSegmentIDs())


def write_mask(node: Any, segment_id: str, mask: np.ndarray, reference: Volume) -> None:
    """Replace the segment's voxels with ``mask`` (``[k, j, i]`` on the reference grid)."""
    import slicer

    if mask.shape != reference.array.shape[:3]:
        raise InputError(f"Mask of segment '{segment_id}' has shape {mask.shape} but the image "
                         f"has {reference.array.shape[:3]}; masks must lie on the image grid.")
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    if not logic.SetBinaryLabelmapToSegment(oriented_image(mask, reference), node, segment_id,
                                            logic.MODE_REPLACE):
        raise RuntimeError(f"Slicer could not write segment '{segment_id}'.")


def write_image(node: Any, segment_id: str, image: Any) -> None:
    """Replace the segment's voxels with a binary ``vtkOrientedImageData`` on any grid."""
    import slicer

    logic = slicer.vtkSlicerSegmentationsModuleLogic
    if not logic.SetBinaryLabelmapToSegment(image, node, segment_id, logic.MODE_REPLACE):
        raise RuntimeError(f"Slicer could not write segment '{segment_id}'.")


def segment_image(node: Any, segment_id: str) -> Any:
    """A copy of the segment's own binary labelmap (its native grid and extent, values 0/1)."""
    import slicer

    get_segment(node, segment_id)
    _ensure_binary_labelmap(node)
    image = slicer.vtkOrientedImageData()
    if not node.GetBinaryLabelmapRepresentation(segment_id, image):
        raise RuntimeError(f"Slicer could not read segment '{segment_id}'.")
    return image


def resample_to(image: Any, geometry: Any) -> np.ndarray:
    """Nearest-neighbour resampling of a labelmap onto a geometry image, as a bool ``[k, j, i]``."""
    import slicer

    dims = _extent_size(geometry.GetExtent())
    if image.GetPointData().GetScalars() is None or min(_extent_size(image.GetExtent())) <= 0:
        return np.zeros(tuple(reversed(dims)), dtype=bool)
    out = slicer.vtkOrientedImageData()
    if not slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
            image, geometry, out):
        raise RuntimeError("Slicer could not resample a segment onto the reference grid.")
    return array_from_image_data(out) > 0


def segment_mask(node: Any, segment_id: str, reference: Volume) -> np.ndarray:
    """The segment's current voxels on the reference grid, as a bool ``[k, j, i]`` array."""
    return resample_to(segment_image(node, segment_id), oriented_image(None, reference))


def segment_mask_on_geometry(node: Any, segment_id: str, geometry: str) -> np.ndarray:
    """The segment's voxels on a grid given as a serialised Slicer image geometry string."""
    import slicer

    image = slicer.vtkOrientedImageData()
    if not slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometry, image, False):
        raise InputError(f"Image geometry {geometry!r} cannot be read; "
                         "it must come from SerializeImageGeometry.")
    return resample_to(segment_image(node, segment_id), image)


def segmentation_to_masks(segmentation_node: Any, reference: Volume) -> dict[str, np.ndarray]:
    """Every segment's current voxels on the reference grid, keyed by segment id.

    This is what the modules re-measure after a manual edit; overlapping segments each keep
    all their voxels (unlike a single exported label map).
    """
    geometry = oriented_image(None, reference)
    return {segment_id: resample_to(segment_image(segmentation_node, segment_id), geometry)
            for segment_id in segment_ids(segmentation_node)}


def closed_surface(node: Any, segment_id: str) -> Any:
    """The segment's closed surface (``vtkPolyData`` copy), created if needed."""
    from vtkmodules.vtkCommonDataModel import vtkPolyData

    get_segment(node, segment_id)
    if not node.CreateClosedSurfaceRepresentation():
        raise RuntimeError("Slicer could not create the closed surface representation.")
    surface = vtkPolyData()
    node.GetClosedSurfaceRepresentation(segment_id, surface)
    return surface


def _ensure_binary_labelmap(node: Any) -> None:
    import slicer

    name = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    if not node.GetSegmentation().ContainsRepresentation(name):
        node.CreateBinaryLabelmapRepresentation()


def _extent_size(extent: tuple[int, ...]) -> tuple[int, int, int]:
    return (extent[1] - extent[0] + 1, extent[3] - extent[2] + 1, extent[5] - extent[4] + 1)

"""Distance to bone, as a volume and painted on the tumour surface (no Qt).

The distance map is :func:`mskai.measure.margins.distance_to_mask_mm` (exact Euclidean, in
mm, anisotropic voxels handled) from the bone segment. The tumour's closed surface from
the segmentation node is coloured by that map, sampled trilinearly at each vertex, so a
surgeon sees where the tumour comes close to bone (red near, blue far).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.terminology import BONE, TUMOR

SCALAR_NAME = "DistanceToBone_mm"
COLOR_NODE_ID = "vtkMRMLColorTableNodeRainbow"  # red at 0 mm through to violet


def distanceToBoneVolume(scene: Any, volumeNode: Any, segmentationNode: Any,
                         boneSegmentId: str = BONE, distanceNode: Any = None) -> Any:
    """A scalar volume (mm) of the distance of every voxel to the bone segment."""
    from mskai.measure.margins import distance_to_mask_mm
    from mskai.slicer_io import node_to_volume, volume_to_node
    from mskai.slicer_io.segmentation import segment_mask

    volume = node_to_volume(volumeNode)
    if segmentationNode.GetSegmentation().GetSegment(boneSegmentId) is None:
        raise InputError(f"{segmentationNode.GetName()} has no '{boneSegmentId}' segment: run "
                         "the segmentation on CT or paint the bone in Segment Editor.")
    bone = segment_mask(segmentationNode, boneSegmentId, volume)
    if not bone.any():
        raise InputError(f"The '{boneSegmentId}' segment is empty: paint the bone first.")
    distance = volume.with_array(distance_to_mask_mm(bone, volume), modality=None)
    node = volume_to_node(scene, distance, f"{volumeNode.GetName()} distance to bone (mm)",
                          node=distanceNode)
    display = node.GetDisplayNode()
    if display is not None:
        display.SetAndObserveColorNodeID(COLOR_NODE_ID)
    return node


def sampleAtPoints(distanceNode: Any, pointsRas: np.ndarray) -> np.ndarray:
    """Trilinear samples of a volume node at RAS points (nearest edge value outside)."""
    from scipy.ndimage import map_coordinates

    from mskai.slicer_io import node_to_volume

    volume = node_to_volume(distanceNode)
    ijk = volume.ras_to_index(np.asarray(pointsRas, dtype=float).reshape(-1, 3))
    return map_coordinates(volume.array.astype(np.float32), ijk[:, ::-1].T, order=1,
                           mode="nearest")


def tumourSurfaceModel(scene: Any, segmentationNode: Any, distanceNode: Any,
                       tumourSegmentId: str = TUMOR, modelNode: Any = None,
                       maxDistanceMm: float | None = None) -> Any:
    """The tumour's closed surface as a model whose point scalars are the bone distance."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy

    from mskai.slicer_io import closed_surface

    surface = closed_surface(segmentationNode, tumourSegmentId)
    if surface.GetNumberOfPoints() == 0:
        raise InputError(f"The '{tumourSegmentId}' segment is empty, so it has no surface: "
                         "segment the tumour first.")
    points = vtk_to_numpy(surface.GetPoints().GetData())
    distances = sampleAtPoints(distanceNode, points).astype(np.float32)
    scalars = numpy_to_vtk(distances, deep=True)
    scalars.SetName(SCALAR_NAME)
    surface.GetPointData().AddArray(scalars)
    surface.GetPointData().SetActiveScalars(SCALAR_NAME)
    if modelNode is None:
        modelNode = scene.AddNewNodeByClass("vtkMRMLModelNode", "Tumour distance to bone")
        modelNode.CreateDefaultDisplayNodes()
    modelNode.SetAndObservePolyData(surface)
    display = modelNode.GetDisplayNode()
    high = float(maxDistanceMm) if maxDistanceMm else float(max(distances.max(), 1.0))
    display.SetActiveScalarName(SCALAR_NAME)
    display.SetAndObserveColorNodeID(COLOR_NODE_ID)
    display.SetScalarRangeFlag(display.UseManualScalarRange)
    display.SetScalarRange(0.0, high)
    display.SetScalarVisibility(True)
    return modelNode

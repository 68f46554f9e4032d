"""FractureDetect parameter node. Slicer only: ``parameterNodeWrapper`` exists only in the
application, so ``FractureDetect.py`` imports this module lazily, inside the widget."""

from typing import Annotated

from MSKAILib.module_logic import MergePolicy
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLMarkupsROINode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper


@parameterNodeWrapper
class FractureDetectParameterNode:
    """Names match the ``SlicerParameterName`` properties in Resources/UI/FractureDetect.ui."""

    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    roi: vtkMRMLMarkupsROINode
    candidates: vtkMRMLMarkupsFiducialNode
    fragmentClicks: vtkMRMLMarkupsFiducialNode
    fragmentsTable: vtkMRMLTableNode
    mergePolicy: MergePolicy = MergePolicy.SKIP_EDITED
    minScore: Annotated[float, WithinRange(0.0, 1.0)] = 0.5
    splitTouching: bool = False
    autoRemeasure: bool = True

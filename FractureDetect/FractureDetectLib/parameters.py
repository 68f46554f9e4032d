"""FractureDetect parameter node. Slicer only: ``parameterNodeWrapper`` exists only in the
application, so ``FractureDetect.py`` imports this module lazily, inside the widget."""

from MSKAILib.module_logic import MergePolicy
from slicer import (
    vtkMRMLMarkupsROINode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.parameterNodeWrapper import parameterNodeWrapper


@parameterNodeWrapper
class FractureDetectParameterNode:
    """Names match the ``SlicerParameterName`` properties in Resources/UI/FractureDetect.ui."""

    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    roi: vtkMRMLMarkupsROINode
    resultsTable: vtkMRMLTableNode
    mergePolicy: MergePolicy = MergePolicy.SKIP_EDITED

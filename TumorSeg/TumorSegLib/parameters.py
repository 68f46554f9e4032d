"""TumorSeg parameter node. Slicer only: ``parameterNodeWrapper`` exists only in the
application, so ``TumorSeg.py`` imports this module lazily, inside the widget."""

from typing import Annotated

from MSKAILib.module_logic import MergePolicy
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper

from TumorSegLib.logic import MAX_MARGIN_MM


@parameterNodeWrapper
class TumorSegParameterNode:
    """Names match the ``SlicerParameterName`` properties in Resources/UI/TumorSeg.ui.

    The click lists are shown by qSlicerSimpleMarkupsWidget, which has no GUI connector,
    so the widget keeps ``positiveClicks``/``negativeClicks`` in sync itself.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    positiveClicks: vtkMRMLMarkupsFiducialNode
    negativeClicks: vtkMRMLMarkupsFiducialNode
    resultsTable: vtkMRMLTableNode
    marginMm: Annotated[float, WithinRange(0.0, MAX_MARGIN_MM)] = 10.0
    mergePolicy: MergePolicy = MergePolicy.SKIP_EDITED

"""TumorSeg parameter node. Slicer only: ``parameterNodeWrapper`` exists only in the
application, so ``TumorSeg.py`` imports this module lazily, inside the widget."""

from typing import Annotated

from MSKAILib.module_logic import MergePolicy
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLMarkupsLineNode,
    vtkMRMLMarkupsROINode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper

from TumorSegLib.logic import MAX_MARGIN_MM, TumorMethod


@parameterNodeWrapper
class TumorSegParameterNode:
    """Names match the ``SlicerParameterName`` properties in Resources/UI/TumorSeg.ui.

    The click lists are shown by qSlicerSimpleMarkupsWidget, which has no GUI connector,
    so the widget keeps ``positiveClicks``/``negativeClicks`` in sync itself. The default
    policy is ``replace``: a run refines the current (possibly edited) tumour, and an
    edited segment is first copied to "<name> (manual backup)", so nothing is lost.
    ``method`` picks the click segmentation: ``auto`` (default: the network's first mask
    for a large tumour, classic otherwise), ``classic`` (non-learned) or ``learned`` (the
    ``tumor_refine_unet`` network, from the first click).
    ``roi`` (a box) and ``recistLine`` (a line across the longest axis) are prompts too:
    either alone is enough to segment.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    positiveClicks: vtkMRMLMarkupsFiducialNode
    negativeClicks: vtkMRMLMarkupsFiducialNode
    roi: vtkMRMLMarkupsROINode
    recistLine: vtkMRMLMarkupsLineNode
    resultsTable: vtkMRMLTableNode
    marginMm: Annotated[float, WithinRange(0.0, MAX_MARGIN_MM)] = 10.0
    method: TumorMethod = TumorMethod.AUTO   # the cross-validated best (mskai tumor's default)
    mergePolicy: MergePolicy = MergePolicy.REPLACE
    refineOnClick: bool = True
    baselineVolume: vtkMRMLScalarVolumeNode
    baselineSegmentation: vtkMRMLSegmentationNode
    responseTable: vtkMRMLTableNode

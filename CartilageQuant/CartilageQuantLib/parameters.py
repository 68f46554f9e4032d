"""CartilageQuant parameter node. Slicer only: ``parameterNodeWrapper`` exists only in the
application, so ``CartilageQuant.py`` imports this module lazily, inside the widget."""

from MSKAILib.module_logic import MergePolicy
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.parameterNodeWrapper import parameterNodeWrapper

from CartilageQuantLib.logic import ThicknessMethod


@parameterNodeWrapper
class CartilageQuantParameterNode:
    """Names match the ``SlicerParameterName`` properties in Resources/UI/CartilageQuant.ui."""

    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    resultsTable: vtkMRMLTableNode
    thicknessMethod: ThicknessMethod = ThicknessMethod.NEAREST_NEIGHBOUR
    mergePolicy: MergePolicy = MergePolicy.SKIP_EDITED

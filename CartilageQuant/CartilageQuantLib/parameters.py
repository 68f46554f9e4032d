"""CartilageQuant parameter node. Slicer only: ``parameterNodeWrapper`` exists only in the
application, so ``CartilageQuant.py`` imports this module lazily, inside the widget."""

import enum

from MSKAILib.module_logic import MergePolicy
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.parameterNodeWrapper import parameterNodeWrapper

from CartilageQuantLib.logic import ThicknessMethod


class ProfileAxis(str, enum.Enum):
    """Axis of the thickness profile plot (``CartilageQuantLib.plots.AXES``)."""

    AP = "AP"
    ML = "ML"

    def label(self) -> str:
        return {"AP": "Antero-posterior", "ML": "Medio-lateral"}[self.value]


@parameterNodeWrapper
class CartilageQuantParameterNode:
    """Names match the ``SlicerParameterName`` properties in Resources/UI/CartilageQuant.ui."""

    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    resultsTable: vtkMRMLTableNode      # one row per plate, plus joint space width
    subregionsTable: vtkMRMLTableNode   # one row per subregion
    labelNames: str = ""                # e.g. femur=Segment_1,femoral_cartilage=2
    thicknessMethod: ThicknessMethod = ThicknessMethod.NEAREST_NEIGHBOUR
    mergePolicy: MergePolicy = MergePolicy.SKIP_EDITED
    showThicknessModels: bool = True
    autoRemeasure: bool = True
    profileAxis: ProfileAxis = ProfileAxis.AP
    refineInsidePoints: vtkMRMLMarkupsFiducialNode   # seeded refinement: points inside
    refineOutsidePoints: vtkMRMLMarkupsFiducialNode  # and points wrongly in the structure

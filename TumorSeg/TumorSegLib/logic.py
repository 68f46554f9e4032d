"""TumorSeg logic: CT/MR volume and clicks in, tumour and safety-margin segments out.

Skeleton: it checks the inputs (at least one positive click inside the image), prepares
the output segmentation and describes the run. The interactive segmentation
(``mskai.tasks.tumor``) is wired in by a later issue.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import vtk
from MSKAILib.module_logic import CancelCallback, MergePolicy, MSKAIModuleLogic, ProgressCallback

from mskai.errors import InputError

MAX_MARGIN_MM = 100.0


class TumorSegLogic(MSKAIModuleLogic):
    """Segment a bone or soft-tissue tumour from clicks; usable without the module's GUI."""

    moduleName = "TumorSeg"

    @staticmethod
    def pointsRas(markupsNode: Any) -> np.ndarray:
        """Control points of a markups node in RAS (world) millimetres, shape (n, 3)."""
        if markupsNode is None:
            return np.zeros((0, 3))
        points = [markupsNode.GetNthControlPointPositionWorld(i)
                  for i in range(markupsNode.GetNumberOfControlPoints())]
        return np.asarray(points, dtype=float).reshape(-1, 3)

    @staticmethod
    def pointsInsideVolume(volumeNode: Any, pointsRas: np.ndarray) -> np.ndarray:
        """Boolean per point: is it inside the volume's voxel grid (any orientation)."""
        rasToIjk = vtk.vtkMatrix4x4()
        volumeNode.GetRASToIJKMatrix(rasToIjk)
        matrix = np.array([[rasToIjk.GetElement(r, c) for c in range(4)] for r in range(4)])
        homogeneous = np.c_[pointsRas, np.ones(len(pointsRas))]
        ijk = (homogeneous @ matrix.T)[:, :3]
        dims = np.array(volumeNode.GetImageData().GetDimensions())
        return np.all((ijk >= -0.5) & (ijk <= dims - 0.5), axis=1)

    def validateInputs(self, volumeNode: Any, promptsNode: Any,
                       negativePromptsNode: Any = None, marginMm: float = 10.0) -> None:
        self.validateVolume(volumeNode)
        for node, what in ((promptsNode, "tumour clicks"),
                           (negativePromptsNode, "background clicks")):
            self.validateNodeClass(node, "vtkMRMLMarkupsFiducialNode", what)
        positive = self.pointsRas(promptsNode)
        if len(positive) == 0:
            raise InputError("Place at least one tumour click (positive point) in the tumour.")
        outside = ~self.pointsInsideVolume(volumeNode, positive)
        if outside.any():
            raise InputError(f"{int(outside.sum())} tumour click(s) lie outside "
                             f"{volumeNode.GetName()}: move them onto the image.")
        if not 0.0 <= float(marginMm) <= MAX_MARGIN_MM:
            raise InputError(f"Safety margin {marginMm} mm is out of range: "
                             f"use 0 to {MAX_MARGIN_MM:g} mm.")

    def describe(self, volumeNode: Any, promptsNode: Any, negativePromptsNode: Any = None,
                 marginMm: float = 10.0) -> dict[str, Any]:
        """What a run on these inputs would process."""
        self.validateInputs(volumeNode, promptsNode, negativePromptsNode, marginMm)
        return {"module": self.moduleName, **self.describeVolume(volumeNode),
                "positive_clicks": len(self.pointsRas(promptsNode)),
                "negative_clicks": len(self.pointsRas(negativePromptsNode)),
                "margin_mm": float(marginMm)}

    def run(self, volumeNode: Any, promptsNode: Any, segmentationNode: Any = None,
            negativePromptsNode: Any = None, marginMm: float = 10.0,
            progress: ProgressCallback | None = None, cancel: CancelCallback | None = None,
            mergePolicy: MergePolicy | str = MergePolicy.SKIP_EDITED) -> Any:
        """Check inputs and return the output segmentation node (created when None)."""
        policy = self.mergePolicy(mergePolicy)
        self.step(progress, cancel, 0.0, "Checking inputs")
        self.validateInputs(volumeNode, promptsNode, negativePromptsNode, marginMm)
        segmentationNode = self.prepareSegmentation(volumeNode, segmentationNode)
        segmentationNode.SetAttribute("MSKAI.MergePolicy", policy.value)
        self.step(progress, cancel, 1.0, "Done")
        return segmentationNode

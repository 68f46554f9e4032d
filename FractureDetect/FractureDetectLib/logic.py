"""FractureDetect logic: CT volume (+ optional ROI) in, bone segments and candidates out.

Skeleton: it checks the inputs, prepares the output segmentation and describes the run.
The AI detection (``mskai.tasks.fracture``) is wired in by a later issue; heavy imports
will stay inside :meth:`FractureDetectLogic.run`.
"""

from __future__ import annotations

from typing import Any

from MSKAILib.module_logic import CancelCallback, MergePolicy, MSKAIModuleLogic, ProgressCallback


class FractureDetectLogic(MSKAIModuleLogic):
    """Detect fractures in a CT volume; usable without the module's GUI."""

    moduleName = "FractureDetect"

    def validateInputs(self, volumeNode: Any, roiNode: Any = None) -> None:
        self.validateVolume(volumeNode)
        self.validateNodeClass(roiNode, "vtkMRMLMarkupsROINode", "region of interest")

    def describe(self, volumeNode: Any, roiNode: Any = None) -> dict[str, Any]:
        """What a run on these inputs would process."""
        self.validateInputs(volumeNode, roiNode)
        info = {"module": self.moduleName, **self.describeVolume(volumeNode)}
        info["roi"] = roiNode.GetName() if roiNode is not None else "whole volume"
        return info

    def run(self, volumeNode: Any, segmentationNode: Any = None, roiNode: Any = None,
            progress: ProgressCallback | None = None, cancel: CancelCallback | None = None,
            mergePolicy: MergePolicy | str = MergePolicy.SKIP_EDITED) -> Any:
        """Check inputs and return the output segmentation node (created when None)."""
        policy = self.mergePolicy(mergePolicy)
        self.step(progress, cancel, 0.0, "Checking inputs")
        self.validateInputs(volumeNode, roiNode)
        segmentationNode = self.prepareSegmentation(volumeNode, segmentationNode)
        segmentationNode.SetAttribute("MSKAI.MergePolicy", policy.value)
        self.step(progress, cancel, 1.0, "Done")
        return segmentationNode

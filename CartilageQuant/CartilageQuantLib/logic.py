"""CartilageQuant logic: knee MRI in, bone and cartilage segments and thickness out.

Skeleton: it checks the inputs, prepares the output segmentation and describes the run.
Segmentation and thickness (``mskai.tasks.cartilage``) come in a later issue.
"""

from __future__ import annotations

import enum
from typing import Any

from MSKAILib.module_logic import CancelCallback, MergePolicy, MSKAIModuleLogic, ProgressCallback

from mskai.errors import InputError


class ThicknessMethod(str, enum.Enum):
    """Cartilage thickness definitions; the values are CONTRACT.md's ``thickness_method``."""

    NEAREST_NEIGHBOUR = "nearest_neighbour"
    SURFACE_NORMAL = "surface_normal"

    def label(self) -> str:
        """Text shown in the module's combo box."""
        return {"nearest_neighbour": "Nearest neighbour",
                "surface_normal": "Surface normal"}[self.value]


class CartilageQuantLogic(MSKAIModuleLogic):
    """Segment knee cartilage and measure its thickness; usable without the module's GUI."""

    moduleName = "CartilageQuant"

    @staticmethod
    def validateThicknessMethod(method: ThicknessMethod | str) -> ThicknessMethod:
        try:
            return ThicknessMethod(method)
        except ValueError:
            choices = ", ".join(m.value for m in ThicknessMethod)
            raise InputError(
                f"Unknown thickness method {method!r}: use one of {choices}.") from None

    def describe(self, volumeNode: Any,
                 thicknessMethod: ThicknessMethod | str = ThicknessMethod.NEAREST_NEIGHBOUR,
                 ) -> dict[str, Any]:
        """What a run on these inputs would process."""
        self.validateVolume(volumeNode)
        method = self.validateThicknessMethod(thicknessMethod)
        return {"module": self.moduleName, **self.describeVolume(volumeNode),
                "thickness_method": method.value}

    def run(self, volumeNode: Any, segmentationNode: Any = None,
            thicknessMethod: ThicknessMethod | str = ThicknessMethod.NEAREST_NEIGHBOUR,
            progress: ProgressCallback | None = None, cancel: CancelCallback | None = None,
            mergePolicy: MergePolicy | str = MergePolicy.SKIP_EDITED) -> Any:
        """Check inputs and return the output segmentation node (created when None)."""
        policy = self.mergePolicy(mergePolicy)
        self.step(progress, cancel, 0.0, "Checking inputs")
        self.validateVolume(volumeNode)
        method = self.validateThicknessMethod(thicknessMethod)
        segmentationNode = self.prepareSegmentation(volumeNode, segmentationNode)
        segmentationNode.SetAttribute("MSKAI.MergePolicy", policy.value)
        segmentationNode.SetAttribute("MSKAI.ThicknessMethod", method.value)
        self.step(progress, cancel, 1.0, "Done")
        return segmentationNode

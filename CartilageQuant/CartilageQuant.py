"""CartilageQuant: knee cartilage segmentation and thickness in MRI (Slicer scripted module).

Only Slicer and the standard library are imported at module level; the logic, the
parameter node and everything heavy are imported when the widget or test needs them,
so this file never slows down or breaks Slicer start-up.
"""

import slicer
import vtk
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin


class CartilageQuant(ScriptedLoadableModule):
    """Module description shown in Slicer's module panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Cartilage Quant"
        self.parent.categories = ["MSK AI"]
        self.parent.dependencies = ["MSKAI"]
        self.parent.contributors = ["MSK AI contributors"]
        self.parent.helpText = """
Segments femur, tibia, patella and their cartilage in knee MRI and measures cartilage
thickness (nearest-neighbour or surface-normal) per subregion, with joint space width.
Results go into the selected segmentation using the chosen merge policy, so hand edits
are never overwritten silently; measurements recompute after manual corrections.
See <a href="https://github.com/mskai/SlicerMSKAI#fracturedetect">the documentation</a>.
"""
        self.parent.acknowledgementText = """
Part of the MSK AI extension. Built on 3D Slicer, MONAI and PyTorch.
"""


class CartilageQuantWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Binds Resources/UI/CartilageQuant.ui to the parameter node; all work is in the logic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.runner = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CartilageQuant.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        from CartilageQuantLib.logic import CartilageQuantLogic
        from MSKAILib.widget_helpers import ProgressRunner

        self.logic = CartilageQuantLogic()
        self.runner = ProgressRunner(self.ui.progressBar, self.ui.applyButton, self.ui.cancelButton)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.runner.requestCancel)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        from CartilageQuantLib.parameters import CartilageQuantParameterNode

        self.setParameterNode(CartilageQuantParameterNode(self.logic.getParameterNode()))
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                                self._checkCanApply)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        ready = bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.applyButton.enabled = ready and not self.runner.running
        self.ui.applyButton.toolTip = ("Segment cartilage and measure thickness" if ready
                                       else "Select an input volume")

    def onApplyButton(self) -> None:
        from MSKAILib.dependencies import ensureDependenciesInSlicer

        if not ensureDependenciesInSlicer():
            return
        p = self._parameterNode
        segmentation = self.runner.run(lambda progress, cancel: self.logic.run(
            p.inputVolume, p.outputSegmentation, p.thicknessMethod,
            progress=progress, cancel=cancel, mergePolicy=p.mergePolicy))
        if segmentation is None:
            return
        p.outputSegmentation = segmentation
        p.resultsTable = self.logic.fillTable(self.logic.describe(p.inputVolume, p.thicknessMethod),
                                              p.resultsTable)
        self.ui.resultsTableView.setMRMLTableNode(p.resultsTable)


class CartilageQuantTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Reload and Test, or ctest): the logic on a small synthetic MRI."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_CartilageQuantLogic()

    def test_CartilageQuantLogic(self) -> None:
        import numpy as np
        from CartilageQuantLib.logic import CartilageQuantLogic

        from mskai.errors import CancelledError, InputError

        voxels = np.zeros((12, 24, 24), dtype=np.int16)
        voxels[3:9, 8:12, 4:20] = 300  # bone
        voxels[3:9, 12:14, 4:20] = 800  # a cartilage-like layer
        volumeNode = slicer.util.addVolumeFromArray(voxels, name="SyntheticKneeMR")
        logic = CartilageQuantLogic()

        steps = []
        segmentationNode = logic.run(volumeNode, progress=lambda f, m: steps.append(f))
        self.assertTrue(segmentationNode.IsA("vtkMRMLSegmentationNode"))
        self.assertEqual(steps[-1], 1.0)
        self.assertIs(logic.run(volumeNode, segmentationNode), segmentationNode)
        with self.assertRaises(CancelledError):
            logic.run(volumeNode, cancel=lambda: True)
        with self.assertRaises(InputError):
            logic.run(None)
        with self.assertRaises(InputError):
            logic.run(volumeNode, thicknessMethod="unknown")
        self.delayDisplay("CartilageQuant logic test passed")

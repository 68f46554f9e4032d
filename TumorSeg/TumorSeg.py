"""TumorSeg: interactive bone and soft-tissue tumour segmentation (Slicer scripted module).

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


class TumorSeg(ScriptedLoadableModule):
    """Module description shown in Slicer's module panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Tumor Seg"
        self.parent.categories = ["MSK AI"]
        self.parent.dependencies = ["MSKAI"]
        self.parent.contributors = ["MSK AI contributors"]
        self.parent.helpText = """
Segments a bone or soft-tissue tumour in CT or MRI from clicks inside (positive) and
outside (negative) the tumour, adds a safety margin, and measures volume, RECIST diameters
and the distance to bone. Results go into the selected segmentation using the chosen merge
policy, so hand edits are never overwritten silently.
See <a href="https://github.com/mskai/SlicerMSKAI#fracturedetect">the documentation</a>.
"""
        self.parent.acknowledgementText = """
Part of the MSK AI extension. Built on 3D Slicer, MONAI and PyTorch.
"""


class TumorSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Binds Resources/UI/TumorSeg.ui to the parameter node; all work is in the logic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.runner = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/TumorSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        from MSKAILib.widget_helpers import ProgressRunner
        from TumorSegLib.logic import TumorSegLogic

        self.logic = TumorSegLogic()
        self.runner = ProgressRunner(self.ui.progressBar, self.ui.applyButton, self.ui.cancelButton)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.runner.requestCancel)
        # qSlicerSimpleMarkupsWidget has no parameter node connector: sync by hand.
        self.ui.positiveClicksWidget.connect("markupsNodeChanged()", self.onClicksChanged)
        self.ui.negativeClicksWidget.connect("markupsNodeChanged()", self.onClicksChanged)

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
        from TumorSegLib.parameters import TumorSegParameterNode

        self.setParameterNode(TumorSegParameterNode(self.logic.getParameterNode()))
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
            self.ui.positiveClicksWidget.setCurrentNode(self._parameterNode.positiveClicks)
            self.ui.negativeClicksWidget.setCurrentNode(self._parameterNode.negativeClicks)
            self._checkCanApply()

    def onClicksChanged(self) -> None:
        if self._parameterNode:
            self._parameterNode.positiveClicks = self.ui.positiveClicksWidget.currentNode()
            self._parameterNode.negativeClicks = self.ui.negativeClicksWidget.currentNode()

    def _checkCanApply(self, caller=None, event=None) -> None:
        p = self._parameterNode
        ready = bool(p and p.inputVolume and p.positiveClicks)
        self.ui.applyButton.enabled = ready and not self.runner.running
        self.ui.applyButton.toolTip = ("Segment the tumour" if ready
                                       else "Select an input volume and place tumour clicks")

    def onApplyButton(self) -> None:
        from MSKAILib.dependencies import ensureDependenciesInSlicer

        if not ensureDependenciesInSlicer():
            return
        p = self._parameterNode
        segmentation = self.runner.run(lambda progress, cancel: self.logic.run(
            p.inputVolume, p.positiveClicks, p.outputSegmentation,
            negativePromptsNode=p.negativeClicks, marginMm=p.marginMm,
            progress=progress, cancel=cancel, mergePolicy=p.mergePolicy))
        if segmentation is None:
            return
        p.outputSegmentation = segmentation
        p.resultsTable = self.logic.fillTable(self.logic.describe(
            p.inputVolume, p.positiveClicks, p.negativeClicks, p.marginMm), p.resultsTable)
        self.ui.resultsTableView.setMRMLTableNode(p.resultsTable)


class TumorSegTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Reload and Test, or ctest): the logic on a small synthetic image."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_TumorSegLogic()

    def test_TumorSegLogic(self) -> None:
        import numpy as np
        from TumorSegLib.logic import TumorSegLogic

        from mskai.errors import CancelledError, InputError

        voxels = np.zeros((12, 24, 24), dtype=np.int16)
        voxels[4:8, 8:16, 8:16] = 500  # a tumour-like blob
        volumeNode = slicer.util.addVolumeFromArray(voxels, name="SyntheticTumor")
        clicks = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "tumour")
        logic = TumorSegLogic()
        with self.assertRaises(InputError):
            logic.run(volumeNode, clicks)  # no click yet
        clicks.AddControlPoint(vtk.vtkVector3d(12, 12, 6))

        steps = []
        segmentationNode = logic.run(volumeNode, clicks, progress=lambda f, m: steps.append(f))
        self.assertTrue(segmentationNode.IsA("vtkMRMLSegmentationNode"))
        self.assertEqual(steps[-1], 1.0)
        self.assertIs(logic.run(volumeNode, clicks, segmentationNode), segmentationNode)
        with self.assertRaises(CancelledError):
            logic.run(volumeNode, clicks, cancel=lambda: True)
        clicks.AddControlPoint(vtk.vtkVector3d(500, 12, 6))  # outside the image
        with self.assertRaises(InputError):
            logic.run(volumeNode, clicks)
        self.delayDisplay("TumorSeg logic test passed")

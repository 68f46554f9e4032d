"""CartilageQuant: knee cartilage segmentation and thickness in MRI (Slicer scripted module).

Only Slicer and the standard library are imported at module level; the logic, the
parameter node and everything heavy are imported when the widget or test needs them,
so this file never slows down or breaks Slicer start-up.
"""

import shutil

import qt
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
See <a href="https://github.com/mskai/SlicerMSKAI#cartilagequant">the documentation</a>.
"""
        self.parent.acknowledgementText = """
Part of the MSK AI extension. Built on 3D Slicer, MONAI and PyTorch.
"""


class CartilageQuantWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Binds Resources/UI/CartilageQuant.ui to the parameter node; all work is in the logic."""

    REMEASURE_DELAY_MS = 500

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.runner = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedSegmentation = None
        self._applying = False
        self._baseline = None
        self._chartNode = None
        self._remeasureTimer = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CartilageQuant.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        from CartilageQuantLib.logic import CartilageQuantLogic
        from MSKAILib.widget_helpers import ProgressRunner

        self.logic = CartilageQuantLogic()
        self.logic.runnerFactory = self.makeJobRunner
        self.runner = ProgressRunner(self.ui.progressBar, self.ui.applyButton, self.ui.cancelButton)
        self._remeasureTimer = qt.QTimer()
        self._remeasureTimer.setSingleShot(True)
        self._remeasureTimer.setInterval(self.REMEASURE_DELAY_MS)
        self._remeasureTimer.connect("timeout()", self.onRemeasureTimer)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.runner.requestCancel)
        self.ui.remeasureButton.connect("clicked(bool)", self.onRemeasureButton)
        self.ui.showThicknessModelsCheckBox.connect("toggled(bool)", self.onShowModels)
        self.ui.profileButton.connect("clicked(bool)", self.onProfileButton)
        self.ui.keepBaselineButton.connect("clicked(bool)", self.onKeepBaseline)
        self.ui.changeButton.connect("clicked(bool)", self.onChangeButton)

        self.initializeParameterNode()

    @staticmethod
    def makeJobRunner():
        """A child process running Slicer's Python (PythonSlicer), else a thread."""
        from mskai.runner.inprocess import InProcessRunner
        from mskai.runner.subprocess_runner import SubprocessRunner

        python = shutil.which("PythonSlicer")
        return SubprocessRunner(python) if python else InProcessRunner()

    def cleanup(self) -> None:
        if self._remeasureTimer is not None:
            self._remeasureTimer.stop()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)
        self._baseline, self._chartNode = None, None

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
                                self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                             self._onParameterNodeModified)
        self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        p = self._parameterNode
        self._observeSegmentation(p.outputSegmentation if p else None)
        if not p:
            return
        ready = bool(p.inputVolume)
        self.ui.applyButton.enabled = ready and not self.runner.running
        self.ui.applyButton.toolTip = ("Segment (if needed) and measure cartilage thickness"
                                       if ready else "Select an input volume")
        self.ui.remeasureButton.enabled = ready and bool(p.outputSegmentation)
        self.ui.resultsTableView.setMRMLTableNode(p.resultsTable)
        self.ui.subregionsTableView.setMRMLTableNode(p.subregionsTable)

    # --- re-measure after edits (debounced) --------------------------------------------

    def _observeSegmentation(self, segmentationNode) -> None:
        if segmentationNode is self._observedSegmentation:
            return
        events = (slicer.vtkSegmentation.SegmentModified, slicer.vtkSegmentation.SegmentAdded,
                  slicer.vtkSegmentation.SegmentRemoved)
        if self._observedSegmentation is not None:
            segmentation = self._observedSegmentation.GetSegmentation()
            for event in events:
                self.removeObserver(segmentation, event, self._onSegmentationEdited)
        self._observedSegmentation = segmentationNode
        if segmentationNode is not None:
            for event in events:
                self.addObserver(segmentationNode.GetSegmentation(), event,
                                 self._onSegmentationEdited)

    def _onSegmentationEdited(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if self._applying or not p or not p.autoRemeasure or not p.resultsTable:
            return  # our own writes, or nothing measured yet
        self._remeasureTimer.start()  # restarts: one re-measure after the last edit

    def onRemeasureTimer(self) -> None:
        if self.runner.running:
            self._remeasureTimer.start()  # try again once the running job has ended
            return
        self.onRemeasureButton()

    def onRemeasureButton(self) -> None:
        p = self._parameterNode
        tables = self.runner.run(lambda progress, cancel: self.logic.remeasure(
            p.inputVolume, p.outputSegmentation, p.labelNames, p.thicknessMethod,
            progress=progress, cancel=cancel, platesTable=p.resultsTable,
            subregionsTable=p.subregionsTable))
        if tables is not None:
            self._showResults(*tables)

    # --- apply --------------------------------------------------------------------------

    def onApplyButton(self) -> None:
        from MSKAILib.dependencies import ensureDependenciesInSlicer

        if not ensureDependenciesInSlicer():
            return
        p = self._parameterNode
        self._applying = True
        try:
            outputs = self.runner.run(lambda progress, cancel: self.logic.run(
                p.inputVolume, p.outputSegmentation, p.labelNames, p.thicknessMethod,
                p.mergePolicy, progress=progress, cancel=cancel, platesTable=p.resultsTable,
                subregionsTable=p.subregionsTable))
        finally:
            self._applying = False
        if outputs is None:
            return
        segmentation, plates, subregions = outputs
        p.outputSegmentation = segmentation
        self._showResults(plates, subregions)

    def _showResults(self, plates, subregions) -> None:
        p = self._parameterNode
        p.resultsTable, p.subregionsTable = plates, subregions
        self.ui.resultsTableView.setMRMLTableNode(plates)
        self.ui.subregionsTableView.setMRMLTableNode(subregions)
        plateIds = list(self.logic.thicknessSurfaces()) if self._measured() else []
        current = self.ui.profilePlateComboBox.currentText
        self.ui.profilePlateComboBox.clear()
        for plateId in plateIds:
            self.ui.profilePlateComboBox.addItem(plateId)
        if current in plateIds:
            self.ui.profilePlateComboBox.setCurrentText(current)
        for button in (self.ui.profileButton, self.ui.keepBaselineButton):
            button.enabled = bool(plateIds)
        self.ui.changeButton.enabled = bool(plateIds) and self._baseline is not None
        if plateIds:
            self.logic.thicknessModels(visible=p.showThicknessModels)

    def _measured(self) -> bool:
        outputs = self.logic.lastOutputs
        return bool(outputs is not None and outputs.surfaces)

    # --- models, profile, change ------------------------------------------------------

    def onShowModels(self, visible: bool) -> None:
        self.logic.setThicknessModelsVisible(visible)

    def onProfileButton(self) -> None:
        p = self._parameterNode
        plateId = self.ui.profilePlateComboBox.currentText
        with slicer.util.tryWithErrorDisplay("Could not plot the thickness profile.",
                                             waitCursor=True):
            if self._chartNode is not None and slicer.mrmlScene.IsNodePresent(self._chartNode):
                chart = self.logic.thicknessProfilePlot(plateId, p.profileAxis.value,
                                                        chartNode=self._chartNode)
            else:
                chart = self.logic.thicknessProfilePlot(plateId, p.profileAxis.value)
            self._chartNode = chart
            slicer.modules.plots.logic().ShowChartInLayout(chart)

    def onKeepBaseline(self) -> None:
        self._baseline = dict(self.logic.thicknessSurfaces())
        self.ui.changeButton.enabled = True
        self.ui.keepBaselineButton.text = "Baseline kept (keep again)"

    def onChangeButton(self) -> None:
        current = self.logic.thicknessSurfaces()
        common = [plateId for plateId in self._baseline if plateId in current]
        with slicer.util.tryWithErrorDisplay("Could not compute the thickness change.",
                                             waitCursor=True):
            if not common:
                from mskai.errors import InputError

                raise InputError("The baseline and the current measurement share no plate.")
            for plateId in common:
                self.logic.changeModel(self._baseline[plateId], current[plateId])
            self.logic.setThicknessModelsVisible(False)


class CartilageQuantTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Reload and Test, or ctest): the logic on a synthetic knee slab
    made in code (2.0 mm cartilage, 5.0 mm joint space)."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_CartilageQuantLogic()

    def test_CartilageQuantLogic(self) -> None:
        from CartilageQuantLib import synthetic
        from CartilageQuantLib.logic import CartilageQuantLogic

        from mskai.errors import CancelledError, InputError
        from mskai.runner.inprocess import InProcessRunner
        from mskai.slicer_io import table_to_rows

        volumeNode, segmentationNode = synthetic.addSlabKnee(slicer.mrmlScene)
        logic = CartilageQuantLogic()
        steps = []
        node, plates, subregions = logic.run(volumeNode, segmentationNode,
                                             runner=InProcessRunner(),
                                             progress=lambda f, m: steps.append(f))
        self.assertIs(node, segmentationNode)
        self.assertEqual(steps[-1], 1.0)
        rows = {row["plate"]: row for row in table_to_rows(plates)}
        self.assertAlmostEqual(rows["femoral_cartilage"]["mean_thickness_mm"],
                               synthetic.THICKNESS_MM, delta=0.1)
        self.assertAlmostEqual(rows["joint_space_width"]["jsw_min_mm"],
                               synthetic.JOINT_SPACE_MM, delta=0.3)
        self.assertGreater(subregions.GetNumberOfRows(), 0)
        model = logic.thicknessModels()["femoral_cartilage"]
        self.assertEqual(model.GetPolyData().GetPointData().GetArray("Thickness (mm)")
                         .GetNumberOfTuples(), model.GetPolyData().GetNumberOfPoints())
        chart = logic.thicknessProfilePlot("femoral_cartilage", "ML")
        self.assertEqual(chart.GetNumberOfPlotSeriesNodes(), 1)
        with self.assertRaises(CancelledError):
            logic.run(volumeNode, segmentationNode, cancel=lambda: True)
        with self.assertRaises(InputError):
            logic.run(None)
        with self.assertRaises(InputError):
            logic.run(volumeNode, segmentationNode, method="unknown")
        self.delayDisplay("CartilageQuant logic test passed")

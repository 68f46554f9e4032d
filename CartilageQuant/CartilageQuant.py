"""CartilageQuant: knee cartilage segmentation and thickness in MRI (Slicer scripted module).

Only Slicer, the standard library and the start-up-safe widget base are imported at module
level; the logic, the parameter node and everything heavy are imported when the widget or
test needs them, so this file never slows down or breaks Slicer start-up.
"""

import slicer
from MSKAILib.module_widget import MSKAIModuleWidget, always
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest


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
A structure that fails the anatomical checks is fixed in "Correct a structure": points
inside it (and optionally outside), then Refine and re-measure.
See <a href="https://github.com/mskai/SlicerMSKAI#cartilagequant">the documentation</a>.
"""
        self.parent.acknowledgementText = """
Part of the MSK AI extension. Built on 3D Slicer, MONAI and PyTorch.
"""


class CartilageQuantWidget(MSKAIModuleWidget):
    """Binds Resources/UI/CartilageQuant.ui to the parameter node; all work is in the logic."""

    def __init__(self, parent=None) -> None:
        MSKAIModuleWidget.__init__(self, parent)
        self._baseline = None
        self._chartNode = None

    def createLogic(self):
        from CartilageQuantLib.logic import CartilageQuantLogic

        return CartilageQuantLogic()

    def createParameterNode(self, node):
        from CartilageQuantLib.parameters import CartilageQuantParameterNode

        return CartilageQuantParameterNode(node)

    def setupModule(self) -> None:
        self.ui.showThicknessModelsCheckBox.connect("toggled(bool)", self.onShowModels)
        self.ui.profileButton.connect("clicked(bool)", self.onProfileButton)
        self.ui.keepBaselineButton.connect("clicked(bool)", self.onKeepBaseline)
        self.ui.changeButton.connect("clicked(bool)", self.onChangeButton)
        self.ui.refineButton.connect("clicked(bool)", self.onRefine)

    def onSceneStartClose(self, caller, event) -> None:
        MSKAIModuleWidget.onSceneStartClose(self, caller, event)
        self._baseline, self._chartNode = None, None

    def updateGui(self) -> None:
        p = self._parameterNode
        if not p:
            return
        ready = self.canApply()
        self.ui.applyButton.toolTip = ("Segment (if needed) and measure cartilage thickness"
                                       if ready else "Select an input volume")
        self.ui.resultsTableView.setMRMLTableNode(p.resultsTable)
        self.ui.subregionsTableView.setMRMLTableNode(p.subregionsTable)
        self._fillRefineStructures(p.outputSegmentation)

    def actionConditions(self):
        """Every control that touches the measured nodes (disabled while a job runs)."""
        return {**MSKAIModuleWidget.actionConditions(self),
                "profileButton": self._measured, "keepBaselineButton": self._measured,
                "changeButton": lambda: self._measured() and self._baseline is not None,
                "refineButton": self._canRefine,
                "showThicknessModelsCheckBox": always}

    # --- apply and re-measure ---------------------------------------------------------------

    def remeasureOnEdit(self) -> bool:
        p = self._parameterNode
        return bool(p.autoRemeasure and p.resultsTable)  # nothing measured yet: wait

    def onRemeasure(self) -> None:
        p = self._parameterNode
        if not p or self.jobs.running:
            return
        self.startJob(lambda: self.logic.prepareRemeasure(
            p.inputVolume, p.outputSegmentation, p.labelNames, p.thicknessMethod,
            platesTable=p.resultsTable, subregionsTable=p.subregionsTable),
            lambda tables: self._showResults(*tables))

    def prepareJob(self):
        p = self._parameterNode
        return self.logic.prepareRun(p.inputVolume, p.outputSegmentation, p.labelNames,
                                     p.thicknessMethod, p.mergePolicy,
                                     platesTable=p.resultsTable,
                                     subregionsTable=p.subregionsTable)

    def showOutputs(self, outputs) -> None:
        segmentation, plates, subregions = outputs
        self._parameterNode.outputSegmentation = segmentation
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
        self.refreshActions()
        if plateIds:
            self.logic.thicknessModels(visible=p.showThicknessModels)

    def _measured(self) -> bool:
        outputs = self.logic.lastOutputs
        return bool(outputs is not None and outputs.surfaces)

    # --- seeded refinement -------------------------------------------------------------

    def _fillRefineStructures(self, segmentationNode) -> None:
        """The output's segments, then the knee structures it lacks (refinement adds a
        missing one); the current choice is kept."""
        from mskai.terminology import KNEE_SEGMENTS

        present = []
        if segmentationNode is not None:
            segmentation = segmentationNode.GetSegmentation()
            present = [segmentation.GetNthSegmentID(i)
                       for i in range(segmentation.GetNumberOfSegments())]
        names = present + [s for s in KNEE_SEGMENTS if s not in present]
        combo = self.ui.refineSegmentComboBox
        if [combo.itemText(i) for i in range(combo.count)] == names:
            return
        current = combo.currentText
        combo.clear()
        for name in names:
            combo.addItem(name)
        if current in names:
            combo.setCurrentText(current)

    def _canRefine(self) -> bool:
        p = self._parameterNode
        return bool(self.canRemeasure() and (p.refineInsidePoints or p.refineOutsidePoints))

    def onRefine(self) -> None:
        """Seeded refinement of the chosen structure from the point lists (the fix the
        anatomical checks suggest), then a re-measure. Every other segment edited by hand is
        locked, so none of its voxels is taken."""
        p = self._parameterNode
        if not p or self.jobs.running:
            return
        from mskai.segments import STATUS_EDITED
        from mskai.slicer_io.merge import segment_statuses

        target = self.ui.refineSegmentComboBox.currentText
        with self.writingSegments(), slicer.util.tryWithErrorDisplay(
                "Could not refine the structure.", waitCursor=True):
            locked = [segmentId for segmentId, status
                      in segment_statuses(p.outputSegmentation).items()
                      if status == STATUS_EDITED and segmentId != target]
            self.logic.refineSegment(p.inputVolume, p.outputSegmentation, target,
                                     p.refineInsidePoints, p.refineOutsidePoints,
                                     lockedSegmentIds=locked)
        self.onRemeasure()

    # --- models, profile, change ------------------------------------------------------

    def onShowModels(self, visible: bool) -> None:
        if not self.jobs.running:
            self.logic.setThicknessModelsVisible(visible)

    def onProfileButton(self) -> None:
        p = self._parameterNode
        if self.jobs.running:
            return
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
        if self.jobs.running:
            return
        self._baseline = dict(self.logic.thicknessSurfaces())
        self.refreshActions()
        self.ui.keepBaselineButton.text = "Baseline kept (keep again)"

    def onChangeButton(self) -> None:
        if self.jobs.running:
            return
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

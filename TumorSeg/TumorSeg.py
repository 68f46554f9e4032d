"""TumorSeg: interactive bone and soft-tissue tumour segmentation (Slicer scripted module).

Only Slicer, the standard library and the start-up-safe widget base are imported at module
level; the logic, the parameter node and everything heavy are imported when the widget or
test needs them, so this file never slows down or breaks Slicer start-up.
"""

import os

import qt
import slicer
import vtk
from MSKAILib.module_widget import MSKAIModuleWidget, always, singleShotTimer
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest

REFINE_DELAY_MS = 300


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
and the distance to bone. Method: Classic (non-learned) or Learned refinement (the
tumor_refine_unet model; its id and version are stored on the segments) or Auto (Classic
for a small tumour, the network for a large one; the segments record which ran). Each click
refines the current tumour segment, hand edits included; results go into the selected
segmentation using the chosen merge policy, and the measurements update after every
Segment Editor edit.
See <a href="https://github.com/mskai/SlicerMSKAI#tumorseg">the documentation</a>.
"""
        self.parent.acknowledgementText = """
Part of the MSK AI extension. Built on 3D Slicer, MONAI and PyTorch.
"""


class TumorSegWidget(MSKAIModuleWidget):
    """Binds Resources/UI/TumorSeg.ui to the parameter node; all work is in the logic."""

    def __init__(self, parent=None) -> None:
        MSKAIModuleWidget.__init__(self, parent)
        self._observedClicks = []
        self._refineTimer = None

    def createLogic(self):
        from TumorSegLib.logic import TumorSegLogic

        return TumorSegLogic()

    def createParameterNode(self, node):
        from TumorSegLib.parameters import TumorSegParameterNode

        return TumorSegParameterNode(node)

    def setupModule(self) -> None:
        self._refineTimer = singleShotTimer(REFINE_DELAY_MS, self.onRefineTimeout)
        # qSlicerSimpleMarkupsWidget has no parameter node connector: sync by hand.
        self.ui.positiveClicksWidget.connect("markupsNodeChanged()", self.onClicksChanged)
        self.ui.negativeClicksWidget.connect("markupsNodeChanged()", self.onClicksChanged)
        self.ui.distanceMapButton.connect("clicked(bool)", self.onDistanceMap)
        self.ui.exportSegNrrdButton.connect("clicked(bool)", self.onExportSegNrrd)
        self.ui.exportDicomSegButton.connect("clicked(bool)", self.onExportDicomSeg)
        self.ui.exportStlButton.connect("clicked(bool)", lambda: self.onExportSurfaces("stl"))
        self.ui.exportObjButton.connect("clicked(bool)", lambda: self.onExportSurfaces("obj"))
        self.ui.exportCsvButton.connect("clicked(bool)", self.onExportCsv)
        self.ui.compareSegmentationsButton.connect("clicked(bool)", self.onCompareSegmentations)
        self.ui.compareFoldersButton.connect("clicked(bool)", self.onCompareFolders)

    def cleanup(self) -> None:
        if self._refineTimer is not None:
            self._refineTimer.stop()
        MSKAIModuleWidget.cleanup(self)

    # --- parameter node -------------------------------------------------------------------

    def initializeParameterNode(self) -> None:
        MSKAIModuleWidget.initializeParameterNode(self)
        p = self._parameterNode
        if not p.positiveClicks:
            p.positiveClicks = self._newClicksNode("Tumour clicks", (0.2, 0.9, 0.3))
        if not p.negativeClicks:
            p.negativeClicks = self._newClicksNode("Background clicks", (0.95, 0.3, 0.3))
        self.ui.positiveClicksWidget.setCurrentNode(p.positiveClicks)
        self.ui.negativeClicksWidget.setCurrentNode(p.negativeClicks)

    @staticmethod
    def _newClicksNode(name: str, color) -> "slicer.vtkMRMLMarkupsFiducialNode":
        node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
        node.CreateDefaultDisplayNodes()
        node.GetDisplayNode().SetSelectedColor(*color)
        node.GetDisplayNode().SetColor(*color)
        return node

    def setParameterNode(self, inputParameterNode) -> None:
        MSKAIModuleWidget.setParameterNode(self, inputParameterNode)
        if self._parameterNode:
            self.ui.positiveClicksWidget.setCurrentNode(self._parameterNode.positiveClicks)
            self.ui.negativeClicksWidget.setCurrentNode(self._parameterNode.negativeClicks)

    def updateGui(self) -> None:
        p = self._parameterNode
        self._observeClicks([p.positiveClicks, p.negativeClicks, p.recistLine] if p else [])
        if p and p.resultsTable is not self.ui.resultsTableView.mrmlTableNode():
            self.ui.resultsTableView.setMRMLTableNode(p.resultsTable)
        self._checkCanApply()

    def onClicksChanged(self) -> None:
        if self._parameterNode:
            self._parameterNode.positiveClicks = self.ui.positiveClicksWidget.currentNode()
            self._parameterNode.negativeClicks = self.ui.negativeClicksWidget.currentNode()

    def canApply(self) -> bool:
        p = self._parameterNode
        clicked = bool(p and p.positiveClicks
                       and p.positiveClicks.GetNumberOfDefinedControlPoints() > 0)
        line = bool(p and p.recistLine and p.recistLine.GetNumberOfDefinedControlPoints() == 2)
        return bool(p and p.inputVolume and (clicked or line or p.roi))

    def actionConditions(self):
        """Every control that touches the tumour's nodes (disabled while a job runs)."""
        return {**MSKAIModuleWidget.actionConditions(self),
                "distanceMapButton": self.canRemeasure, "exportSegNrrdButton": always,
                "exportDicomSegButton": always, "exportStlButton": always,
                "exportObjButton": always, "exportCsvButton": always,
                "compareSegmentationsButton": always, "compareFoldersButton": always}

    def _checkCanApply(self) -> None:
        self.refreshActions()
        self.ui.applyButton.toolTip = ("Segment the tumour" if self.canApply()
                                       else "Select an input volume and place tumour clicks, "
                                       "a RECIST line or a region of interest")

    # --- click observation: a placed or removed click refines (debounced) -----------------

    def _observeClicks(self, nodes) -> None:
        nodes = [n for n in nodes if n is not None]
        if nodes == self._observedClicks:
            return
        events = (slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent,
                  slicer.vtkMRMLMarkupsNode.PointRemovedEvent,
                  slicer.vtkMRMLMarkupsNode.PointEndInteractionEvent)
        for node in self._observedClicks:
            for event in events:
                self.removeObserver(node, event, self.onClickEvent)
        for node in nodes:
            for event in events:
                self.addObserver(node, event, self.onClickEvent)
        self._observedClicks = nodes

    def onClickEvent(self, caller=None, event=None) -> None:
        self._checkCanApply()
        if self._parameterNode and self._parameterNode.refineOnClick and not self.jobs.running:
            self._refineTimer.start()

    def onRefineTimeout(self) -> None:
        if not self.jobs.running and self.canApply():
            self.onApplyButton()

    # --- re-measure after edits ----------------------------------------------------------

    def onRemeasure(self) -> None:
        p = self._parameterNode
        if not (p and p.inputVolume and p.outputSegmentation) or self.jobs.running:
            return
        from mskai.terminology import TUMOR

        if p.outputSegmentation.GetSegmentation().GetSegment(TUMOR) is None:
            return
        with slicer.util.tryWithErrorDisplay("Re-measuring failed.", waitCursor=True):
            from mskai.errors import InputError

            try:
                with self.writingSegments():  # the safety margin may be regrown
                    p.resultsTable = self.logic.remeasure(p.inputVolume, p.outputSegmentation,
                                                          p.marginMm)
            except InputError as exc:
                self.ui.statusLabel.text = str(exc)
                return
            self.ui.statusLabel.text = "Measurements updated."

    # --- run ----------------------------------------------------------------------------

    def onApplyButton(self) -> None:
        self._refineTimer.stop()  # a click during the run must not start another
        MSKAIModuleWidget.onApplyButton(self)

    def prepareJob(self):
        p = self._parameterNode
        return self.logic.prepareRun(p.inputVolume, p.positiveClicks, p.outputSegmentation,
                                     marginMm=p.marginMm, policy=p.mergePolicy, roiNode=p.roi,
                                     negativePromptsNode=p.negativeClicks, method=p.method,
                                     lineNode=self._finishedLine())

    def _finishedLine(self):
        """The RECIST line once both ends are placed (a line being drawn is not used)."""
        line = self._parameterNode.recistLine
        return line if line and line.GetNumberOfDefinedControlPoints() == 2 else None

    def showOutputs(self, segmentation) -> None:
        p = self._parameterNode
        p.outputSegmentation = segmentation
        p.resultsTable = self.logic.measurementsTable(segmentation)
        actions = ", ".join(f"{a.segment_id} {a.action}" for a in self.logic.lastActions)
        provenance = self.logic.lastProvenance
        model = ([f"model {provenance.model_id} v{provenance.model_version}"]
                 if provenance is not None and provenance.model_id else [])
        self.ui.statusLabel.text = "; ".join([actions, *model, *self.logic.lastWarnings])
        self._checkCanApply()

    def onDistanceMap(self) -> None:
        p = self._parameterNode
        if self.jobs.running:
            return
        with slicer.util.tryWithErrorDisplay("Distance to bone failed.", waitCursor=True):
            distanceNode, modelNode = self.logic.distanceMapOnTumourSurface(
                p.inputVolume, p.outputSegmentation, maxDistanceMm=max(p.marginMm, 1.0))
            self.ui.statusLabel.text = (f"{modelNode.GetName()}: red where the tumour is "
                                        "closest to bone.")

    # --- exports -------------------------------------------------------------------------

    def _exportFolder(self) -> str:
        folder = self.ui.exportFolderLineEdit.currentPath
        if not folder:
            folder = qt.QFileDialog.getExistingDirectory(None, "Export folder")
            self.ui.exportFolderLineEdit.currentPath = folder
        return folder

    def _export(self, what: str, call) -> None:
        if self.jobs.running:
            return
        folder = self._exportFolder()
        if not folder:
            return
        with slicer.util.tryWithErrorDisplay(f"Exporting {what} failed.", waitCursor=True):
            written = call(folder)
            names = [str(w) for w in (written if isinstance(written, list) else [written])]
            self.ui.statusLabel.text = "Wrote " + ", ".join(names)

    def onExportSegNrrd(self) -> None:
        p = self._parameterNode
        self._export("seg.nrrd", lambda folder: self.logic.exportSegNrrd(
            p.outputSegmentation, os.path.join(folder, "tumour.seg.nrrd")))

    def onExportDicomSeg(self) -> None:
        p = self._parameterNode
        database = getattr(slicer, "dicomDatabase", None)
        lookup = database.fileForInstance if database is not None else None
        self._export("DICOM SEG", lambda folder: self.logic.exportDicom(
            p.inputVolume, p.outputSegmentation, folder, fileForInstance=lookup))

    def onExportSurfaces(self, fmt: str) -> None:
        p = self._parameterNode
        self._export(fmt.upper(), lambda folder: self.logic.exportSurfaces(
            p.inputVolume, p.outputSegmentation, folder, fmt))

    def onExportCsv(self) -> None:
        p = self._parameterNode
        self._export("CSV", lambda folder: self.logic.exportTableCsv(
            p.resultsTable, os.path.join(folder, "measurements.csv")))

    # --- response ------------------------------------------------------------------------

    def _showResponse(self, assessment, table) -> None:
        self._parameterNode.responseTable = table
        self.ui.responseTableView.setMRMLTableNode(table)
        self.ui.responseLabel.text = (f"RECIST 1.1: {assessment.recist_category}    "
                                      f"volumetric: {assessment.volumetric_category}")

    def onCompareSegmentations(self) -> None:
        p = self._parameterNode
        if self.jobs.running:
            return
        with slicer.util.tryWithErrorDisplay("Response assessment failed.", waitCursor=True):
            self._showResponse(*self.logic.compareSegmentations(
                p.baselineVolume, p.baselineSegmentation, p.inputVolume, p.outputSegmentation,
                p.marginMm, p.responseTable))

    def onCompareFolders(self) -> None:
        p = self._parameterNode
        if self.jobs.running:
            return
        with slicer.util.tryWithErrorDisplay("Response assessment failed.", waitCursor=True):
            self._showResponse(*self.logic.compareFolders(
                self.ui.baselineFolderLineEdit.currentPath,
                self.ui.followupFolderLineEdit.currentPath, p.responseTable))


class TumorSegTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Reload and Test, or ctest): the logic on a synthetic ellipsoid."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_TumorSegLogic()

    def test_TumorSegLogic(self) -> None:
        import numpy as np
        from TumorSegLib import synthetic
        from TumorSegLib.logic import TumorSegLogic

        from mskai.errors import CancelledError, InputError

        voxels, truthMl, centreIjk = synthetic.ellipsoid_ct()
        volumeNode = slicer.util.addVolumeFromArray(voxels, name="SyntheticTumor")
        volumeNode.SetSpacing(*synthetic.SPACING_MM)
        volumeNode.SetOrigin(0.0, 0.0, 0.0)
        clicks = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "tumour")
        logic = TumorSegLogic()
        with self.assertRaises(InputError):
            logic.run(volumeNode, clicks)  # no click yet
        centreRas = [float(c * s) for c, s in zip(centreIjk, synthetic.SPACING_MM, strict=False)]
        clicks.AddControlPoint(vtk.vtkVector3d(*centreRas))

        steps = []
        segmentationNode = logic.run(volumeNode, clicks, progress=lambda f, m: steps.append(f))
        self.assertTrue(segmentationNode.IsA("vtkMRMLSegmentationNode"))
        self.assertEqual(steps[-1], 1.0)
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, "tumor", volumeNode)
        volumeMl = float(np.count_nonzero(mask)) * float(np.prod(synthetic.SPACING_MM)) / 1000
        self.assertAlmostEqual(volumeMl / truthMl, 1.0, delta=0.05)
        table = logic.measurementsTable(segmentationNode)
        self.assertIsNotNone(table)
        self.assertIs(logic.run(volumeNode, clicks, segmentationNode), segmentationNode)
        with self.assertRaises(CancelledError):
            logic.run(volumeNode, clicks, cancel=lambda: True)
        clicks.AddControlPoint(vtk.vtkVector3d(500, 12, 6))  # outside the image
        with self.assertRaises(InputError):
            logic.run(volumeNode, clicks)
        self.delayDisplay("TumorSeg logic test passed")

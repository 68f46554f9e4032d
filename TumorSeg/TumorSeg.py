"""TumorSeg: interactive bone and soft-tissue tumour segmentation (Slicer scripted module).

Only Slicer and the standard library are imported at module level; the logic, the
parameter node and everything heavy are imported when the widget or test needs them,
so this file never slows down or breaks Slicer start-up.
"""

import os

import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

REFINE_DELAY_MS = 300
REMEASURE_DELAY_MS = 500


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
and the distance to bone. Each click refines the current tumour segment, hand edits
included; results go into the selected segmentation using the chosen merge policy, and the
measurements update after every Segment Editor edit.
See <a href="https://github.com/mskai/SlicerMSKAI#tumorseg">the documentation</a>.
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
        self._observedClicks = []
        self._observedSegmentation = None
        self._writing = False  # the logic is writing segments: no re-measure of our own edits

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
        self._refineTimer = self._singleShot(REFINE_DELAY_MS, self.onRefineTimeout)
        self._remeasureTimer = self._singleShot(REMEASURE_DELAY_MS, self.onRemeasure)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.runner.requestCancel)
        # qSlicerSimpleMarkupsWidget has no parameter node connector: sync by hand.
        self.ui.positiveClicksWidget.connect("markupsNodeChanged()", self.onClicksChanged)
        self.ui.negativeClicksWidget.connect("markupsNodeChanged()", self.onClicksChanged)
        self.ui.remeasureButton.connect("clicked(bool)", self.onRemeasure)
        self.ui.distanceMapButton.connect("clicked(bool)", self.onDistanceMap)
        self.ui.exportSegNrrdButton.connect("clicked(bool)", self.onExportSegNrrd)
        self.ui.exportDicomSegButton.connect("clicked(bool)", self.onExportDicomSeg)
        self.ui.exportStlButton.connect("clicked(bool)", lambda: self.onExportSurfaces("stl"))
        self.ui.exportObjButton.connect("clicked(bool)", lambda: self.onExportSurfaces("obj"))
        self.ui.exportCsvButton.connect("clicked(bool)", self.onExportCsv)
        self.ui.compareSegmentationsButton.connect("clicked(bool)", self.onCompareSegmentations)
        self.ui.compareFoldersButton.connect("clicked(bool)", self.onCompareFolders)

        self.initializeParameterNode()

    @staticmethod
    def _singleShot(delayMs: int, slot) -> "qt.QTimer":
        """A restartable single-shot timer: each restart postpones ``slot`` (debounce)."""
        timer = qt.QTimer()
        timer.setSingleShot(True)
        timer.setInterval(delayMs)
        timer.connect("timeout()", slot)
        return timer

    def cleanup(self) -> None:
        self._refineTimer.stop()
        self._remeasureTimer.stop()
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

    # --- parameter node -------------------------------------------------------------------

    def initializeParameterNode(self) -> None:
        from TumorSegLib.parameters import TumorSegParameterNode

        self.setParameterNode(TumorSegParameterNode(self.logic.getParameterNode()))
        p = self._parameterNode
        if not p.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                p.inputVolume = firstVolumeNode
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
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                                self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                             self._onParameterNodeModified)
            self.ui.positiveClicksWidget.setCurrentNode(self._parameterNode.positiveClicks)
            self.ui.negativeClicksWidget.setCurrentNode(self._parameterNode.negativeClicks)
        self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        p = self._parameterNode
        self._observeClicks([p.positiveClicks, p.negativeClicks] if p else [])
        self._observeSegmentation(p.outputSegmentation if p else None)
        if p and p.resultsTable is not self.ui.resultsTableView.mrmlTableNode():
            self.ui.resultsTableView.setMRMLTableNode(p.resultsTable)
        self._checkCanApply()

    def onClicksChanged(self) -> None:
        if self._parameterNode:
            self._parameterNode.positiveClicks = self.ui.positiveClicksWidget.currentNode()
            self._parameterNode.negativeClicks = self.ui.negativeClicksWidget.currentNode()

    def _checkCanApply(self) -> None:
        p = self._parameterNode
        ready = bool(p and p.inputVolume and p.positiveClicks
                     and p.positiveClicks.GetNumberOfDefinedControlPoints() > 0)
        self.ui.applyButton.enabled = ready and not self.runner.running
        self.ui.applyButton.toolTip = ("Segment the tumour" if ready
                                       else "Select an input volume and place tumour clicks")

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
        if self._parameterNode and self._parameterNode.refineOnClick and not self.runner.running:
            self._refineTimer.start()

    def onRefineTimeout(self) -> None:
        if self.ui.applyButton.enabled:
            self.onApplyButton()

    # --- segmentation observation: edits re-measure (debounced) ---------------------------

    def _observeSegmentation(self, node) -> None:
        segmentation = node.GetSegmentation() if node is not None else None
        if segmentation is self._observedSegmentation:
            return
        if self._observedSegmentation is not None:
            for event in self._segmentationEvents():
                self.removeObserver(self._observedSegmentation, event, self.onSegmentationEdited)
        if segmentation is not None:
            for event in self._segmentationEvents():
                self.addObserver(segmentation, event, self.onSegmentationEdited)
        self._observedSegmentation = segmentation

    @staticmethod
    def _segmentationEvents():
        cls = slicer.vtkSegmentation
        # Slicer 5.4 renamed "master" to "source" representation; accept either.
        sourceModified = getattr(cls, "SourceRepresentationModified",
                                 getattr(cls, "MasterRepresentationModified", None))
        events = [cls.SegmentModified, cls.SegmentAdded, cls.SegmentRemoved, sourceModified]
        return [e for e in events if e is not None]

    def onSegmentationEdited(self, caller=None, event=None) -> None:
        if not self._writing and not self.runner.running:
            self._remeasureTimer.start()

    def onRemeasure(self) -> None:
        p = self._parameterNode
        if not (p and p.inputVolume and p.outputSegmentation):
            return
        if p.outputSegmentation.GetSegmentation().GetSegment("tumor") is None:
            return
        with slicer.util.tryWithErrorDisplay("Re-measuring failed.", waitCursor=True):
            from mskai.errors import InputError

            try:
                self._writing = True
                p.resultsTable = self.logic.remeasure(p.inputVolume, p.outputSegmentation,
                                                      p.marginMm)
            except InputError as exc:
                self.ui.statusLabel.text = str(exc)
                return
            finally:
                self._writing = False
            self.ui.statusLabel.text = "Measurements updated."

    # --- run ----------------------------------------------------------------------------

    def _processRunnerFactory(self):
        """A factory of subprocess runners on Slicer's Python launcher, or None (in-process)."""
        from TumorSegLib.python_launcher import findPythonLauncher

        python = findPythonLauncher(slicer.app.slicerHome)
        if python is None:
            return None

        def factory():
            from mskai.runner.subprocess_runner import SubprocessRunner

            return SubprocessRunner(python)

        return factory

    def onApplyButton(self) -> None:
        from MSKAILib.dependencies import ensureDependenciesInSlicer

        self._refineTimer.stop()
        if not ensureDependenciesInSlicer():
            return
        p = self._parameterNode
        runnerFactory = self._processRunnerFactory()
        self._writing = True
        try:
            segmentation = self.runner.run(lambda progress, cancel: self.logic.run(
                p.inputVolume, p.positiveClicks, p.outputSegmentation, marginMm=p.marginMm,
                policy=p.mergePolicy, roiNode=p.roi, runner=runnerFactory,
                progress=progress, cancel=cancel, negativePromptsNode=p.negativeClicks))
        finally:
            self._writing = False
        if segmentation is None:
            return
        p.outputSegmentation = segmentation
        p.resultsTable = self.logic.measurementsTable(segmentation)
        actions = ", ".join(f"{a.segment_id} {a.action}" for a in self.logic.lastActions)
        self.ui.statusLabel.text = "; ".join([actions, *self.logic.lastWarnings])
        self._checkCanApply()

    def onDistanceMap(self) -> None:
        p = self._parameterNode
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
        self._export("DICOM SEG", lambda folder: self.logic.exportDicomSeg(
            p.inputVolume, p.outputSegmentation, os.path.join(folder, "tumour_seg.dcm"),
            fileForInstance=lookup))

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
        with slicer.util.tryWithErrorDisplay("Response assessment failed.", waitCursor=True):
            self._showResponse(*self.logic.compareSegmentations(
                p.baselineVolume, p.baselineSegmentation, p.inputVolume, p.outputSegmentation,
                p.marginMm, p.responseTable))

    def onCompareFolders(self) -> None:
        p = self._parameterNode
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

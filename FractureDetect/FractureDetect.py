"""FractureDetect: AI fracture detection in CT (Slicer scripted module).

Only Slicer, Qt, VTK, the standard library and the start-up-safe widget base are imported
at module level; the logic, the parameter node and everything heavy are imported when the
widget or test needs them, so this file never slows down or breaks Slicer start-up.
"""

import qt
import slicer
import vtk
from MSKAILib.module_widget import MSKAIModuleWidget, always
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest


class FractureDetect(ScriptedLoadableModule):
    """Module description shown in Slicer's module panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Fracture Detect"
        self.parent.categories = ["MSK AI"]
        self.parent.dependencies = ["MSKAI"]
        self.parent.contributors = ["MSK AI contributors"]
        self.parent.helpText = """
Detects fractures in CT: bones are segmented into editable segments (bone, bone_fragment_N)
and fracture candidates are listed with a score, the fragments, displacement and angulation.
Select a candidate to jump to it; accept or reject it (kept in the results and the export).
Fragments that touch: place one point in each fragment and press Split at clicks.
Edit fragments in Segment Editor and the measurements update. The Vertebra section gives
vertebral body heights and the Genant grade of a selected segment.
See <a href="https://github.com/mskai/SlicerMSKAI#fracturedetect">the documentation</a>.
"""
        self.parent.acknowledgementText = """
Part of the MSK AI extension. Built on 3D Slicer, MONAI and PyTorch.
"""


class FractureDetectWidget(MSKAIModuleWidget):
    """Binds Resources/UI/FractureDetect.ui to the parameter node; all work is in the logic."""

    def createLogic(self):
        from FractureDetectLib.logic import FractureDetectLogic

        return FractureDetectLogic()

    def createParameterNode(self, node):
        from FractureDetectLib.parameters import FractureDetectParameterNode

        return FractureDetectParameterNode(node)

    def setupModule(self) -> None:
        self.ui.candidateList.connect("currentRowChanged(int)", self.onCandidateSelected)
        self.ui.acceptButton.connect("clicked(bool)", lambda: self.onDecision(True))
        self.ui.rejectButton.connect("clicked(bool)", lambda: self.onDecision(False))
        self.ui.clearDecisionButton.connect("clicked(bool)", lambda: self.onDecision(None))
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.ui.measureVertebraButton.connect("clicked(bool)", self.onMeasureVertebra)
        self.ui.splitFragmentsButton.connect("clicked(bool)", self.onSplitFragments)

    def updateGui(self) -> None:
        ready = self.canApply()
        self.ui.applyButton.toolTip = "Detect fractures" if ready else "Select an input volume"
        self._showResults()

    def actionConditions(self):
        """Every control that touches the detection's nodes (disabled while it runs)."""
        return {**MSKAIModuleWidget.actionConditions(self),
                "acceptButton": self._hasCandidateRow, "rejectButton": self._hasCandidateRow,
                "clearDecisionButton": self._hasCandidateRow, "exportButton": always,
                "measureVertebraButton": always, "splitFragmentsButton": self._hasClicks}

    def _hasClicks(self) -> bool:
        p = self._parameterNode
        return bool(p and p.inputVolume and p.fragmentClicks)

    def _hasCandidateRow(self) -> bool:
        p = self._parameterNode
        return bool(p and p.candidates) and self.ui.candidateList.currentRow >= 0

    # --- run ----------------------------------------------------------------------------

    def prepareJob(self):
        p = self._parameterNode
        return self.logic.prepareRun(p.inputVolume, p.outputSegmentation, p.roi,
                                     policy=p.mergePolicy, minScore=p.minScore,
                                     splitTouching=p.splitTouching)

    def showOutputs(self, outputs) -> None:
        p = self._parameterNode
        segmentation, candidates, _ = outputs
        with slicer.util.NodeModify(p):
            p.outputSegmentation = segmentation
            p.candidates = candidates
            p.fragmentsTable = self.logic.fragmentsTable(segmentation)
        self.ui.progressBar.format = self._summary()
        self._showResults()

    def _summary(self) -> str:
        actions = [a for a in self.logic.lastActions if a.action in ("skipped", "backup")]
        text = "Done"
        if actions:
            text += ": " + "; ".join(f"{a.segment_id} {a.action}" for a in actions)
        if self.logic.lastWarnings:
            text += f" ({len(self.logic.lastWarnings)} warning(s), see the log)"
        return text

    def onSplitFragments(self) -> None:
        """One click per fragment: the logic splits the bone and merges the fragments."""
        p = self._parameterNode
        if not p or self.jobs.running:
            return
        with self.writingSegments(), slicer.util.tryWithErrorDisplay(
                "Could not split the fragments.", waitCursor=True):
            self.showOutputs(self.logic.splitFragments(
                p.inputVolume, p.fragmentClicks, p.outputSegmentation,
                policy=p.mergePolicy, minScore=p.minScore))

    # --- results ------------------------------------------------------------------------

    def _showResults(self) -> None:
        """Candidate list, results table and fragments table of the current nodes."""
        p = self._parameterNode
        candidates = p.candidates if p else None
        self.ui.candidateList.blockSignals(True)
        row = self.ui.candidateList.currentRow
        self.ui.candidateList.clear()
        if candidates is not None:
            from FractureDetectLib.candidates_markups import DECISION_TEXT

            decisions = self.logic.candidateDecisions(candidates)
            for index, decision in enumerate(decisions):
                label = candidates.GetNthControlPointLabel(index)
                item = qt.QListWidgetItem(f"{label}  [{DECISION_TEXT[decision]}]")
                item.setToolTip(candidates.GetNthControlPointDescription(index))
                self.ui.candidateList.addItem(item)
            if 0 <= row < len(decisions):
                self.ui.candidateList.setCurrentRow(row)
        self.ui.candidateList.blockSignals(False)
        self.ui.resultsTableView.setMRMLTableNode(self.logic.resultsTable(candidates))
        self.ui.fragmentsTableView.setMRMLTableNode(p.fragmentsTable if p else None)
        self.refreshActions()

    def onCandidateSelected(self, row: int) -> None:
        candidates = self._parameterNode.candidates if self._parameterNode else None
        self.refreshActions()
        if candidates is None or row < 0:
            return
        self.logic.jumpTarget(candidates, row)  # checks the index
        slicer.modules.markups.logic().JumpSlicesToNthPointInMarkup(candidates.GetID(), row,
                                                                    True)

    def onDecision(self, accepted) -> None:
        if self.jobs.running:
            return
        candidates = self._parameterNode.candidates
        row = self.ui.candidateList.currentRow
        with slicer.util.tryWithErrorDisplay("Could not store the decision.", waitCursor=True):
            self.logic.setCandidateDecision(candidates, row, accepted)
        self._showResults()

    # --- re-measure after edits -----------------------------------------------------------

    def remeasureOnEdit(self) -> bool:
        p = self._parameterNode
        return bool(p.autoRemeasure and p.fragmentsTable)

    def onRemeasure(self) -> None:
        p = self._parameterNode
        if not p or not p.inputVolume or not p.outputSegmentation or self.jobs.running:
            return
        with self.writingSegments(), slicer.util.tryWithErrorDisplay("Re-measuring failed.",
                                                                      waitCursor=True):
            p.fragmentsTable = self.logic.remeasure(p.inputVolume, p.outputSegmentation,
                                                    p.minScore)
            p.candidates = self.logic.candidatesNode(p.outputSegmentation)
        self._showResults()

    def onExport(self) -> None:
        p = self._parameterNode
        if self.jobs.running:
            return
        if not p or not p.inputVolume or not p.outputSegmentation:
            slicer.util.warningDisplay("Run the detection first.", windowTitle="MSK AI")
            return
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(),
                                                     "Export FractureDetect results")
        if not folder:
            return
        with slicer.util.tryWithErrorDisplay("Export failed.", waitCursor=True):
            written = self.logic.exportResults(p.inputVolume, p.outputSegmentation, folder)
            self.ui.progressBar.format = f"Exported to {written['measurements'].parent}"

    # --- vertebra panel -------------------------------------------------------------------

    def onMeasureVertebra(self) -> None:
        from mskai.errors import InputError

        p = self._parameterNode
        if self.jobs.running:
            return
        selector = self.ui.vertebraSegmentSelector
        try:
            heights = self.logic.vertebraHeights(p.inputVolume if p else None,
                                                 selector.currentNode(),
                                                 selector.currentSegmentID())
        except InputError as exc:
            self.ui.vertebraResultLabel.text = str(exc)
            return
        self.ui.vertebraResultLabel.text = (
            f"Anterior {heights['height_anterior_mm']:.1f} mm, "
            f"middle {heights['height_middle_mm']:.1f} mm, "
            f"posterior {heights['height_posterior_mm']:.1f} mm\n"
            f"Height reduction {100 * heights['height_reduction']:.0f} %: "
            f"Genant {heights['genant_text']}")


class FractureDetectTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Reload and Test, or ctest) on a fractured bone made in code."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_FractureDetectLogic()

    def test_FractureDetectLogic(self) -> None:
        import numpy as np
        from FractureDetectLib.logic import FractureDetectLogic
        from FractureDetectLib.synthetic import fracturedShaft

        from mskai.errors import CancelledError, InputError

        shaft = fracturedShaft(shiftMm=4.0)
        volumeNode = slicer.util.addVolumeFromArray(shaft.voxels, name="SyntheticFracture")
        volumeNode.SetSpacing(*shaft.spacing)
        logic = FractureDetectLogic()

        steps = []
        segmentation, candidates, table = logic.run(volumeNode,
                                                    progress=lambda f, m: steps.append(f))
        self.assertEqual(steps[-1], 1.0)
        for segmentId in ("bone", "bone_fragment_1", "bone_fragment_2"):
            self.assertIsNotNone(segmentation.GetSegmentation().GetSegment(segmentId))
        self.assertEqual(candidates.GetNumberOfControlPoints(), 1)
        displacement = table.GetTable().GetColumnByName("displacement_mm").GetValue(0)
        self.assertLess(abs(displacement - shaft.shiftMm), 1.0)
        matrix = vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(matrix)
        centre = np.array(matrix.MultiplyPoint((*shaft.gapCenterIjk, 1.0))[:3])
        self.assertLess(np.linalg.norm(logic.jumpTarget(candidates, 0) - centre), 10.0)

        logic.setCandidateDecision(candidates, 0, False)
        logic.run(volumeNode, segmentation)
        self.assertEqual(logic.candidateDecisions(candidates), [False])
        fragments = logic.remeasure(volumeNode, segmentation)
        self.assertGreaterEqual(fragments.GetNumberOfRows(), 3)

        with self.assertRaises(CancelledError):
            logic.run(volumeNode, cancel=lambda: True)
        with self.assertRaises(InputError):
            logic.run(None)
        self.delayDisplay("FractureDetect logic test passed")

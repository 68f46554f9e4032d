"""Slicer-only base of the three module widgets: what every MSK AI module panel does.

It loads ``Resources/UI/<Module>.ui``, binds it to the module's parameter node, runs jobs
through :class:`MSKAILib.job_controller.JobController` (the same runner fallback for every
module; a ``qt.QTimer`` polls the job, so the GUI thread never waits and nothing calls
``processEvents``), drives Apply/Cancel, the progress bar and every control that touches the
job's nodes (all disabled while a job runs), follows scene close, and re-measures once the
person pauses editing the output segmentation (a restartable single-shot timer). A module
widget only names its logic and parameter node and adds its own controls through the hooks
below.

Only Slicer, Qt, VTK and the standard library are imported here, because the module files
import this one when Slicer starts.
"""

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

REMEASURE_DELAY_MS = 500


def singleShotTimer(delayMs: int, slot: Callable[[], None]) -> "qt.QTimer":
    """A restartable single-shot timer: each restart postpones ``slot`` (debounce)."""
    timer = qt.QTimer()
    timer.setSingleShot(True)
    timer.setInterval(delayMs)
    timer.connect("timeout()", slot)
    return timer


def always() -> bool:
    """The condition of an action usable whenever no job runs."""
    return True


def repeatingTimer(intervalMs: int, slot: Callable[[], None]) -> "qt.QTimer":
    """A timer calling ``slot`` every ``intervalMs`` once started (the job poll timer)."""
    timer = qt.QTimer()
    timer.setInterval(intervalMs)
    timer.connect("timeout()", slot)
    return timer


def segmentationEditEvents() -> list[int]:
    """The vtkSegmentation events of a hand edit: painting fires SourceRepresentationModified
    (MasterRepresentationModified before Slicer 5.4), renaming or tags SegmentModified."""
    cls = slicer.vtkSegmentation
    sourceModified = getattr(cls, "SourceRepresentationModified",
                             getattr(cls, "MasterRepresentationModified", None))
    events = [cls.SegmentModified, cls.SegmentAdded, cls.SegmentRemoved, sourceModified]
    return [e for e in events if e is not None]


def firstScalarVolume() -> Any:
    """The scene's first scalar volume (the default input), or None."""
    return slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")


class MSKAIModuleWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Shared widget plumbing; subclasses implement the hooks ``createLogic``,
    ``createParameterNode``, ``setupModule``, ``updateGui``, ``prepareJob``, ``showOutputs``,
    ``actionConditions``, ``remeasureOnEdit`` and ``onRemeasure``.

    The UI must have ``applyButton``, ``cancelButton``, ``progressBar`` and
    ``remeasureButton`` (checked by Testing/test_extension_layout.py).
    """

    remeasureDelayMs = REMEASURE_DELAY_MS

    def __init__(self, parent: Any = None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.jobs = None  # MSKAILib.job_controller.JobController
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedSegmentation = None
        self._writing = False  # the logic writes segments: no re-measure of our own writes
        self._remeasureTimer = None

    # --- hooks ----------------------------------------------------------------------------

    def createLogic(self) -> Any:
        raise NotImplementedError

    def createParameterNode(self, node: Any) -> Any:
        """The module's ``parameterNodeWrapper`` around the logic's parameter node."""
        raise NotImplementedError

    def setupModule(self) -> None:
        """Connect the module's own controls (the shared ones are connected already)."""

    def updateGui(self) -> None:
        """Bring the module's controls up to date with the parameter node."""

    def prepareJob(self) -> Any:
        """Apply's job, its inputs written (the logic's ``prepareRun``: a
        :class:`MSKAILib.job_bridge.PendingJob` whose result goes to :meth:`showOutputs`)."""
        raise NotImplementedError

    def showOutputs(self, outputs: Any) -> None:
        """Store and show the result of Apply's job (called once it has finished)."""

    def actionConditions(self) -> dict[str, Callable[[], bool]]:
        """Every control that touches the job's nodes (``self.ui`` name) with when it may be
        used; while a job runs all of them are disabled. Modules add their own."""
        return {"applyButton": self.canApply, "remeasureButton": self.canRemeasure}

    def canApply(self) -> bool:
        return bool(self._parameterNode and self._parameterNode.inputVolume)

    def canRemeasure(self) -> bool:
        p = self._parameterNode
        return bool(p and p.inputVolume and p.outputSegmentation)

    def remeasureOnEdit(self) -> bool:
        """Whether an edit of the output segmentation should re-measure (after a pause)."""
        return True

    def onRemeasure(self) -> None:
        raise NotImplementedError

    # --- set-up and life cycle --------------------------------------------------------------

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath(f"UI/{self.moduleName}.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        from MSKAILib.job_controller import JobController, runnerFactories

        self.logic = self.createLogic()
        self.jobs = JobController(repeatingTimer, runnerFactories(slicer.app.slicerHome))
        self.jobs.onProgress = self.onJobProgress
        self.jobs.onStateChanged = self.onJobStateChanged
        self._remeasureTimer = singleShotTimer(self.remeasureDelayMs, self.onRemeasureTimer)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.jobs.cancel)
        self.ui.remeasureButton.connect("clicked(bool)", self.onRemeasure)
        self.setupModule()
        self.jobs.setActions(self.actionConditions())
        self.initializeParameterNode()

    def cleanup(self) -> None:
        if self._remeasureTimer is not None:
            self._remeasureTimer.stop()
        if self.jobs is not None:
            self.jobs.shutdown()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)

    def onSceneStartClose(self, caller: Any, event: Any) -> None:
        if self.jobs is not None:
            self.jobs.shutdown()  # its nodes are going: never write its results
        self.setParameterNode(None)

    def onSceneEndClose(self, caller: Any, event: Any) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    # --- parameter node ---------------------------------------------------------------------

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.createParameterNode(self.logic.getParameterNode()))
        if not self._parameterNode.inputVolume:
            volumeNode = firstScalarVolume()
            if volumeNode:
                self._parameterNode.inputVolume = volumeNode

    def setParameterNode(self, inputParameterNode: Any) -> None:
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

    def _onParameterNodeModified(self, caller: Any = None, event: Any = None) -> None:
        p = self._parameterNode
        self._observeSegmentation(p.outputSegmentation if p else None)
        self.updateGui()
        self.refreshActions()

    # --- apply ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writingSegments(self) -> Iterator[None]:
        """While the logic writes the output segmentation, its events are not hand edits."""
        self._writing = True
        try:
            yield
        finally:
            self._writing = False

    def onApplyButton(self) -> None:
        from MSKAILib.dependencies import ensureDependenciesInSlicer

        if self.jobs.running:  # re-entrancy: a second Apply while a job runs is refused
            return
        self._remeasureTimer.stop()
        if not ensureDependenciesInSlicer():
            return
        self.startJob(self.prepareJob, self.showOutputs)

    def startJob(self, prepare: Callable[[], Any], onSuccess: Callable[[Any], None]) -> bool:
        """Run ``prepare()``'s job without blocking the GUI; ``onSuccess(result)`` once it
        has finished. False when refused (a job is running) or it could not start."""
        self._remeasureTimer.stop()
        return self.jobs.start(prepare, onSuccess, completing=self.writingSegments)

    # --- job view -------------------------------------------------------------------------

    def refreshActions(self) -> None:
        """Enable each action by its condition, none of them while a job runs."""
        if self.jobs is None:
            return
        for name, enabled in self.jobs.actionStates().items():
            getattr(self.ui, name).enabled = enabled

    def onJobProgress(self, fraction: float, message: str) -> None:
        self.ui.progressBar.value = round(100 * fraction)
        self.ui.progressBar.format = f"{message} (%p%)"

    def onJobStateChanged(self, state: Any) -> None:
        from MSKAILib.job_controller import JobState

        if state is not JobState.RUNNING:
            self.ui.progressBar.format = self.jobs.statusText
        self.refreshActions()
        error = self.jobs.error
        if state is JobState.FAILED and error is not None:
            from mskai.errors import InputError

            if isinstance(error, InputError):
                slicer.util.warningDisplay(str(error), windowTitle="MSK AI")
            else:
                logging.error("MSK AI run failed: %s", error)
                slicer.util.errorDisplay(f"Failed: {error}", windowTitle="MSK AI")

    # --- re-measure after edits (debounced) --------------------------------------------------

    def _observeSegmentation(self, segmentationNode: Any) -> None:
        segmentation = segmentationNode.GetSegmentation() if segmentationNode else None
        if segmentation is self._observedSegmentation:
            return
        if self._observedSegmentation is not None:
            for event in segmentationEditEvents():
                self.removeObserver(self._observedSegmentation, event, self.onSegmentationEdited)
        if segmentation is not None:
            for event in segmentationEditEvents():
                self.addObserver(segmentation, event, self.onSegmentationEdited)
        self._observedSegmentation = segmentation

    def onSegmentationEdited(self, caller: Any = None, event: Any = None) -> None:
        """Restart the debounce timer: one re-measurement once the edits pause."""
        if self._writing or not self._parameterNode or not self.remeasureOnEdit():
            return
        self._remeasureTimer.start()

    def onRemeasureTimer(self) -> None:
        if self.jobs.running:
            self._remeasureTimer.start()  # try again once the running job has ended
            return
        self.onRemeasure()

"""TumorSeg logic: CT/MR volume and clicks in, tumour, safety margin and bone segments out.

Each run starts from the tumour segment the node holds now (possibly hand-edited), so a
new click refines it instead of starting over; the result is merged with the chosen
policy (:func:`mskai.slicer_io.apply_result`), measured with the CLI's code and shown as a
table and RECIST line markups. No Qt: the widget and the tests drive this class.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import vtk
from MSKAILib.module_logic import CancelCallback, MergePolicy, MSKAIModuleLogic, ProgressCallback

from mskai import click_methods
from mskai.errors import InputError
from mskai.terminology import TUMOR

MAX_MARGIN_MM = 100.0
TUMOUR_SEGMENT = TUMOR


class TumorMethod(str, enum.Enum):
    """Click segmentation methods; the values are ``mskai.interactive.METHODS`` (the
    ``method`` of :func:`mskai.tasks.tumor.run_tumor` and ``mskai tumor --method``)."""

    CLASSIC = click_methods.CLASSIC
    LEARNED = click_methods.LEARNED
    AUTO = click_methods.AUTO

    def label(self) -> str:
        """Text shown in the module's combo box (used by the parameter node GUI binding)."""
        return {click_methods.CLASSIC: "Classic", click_methods.LEARNED: "Learned refinement",
                click_methods.AUTO: "Auto (by tumour size)"}[self.value]


class TumorSegLogic(MSKAIModuleLogic):
    """Segment a bone or soft-tissue tumour from clicks; usable without the module's GUI."""

    moduleName = "TumorSeg"

    def __init__(self, scene: Any = None) -> None:
        super().__init__(scene)
        self.lastActions: list[Any] = []
        self.lastWarnings: list[str] = []
        self.lastProvenance: Any = None  # of the last run: method, model id and version

    # --- inputs -------------------------------------------------------------------------

    @staticmethod
    def pointsRas(markupsNode: Any) -> np.ndarray:
        """Defined control points of a markups node in RAS (world) millimetres, (n, 3)."""
        from mskai.slicer_io import markups_to_points

        if markupsNode is None:
            return np.zeros((0, 3))
        return np.reshape([ras for _, ras in markups_to_points(markupsNode)], (-1, 3))

    @staticmethod
    def splitPrompts(promptsNode: Any, negativePromptsNode: Any = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(positive, negative) RAS clicks: ``promptsNode`` split by label (a label starting
        with "negative" or "-" is a background click, see ``slicer_io.prompt_points``), plus
        every point of ``negativePromptsNode``."""
        from mskai.slicer_io import prompt_points

        positive, negative = (prompt_points(promptsNode) if promptsNode is not None
                              else (np.zeros((0, 3)), np.zeros((0, 3))))
        extra = TumorSegLogic.pointsRas(negativePromptsNode)
        return positive, np.vstack([negative, extra])

    @staticmethod
    def pointsInsideVolume(volumeNode: Any, pointsRas: np.ndarray) -> np.ndarray:
        """Boolean per point: is it inside the volume's voxel grid (any orientation)."""
        rasToIjk = vtk.vtkMatrix4x4()
        volumeNode.GetRASToIJKMatrix(rasToIjk)
        matrix = np.array([[rasToIjk.GetElement(r, c) for c in range(4)] for r in range(4)])
        homogeneous = np.c_[pointsRas, np.ones(len(pointsRas))]
        ijk = (homogeneous @ matrix.T)[:, :3]
        dims = np.array(volumeNode.GetImageData().GetDimensions())
        return np.all((ijk >= -0.5) & (ijk <= dims - 0.5), axis=1)

    def validateInputs(self, volumeNode: Any, promptsNode: Any,
                       negativePromptsNode: Any = None, marginMm: float = 10.0,
                       roiNode: Any = None, lineNode: Any = None) -> None:
        self.validateVolume(volumeNode)
        for node, what in ((promptsNode, "tumour clicks"),
                           (negativePromptsNode, "background clicks")):
            self.validateNodeClass(node, "vtkMRMLMarkupsFiducialNode", what)
        self.validateNodeClass(roiNode, "vtkMRMLMarkupsROINode", "region of interest")
        self.validateNodeClass(lineNode, "vtkMRMLMarkupsLineNode", "RECIST line")
        line = self.lineRas(lineNode)
        positive, negative = self.splitPrompts(promptsNode, negativePromptsNode)
        if len(positive) == 0 and line is None and roiNode is None:
            raise InputError("Place at least one tumour click (positive point) in the tumour, "
                             "draw a RECIST line across it or a region of interest around it.")
        if line is not None:
            ends = np.reshape(line, (2, 3))
            if not self.pointsInsideVolume(volumeNode, ends).all():
                raise InputError(f"The RECIST line {lineNode.GetName()} leaves "
                                 f"{volumeNode.GetName()}: draw it on the image, across the "
                                 "tumour.")
        # Background clicks outside the image are refused by the core's Prompts check.
        outside = ~self.pointsInsideVolume(volumeNode, positive)
        if outside.any():
            raise InputError(f"{int(outside.sum())} tumour click(s) lie outside "
                             f"{volumeNode.GetName()}: move them onto the image.")
        if not 0.0 <= float(marginMm) <= MAX_MARGIN_MM:
            raise InputError(f"Safety margin {marginMm} mm is out of range: "
                             f"use 0 to {MAX_MARGIN_MM:g} mm.")

    def describe(self, volumeNode: Any, promptsNode: Any, negativePromptsNode: Any = None,
                 marginMm: float = 10.0) -> dict[str, Any]:
        """What a run on these inputs would process."""
        self.validateInputs(volumeNode, promptsNode, negativePromptsNode, marginMm)
        positive, negative = self.splitPrompts(promptsNode, negativePromptsNode)
        return {"module": self.moduleName, **self.describeVolume(volumeNode),
                "positive_clicks": len(positive), "negative_clicks": len(negative),
                "margin_mm": float(marginMm)}

    @classmethod
    def validateMethod(cls, method: TumorMethod | str) -> TumorMethod:
        """The segmentation method, or :class:`InputError` listing the choices."""
        return cls.choice(TumorMethod, method, "segmentation method")

    @staticmethod
    def lineRas(lineNode: Any) -> tuple[float, ...] | None:
        """The line's two defined end points in RAS ``(R1, A1, S1, R2, A2, S2)``; None
        without a node, :class:`InputError` for a line that is not finished."""
        if lineNode is None:
            return None
        points = TumorSegLogic.pointsRas(lineNode)
        if len(points) != 2:
            raise InputError(f"The RECIST line {lineNode.GetName()} has {len(points)} placed "
                             "end point(s); place both ends across the tumour's longest axis.")
        return tuple(float(v) for v in points.ravel())

    @staticmethod
    def roiRas(roiNode: Any) -> tuple[float, ...] | None:
        """The ROI's axis-aligned RAS box ``(R1, A1, S1, R2, A2, S2)`` (a rotated ROI is
        replaced by the box around it)."""
        if roiNode is None:
            return None
        bounds = [0.0] * 6
        roiNode.GetRASBounds(bounds)
        return (bounds[0], bounds[2], bounds[4], bounds[1], bounds[3], bounds[5])

    # --- run ----------------------------------------------------------------------------

    def run(self, volumeNode: Any, promptsNode: Any, segmentationNode: Any = None,
            marginMm: float = 10.0, policy: MergePolicy | str = MergePolicy.REPLACE,
            roiNode: Any = None, runner: Any = None,
            progress: ProgressCallback | None = None, cancel: CancelCallback | None = None,
            negativePromptsNode: Any = None, mergePolicy: MergePolicy | str | None = None,
            method: TumorMethod | str = click_methods.DEFAULT_METHOD,
            lineNode: Any = None) -> Any:
        """Segment (or refine) the tumour and return the output segmentation node.

        Prompts: tumour clicks (``promptsNode``), background clicks, a box (``roiNode``, a
        vtkMRMLMarkupsROINode; alone it seeds at its centre) and a RECIST line (``lineNode``,
        a vtkMRMLMarkupsLineNode across the longest axis on one slice, see
        :mod:`mskai.interactive.recist_line`); any of clicks, box or line is enough.

        ``method``: ``classic`` (non-learned region competition), ``learned`` (the
        ``tumor_refine_unet`` click refinement model, named with its version in the
        provenance tags of the written segments) or ``auto`` (classic for a small tumour,
        the network for a large one, :mod:`mskai.interactive.auto_method`; the provenance
        names the one that ran). ``runner``: None runs in this process; a
        :class:`mskai.runner.base.ProcessRunner` (or a factory returning one, since runners
        run one job each) runs the job ``mskai.tasks.tumor_jobs:segment_tumor`` through it.
        Nothing is written to the scene before the result is known, so bad input (an
        unknown method included) or Cancel leave every node as it was.
        """
        policy, method, volume, prompts, current = self._checkRun(
            volumeNode, promptsNode, segmentationNode, marginMm, policy, roiNode, progress,
            cancel, negativePromptsNode, mergePolicy, method, lineNode)
        self.step(progress, cancel, 0.05, "Segmenting the tumour")
        result = self._segment(volume, prompts, float(marginMm), current, runner,
                               self.scaledProgress(progress, 0.05, 0.85), cancel, method.value)
        return self._write(volumeNode, segmentationNode, volume, result, policy, marginMm,
                           progress, cancel)

    def prepareRun(self, volumeNode: Any, promptsNode: Any, segmentationNode: Any = None,
                   marginMm: float = 10.0, policy: MergePolicy | str = MergePolicy.REPLACE,
                   roiNode: Any = None, negativePromptsNode: Any = None,
                   mergePolicy: MergePolicy | str | None = None,
                   method: TumorMethod | str = click_methods.DEFAULT_METHOD,
                   lineNode: Any = None) -> Any:
        """:meth:`run`'s job with its inputs written, for a caller that runs it without
        waiting (the widget): a :class:`MSKAILib.job_bridge.PendingJob` whose
        ``complete(outputs)`` writes the nodes and returns the segmentation node."""
        from TumorSegLib.job_bridge import prepareTumourJob

        policy, method, volume, prompts, current = self._checkRun(
            volumeNode, promptsNode, segmentationNode, marginMm, policy, roiNode, None, None,
            negativePromptsNode, mergePolicy, method, lineNode)
        pending = prepareTumourJob(volume, prompts, float(marginMm), current, method.value)

        def write(result: Any) -> Any:
            self.checkStillInScene(volumeNode, segmentationNode)
            return self._write(volumeNode, segmentationNode, volume, result, policy, marginMm,
                               None, None)

        return pending.then(write).scaleProgress(0.05, 0.85)

    def _checkRun(self, volumeNode: Any, promptsNode: Any, segmentationNode: Any,
                  marginMm: float, policy: MergePolicy | str, roiNode: Any,
                  progress: ProgressCallback | None, cancel: CancelCallback | None,
                  negativePromptsNode: Any, mergePolicy: MergePolicy | str | None,
                  method: TumorMethod | str, lineNode: Any = None) -> tuple[Any, ...]:
        """(policy, method, core Volume, Prompts, current tumour mask) after the checks."""
        from mskai.interactive import Prompts

        policy = self.mergePolicy(mergePolicy if mergePolicy is not None else policy)
        method = self.validateMethod(method)
        self.step(progress, cancel, 0.0, "Checking inputs")
        self.validateInputs(volumeNode, promptsNode, negativePromptsNode, marginMm, roiNode,
                            lineNode)
        self.validateNodeClass(segmentationNode, "vtkMRMLSegmentationNode",
                               "output segmentation")
        volume = self.inputVolume(volumeNode)
        positive, negative = self.splitPrompts(promptsNode, negativePromptsNode)
        prompts = Prompts([tuple(p) for p in positive], [tuple(p) for p in negative],
                          self.roiRas(roiNode), self.lineRas(lineNode))
        return policy, method, volume, prompts, self.currentTumourMask(segmentationNode,
                                                                       volume)

    def _write(self, volumeNode: Any, segmentationNode: Any, volume: Any, result: Any,
               policy: MergePolicy, marginMm: float, progress: ProgressCallback | None,
               cancel: CancelCallback | None) -> Any:
        """Merge the tumour result into the segmentation and measure it."""
        from mskai.slicer_io import apply_result
        from TumorSegLib.measure_on_edit import storeProvenance

        if not result.segment(TUMOUR_SEGMENT).mask.any():
            raise InputError("The tumour segmentation is empty: click well inside the tumour "
                             "or add an ROI around it.")
        self.step(progress, cancel, 0.85, "Writing segments")
        segmentationNode = self.prepareSegmentation(volumeNode, segmentationNode)
        applied = apply_result(self.scene, result, segmentationNode, policy.value,
                               reference_node=volumeNode)
        self.lastActions, self.lastWarnings = applied.actions, list(result.warnings)
        self.lastProvenance = result.provenance
        storeProvenance(segmentationNode, result.provenance, float(marginMm))
        self.step(progress, None, 0.9, "Measuring")
        self._showMeasurements(volume, segmentationNode, result, applied.actions,
                               float(marginMm))
        self.step(progress, None, 1.0, "Done")
        return segmentationNode

    def _segment(self, volume: Any, prompts: Any, marginMm: float, current: Any, runner: Any,
                 progress: ProgressCallback | None, cancel: CancelCallback | None,
                 method: str = TumorMethod.CLASSIC.value) -> Any:
        if runner is None:
            from mskai.tasks.tumor import run_tumor

            return run_tumor(volume, prompts, margin_mm=marginMm, current_mask=current,
                             progress=progress, cancel=cancel, method=method)
        from TumorSegLib.job_bridge import runTumourJob

        return runTumourJob(self.processRunner(runner), volume, prompts, marginMm, current,
                            progress, cancel, method=method)

    def _showMeasurements(self, volume: Any, segmentationNode: Any, result: Any,
                          actions: list[Any], marginMm: float) -> Any:
        """Table and RECIST lines of what the node holds: the result's own numbers when
        every segment was written as computed, else a re-measurement of the node."""
        from TumorSegLib.measure_on_edit import fillMeasurements

        asComputed = all(a.action in ("created", "replaced", "backup") for a in actions)
        if not asComputed:
            return self.remeasure(volume, segmentationNode, marginMm)
        return fillMeasurements(self.scene, result, segmentationNode)

    @staticmethod
    def inputVolume(volumeNode: Any) -> Any:
        """The node's voxels as a core Volume, with CT/MR resolved the way ``read_image``
        does, so in-process and subprocess runs see the same modality."""
        from mskai.image import detect_modality
        from mskai.slicer_io import node_to_volume

        volume = node_to_volume(volumeNode)
        if volume.modality is None:
            volume.modality = detect_modality(volume)
        return volume

    @staticmethod
    def currentTumourMask(segmentationNode: Any, volume: Any) -> np.ndarray | None:
        """The tumour segment's voxels now (hand edits included), or None when empty."""
        from mskai.slicer_io import segment_mask

        if segmentationNode is None or segmentationNode.GetSegmentation().GetSegment(
                TUMOUR_SEGMENT) is None:
            return None
        mask = segment_mask(segmentationNode, TUMOUR_SEGMENT, volume)
        return mask if mask.any() else None

    # --- measurements after edits -------------------------------------------------------

    def remeasure(self, volumeNode: Any, segmentationNode: Any,
                  marginMm: float | None = None) -> Any:
        """Re-measure the segments as they are now; returns the (reused) table node.

        The safety margin is first regrown from the tumour as it is now (a hand-edited
        margin is kept as is), so it follows edits of the tumour. ``volumeNode`` may also
        be a core Volume. ``marginMm`` defaults to the last run's.
        """
        from TumorSegLib.measure_on_edit import (
            MARGIN_ATTRIBUTE,
            fillMeasurements,
            measureResult,
            regrowMargin,
            resultFromSegmentation,
        )

        self.validateNodeClass(segmentationNode, "vtkMRMLSegmentationNode", "segmentation")
        if segmentationNode is None:
            raise InputError("Select the segmentation to measure.")
        volume = volumeNode if hasattr(volumeNode, "array") else self.inputVolume(volumeNode)
        if marginMm is None:
            marginMm = float(segmentationNode.GetAttribute(MARGIN_ATTRIBUTE) or 10.0)
        result = resultFromSegmentation(volume, segmentationNode)
        regrowMargin(self.scene, segmentationNode, result, marginMm)
        return fillMeasurements(self.scene, measureResult(result, marginMm), segmentationNode)

    def measurementsTable(self, segmentationNode: Any) -> Any:
        from TumorSegLib.measure_on_edit import TABLE_ROLE

        return None if segmentationNode is None else segmentationNode.GetNodeReference(
            TABLE_ROLE)

    # --- distance to bone ---------------------------------------------------------------

    def distanceMapOnTumourSurface(self, volumeNode: Any, segmentationNode: Any,
                                   distanceNode: Any = None, modelNode: Any = None,
                                   maxDistanceMm: float | None = None) -> tuple[Any, Any]:
        """(distance-to-bone volume in mm, tumour surface model coloured by it)."""
        from TumorSegLib.distance_map import distanceToBoneVolume, tumourSurfaceModel

        self.validateVolume(volumeNode)
        distanceNode = distanceToBoneVolume(self.scene, volumeNode, segmentationNode,
                                            distanceNode=distanceNode)
        modelNode = tumourSurfaceModel(self.scene, segmentationNode, distanceNode,
                                       modelNode=modelNode, maxDistanceMm=maxDistanceMm)
        return distanceNode, modelNode

    # --- exports ------------------------------------------------------------------------

    def exportSegNrrd(self, segmentationNode: Any, path: str | Path) -> Path:
        from TumorSegLib.exports import exportSegNrrd

        return exportSegNrrd(segmentationNode, path)

    def exportDicomSeg(self, volumeNode: Any, segmentationNode: Any, path: str | Path,
                       source: Any = None,
                       fileForInstance: Callable[[str], str] | None = None) -> Path:
        from TumorSegLib.exports import exportDicomSeg

        return exportDicomSeg(volumeNode, segmentationNode, path, source, fileForInstance)

    def exportDicom(self, volumeNode: Any, segmentationNode: Any, folder: str | Path,
                    source: Any = None,
                    fileForInstance: Callable[[str], str] | None = None) -> list[Path]:
        """segmentation.dcm (+ measurements_sr.dcm) in ``folder``, as ``--dicom-out``."""
        from TumorSegLib.exports import exportDicom

        return exportDicom(volumeNode, segmentationNode, folder, source, fileForInstance)

    def exportSurfaces(self, volumeNode: Any, segmentationNode: Any, outDir: str | Path,
                       fmt: str = "stl") -> list[Path]:
        from TumorSegLib.exports import exportSurfaces

        return exportSurfaces(volumeNode, segmentationNode, outDir, fmt)

    def exportTableCsv(self, tableNode: Any, path: str | Path) -> Path:
        from TumorSegLib.exports import exportTableCsv

        return exportTableCsv(tableNode, path)

    # --- response -----------------------------------------------------------------------

    def compareFolders(self, baselineDir: str | Path, followupDir: str | Path,
                       tableNode: Any = None) -> tuple[Any, Any]:
        from TumorSegLib.response_panel import compareFolders

        return compareFolders(self.scene, baselineDir, followupDir, tableNode)

    def compareSegmentations(self, baselineVolumeNode: Any, baselineSegmentationNode: Any,
                             followupVolumeNode: Any, followupSegmentationNode: Any,
                             marginMm: float = 10.0, tableNode: Any = None) -> tuple[Any, Any]:
        from TumorSegLib.response_panel import compareSegmentations

        return compareSegmentations(self.scene, baselineVolumeNode, baselineSegmentationNode,
                                    followupVolumeNode, followupSegmentationNode, marginMm,
                                    tableNode)

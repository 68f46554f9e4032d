"""FractureDetect logic: CT volume (+ optional ROI) in; bone segments, candidates, tables out.

No Qt: the widget and the tests drive this class. A run detects fractures
(:mod:`mskai.tasks.fracture_jobs`, in this process or through a runner), merges the bone and
``bone_fragment_N`` segments with the chosen policy (:func:`mskai.slicer_io.apply_result`),
and shows the candidates as a markups point list (reviewer decisions kept across runs) and
two tables: results (one row per candidate, with its decision) and fragments (one row per
bone segment). :meth:`remeasure` recomputes both from the segments as they are now.

The nodes are tied together by node references: the segmentation refers to its candidates
node and fragments table, the candidates node to its results table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from MSKAILib.module_logic import CancelCallback, MergePolicy, MSKAIModuleLogic, ProgressCallback

from mskai.errors import InputError

CANDIDATES_ROLE = "MSKAI.FractureDetect.Candidates"
FRAGMENTS_ROLE = "MSKAI.FractureDetect.Fragments"
RESULTS_ROLE = "MSKAI.FractureDetect.Results"
MIN_SCORE_ATTRIBUTE = "MSKAI.FractureDetect.MinScore"


class FractureDetectLogic(MSKAIModuleLogic):
    """Detect fractures in a CT volume; usable without the module's GUI."""

    moduleName = "FractureDetect"

    def __init__(self, scene: Any = None) -> None:
        super().__init__(scene)
        self.lastActions: list[Any] = []
        self.lastWarnings: list[str] = []

    # --- inputs -------------------------------------------------------------------------

    def validateInputs(self, volumeNode: Any, roiNode: Any = None,
                       segmentationNode: Any = None) -> Any:
        """InputError unless the volume is a CT, the ROI overlaps it and the nodes fit;
        returns the volume as a core Volume."""
        from FractureDetectLib.roi import checkRoi, roiFromNode

        self.validateVolume(volumeNode)
        self.validateNodeClass(roiNode, "vtkMRMLMarkupsROINode", "region of interest")
        self.validateNodeClass(segmentationNode, "vtkMRMLSegmentationNode",
                               "output segmentation")
        volume = self.inputVolume(volumeNode)
        if volume.modality not in (None, "CT"):
            raise InputError(f"{volumeNode.GetName()} looks like {volume.modality}, not CT: "
                             "FractureDetect needs a CT in Hounsfield units.")
        if roiNode is not None:
            checkRoi(volume, roiFromNode(roiNode), roiNode.GetName())
        return volume

    def describe(self, volumeNode: Any, roiNode: Any = None) -> dict[str, Any]:
        """What a run on these inputs would process (an ROI not placed yet is only named)."""
        self.validateVolume(volumeNode)
        self.validateNodeClass(roiNode, "vtkMRMLMarkupsROINode", "region of interest")
        info = {"module": self.moduleName, **self.describeVolume(volumeNode)}
        info["roi"] = roiNode.GetName() if roiNode is not None else "whole volume"
        return info

    @staticmethod
    def inputVolume(volumeNode: Any) -> Any:
        """The node's voxels as a core Volume, modality resolved as ``read_image`` does."""
        from mskai.image import detect_modality
        from mskai.slicer_io import node_to_volume

        volume = node_to_volume(volumeNode)
        if volume.modality is None:
            volume.modality = detect_modality(volume)
        return volume

    # --- run ----------------------------------------------------------------------------

    def run(self, volumeNode: Any, segmentationNode: Any = None, roiNode: Any = None,
            policy: MergePolicy | str = MergePolicy.REPLACE, runner: Any = None,
            progress: ProgressCallback | None = None, cancel: CancelCallback | None = None,
            minScore: float = 0.5, splitTouching: bool = False,
            mergePolicy: MergePolicy | str | None = None) -> tuple[Any, Any, Any]:
        """Detect fractures; returns ``(segmentationNode, candidatesNode, resultsTable)``.

        ``runner``: None runs in this process; a :class:`mskai.runner.base.ProcessRunner`
        (or a factory making one, since a runner runs one job) runs the job
        ``mskai.tasks.fracture_jobs:detect_fractures`` through it. Nothing is written to the
        scene before the result is known, so bad input or Cancel leave every node as it was.
        """
        policy, volume, roi = self._checkRun(volumeNode, segmentationNode, roiNode, policy,
                                             mergePolicy, progress, cancel)
        self.step(progress, cancel, 0.05, "Detecting fractures")
        result = self._detect(volume, roi, float(minScore), bool(splitTouching), runner,
                              self.scaledProgress(progress, 0.05, 0.85), cancel)
        self.step(progress, cancel, 0.85, "Writing segments")
        return self._write(volumeNode, segmentationNode, volume, result, policy, minScore,
                           progress)

    def prepareRun(self, volumeNode: Any, segmentationNode: Any = None, roiNode: Any = None,
                   policy: MergePolicy | str = MergePolicy.REPLACE, minScore: float = 0.5,
                   splitTouching: bool = False,
                   mergePolicy: MergePolicy | str | None = None) -> Any:
        """:meth:`run`'s job with its inputs written, for a caller that runs it without
        waiting (the widget): a :class:`MSKAILib.job_bridge.PendingJob` whose
        ``complete(outputs)`` writes the nodes and returns what :meth:`run` returns."""
        from FractureDetectLib.job_bridge import prepareFractureJob

        policy, volume, roi = self._checkRun(volumeNode, segmentationNode, roiNode, policy,
                                             mergePolicy, None, None)
        pending = prepareFractureJob(volume, roi, float(minScore), bool(splitTouching))

        def write(result: Any) -> tuple[Any, Any, Any]:
            self.checkStillInScene(volumeNode, segmentationNode)
            return self._write(volumeNode, segmentationNode, volume, result, policy, minScore,
                               None)

        return pending.then(write).scaleProgress(0.05, 0.85)

    def splitFragments(self, volumeNode: Any, clicksNode: Any, segmentationNode: Any = None,
                       policy: MergePolicy | str = MergePolicy.SKIP_EDITED,
                       minScore: float = 0.5, progress: ProgressCallback | None = None,
                       cancel: CancelCallback | None = None) -> tuple[Any, Any, Any]:
        """Split the bone at one click per fragment (a markups point list); returns what
        :meth:`run` returns. Points with the same label belong to one fragment, so a further
        point refines that fragment's boundary. Fragments edited by hand are left out of the
        split and kept by the merge policy (``skip_edited`` by default)."""
        from FractureDetectLib.fragment_clicks import fragmentSeeds
        from mskai.tasks.fracture import run_fracture

        policy, volume, _ = self._checkRun(volumeNode, segmentationNode, None, policy, None,
                                           progress, cancel)
        seeds = fragmentSeeds(clicksNode, segmentationNode, volume)
        self.step(progress, cancel, 0.05, "Splitting fragments")
        result = run_fracture(volume, min_score=float(minScore), fragment_seeds=seeds,
                              progress=self.scaledProgress(progress, 0.05, 0.85), cancel=cancel)
        self.step(progress, cancel, 0.85, "Writing segments")
        return self._write(volumeNode, segmentationNode, volume, result, policy, minScore,
                           progress)

    def _checkRun(self, volumeNode: Any, segmentationNode: Any, roiNode: Any,
                  policy: MergePolicy | str, mergePolicy: MergePolicy | str | None,
                  progress: ProgressCallback | None,
                  cancel: CancelCallback | None) -> tuple[MergePolicy, Any, Any]:
        """(merge policy, input as a core Volume, ROI dict) after the input checks."""
        from FractureDetectLib.roi import roiFromNode

        policy = self.mergePolicy(mergePolicy if mergePolicy is not None else policy)
        self.step(progress, cancel, 0.0, "Checking inputs")
        volume = self.validateInputs(volumeNode, roiNode, segmentationNode)
        return policy, volume, roiFromNode(roiNode)

    def _write(self, volumeNode: Any, segmentationNode: Any, volume: Any, result: Any,
               policy: MergePolicy, minScore: float,
               progress: ProgressCallback | None) -> tuple[Any, Any, Any]:
        """Merge the detection into the segmentation and show candidates and tables."""
        from mskai.slicer_io import apply_result

        segmentationNode = self.prepareSegmentation(volumeNode, segmentationNode)
        applied = apply_result(self.scene, result, segmentationNode, policy.value,
                               reference_node=volumeNode)
        from FractureDetectLib.stale import removeStaleFragments

        stale = removeStaleFragments(segmentationNode, result)
        self.lastActions = [*applied.actions, *stale]
        self.lastWarnings = list(result.warnings) + [
            f"{a.segment_id} was edited by hand and is kept, although this run did not find "
            "it; delete it in Segment Editor if it is no longer wanted"
            for a in stale if a.action == "kept"]
        segmentationNode.SetAttribute(MIN_SCORE_ATTRIBUTE, repr(float(minScore)))
        self.step(progress, None, 0.9, "Measuring")
        asComputed = all(a.action in ("created", "replaced", "backup") for a in applied.actions)
        if not asComputed:  # a kept hand edit: measure what the node holds
            from FractureDetectLib.remeasure import remeasureResult

            result = remeasureResult(volume, segmentationNode, float(minScore))
        candidatesNode, tableNode = self._show(segmentationNode, result)
        self.step(progress, None, 1.0, "Done")
        return segmentationNode, candidatesNode, tableNode

    def _detect(self, volume: Any, roi: dict[str, Any] | None, minScore: float,
                splitTouching: bool, runner: Any, progress: ProgressCallback | None,
                cancel: CancelCallback | None) -> Any:
        if runner is None:
            from mskai.tasks.fracture_jobs import detect

            return detect(volume, roi, minScore, splitTouching, progress, cancel)
        from FractureDetectLib.job_bridge import runFractureJob

        return runFractureJob(self.processRunner(runner), volume, roi, minScore, splitTouching,
                              progress, cancel)

    def _show(self, segmentationNode: Any, result: Any) -> tuple[Any, Any]:
        """Candidates point list, results table and fragments table of ``result``."""
        from FractureDetectLib.candidates_markups import fillCandidates
        from FractureDetectLib.remeasure import fragmentRows
        from mskai.slicer_io import measurements_to_table, segment_status

        for segment in result.segments:
            if segmentationNode.GetSegmentation().GetSegment(segment.id) is not None:
                segment.status = segment_status(segmentationNode, segment.id)
        candidatesNode = fillCandidates(self.scene, result.measurements.get("fractures", []),
                                        self.candidatesNode(segmentationNode),
                                        f"{segmentationNode.GetName()} fracture candidates")
        segmentationNode.SetNodeReferenceID(CANDIDATES_ROLE, candidatesNode.GetID())
        fragments = measurements_to_table(self.scene, fragmentRows(result),
                                          f"{segmentationNode.GetName()} fragments",
                                          self.fragmentsTable(segmentationNode))
        segmentationNode.SetNodeReferenceID(FRAGMENTS_ROLE, fragments.GetID())
        return candidatesNode, self.updateResultsTable(candidatesNode)

    # --- candidates ---------------------------------------------------------------------

    @staticmethod
    def candidatesNode(segmentationNode: Any) -> Any:
        return None if segmentationNode is None else segmentationNode.GetNodeReference(
            CANDIDATES_ROLE)

    @staticmethod
    def fragmentsTable(segmentationNode: Any) -> Any:
        return None if segmentationNode is None else segmentationNode.GetNodeReference(
            FRAGMENTS_ROLE)

    @staticmethod
    def resultsTable(candidatesNode: Any) -> Any:
        return None if candidatesNode is None else candidatesNode.GetNodeReference(RESULTS_ROLE)

    def updateResultsTable(self, candidatesNode: Any) -> Any:
        """Refill the results table (one row per candidate, decision included)."""
        from FractureDetectLib.candidates_markups import candidateRows
        from mskai.slicer_io import measurements_to_table

        table = measurements_to_table(self.scene, candidateRows(candidatesNode),
                                      f"{candidatesNode.GetName()} results",
                                      self.resultsTable(candidatesNode))
        candidatesNode.SetNodeReferenceID(RESULTS_ROLE, table.GetID())
        return table

    def setCandidateDecision(self, candidatesNode: Any, index: int,
                             accepted: bool | None) -> None:
        """Accept (True), reject (False) or clear (None) candidate ``index`` (0-based)."""
        from FractureDetectLib.candidates_markups import setDecision

        self.validateNodeClass(candidatesNode, "vtkMRMLMarkupsFiducialNode", "candidates")
        if candidatesNode is None:
            raise InputError("Run the detection first: there are no fracture candidates.")
        setDecision(candidatesNode, int(index), accepted)
        self.updateResultsTable(candidatesNode)

    @staticmethod
    def candidateDecisions(candidatesNode: Any) -> list[bool | None]:
        from FractureDetectLib.candidates_markups import decisions

        return decisions(candidatesNode)

    @staticmethod
    def jumpTarget(candidatesNode: Any, index: int) -> np.ndarray:
        """World RAS position of candidate ``index``: where the slice views are centred."""
        count = 0 if candidatesNode is None else candidatesNode.GetNumberOfControlPoints()
        if not 0 <= index < count:
            raise InputError(f"There is no fracture candidate {index + 1} (there are {count}).")
        return np.asarray(candidatesNode.GetNthControlPointPositionWorld(index), dtype=float)

    # --- measurements after edits -------------------------------------------------------

    def remeasure(self, volumeNode: Any, segmentationNode: Any,
                  minScore: float | None = None) -> Any:
        """Recompute fragments and candidates from the segments as they are now (hand edits
        included, CLI ``--labels`` code); decisions are kept. Returns the fragments table."""
        from FractureDetectLib.remeasure import remeasureResult

        self.validateVolume(volumeNode)
        self.validateNodeClass(segmentationNode, "vtkMRMLSegmentationNode", "segmentation")
        if segmentationNode is None:
            raise InputError("Select the segmentation to measure.")
        if minScore is None:
            minScore = float(segmentationNode.GetAttribute(MIN_SCORE_ATTRIBUTE) or 0.5)
        volume = self.inputVolume(volumeNode)
        result = remeasureResult(volume, segmentationNode, float(minScore))
        self._show(segmentationNode, result)
        return self.fragmentsTable(segmentationNode)

    # --- vertebra -----------------------------------------------------------------------

    def vertebraHeights(self, volumeNode: Any, segmentationNode: Any,
                        segmentId: str) -> dict[str, Any]:
        """Anterior/middle/posterior heights (mm), reduction and Genant grade of a body."""
        from FractureDetectLib.vertebra_panel import vertebraHeights
        from mskai.slicer_io import node_to_volume

        self.validateVolume(volumeNode)
        self.validateNodeClass(segmentationNode, "vtkMRMLSegmentationNode", "segmentation")
        return vertebraHeights(node_to_volume(volumeNode), segmentationNode, segmentId)

    # --- export -------------------------------------------------------------------------

    def exportResults(self, volumeNode: Any, segmentationNode: Any,
                      folder: str | Path) -> dict[str, Path]:
        """``segmentation.seg.nrrd`` and ``measurements.json`` (CONTRACT.md; each entry of
        ``fractures`` also carries ``decision``: "accepted", "rejected" or null)."""
        from FractureDetectLib.candidates_markups import candidateRows
        from FractureDetectLib.remeasure import remeasureResult
        from mskai.results.tables import measurements_document, write_json
        from mskai.slicer_io import save_segmentation

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        result = remeasureResult(self.inputVolume(volumeNode), segmentationNode)
        document = measurements_document(result)
        rows = candidateRows(self.candidatesNode(segmentationNode))
        document["fractures"] = [_withDecision(entry, rows)
                                 for entry in document.get("fractures", [])]
        document["candidate_review"] = [
            {"candidate": r["candidate"], "decision": _decisionValue(r["decision"]),
             "position_ras": [r["position_r"], r["position_a"], r["position_s"]]}
            for r in rows]
        return {"measurements": write_json(document, folder / "measurements.json"),
                "segmentation": save_segmentation(segmentationNode,
                                                  folder / "segmentation.seg.nrrd")}


def _decisionValue(text: str) -> str | None:
    return None if text == "undecided" else text


def _withDecision(entry: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The fracture entry with the decision of the reviewed candidate at its position."""
    from FractureDetectLib.candidates_markups import matchDecisions

    reviewed = [(np.array([r["position_r"], r["position_a"], r["position_s"]]),
                 {"accepted": True, "rejected": False}.get(r["decision"])) for r in rows]
    (decision,) = matchDecisions(reviewed, np.reshape(entry["position_ras"], (1, 3)))
    return {**entry, "decision": _decisionValue({True: "accepted", False: "rejected",
                                                 None: "undecided"}[decision])}

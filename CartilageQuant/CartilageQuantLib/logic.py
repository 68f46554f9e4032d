"""CartilageQuant logic: knee MRI in, bone and cartilage segments, thickness tables, thickness-
coloured models and profile plots out. MRML only, no Qt.

Measuring always goes through ``mskai.tasks.cartilage_jobs:measure_cartilage`` on a
:class:`mskai.runner.base.ProcessRunner` (by default in-process; the widget uses a child
process), so Slicer, scripts and the ``mskai cartilage --labels`` command share one code path:
:func:`mskai.tasks.cartilage.run_cartilage`.

- :meth:`run`: with a segmentation that holds knee segments (canonical ids such as ``femur``,
  ``femoral_cartilage``, or mapped by ``labelNames``) it only measures and never writes a
  segment; otherwise the knee model segments the image and the segments go into the
  segmentation by the merge policy.
- :meth:`remeasure`: measures what the segments hold now (after hand edits).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from MSKAILib.module_logic import CancelCallback, MergePolicy, MSKAIModuleLogic, ProgressCallback

from mskai.errors import InputError
from mskai.terminology import KNEE_SEGMENTS


class ThicknessMethod(str, enum.Enum):
    """Cartilage thickness definitions; ``core`` is the method name of ``mskai`` (and of
    ``thickness_method`` in measurements.json)."""

    NEAREST_NEIGHBOUR = "nearest_neighbour"
    SURFACE_NORMAL = "surface_normal"

    @classmethod
    def _missing_(cls, value: object) -> ThicknessMethod | None:
        return {"nearest": cls.NEAREST_NEIGHBOUR, "normal": cls.SURFACE_NORMAL}.get(value)

    @property
    def core(self) -> str:
        return {"nearest_neighbour": "nearest", "surface_normal": "normal"}[self.value]

    def label(self) -> str:
        """Text shown in the module's combo box."""
        return {"nearest_neighbour": "Nearest neighbour",
                "surface_normal": "Surface normal"}[self.value]


def parseLabelNames(labelNames: Mapping[str, Any] | str | None) -> dict[str, str]:
    """``"femur=Bone,femoral_cartilage=2"`` or a dict -> ``{canonical id: segment ref}``."""
    from mskai.labels import canonical_id

    if labelNames is None or labelNames == "":
        return {}
    if isinstance(labelNames, str):
        pairs = [item.partition("=") for item in labelNames.split(",") if item.strip()]
        if any(not sep or not ref.strip() for _, sep, ref in pairs):
            raise InputError(f"Label names {labelNames!r} are not NAME=SEGMENT pairs, e.g. "
                             "femur=Segment_1,femoral_cartilage=Segment_2.")
        labelNames = {name: ref.strip() for name, _, ref in pairs}
    mapping = {canonical_id(str(name)): str(ref) for name, ref in labelNames.items()}
    unknown = sorted(set(mapping) - set(KNEE_SEGMENTS))
    if unknown:
        raise InputError(f"Label names {unknown} are not knee structures; use "
                         f"{', '.join(KNEE_SEGMENTS)}.")
    return mapping


class CartilageQuantLogic(MSKAIModuleLogic):
    """Segment knee cartilage and measure its thickness; usable without the module's GUI."""

    moduleName = "CartilageQuant"

    def __init__(self, scene: Any = None) -> None:
        super().__init__(scene)
        self.lastOutputs: Any = None  # job_bridge.CartilageOutputs of the last measurement
        self.runnerFactory: Any = None  # () -> ProcessRunner; the widget sets a subprocess one

    @classmethod
    def validateThicknessMethod(cls, method: ThicknessMethod | str) -> ThicknessMethod:
        return cls.choice(ThicknessMethod, method, "thickness method", " (or nearest, normal)")

    def describe(self, volumeNode: Any,
                 thicknessMethod: ThicknessMethod | str = ThicknessMethod.NEAREST_NEIGHBOUR,
                 ) -> dict[str, Any]:
        """What a run on these inputs would process."""
        self.validateVolume(volumeNode)
        method = self.validateThicknessMethod(thicknessMethod)
        return {"module": self.moduleName, **self.describeVolume(volumeNode),
                "thickness_method": method.value}

    # --- inputs --------------------------------------------------------------------------

    def kneeSegmentIds(self, segmentationNode: Any,
                       labelNames: Mapping[str, Any] | str | None = None) -> dict[str, str]:
        """``{canonical id: segment id}`` of the knee segments of the node.

        Segments whose id or name is a canonical id are taken as they are; ``labelNames``
        add or override entries, each reference matched to a segment id, a segment name, or
        a label value (segments imported from a label map keep their values).
        """
        from mskai.labels import canonical_id

        segmentation = segmentationNode.GetSegmentation()
        ids = list(segmentation.GetSegmentIDs())
        mapping = parseLabelNames(labelNames)
        out: dict[str, str] = {}
        for sid in ids:
            for key in (sid, segmentation.GetSegment(sid).GetName()):
                if canonical_id(key) in KNEE_SEGMENTS:
                    out.setdefault(canonical_id(key), sid)
        for name, ref in mapping.items():
            match = [sid for sid in ids if sid == ref] or [
                sid for sid in ids if segmentation.GetSegment(sid).GetName() == ref] or [
                sid for sid in ids if ref.isdigit()
                and segmentation.GetSegment(sid).GetLabelValue() == int(ref)]
            if not match:
                names = [segmentation.GetSegment(s).GetName() for s in ids]
                raise InputError(f"Label name {name}={ref}: {segmentationNode.GetName()} has no "
                                 f"segment {ref!r}; its segments are {names}.")
            out[name] = match[0]
        return out

    def kneeMasks(self, volume: Any, segmentationNode: Any,
                  segmentIds: Mapping[str, str]) -> dict[str, Any]:
        """The segments' current voxels on the volume's grid, keyed by canonical id."""
        from mskai.slicer_io import segment_mask

        return {name: segment_mask(segmentationNode, sid, volume)
                for name, sid in segmentIds.items()}

    def _runner(self, runner: Any) -> Any:
        if runner is not None:
            return runner
        if self.runnerFactory is not None:
            return self.runnerFactory()
        from mskai.runner.inprocess import InProcessRunner

        return InProcessRunner()

    # --- runs ----------------------------------------------------------------------------

    def run(self, volumeNode: Any, segmentationNode: Any = None,
            labelNames: Mapping[str, Any] | str | None = None,
            method: ThicknessMethod | str = ThicknessMethod.NEAREST_NEIGHBOUR,
            policy: MergePolicy | str = MergePolicy.REPLACE, runner: Any = None,
            progress: ProgressCallback | None = None, cancel: CancelCallback | None = None,
            platesTable: Any = None, subregionsTable: Any = None) -> tuple[Any, Any, Any]:
        """Segment (when the segmentation has no knee segments) and measure.

        Returns ``(segmentationNode, platesTable, subregionsTable)``. Nothing is written to
        the scene before the job has succeeded.
        """
        from MSKAILib.job_bridge import runPending

        pending = self.prepareRun(volumeNode, segmentationNode, labelNames, method, policy,
                                  platesTable, subregionsTable, progress, cancel)
        return runPending(self._runner(runner), pending,
                          self.scaledProgress(progress, 0.02, 0.95), cancel)

    def prepareRun(self, volumeNode: Any, segmentationNode: Any = None,
                   labelNames: Mapping[str, Any] | str | None = None,
                   method: ThicknessMethod | str = ThicknessMethod.NEAREST_NEIGHBOUR,
                   policy: MergePolicy | str = MergePolicy.REPLACE, platesTable: Any = None,
                   subregionsTable: Any = None, progress: ProgressCallback | None = None,
                   cancel: CancelCallback | None = None) -> Any:
        """:meth:`run`'s job with its inputs written, for a caller that runs it without
        waiting (the widget): a :class:`MSKAILib.job_bridge.PendingJob` whose
        ``complete(outputs)`` writes the nodes and returns what :meth:`run` returns."""
        from CartilageQuantLib.job_bridge import prepareCartilageJob
        from mskai.slicer_io import apply_result, node_to_volume

        policy = self.mergePolicy(policy)
        methodEnum = self.validateThicknessMethod(method)
        self.step(progress, cancel, 0.0, "Checking inputs")
        self.validateVolume(volumeNode)
        self.validateNodeClass(segmentationNode, "vtkMRMLSegmentationNode",
                               "output segmentation")
        self.validateNodeClass(platesTable, "vtkMRMLTableNode", "plates table")
        self.validateNodeClass(subregionsTable, "vtkMRMLTableNode", "subregions table")
        volume = node_to_volume(volumeNode)
        segmentIds = (self.kneeSegmentIds(segmentationNode, labelNames)
                      if segmentationNode is not None else {})
        if labelNames and not segmentIds:
            raise InputError("Label names were given but there is no segmentation to map.")
        masks = self.kneeMasks(volume, segmentationNode, segmentIds) if segmentIds else None

        def write(outputs: Any) -> tuple[Any, Any, Any]:
            self.checkStillInScene(volumeNode, segmentationNode, platesTable, subregionsTable)
            node = segmentationNode
            if outputs.result is not None:
                node = self.prepareSegmentation(volumeNode, node)
                apply_result(self.scene, outputs.result, node, policy.value,
                             reference_node=volumeNode)
            return (node, *self._finish(outputs, methodEnum, platesTable, subregionsTable,
                                        progress))

        pending = prepareCartilageJob(volume, masks, methodEnum.core)
        return pending.then(write).scaleProgress(0.02, 0.95)

    def remeasure(self, volumeNode: Any, segmentationNode: Any,
                  labelNames: Mapping[str, Any] | str | None = None,
                  method: ThicknessMethod | str = ThicknessMethod.NEAREST_NEIGHBOUR,
                  runner: Any = None, progress: ProgressCallback | None = None,
                  cancel: CancelCallback | None = None, platesTable: Any = None,
                  subregionsTable: Any = None) -> tuple[Any, Any]:
        """Measure what the segments hold now (hand edits included), as ``mskai cartilage
        --labels`` does; returns ``(platesTable, subregionsTable)``. Segments are never
        written."""
        from MSKAILib.job_bridge import runPending

        pending = self.prepareRemeasure(volumeNode, segmentationNode, labelNames, method,
                                        platesTable, subregionsTable, progress, cancel)
        return runPending(self._runner(runner), pending,
                          self.scaledProgress(progress, 0.02, 0.95), cancel)

    def prepareRemeasure(self, volumeNode: Any, segmentationNode: Any,
                         labelNames: Mapping[str, Any] | str | None = None,
                         method: ThicknessMethod | str = ThicknessMethod.NEAREST_NEIGHBOUR,
                         platesTable: Any = None, subregionsTable: Any = None,
                         progress: ProgressCallback | None = None,
                         cancel: CancelCallback | None = None) -> Any:
        """:meth:`remeasure`'s job with its inputs written (see :meth:`prepareRun`);
        ``complete(outputs)`` returns ``(platesTable, subregionsTable)``."""
        from CartilageQuantLib.job_bridge import prepareCartilageJob
        from mskai.slicer_io import node_to_volume

        methodEnum = self.validateThicknessMethod(method)
        self.step(progress, cancel, 0.0, "Checking inputs")
        self.validateVolume(volumeNode)
        if segmentationNode is None:
            raise InputError("Select the segmentation to measure.")
        self.validateNodeClass(segmentationNode, "vtkMRMLSegmentationNode", "segmentation")
        segmentIds = self.kneeSegmentIds(segmentationNode, labelNames)
        if not segmentIds:
            raise InputError(f"{segmentationNode.GetName()} has no knee segments: name them "
                             f"{', '.join(KNEE_SEGMENTS[:5])}, ... or give label names.")
        volume = node_to_volume(volumeNode)
        masks = self.kneeMasks(volume, segmentationNode, segmentIds)

        def write(outputs: Any) -> tuple[Any, Any]:
            self.checkStillInScene(volumeNode, segmentationNode, platesTable, subregionsTable)
            return self._finish(outputs, methodEnum, platesTable, subregionsTable, progress)

        pending = prepareCartilageJob(volume, masks, methodEnum.core)
        return pending.then(write).scaleProgress(0.02, 0.95)

    def _finish(self, outputs: Any, method: ThicknessMethod, platesTable: Any,
                subregionsTable: Any, progress: ProgressCallback | None) -> tuple[Any, Any]:
        from CartilageQuantLib.tables import fillTables

        self.lastOutputs = outputs
        plates, subregions = fillTables(self.scene, outputs.document, platesTable,
                                        subregionsTable)
        plates.SetAttribute("CartilageQuant.ThicknessMethod", method.value)
        if progress is not None:
            progress(1.0, "Done")
        return plates, subregions

    # --- seeded refinement ----------------------------------------------------------------

    def refineSegment(self, volumeNode: Any, segmentationNode: Any, segmentId: str,
                      positiveNode: Any, negativeNode: Any = None,
                      radiusMm: float | None = None,
                      lockedSegmentIds: Any = ()) -> Any:
        """Seeded refinement of one knee segment from markups fiducials (points inside it,
        and optionally points wrongly in it), as ``mskai cartilage --refine-ras`` does: the
        fix for a structure that failed the anatomical checks. A missing segment is added.
        Returns :class:`CartilageQuantLib.refine.RefineOutcome`; re-measure afterwards."""
        from CartilageQuantLib.refine import refineSegment
        from mskai.tasks.cartilage_refine import REFINE_RADIUS_MM

        self.validateVolume(volumeNode)
        self.validateNodeClass(segmentationNode, "vtkMRMLSegmentationNode", "segmentation")
        self.validateNodeClass(positiveNode, "vtkMRMLMarkupsFiducialNode", "points inside")
        self.validateNodeClass(negativeNode, "vtkMRMLMarkupsFiducialNode", "points outside")
        if segmentationNode is None or (positiveNode is None and negativeNode is None):
            raise InputError("Choose the segmentation and place points on the structure to "
                             "refine.")
        return refineSegment(volumeNode, segmentationNode, segmentId, positiveNode,
                             negativeNode, radiusMm or REFINE_RADIUS_MM, lockedSegmentIds)

    # --- results as nodes ----------------------------------------------------------------

    def thicknessSurfaces(self) -> dict[str, Any]:
        """The plates' thickness surfaces (``PlateSurface``) of the last measurement."""
        if self.lastOutputs is None or not self.lastOutputs.surfaces:
            raise InputError("Measure the cartilage first (Apply).")
        return self.lastOutputs.surfaces

    def thicknessModels(self, surfaces: Mapping[str, Any] | None = None,
                        visible: bool = True) -> dict[str, Any]:
        """One thickness-coloured model per plate, updated in place on later calls."""
        from CartilageQuantLib.models import findModel, thicknessModel

        surfaces = surfaces if surfaces is not None else self.thicknessSurfaces()
        models = {}
        for plateId, surface in surfaces.items():
            node = thicknessModel(self.scene, surface, findModel(self.scene, plateId,
                                                                 "thickness"))
            node.GetDisplayNode().SetVisibility(visible)
            models[plateId] = node
        return models

    def setThicknessModelsVisible(self, visible: bool) -> None:
        """Show or hide every thickness model of the scene."""
        from CartilageQuantLib.models import ROLE_ATTRIBUTE

        for index in range(self.scene.GetNumberOfNodesByClass("vtkMRMLModelNode")):
            node = self.scene.GetNthNodeByClass(index, "vtkMRMLModelNode")
            if node.GetAttribute(ROLE_ATTRIBUTE) == "thickness" and node.GetDisplayNode():
                node.GetDisplayNode().SetVisibility(visible)

    def changeModel(self, mapA: Any, mapB: Any, modelNode: Any = None) -> Any:
        """Baseline (``mapA``) interface coloured by follow-up (``mapB``) minus baseline
        thickness, for two time points of one plate in one frame (``PlateSurface`` each)."""
        from CartilageQuantLib.models import changeModel

        for name, surface in (("baseline", mapA), ("follow-up", mapB)):
            if surface is None or not hasattr(surface, "thickness"):
                raise InputError(f"The {name} thickness map is missing: measure both time "
                                 "points first.")
        if mapA.plate_id != mapB.plate_id:
            raise InputError(f"The time points are different plates ({mapA.plate_id}, "
                             f"{mapB.plate_id}); compare one plate with itself.")
        return changeModel(self.scene, mapA, mapB, modelNode)

    def thicknessProfilePlot(self, plateId: str, axis: str = "AP", binMm: float = 1.0,
                             surface: Any = None, chartNode: Any = None) -> Any:
        """Plot chart of a plate's thickness along its AP or ML axis."""
        from CartilageQuantLib.plots import profilePlot

        if surface is None:
            surfaces = self.thicknessSurfaces()
            if plateId not in surfaces:
                raise InputError(f"No plate {plateId!r} was measured; measured plates are "
                                 f"{', '.join(surfaces)}.")
            surface = surfaces[plateId]
        return profilePlot(self.scene, surface, axis, binMm, chartNode)

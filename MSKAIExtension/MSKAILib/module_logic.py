"""Base of the three module logics: MRML nodes in, MRML nodes out, no Qt.

It plays the part of Slicer's ``ScriptedLoadableModuleLogic`` (singleton parameter node
tagged with the module name) without importing it, because that class only exists inside
the Slicer application and the logic must also run in plain Python with ``slicer-core``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import vtk

from mskai.errors import CancelledError, InputError

ProgressCallback = Callable[[float, str], None]
CancelCallback = Callable[[], bool]
ChoiceT = TypeVar("ChoiceT", bound=enum.Enum)


class MergePolicy(str, enum.Enum):
    """How an AI result meets segments already in the output segmentation."""

    REPLACE = "replace"
    FILL_EMPTY = "fill_empty"
    SKIP_EDITED = "skip_edited"

    def label(self) -> str:
        """Text shown in the module's combo box (used by the parameter node GUI binding)."""
        return {"replace": "Replace", "fill_empty": "Fill empty only",
                "skip_edited": "Skip edited segments"}[self.value]


class MSKAIModuleLogic:
    """Shared plumbing: scene, parameter node, input checks, progress and cancel."""

    moduleName = "MSKAI"

    def __init__(self, scene: Any = None) -> None:
        self._scene = scene

    @property
    def scene(self) -> Any:
        """The scene given at construction, else Slicer's ``slicer.mrmlScene``."""
        if self._scene is not None:
            return self._scene
        import slicer

        scene = getattr(slicer, "mrmlScene", None)
        if scene is None:
            raise RuntimeError("No MRML scene: pass one to the logic outside Slicer.")
        return scene

    def getParameterNode(self) -> Any:
        """The module's singleton ``vtkMRMLScriptedModuleNode`` (created on first use).

        Inside Slicer the widget wraps it with the module's ``parameterNodeWrapper`` class.
        """
        scene = self.scene
        node = scene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        if node is not None:
            return node
        node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.UnRegister(None)  # CreateNodeByClass returns an owned reference
        node.SetSingletonTag(self.moduleName)
        node.SetAttribute("ModuleName", self.moduleName)
        node.SetName(scene.GenerateUniqueName(self.moduleName))
        return scene.AddNode(node)

    # --- input checks -------------------------------------------------------------------

    @staticmethod
    def validateVolume(volumeNode: Any) -> None:
        """Raise :class:`InputError` unless ``volumeNode`` is a scalar volume with 3D voxels."""
        if volumeNode is None:
            raise InputError("Select an input volume.")
        if not volumeNode.IsA("vtkMRMLScalarVolumeNode"):
            raise InputError(
                f"{volumeNode.GetName()} is not a scalar volume: select a CT or MR image.")
        if volumeNode.IsA("vtkMRMLLabelMapVolumeNode"):
            raise InputError(f"{volumeNode.GetName()} is a label map: select the image itself.")
        image = volumeNode.GetImageData()
        if image is None or image.GetNumberOfPoints() == 0:
            raise InputError(f"{volumeNode.GetName()} has no voxels: load the image again.")
        dims = image.GetDimensions()
        if min(dims) < 2:
            raise InputError(f"{volumeNode.GetName()} is {dims[0]}x{dims[1]}x{dims[2]} voxels: "
                             "a 3D image with at least 2 slices is needed.")

    @staticmethod
    def validateNodeClass(node: Any, className: str, what: str) -> None:
        """Raise :class:`InputError` when an optional node is given but has the wrong class."""
        if node is not None and not node.IsA(className):
            raise InputError(f"{node.GetName()} cannot be used as {what}: "
                             f"select a {className.removeprefix('vtkMRML')}.")

    @staticmethod
    def choice(enumType: type[ChoiceT], value: Any, what: str, hint: str = "") -> ChoiceT:
        """``enumType(value)``, or :class:`InputError` listing the choices (and ``hint``)."""
        try:
            return enumType(value)
        except ValueError:
            choices = ", ".join(c.value for c in enumType)
            raise InputError(f"Unknown {what} {value!r}: use one of {choices}{hint}.") from None

    @classmethod
    def mergePolicy(cls, value: MergePolicy | str) -> MergePolicy:
        return cls.choice(MergePolicy, value, "merge policy")

    # --- outputs ------------------------------------------------------------------------

    def prepareSegmentation(self, volumeNode: Any, segmentationNode: Any = None) -> Any:
        """The output segmentation, created when not given, on the input volume's geometry.

        An existing node is never replaced; its segments are kept for the merge policy.
        """
        self.validateNodeClass(segmentationNode, "vtkMRMLSegmentationNode", "output segmentation")
        if segmentationNode is None:
            segmentationNode = self.scene.AddNewNodeByClass(
                "vtkMRMLSegmentationNode", f"{volumeNode.GetName()} {self.moduleName}")
            segmentationNode.CreateDefaultDisplayNodes()
        if segmentationNode.GetNodeReference(
                segmentationNode.GetReferenceImageGeometryReferenceRole()) is None:
            segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
        return segmentationNode

    @staticmethod
    def describeVolume(volumeNode: Any) -> dict[str, Any]:
        """Name, size and spacing of a volume, for the results table and logs."""
        dims = volumeNode.GetImageData().GetDimensions()
        return {"volume": volumeNode.GetName(),
                "size": "x".join(str(d) for d in dims),
                "spacing_mm": "x".join(f"{s:g}" for s in volumeNode.GetSpacing())}

    def fillTable(self, rows: Mapping[str, Any], tableNode: Any = None) -> Any:
        """Write ``rows`` as a two-column (Property, Value) table node and return it."""
        self.validateNodeClass(tableNode, "vtkMRMLTableNode", "results table")
        if tableNode is None:
            tableNode = self.scene.AddNewNodeByClass("vtkMRMLTableNode",
                                                     f"{self.moduleName} results")
        table = tableNode.GetTable()
        table.Initialize()
        for name in ("Property", "Value"):
            column = vtk.vtkStringArray()
            column.SetName(name)
            table.AddColumn(column)
        for key, value in rows.items():
            row = table.InsertNextBlankRow()
            table.SetValue(row, 0, vtk.vtkVariant(str(key)))
            table.SetValue(row, 1, vtk.vtkVariant(str(value)))
        tableNode.Modified()
        return tableNode

    # --- runners ------------------------------------------------------------------------

    def checkStillInScene(self, *nodes: Any) -> None:
        """:class:`InputError` when a node a job was started on left the scene meanwhile
        (checked before a job's results are written)."""
        for node in nodes:
            if node is not None and not self.scene.IsNodePresent(node):
                raise InputError(f"{node.GetName()} was removed while the job ran: "
                                 "run it again.")

    @staticmethod
    def processRunner(runner: Any) -> Any:
        """``runner`` itself, or a new one from it when it is a factory (a runner runs one
        job, so the widget hands the logic a factory)."""
        from mskai.runner.base import ProcessRunner

        if not isinstance(runner, ProcessRunner) and callable(runner):
            return runner()
        return runner

    # --- progress and cancel ------------------------------------------------------------

    @staticmethod
    def step(progress: ProgressCallback | None, cancel: CancelCallback | None,
             fraction: float, message: str) -> None:
        """Report progress, then stop with :class:`CancelledError` if the user cancelled."""
        if progress is not None:
            progress(fraction, message)
        if cancel is not None and cancel():
            raise CancelledError(f"Cancelled: {message}")

    @staticmethod
    def scaledProgress(progress: ProgressCallback | None, start: float,
                       stop: float) -> ProgressCallback | None:
        """A task's 0..1 progress mapped onto ``start..stop`` of the whole run, never going
        back (a task may restart at 0 for a step's own progress)."""
        if progress is None:
            return None
        highest = [start]

        def report(fraction: float, message: str = "") -> None:
            highest[0] = max(highest[0], start + (stop - start) * float(fraction))
            progress(highest[0], message)

        return report

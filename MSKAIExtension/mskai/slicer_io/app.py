"""A Slicer scene with its module logics, for running MRML code without the Slicer application.

Set up like trame-slicer's ``SlicerApp`` (and ``qSlicerCoreApplication``): one
``vtkMRMLScene``, a ``vtkSlicerApplicationLogic`` with default colour nodes, and the module
logics the MSK AI modules use, registered under Slicer's module names so that
``app_logic.GetModuleLogic("Segmentations")`` works as it does inside Slicer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Slicer's module name -> logic class name in the ``slicer`` package. "Colors" is the
# application logic's own colour logic. "Terminologies" is left out: its instance needs the
# terminology JSON files that slicer-core does not ship, and its static (de)serialisers,
# all MSK AI uses, work without it.
MODULE_LOGICS: dict[str, str] = {
    "Volumes": "vtkSlicerVolumesLogic",
    "Segmentations": "vtkSlicerSegmentationsModuleLogic",
    "Markups": "vtkSlicerMarkupsLogic",
    "Tables": "vtkSlicerTablesLogic",
    "Plots": "vtkSlicerPlotsLogic",
    "SubjectHierarchy": "vtkSlicerSubjectHierarchyModuleLogic",
    "Data": "vtkSlicerDataModuleLogic",
}


@dataclass
class MRMLApp:
    """The scene, the application logic and the module logics keyed by module name."""

    scene: Any
    app_logic: Any
    logics: dict[str, Any] = field(default_factory=dict)

    def logic(self, module_name: str) -> Any:
        """The logic of a module, e.g. ``logic("Segmentations")``."""
        return self.logics[module_name]

    def close(self) -> None:
        """Remove every node so that VTK references are released before the objects go."""
        self.scene.Clear(True)


def create_app() -> MRMLApp:
    """A fresh scene with the application logic and the module logics registered."""
    import slicer

    scene = slicer.vtkMRMLScene()
    _add_crosshair(scene)
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    app_logic.GetColorLogic().SetMRMLScene(scene)
    app_logic.GetColorLogic().AddDefaultColorNodes()
    logics = {"Colors": app_logic.GetColorLogic()}
    app_logic.SetModuleLogic("Colors", logics["Colors"])
    logics.update({name: _register(getattr(slicer, cls)(), name, scene, app_logic)
                   for name, cls in MODULE_LOGICS.items()})
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene, True)
    return MRMLApp(scene=scene, app_logic=app_logic, logics=logics)


def _add_crosshair(scene: Any) -> None:
    """One crosshair node, as ``qSlicerCoreApplication::setMRMLScene`` adds."""
    import slicer

    crosshair = slicer.vtkMRMLCrosshairNode()
    crosshair.SetCrosshairName("default")
    scene.AddNode(crosshair)


def _register(logic: Any, name: str, scene: Any, app_logic: Any) -> Any:
    logic.SetMRMLScene(scene)
    logic.SetMRMLApplicationLogic(app_logic)
    app_logic.SetModuleLogic(name, logic)
    return logic

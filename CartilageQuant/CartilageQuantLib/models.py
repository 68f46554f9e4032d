"""Thickness-coloured model nodes: the bone-cartilage interface of a plate as a surface with
one thickness per vertex (point scalars), and the change between two time points.

Colour tables are MSK AI's own procedural colour nodes (made once per scene), so the same
colours show with or without Slicer's colour files: a viridis ramp over 0-4 mm for
thickness (as the 2D maps of ``mskai.measure.thickness_map_figure``) and a diverging
red-white-blue ramp over +-1.5 mm for change (red: loss).
"""

from __future__ import annotations

from typing import Any

import numpy as np

THICKNESS_ARRAY = "Thickness (mm)"
CHANGE_ARRAY = "Thickness change (mm)"
THICKNESS_RANGE_MM = (0.0, 4.0)
CHANGE_RANGE_MM = (-1.5, 1.5)
THICKNESS_COLORS = "MSKAI cartilage thickness (viridis)"
CHANGE_COLORS = "MSKAI cartilage thickness change (diverging)"
PLATE_ATTRIBUTE = "CartilageQuant.Plate"
ROLE_ATTRIBUTE = "CartilageQuant.Model"
_VIRIDIS = ((0.267, 0.005, 0.329), (0.229, 0.322, 0.545), (0.128, 0.567, 0.551),
            (0.369, 0.789, 0.383), (0.993, 0.906, 0.144))
_RED_WHITE_BLUE = ((0.404, 0.0, 0.122), (0.839, 0.376, 0.302), (0.969, 0.969, 0.969),
                   (0.263, 0.576, 0.765), (0.020, 0.188, 0.380))


def surfacePolyData(points: np.ndarray, faces: np.ndarray, scalars: np.ndarray,
                    arrayName: str) -> Any:
    """``vtkPolyData``: triangles (or, without faces, one vertex cell per point) with the
    values as the active point scalars."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData

    points = np.ascontiguousarray(points, dtype=np.float64)
    vtkPts = vtkPoints()
    vtkPts.SetData(numpy_to_vtk(points, deep=True))
    poly = vtkPolyData()
    poly.SetPoints(vtkPts)
    cells = vtkCellArray()
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces):
        offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
        cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=True),
                      numpy_to_vtkIdTypeArray(faces.ravel().copy(), deep=True))
        poly.SetPolys(cells)
    else:
        n = len(points)
        cells.SetData(numpy_to_vtkIdTypeArray(np.arange(n + 1, dtype=np.int64), deep=True),
                      numpy_to_vtkIdTypeArray(np.arange(n, dtype=np.int64), deep=True))
        poly.SetVerts(cells)
    values = numpy_to_vtk(np.ascontiguousarray(scalars, dtype=np.float32), deep=True)
    values.SetName(arrayName)
    poly.GetPointData().AddArray(values)
    poly.GetPointData().SetActiveScalars(arrayName)
    return poly


def colorNode(scene: Any, name: str, stops: tuple, valueRange: tuple[float, float]) -> Any:
    """The scene's procedural colour node of that name, made on first use."""
    node = scene.GetFirstNodeByName(name)
    if node is not None and node.IsA("vtkMRMLProceduralColorNode"):
        return node
    node = scene.AddNewNodeByClass("vtkMRMLProceduralColorNode", name)
    node.SetAttribute("Category", "MSK AI")
    function = node.GetColorTransferFunction()
    for value, rgb in zip(np.linspace(*valueRange, len(stops)), stops, strict=True):
        function.AddRGBPoint(float(value), *rgb)
    function.SetNanColor(0.6, 0.6, 0.6)
    return node


def modelNode(scene: Any, name: str, poly: Any, arrayName: str, colors: Any,
              valueRange: tuple[float, float], node: Any = None) -> Any:
    """A model node (new, or ``node`` updated in place) coloured by ``arrayName``."""
    import slicer

    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLModelNode", name)
    node.SetAndObservePolyData(poly)
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.SetActiveScalarName(arrayName)
    display.SetAndObserveColorNodeID(colors.GetID())
    display.SetScalarRangeFlag(slicer.vtkMRMLDisplayNode.UseManualScalarRange)
    display.SetScalarRange(*valueRange)
    display.SetScalarVisibility(True)
    display.SetBackfaceCulling(False)
    return node


def thicknessModel(scene: Any, surface: Any, node: Any = None) -> Any:
    """Model of one plate's interface coloured by thickness (``PlateSurface`` in)."""
    t = surface.thickness
    poly = surfacePolyData(t.points_ras, surface.faces, t.thickness_mm, THICKNESS_ARRAY)
    colors = colorNode(scene, THICKNESS_COLORS, _VIRIDIS, THICKNESS_RANGE_MM)
    node = modelNode(scene, f"{surface.plate_id} thickness", poly, THICKNESS_ARRAY, colors,
                     THICKNESS_RANGE_MM, node)
    node.SetAttribute(PLATE_ATTRIBUTE, surface.plate_id)
    node.SetAttribute(ROLE_ATTRIBUTE, "thickness")
    return node


def changeValues(baseline: Any, followup: Any) -> np.ndarray:
    """Follow-up minus baseline thickness at each baseline vertex (NaN: no partner), by
    :func:`mskai.measure.thickness_map_figure.thickness_change` (the 2D change map's code)."""
    from mskai.measure.thickness_map_figure import thickness_change

    change = thickness_change(baseline.thickness, followup.thickness, baseline.plate_id,
                              baseline.axes)
    return np.asarray(change.difference_mm, dtype=float)


def changeModel(scene: Any, baseline: Any, followup: Any, node: Any = None) -> Any:
    """Baseline interface coloured by the thickness change to the follow-up."""
    difference = changeValues(baseline, followup)
    poly = surfacePolyData(baseline.thickness.points_ras, baseline.faces, difference,
                           CHANGE_ARRAY)
    colors = colorNode(scene, CHANGE_COLORS, _RED_WHITE_BLUE, CHANGE_RANGE_MM)
    node = modelNode(scene, f"{baseline.plate_id} thickness change", poly, CHANGE_ARRAY,
                     colors, CHANGE_RANGE_MM, node)
    node.SetAttribute(PLATE_ATTRIBUTE, baseline.plate_id)
    node.SetAttribute(ROLE_ATTRIBUTE, "change")
    return node


def findModel(scene: Any, plateId: str, role: str) -> Any:
    """The scene's CartilageQuant model of this plate and role, or None."""
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLModelNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLModelNode")
        if node.GetAttribute(PLATE_ATTRIBUTE) == plateId and \
                node.GetAttribute(ROLE_ATTRIBUTE) == role:
            return node
    return None


def pointScalars(node: Any, arrayName: str) -> np.ndarray:
    """The model's point array as numpy (for tests and exports)."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    array = node.GetPolyData().GetPointData().GetArray(arrayName)
    return vtk_to_numpy(array).astype(float)

"""Thickness profile of a plate along its antero-posterior or medio-lateral axis, as a
table node, a plot series and a plot chart (Slicer's Plots module shows the chart).

Positions are ``(p - c) . axis`` in mm, with ``c`` the area-weighted centroid of the plate's
bone interface and ``axis`` the knee's anterior or medial direction
(:mod:`mskai.measure.knee_axes`); each bin of ``binMm`` holds the area-weighted mean
thickness of the interface points in it. Empty bins are left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

AXES = {"AP": ("anterior", "posterior <- position (mm) -> anterior"),
        "ML": ("medial", "lateral <- position (mm) -> medial")}
BIN_MM = 1.0
ROLE_ATTRIBUTE = "CartilageQuant.Profile"


def profile(surface: Any, axis: str = "AP", binMm: float = BIN_MM) -> list[dict[str, float]]:
    """``[{"position_mm", "thickness_mm", "area_mm2"}, ...]`` ordered by position."""
    from mskai.errors import InputError
    from mskai.measure.subregions import weighted_centroid

    if axis not in AXES:
        raise InputError(f"Unknown profile axis {axis!r}: use AP or ML.")
    if binMm <= 0:
        raise InputError("The profile bin width must be positive.")
    t = surface.thickness
    ok = t.valid
    direction = np.asarray(getattr(surface.axes, AXES[axis][0]), dtype=float)
    position = (t.points_ras[ok] - weighted_centroid(t)) @ direction
    weights, values = t.area_mm2[ok], t.thickness_mm[ok]
    index = np.floor(position / binMm).astype(np.int64)
    rows = []
    for b in np.unique(index):
        inside = index == b
        rows.append({"position_mm": float((b + 0.5) * binMm),
                     "thickness_mm": float(np.average(values[inside], weights=weights[inside])),
                     "area_mm2": float(weights[inside].sum())})
    return rows


def profilePlot(scene: Any, surface: Any, axis: str = "AP", binMm: float = BIN_MM,
                chartNode: Any = None) -> Any:
    """Plot chart of the profile; its table and series are reused when the chart is."""
    import slicer

    from mskai.slicer_io import measurements_to_table

    rows = profile(surface, axis, binMm)
    title = f"{surface.plate_id} thickness profile ({axis})"
    series = chartNode.GetNthPlotSeriesNode(0) if chartNode is not None else None
    table = series.GetTableNode() if series is not None else None
    table = measurements_to_table(scene, rows, f"{title} table", table)
    if series is None:
        series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", title)
    series.SetName(title)
    series.SetAndObserveTableNodeID(table.GetID())
    series.SetXColumnName("position_mm")
    series.SetYColumnName("thickness_mm")
    series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
    series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle)
    if chartNode is None:
        chartNode = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", title)
        chartNode.AddAndObservePlotSeriesNodeID(series.GetID())
    chartNode.SetName(title)
    chartNode.SetTitle(title)
    chartNode.SetXAxisTitle(AXES[axis][1])
    chartNode.SetYAxisTitle("thickness (mm)")
    chartNode.SetAttribute(ROLE_ATTRIBUTE, f"{surface.plate_id}:{axis}")
    return chartNode

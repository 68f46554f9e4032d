"""Markups: point lists for click prompts (positive/negative) and lines for RECIST axes.

All coordinates are RAS millimetres in world space (Slicer's convention and CONTRACT.md's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.errors import InputError

POSITIVE = "positive"
NEGATIVE = "negative"


def points_to_markups(scene: Any, points_ras: Any, labels: list[str], name: str,
                      node: Any = None) -> Any:
    """A point list (new, or ``node`` emptied and refilled) with one labelled point each."""
    points = _as_points(points_ras)
    if len(labels) != len(points):
        raise InputError(f"Got {len(points)} points but {len(labels)} labels; "
                         "give one label per point.")
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
        node.CreateDefaultDisplayNodes()
    was_modifying = node.StartModify()
    node.RemoveAllControlPoints()
    for point, label in zip(points, labels, strict=True):
        node.AddControlPointWorld([float(x) for x in point], str(label))
    node.EndModify(was_modifying)
    return node


def markups_to_points(node: Any) -> list[tuple[str, np.ndarray]]:
    """``(label, ras)`` of every defined control point, in world RAS millimetres."""
    points = []
    for index in range(node.GetNumberOfControlPoints()):
        if node.GetNthControlPointPositionStatus(index) != node.PositionDefined:
            continue
        ras = np.asarray(node.GetNthControlPointPositionWorld(index), dtype=float)
        points.append((node.GetNthControlPointLabel(index), ras))
    return points


def prompt_points(node: Any) -> tuple[np.ndarray, np.ndarray]:
    """Click prompts split by label: (positive RAS points, negative RAS points), each (n, 3).

    Points labelled ``negative`` (any case, or starting with ``-``) are background clicks;
    every other point is a foreground click.
    """
    positive, negative = [], []
    for label, ras in markups_to_points(node):
        is_negative = label.strip().lower().startswith((NEGATIVE, "-"))
        (negative if is_negative else positive).append(ras)
    return np.reshape(positive, (-1, 3)), np.reshape(negative, (-1, 3))


def line_markup(scene: Any, p1_ras: Any, p2_ras: Any, name: str, node: Any = None) -> Any:
    """A line between two RAS points (e.g. a RECIST long or short axis)."""
    points = _as_points([p1_ras, p2_ras])
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", name)
        node.CreateDefaultDisplayNodes()
    was_modifying = node.StartModify()
    node.RemoveAllControlPoints()
    for point in points:
        node.AddControlPointWorld([float(x) for x in point])
    node.EndModify(was_modifying)
    return node


def line_length(node: Any) -> float:
    """The line's length in millimetres, as Slicer measures it."""
    return float(node.GetLineLengthWorld())


def _as_points(points_ras: Any) -> np.ndarray:
    points = np.asarray(points_ras, dtype=float)
    if points.ndim == 1 and points.size == 3:
        points = points[None, :]
    if points.ndim != 2 or points.shape[1] != 3 or not np.all(np.isfinite(points)):
        raise InputError(f"Points must be finite R,A,S triples, got shape {points.shape}; "
                         "give a list of [R, A, S] in millimetres.")
    return points

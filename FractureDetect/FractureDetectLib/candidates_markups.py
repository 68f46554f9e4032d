"""Fracture candidates as a markups point list: one control point per candidate.

Each point is labelled ``F1 (0.93)`` (rank and score) and described with its bone,
fragments, displacement and angulation. The reviewer's decision is stored per point as a
typed value, a static markups measurement named ``decision`` whose per-control-point
values are 1.0 (accepted), 0.0 (rejected) or NaN (not decided yet); it is saved with the
markups file. The candidates' numbers are kept as JSON in a node attribute.

A re-run keeps decisions: each new candidate takes the decision of the nearest previous
candidate within ``MATCH_MM`` (each previous decision is used once, nearest pairs first).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.terminology import BONE

DECISION = "decision"
ENTRIES_ATTRIBUTE = "MSKAI.FractureDetect.Candidates"
MATCH_MM = 10.0
ACCEPTED, REJECTED = 1.0, 0.0
DECISION_TEXT = {True: "accepted", False: "rejected", None: "undecided"}


def candidateLabel(rank: int, entry: dict[str, Any]) -> str:
    """``F1 (0.93)``: 1-based rank and score."""
    return f"F{rank} ({float(entry.get('score', 0.0)):.2f})"


def candidateDescription(entry: dict[str, Any]) -> str:
    """Bone, fragments, displacement and angulation in one line."""
    fragments = " + ".join(entry.get("fragments") or []) or "-"
    return (f"bone: {entry.get('bone', BONE)}; fragments: {fragments}; "
            f"displacement {_number(entry.get('displacement_mm'))} mm; "
            f"angulation {_number(entry.get('angulation_deg'))} deg")


def _number(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return f"{float(value):.1f}"


def fillCandidates(scene: Any, entries: list[dict[str, Any]], node: Any = None,
                   name: str = "Fracture candidates") -> Any:
    """The point list (new, or ``node`` refilled) for ``entries``; decisions kept by position."""
    from mskai.results.tables import jsonable

    previous = list(zip(positions(node), decisions(node), strict=True)) if node else []
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
        node.CreateDefaultDisplayNodes()
    points = np.reshape([e["position_ras"] for e in entries], (-1, 3)).astype(float)
    wasModifying = node.StartModify()
    node.RemoveAllControlPoints()
    for rank, (entry, point) in enumerate(zip(entries, points, strict=True), start=1):
        index = node.AddControlPointWorld([float(v) for v in point], candidateLabel(rank, entry))
        node.SetNthControlPointDescription(index, candidateDescription(entry))
        node.SetNthControlPointLocked(index, True)
    node.SetAttribute(ENTRIES_ATTRIBUTE, json.dumps(jsonable(entries), allow_nan=False))
    _writeDecisions(node, matchDecisions(previous, points))
    node.EndModify(wasModifying)
    return node


def positions(node: Any) -> np.ndarray:
    """World RAS positions of the control points, (n, 3)."""
    if node is None:
        return np.zeros((0, 3))
    return np.reshape([node.GetNthControlPointPositionWorld(i)
                       for i in range(node.GetNumberOfControlPoints())], (-1, 3))


def entries(node: Any) -> list[dict[str, Any]]:
    """The candidates' numbers as stored by :func:`fillCandidates` (one per point)."""
    text = node.GetAttribute(ENTRIES_ATTRIBUTE) if node is not None else None
    stored = json.loads(text) if text else []
    if len(stored) != node.GetNumberOfControlPoints():
        return [{} for _ in range(node.GetNumberOfControlPoints())]
    return stored


def decisions(node: Any) -> list[bool | None]:
    """Per point: True accepted, False rejected, None not decided."""
    if node is None:
        return []
    values = _decisionValues(node)
    return [_toDecision(values[i]) for i in range(node.GetNumberOfControlPoints())]


def setDecision(node: Any, index: int, accepted: bool | None) -> None:
    """Accept (True), reject (False) or clear (None) the decision on point ``index``."""
    count = node.GetNumberOfControlPoints()
    if not 0 <= index < count:
        raise InputError(f"There is no fracture candidate {index + 1}: "
                         f"{node.GetName()} has {count}.")
    if accepted is not None and not isinstance(accepted, bool):
        raise InputError("A decision is True (accept), False (reject) or None (undecided).")
    current = decisions(node)
    current[index] = accepted
    _writeDecisions(node, current)


def matchDecisions(previous: list[tuple[np.ndarray, bool | None]],
                   points: np.ndarray) -> list[bool | None]:
    """Decisions for ``points`` from the nearest previous decided point within MATCH_MM."""
    out: list[bool | None] = [None] * len(points)
    decided = [(np.asarray(p, dtype=float), d) for p, d in previous if d is not None]
    pairs = sorted((float(np.linalg.norm(p - q)), i, j)
                   for i, q in enumerate(points) for j, (p, _) in enumerate(decided))
    usedNew, usedOld = set(), set()
    for distance, i, j in pairs:
        if distance > MATCH_MM:
            break
        if i in usedNew or j in usedOld:
            continue
        out[i] = decided[j][1]
        usedNew.add(i)
        usedOld.add(j)
    return out


def candidateRows(node: Any) -> list[dict[str, Any]]:
    """One row per candidate for the results table and measurements.json."""
    if node is None:
        return []
    rows = []
    for index, (entry, point, decision) in enumerate(zip(
            entries(node), positions(node), decisions(node), strict=True)):
        rows.append({
            "candidate": node.GetNthControlPointLabel(index).split(" ")[0],
            "score": entry.get("score"),
            "bone": entry.get("bone", ""),
            "fragments": ", ".join(entry.get("fragments") or []),
            "displacement_mm": entry.get("displacement_mm"),
            "angulation_deg": entry.get("angulation_deg"),
            "gap_mm": entry.get("gap_mm"),
            "source": entry.get("source", ""),
            "position_r": float(point[0]), "position_a": float(point[1]),
            "position_s": float(point[2]),
            "decision": DECISION_TEXT[decision],
        })
    return rows


def _decisionValues(node: Any) -> list[float]:
    measurement = node.GetMeasurement(DECISION)
    array = measurement.GetControlPointValues() if measurement is not None else None
    count = node.GetNumberOfControlPoints()
    values = [math.nan] * count
    if array is not None:
        for i in range(min(count, array.GetNumberOfTuples())):
            values[i] = float(array.GetValue(i))
    return values


def _toDecision(value: float) -> bool | None:
    if math.isnan(value):
        return None
    return value >= 0.5


def _writeDecisions(node: Any, values: list[bool | None]) -> None:
    import slicer
    import vtk

    array = vtk.vtkDoubleArray()
    array.SetName(DECISION)
    for value in values:
        array.InsertNextValue(math.nan if value is None else (ACCEPTED if value else REJECTED))
    measurement = node.GetMeasurement(DECISION)
    if measurement is None:
        measurement = slicer.vtkMRMLStaticMeasurement()
        measurement.SetName(DECISION)
        measurement.SetDescription("Reviewer's decision per candidate: 1 accepted, "
                                   "0 rejected, NaN undecided")
        node.AddMeasurement(measurement)
        measurement = node.GetMeasurement(DECISION)
    measurement.SetControlPointValues(array)
    node.Modified()

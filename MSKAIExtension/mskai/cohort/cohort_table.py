"""The cohort's tables: ``cohort_measurements.csv`` (long format) and ``failures.csv``.

``cohort_measurements.csv`` has one row per value: ``case, segment, measure, value, unit``,
read from each finished case's ``measurements.json``:

- every number of a segment (``volume_ml``, ``recist_long_axis_mm``, ``mean_thickness_mm``,
  ...; not its label value or coordinates), cartilage subregions as segment
  ``<plate>/<subregion>``;
- radiomics ``features`` on the measured segment;
- numbers of the whole case with segment ``(case)``: ``margin.min_distance_to_bone_mm``,
  ``joint_space_width_mm.min``, ``fracture_count``; each fracture as segment
  ``fracture_<n>`` (``score``, ``displacement_mm``, ``angulation_deg``, ...).

Units (UCUM) come from the case's ``measurement_units.csv`` where the command wrote one
(its ``path`` column, e.g. ``segments[].volume_ml``), else from ``measurements.json`` where
it gives them (a ``units`` mapping, or a value written as ``{"value": ..., "unit": ...}``),
else from the name's suffix (``_mm`` mm, ``_ml`` mL, ``_mm2`` mm2, ``_deg`` deg, ...);
empty when not known.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CASE_SEGMENT = "(case)"
UNITS_FILE = "measurement_units.csv"
COLUMNS = ("case", "segment", "measure", "value", "unit")
FAILURE_COLUMNS = ("case", "task", "exit_class", "message")
SUFFIX_UNITS = (("_mm2", "mm2"), ("_mm3", "mm3"), ("_ml", "mL"), ("_mm", "mm"),
                ("_deg", "deg"), ("_hu", "HU"), ("_ms", "ms"), ("_fraction", "1"),
                ("_percent", "%"))
NAMED_UNITS = {"sphericity": "1", "score": "1", "voxel_count": "voxels",
               "fracture_count": "1"}
SKIP_SEGMENT_KEYS = {"id", "name", "label", "color", "units", "codes", "terminology"}
SKIP_TOP_KEYS = {"schema", "module", "image", "provenance", "segments", "warnings",
                 "features", "feature_standard", "fractures", "fracture_candidates", "units",
                 "codes"}
DIMENSIONLESS_SHAPE = {"Sphericity", "Elongation", "Flatness", "Compactness1", "Compactness2",
                       "SphericalDisproportion"}
Row = tuple[str, str, str, float, str]


def unit_for(measure: str, units: dict[str, Any] | None = None) -> str:
    if units and isinstance(units.get(measure), str):
        return units[measure]
    name = measure.lower()
    for part in (name, name.split(".")[0]):
        if part in NAMED_UNITS:
            return NAMED_UNITS[part]
        for suffix, unit in SUFFIX_UNITS:
            if part.endswith(suffix):
                return unit
    return _radiomics_unit(measure)


def _radiomics_unit(name: str) -> str:
    if "_shape_" not in name:
        return ""
    feature = name.rsplit("_", 1)[-1]
    if feature.endswith("Volume"):
        return "mm3"
    if feature.endswith("SurfaceArea"):
        return "mm2"
    if "Diameter" in feature or feature.endswith("AxisLength"):
        return "mm"
    if feature == "SurfaceVolumeRatio":
        return "1/mm"
    return "1" if feature in DIMENSIONLESS_SHAPE else ""


def _number(value: Any) -> tuple[float, str | None] | None:
    """(value, unit or None) of a number or of ``{"value": number, "unit": str}``."""
    if isinstance(value, dict) and "value" in value:
        found = _number(value["value"])
        return None if found is None else (found[0], value.get("unit") or None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value, None


def _numbers(case: str, segment: str, values: dict[str, Any], prefix: str = "",
             units: dict[str, Any] | None = None, skip: Iterable[str] = (),
             path: str = "", unit_paths: dict[str, str] | None = None) -> list[Row]:
    """Rows of the numbers in ``values``; ``path`` is their place in measurements.json as
    ``measurement_units.csv`` names it (``segments[].``, ``features.``, ...)."""
    rows: list[Row] = []
    for key, value in values.items():
        if key in skip:
            continue
        measure = f"{prefix}{key}"
        found = _number(value)
        if found is not None:
            unit = found[1]
            if unit is None and unit_paths and f"{path}{measure}" in unit_paths:
                unit = unit_paths[f"{path}{measure}"]
            if unit is None:
                unit = unit_for(measure, units)
            rows.append((case, segment, measure, found[0], unit))
        elif isinstance(value, dict) and not prefix:
            rows += _numbers(case, segment, value, f"{key}.", units, path=path,
                             unit_paths=unit_paths)
    return rows


def measurement_rows(case: str, document: dict[str, Any],
                     unit_paths: dict[str, str] | None = None) -> list[Row]:
    """The long-format rows of one case's ``measurements.json``."""
    rows: list[Row] = []
    top_units = document.get("units") if isinstance(document.get("units"), dict) else None
    segments = [s for s in document.get("segments", []) if isinstance(s, dict)]
    for segment in segments:
        sid = str(segment.get("id", ""))
        units = segment.get("units") if isinstance(segment.get("units"), dict) else top_units
        rows += _numbers(case, sid, segment, units=units,
                         skip=SKIP_SEGMENT_KEYS | {"subregions"}, path="segments[].",
                         unit_paths=unit_paths)
        for sub in segment.get("subregions", []) or []:
            if isinstance(sub, dict):
                rows += _numbers(case, f"{sid}/{sub.get('name', '')}", sub, units=units,
                                 skip={"name"}, path="segments[].subregions[].",
                                 unit_paths=unit_paths)
    features = document.get("features")
    if isinstance(features, dict):
        owner = str(segments[0].get("id", "")) if len(segments) == 1 else CASE_SEGMENT
        rows += _numbers(case, owner, features, units=top_units, path="features.",
                         unit_paths=unit_paths)
    rows += _numbers(case, CASE_SEGMENT, document, units=top_units, skip=SKIP_TOP_KEYS,
                     unit_paths=unit_paths)
    fractures = document.get("fractures")
    if isinstance(fractures, list):
        rows.append((case, CASE_SEGMENT, "fracture_count", len(fractures), "1"))
        for n, fracture in enumerate(fractures, 1):
            if isinstance(fracture, dict):
                rows += _numbers(case, f"fracture_{n}", fracture, units=top_units,
                                 skip={"score_terms"}, path="fractures[].",
                                 unit_paths=unit_paths)
    return rows


def read_unit_paths(folder: Path) -> dict[str, str]:
    """``{path: unit}`` of the case's ``measurement_units.csv`` ({} when there is none)."""
    try:
        with (folder / UNITS_FILE).open(newline="", encoding="utf-8") as handle:
            return {r["path"]: r["unit"] for r in csv.DictReader(handle)
                    if r.get("path") and r.get("unit") is not None}
    except (OSError, KeyError, csv.Error, UnicodeDecodeError):
        return {}


def case_rows(case: str, folder: Path) -> list[Row]:
    try:
        document = json.loads((folder / "measurements.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(document, dict):
        return []
    return measurement_rows(case, document, read_unit_paths(folder))


def _text(value: float) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def write_measurements(path: Path, rows: Iterable[Row]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for case, segment, measure, value, unit in rows:
            writer.writerow((case, segment, measure, _text(value), unit))


def write_failures(path: Path, outcomes: Iterable[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(FAILURE_COLUMNS)
        for o in outcomes:
            if o["status"] == "failed":
                writer.writerow((o["case"], o["task"], o["exit_class"], o["message"]))

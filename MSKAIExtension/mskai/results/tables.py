"""``measurements.json`` (schema ``mskai.measurements/1``, CONTRACT.md) and ``measurements.csv``.

Segments whose measurements lack a contract key (volume, surface area, maximum diameter,
centroid) get it computed here, so every file on disk satisfies the contract. Empty segments
report 0 mL and ``null`` for the rest.

Every measurement gets its UCUM unit and concept code from :mod:`mskai.measurement_codes`:
the ``units`` block of ``measurements.json`` and ``measurement_units.csv`` (one row per
measurement path, with the ``measurements.csv`` column it fills).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mskai.measure.shape import shape_measurements
from mskai.measurement_codes import document_units
from mskai.segments import Result, Segment
from mskai.volume import Volume

SCHEMA = "mskai.measurements/1"
CONTRACT_KEYS = ("volume_ml", "surface_area_mm2", "max_diameter_mm", "centroid_ras")
RESERVED = ("schema", "module", "image", "provenance", "segments", "warnings", "units")
UNITS_CSV = "measurement_units.csv"
UNITS_COLUMNS = ("path", "csv_column", "unit", "unit_meaning", "code_scheme", "code_value",
                 "code_meaning", "derivation_scheme", "derivation_value", "derivation_meaning")


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays converted, NaN/inf as ``None``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _base_measurements(seg: Segment, image: Volume) -> dict[str, Any]:
    if all(k in seg.measurements for k in CONTRACT_KEYS):
        return {}
    if not seg.mask.any():
        return {"volume_ml": 0.0, "surface_area_mm2": None, "max_diameter_mm": None,
                "centroid_ras": None}
    shape = shape_measurements(seg.mask, image)
    return {k: shape[k] for k in CONTRACT_KEYS}


def segment_entry(seg: Segment, image: Volume) -> dict[str, Any]:
    """One ``segments[]`` entry: id, name, label, the contract keys, then the segment's own."""
    entry: dict[str, Any] = {"id": seg.id, "name": seg.name, "label": int(seg.label)}
    base = {**_base_measurements(seg, image), **seg.measurements}
    entry.update({k: base[k] for k in CONTRACT_KEYS})
    entry.update({k: v for k, v in seg.measurements.items() if k not in entry})
    return jsonable(entry)


def measurements_document(result: Result) -> dict[str, Any]:
    """The whole ``measurements.json`` document of a result."""
    image = result.image
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "module": result.module,
        "image": {"path": str(image.path) if image.path else "",
                  "modality": image.modality or "",
                  "size": list(image.size), "spacing_mm": list(image.spacing)},
        "provenance": result.provenance.to_json(),
        "segments": [segment_entry(s, image) for s in result.segments],
    }
    doc.update({k: v for k, v in result.measurements.items() if k not in RESERVED})
    from mskai.dicom_series import source_uids  # the DICOM series' UIDs, when it was one

    if source_uids(image):
        doc["source"] = source_uids(image)
    doc["warnings"] = list(result.warnings)
    doc = jsonable(doc)
    doc["units"] = document_units(doc)[0]
    return doc


def write_json(document: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    return path


def _is_point(value: Any) -> bool:
    return value is None or (isinstance(value, list) and len(value) == 3
                             and all(isinstance(v, int | float) for v in value))


def _flatten(entry: dict[str, Any]) -> dict[str, Any]:
    """CSV cells: ``*_ras`` points split into _r/_a/_s, other nested values as JSON text."""
    row: dict[str, Any] = {}
    for key, value in entry.items():
        if key.endswith("_ras") and _is_point(value):
            point = value or ["", "", ""]
            row.update({f"{key}_{axis}": v for axis, v in zip("ras", point, strict=True)})
        elif isinstance(value, list | dict):
            row[key] = json.dumps(value)
        else:
            row[key] = "" if value is None else value
    return row


def write_csv(document: dict[str, Any], path: Path) -> Path:
    """One row per segment; columns in order of first appearance."""
    rows = [_flatten(e) for e in document["segments"]]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or ["id"], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _csv_column(path: str) -> str:
    """The ``measurements.csv`` column of a segment measurement path ('' for the others)."""
    prefix = "segments[]."
    key = path[len(prefix):] if path.startswith(prefix) else ""
    if not key:
        return ""
    head, _, rest = key.partition(".")
    if "[]" in head:
        head = head.partition("[]")[0]
    if head.endswith("_ras") and not rest:
        return " ".join(f"{head}_{axis}" for axis in "ras")
    return head


def write_units_csv(document: dict[str, Any], path: Path) -> Path:
    """``measurement_units.csv``: unit and codes of every measurement path of ``document``.

    ``csv_column`` names the ``measurements.csv`` column holding it (several, space
    separated, for a point split into _r/_a/_s; the JSON-text column for nested values).
    """
    units = document.get("units") or document_units(document)[0]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(UNITS_COLUMNS)
        for key, entry in units.items():
            code = entry.get("code") or {}
            derivation = entry.get("derivation") or {}
            writer.writerow([key, _csv_column(key), entry.get("unit") or "",
                             entry.get("unit_meaning") or "",
                             code.get("scheme", ""), code.get("value", ""),
                             code.get("meaning", ""), derivation.get("scheme", ""),
                             derivation.get("value", ""), derivation.get("meaning", "")])
    return path

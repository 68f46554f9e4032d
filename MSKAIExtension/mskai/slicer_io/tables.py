"""Measurement rows -> ``vtkMRMLTableNode``, with typed columns and units in the titles.

Column names stay the machine keys of measurements.json (``volume_ml``); column titles are
for people (``Volume (mL)``) and are what Slicer's table view shows. Units come from the
key's suffix (CONTRACT.md names keys ``*_mm``, ``*_ml``, ``*_mm2``, ``*_deg``) or from
``units``.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

from mskai.errors import InputError

UNIT_SUFFIXES: dict[str, str] = {
    "mm": "mm", "mm2": "mm²", "mm3": "mm³", "ml": "mL", "deg": "°", "hu": "HU", "pct": "%",
}


def measurements_to_table(scene: Any, rows: list[dict[str, Any]], name: str,
                          table_node: Any = None,
                          units: dict[str, str] | None = None) -> Any:
    """Fill a table node (new, or ``table_node`` cleared and refilled) with one row per dict.

    Columns holding only numbers (or None, shown as NaN) are double columns; others are
    text. Lists and dicts are written as JSON text.
    """
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise InputError("Measurements must be a list of dicts (one per row); "
                         "pass e.g. [{'id': 'tumor', 'volume_ml': 1.2}].")
    node = table_node or scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    was_modifying = node.StartModify()
    node.RemoveAllColumns()
    for key in _column_keys(rows):
        values = [row.get(key) for row in rows]
        node.AddColumn(_column_array(key, values))
        unit = (units or {}).get(key) or unit_from_key(key)
        node.SetColumnTitle(key, column_title(key, unit))
        if unit:
            node.SetColumnUnitLabel(key, unit)
    node.SetUseColumnTitleAsColumnHeader(True)
    node.EndModify(was_modifying)
    return node


def table_to_rows(node: Any) -> list[dict[str, Any]]:
    """The table's cells as dicts keyed by column name (floats for double columns)."""
    table = node.GetTable()
    columns = [table.GetColumn(c) for c in range(table.GetNumberOfColumns())]
    return [{col.GetName(): _cell(col, r) for col in columns}
            for r in range(table.GetNumberOfRows())]


def unit_from_key(key: str) -> str | None:
    """``volume_ml`` -> ``mL``; None when the key has no known unit suffix."""
    suffix = key.rsplit("_", 1)[-1].lower() if "_" in key else ""
    return UNIT_SUFFIXES.get(suffix)


def column_title(key: str, unit: str | None) -> str:
    """``max_diameter_mm`` -> ``Max diameter (mm)``; keys without units just read as words."""
    words = key.rsplit("_", 1)[0] if unit_from_key(key) else key
    title = words.replace("_", " ").strip().capitalize() or key
    return f"{title} ({unit})" if unit else title


def _column_keys(rows: list[dict[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(str(k) for k in row))
    return list(keys)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _column_array(key: str, values: list[Any]) -> Any:
    from vtkmodules.vtkCommonCore import vtkDoubleArray, vtkStringArray

    if all(v is None or _is_number(v) for v in values) and any(v is not None for v in values):
        array = vtkDoubleArray()
        for v in values:
            array.InsertNextValue(math.nan if v is None else float(v))
    else:
        array = vtkStringArray()
        for v in values:
            array.InsertNextValue(_text(v))
    array.SetName(key)
    return array


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return repr(float(value)) if isinstance(value, float) else str(value)
    return json.dumps(value, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _cell(column: Any, row: int) -> Any:
    if column.IsA("vtkDataArray"):
        return float(column.GetValue(row))
    return column.GetValue(row)

"""The two result tables of CartilageQuant: one row per cartilage plate (plus the joint
space width), and one row per subregion. Rows come from the contract's measurements
document (``measurements.json``), so Slicer shows exactly what the ``mskai`` command writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PLATE_KEYS = ("mean_thickness_mm", "median_thickness_mm", "sd_thickness_mm",
              "max_thickness_mm", "volume_ml", "area_mm2", "denuded_area_fraction",
              "mean_thickness_nearest_mm", "mean_thickness_normal_mm", "thickness_method")
JSW_ROW_ID = "joint_space_width"
JSW_COLUMNS = {"jsw_min_mm": ("min", "JSW min"), "jsw_medial_mm": ("medial", "JSW medial"),
               "jsw_lateral_mm": ("lateral", "JSW lateral"),
               "jsw_medial_mean_mm": ("medial_mean", "JSW medial mean"),
               "jsw_lateral_mean_mm": ("lateral_mean", "JSW lateral mean")}
SUBREGION_KEYS = ("area_mm2", "mean_thickness_mm", "denuded_area_fraction")
PLATE_ATTRIBUTE = "CartilageQuant.Table"


def isPlate(entry: Mapping[str, Any]) -> bool:
    """A cartilage plate entry of the document (it has thickness keys)."""
    return "mean_thickness_mm" in entry and "subregions" in entry


def plateRows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per plate, then a joint space width row (min / medial / lateral, and the
    medial / lateral means over the central weight-bearing region, in mm)."""
    rows = [{"plate": e["id"], "name": e.get("name", e["id"]),
             **{key: e.get(key) for key in PLATE_KEYS}}
            for e in document.get("segments", []) if isPlate(e)]
    jsw = document.get("joint_space_width_mm")
    if isinstance(jsw, Mapping):
        rows.append({"plate": JSW_ROW_ID, "name": "Joint space width",
                     **{column: jsw.get(key) for column, (key, _) in JSW_COLUMNS.items()}})
    return rows


def subregionRows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per subregion of every plate."""
    return [{"plate": e["id"], "subregion": region.get("name"),
             **{key: region.get(key) for key in SUBREGION_KEYS}}
            for e in document.get("segments", []) if isPlate(e)
            for region in e.get("subregions") or []]


def fillTables(scene: Any, document: Mapping[str, Any], platesTable: Any = None,
               subregionsTable: Any = None) -> tuple[Any, Any]:
    """Fill (or create) the plates and subregions table nodes; returns both."""
    from mskai.slicer_io import measurements_to_table

    plates = measurements_to_table(scene, plateRows(document), "CartilageQuant plates",
                                   platesTable)
    for column, (_, title) in JSW_COLUMNS.items():
        if plates.GetTable().GetColumnByName(column) is not None:
            plates.SetColumnTitle(column, f"{title} (mm)")
    plates.SetAttribute(PLATE_ATTRIBUTE, "plates")
    subregions = measurements_to_table(scene, subregionRows(document),
                                       "CartilageQuant subregions", subregionsTable)
    subregions.SetAttribute(PLATE_ATTRIBUTE, "subregions")
    return plates, subregions

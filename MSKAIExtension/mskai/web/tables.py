"""measurements.json -> rows for the page's tables (numbers rounded for reading)."""

from __future__ import annotations

from typing import Any

from mskai.terminology import KNEE_REQUIRED_BONES

TUMOUR_KEYS = ("volume_ml", "max_diameter_mm", "recist_long_axis_mm", "recist_short_axis_mm",
               "sphericity", "surface_area_mm2")
CARTILAGE_KEYS = ("volume_ml", "mean_thickness_mm", "median_thickness_mm", "max_thickness_mm")


def rounded(value: Any, digits: int = 2) -> Any:
    return round(float(value), digits) if isinstance(value, int | float) else value


def segment_rows(document: dict[str, Any], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per segment: ``id``, ``name`` and ``keys`` (missing ones as None)."""
    return [{"id": s.get("id"), "name": s.get("name") or s.get("id"),
             **{k: rounded(s.get(k)) for k in keys}}
            for s in document.get("segments", []) if isinstance(s, dict)]


def tumour_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    return segment_rows(document, TUMOUR_KEYS)


def cartilage_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in segment_rows(document, CARTILAGE_KEYS)
            if r.get("mean_thickness_mm") is not None or r["id"] in KNEE_REQUIRED_BONES]

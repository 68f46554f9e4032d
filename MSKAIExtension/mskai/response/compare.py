"""Compare two tumour result folders (``measurements.json``, schema mskai.measurements/1).

Target lesions are the segments with id ``tumor`` (or ``tumor_<n>`` for several lesions).
The RECIST sum is the sum of their ``recist_long_axis_mm``; the volume is the sum of their
``volume_ml``. A lesion segment that is present but empty (``volume_ml`` 0) counts as 0 mm,
which is how a complete response is recorded.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mskai.errors import InputError
from mskai.response.recist import percent_change, recist_category
from mskai.response.volumetric import volumetric_category

MEASUREMENTS = "measurements.json"
SCHEMA = "mskai.measurements/1"
_LESION_ID = re.compile(r"^tumor(_\d+)?$")
TUMOR_MODULE = "TumorSeg"
# plausible upper limits of one lesion: larger values are corrupt files, not tumours
MAX_DIAMETER_MM = 2000.0
MAX_VOLUME_ML = 100_000.0


@dataclass
class TimePoint:
    """One time point: where it came from and its target-lesion sizes."""

    folder: str
    module: str
    image_path: str
    lesions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sum_diameters_mm(self) -> float:
        return float(sum(lesion["long_axis_mm"] for lesion in self.lesions))

    @property
    def volume_ml(self) -> float:
        return float(sum(lesion["volume_ml"] for lesion in self.lesions))

    def to_json(self) -> dict[str, Any]:
        return {"folder": self.folder, "module": self.module, "image": self.image_path,
                "sum_diameters_mm": self.sum_diameters_mm, "volume_ml": self.volume_ml,
                "lesions": self.lesions}


@dataclass
class Assessment:
    """Baseline vs follow-up: changes and response categories (nadir = baseline)."""

    baseline: TimePoint
    followup: TimePoint

    @property
    def nadir(self) -> TimePoint:
        return self.baseline  # two time points: the nadir is the baseline

    def changes(self) -> dict[str, float]:
        base, follow = self.baseline, self.followup
        return {
            "sum_diameters_mm": follow.sum_diameters_mm - base.sum_diameters_mm,
            "sum_diameters_pct": percent_change(follow.sum_diameters_mm, base.sum_diameters_mm),
            "sum_diameters_vs_nadir_mm": follow.sum_diameters_mm - self.nadir.sum_diameters_mm,
            "sum_diameters_vs_nadir_pct": percent_change(follow.sum_diameters_mm,
                                                         self.nadir.sum_diameters_mm),
            "volume_ml": follow.volume_ml - base.volume_ml,
            "volume_pct": percent_change(follow.volume_ml, base.volume_ml),
        }

    @property
    def recist_category(self) -> str:
        return recist_category(self.baseline.sum_diameters_mm, self.followup.sum_diameters_mm,
                               self.nadir.sum_diameters_mm)

    @property
    def volumetric_category(self) -> str:
        return volumetric_category(self.baseline.volume_ml, self.followup.volume_ml,
                                   self.nadir.volume_ml)


def compare_folders(baseline_dir: str | Path, followup_dir: str | Path) -> Assessment:
    """Read both folders and check that they can be compared."""
    baseline = read_time_point(baseline_dir)
    followup = read_time_point(followup_dir)
    if baseline.module != followup.module:
        raise InputError(f"the folders come from different modules (baseline "
                         f"{baseline.module}, follow-up {followup.module}); give two "
                         "TumorSeg result folders")
    if baseline.module != TUMOR_MODULE:
        raise InputError(f"both folders were written by the {baseline.module or 'unknown'} "
                         f"module, not {TUMOR_MODULE}; give two result folders of mskai tumor")
    if baseline.sum_diameters_mm <= 0 or baseline.volume_ml <= 0:
        raise InputError(f"the baseline tumour in {baseline.folder} is empty; response needs "
                         "a measurable tumour at baseline")
    return Assessment(baseline, followup)


def read_time_point(folder: str | Path) -> TimePoint:
    """The target lesions of one result folder."""
    folder = Path(folder)
    document = _read_document(folder)
    segments = document.get("segments")
    if not isinstance(segments, list):
        raise InputError(f"{folder / MEASUREMENTS} has no 'segments' list; re-create it "
                         "with mskai tumor")
    lesions = [_lesion(seg, folder) for seg in segments
               if isinstance(seg, dict) and _LESION_ID.match(str(seg.get("id", "")))]
    if not lesions:
        raise InputError(f"{folder / MEASUREMENTS} has no tumor segment; give a folder "
                         "written by mskai tumor")
    image = document.get("image") if isinstance(document.get("image"), dict) else {}
    return TimePoint(str(folder), str(document.get("module", "")), str(image.get("path", "")),
                     lesions)


def _read_document(folder: Path) -> dict[str, Any]:
    path = folder / MEASUREMENTS
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give a result folder of mskai tumor")
    if not path.is_file():
        raise InputError(f"{folder} has no {MEASUREMENTS}; give a result folder of mskai "
                         "tumor")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{path} is not valid JSON; re-create it with mskai tumor") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise InputError(f"{path} is not a {SCHEMA} document; re-create it with mskai tumor")
    return document


def _lesion(segment: dict[str, Any], folder: Path) -> dict[str, Any]:
    """id, long axis (mm) and volume (mL) of one lesion segment."""
    seg_id = segment["id"]
    volume = _measure(segment, "volume_ml", folder, MAX_VOLUME_ML, "mL")
    if volume is None:
        raise InputError(f"segment '{seg_id}' in {folder / MEASUREMENTS} has no valid "
                         "volume_ml; re-create the folder with mskai tumor")
    axis = _measure(segment, "recist_long_axis_mm", folder, MAX_DIAMETER_MM, "mm")
    if volume == 0:
        axis = 0.0  # disappeared: RECIST records 0 mm
    if axis is None:
        raise InputError(f"segment '{seg_id}' in {folder / MEASUREMENTS} has no "
                         "recist_long_axis_mm; re-create the folder with mskai tumor")
    return {"id": seg_id, "long_axis_mm": axis, "volume_ml": volume}


def _measure(segment: dict[str, Any], key: str, folder: Path, limit: float,
             unit: str) -> float | None:
    """The value of ``key``, None when absent; InputError naming the file and the value
    when it is not a number from 0 to ``limit``."""
    if segment.get(key) is None:
        return None
    value = segment[key]
    number = _number(value) if not isinstance(value, float) else value
    if number is None or not math.isfinite(number) or not 0 <= number <= limit:
        raise InputError(f"segment '{segment['id']}' in {folder / MEASUREMENTS} has {key} "
                         f"= {json.dumps(value)[:40]}, not a number from 0 to {limit:g} {unit}; "
                         "re-create the folder with mskai tumor")
    return float(number)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None

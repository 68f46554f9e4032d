"""Response assessment: RECIST 1.1 and volumetric categories, result folders, the command.

Thresholds are RECIST 1.1's (Eisenhauer et al. 2009): PR at -30 % from baseline, PD at
+20 % and +5 mm from the nadir. The volumetric ones are the cubes of those diameter ratios
for a sphere (0.7^3, 1.2^3), rounded to -65 % / +73 %.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sphere_case import write_sphere_case

from mskai.errors import InputError
from mskai.response import compare_folders, recist_category, volumetric_category


# ----- RECIST 1.1 -----------------------------------------------------------------------
@pytest.mark.parametrize("baseline,current,expected", [
    (50.0, 35.0, "PR"),      # exactly -30 %
    (100.0, 70.0, "PR"),     # exactly -30 %
    (33.3, 23.31, "PR"),     # exactly -30 % in decimal, not in binary floating point
    (50.0, 35.1, "SD"),      # -29.8 %
    (20.0, 24.0, "SD"),      # +20 % but only +4 mm
    (25.0, 30.0, "PD"),      # exactly +20 % and exactly +5 mm
    (50.0, 59.9, "SD"),      # +9.9 mm but only +19.8 %
    (50.0, 60.0, "PD"),      # +20 %, +10 mm
    (50.0, 50.0, "SD"),
    (50.0, 0.0, "CR"),       # the target lesion disappeared
])
def test_recist_categories(baseline, current, expected):
    assert recist_category(baseline, current) == expected


def test_recist_progression_is_measured_from_the_nadir():
    # 72 mm is -28 % from baseline (SD by that alone) but +20 %, +12 mm from the nadir
    assert recist_category(100.0, 72.0, nadir_sum_mm=60.0) == "PD"
    # PD takes precedence over PR: -40 % from baseline yet +20 %, +10 mm from the nadir
    assert recist_category(100.0, 60.0, nadir_sum_mm=50.0) == "PD"
    assert recist_category(100.0, 59.0, nadir_sum_mm=50.0) == "PR"
    # reappearance after a complete response
    assert recist_category(100.0, 4.0, nadir_sum_mm=0.0) == "PD"


def test_recist_needs_a_measurable_baseline():
    with pytest.raises(ValueError):
        recist_category(0.0, 10.0)
    with pytest.raises(ValueError):
        recist_category(10.0, -1.0)


# ----- volumetric -----------------------------------------------------------------------
@pytest.mark.parametrize("baseline,current,expected", [
    (10.0, 3.5, "PR"),       # exactly -65 %
    (10.0, 3.51, "SD"),
    (10.0, 17.3, "PD"),      # exactly +73 %
    (10.0, 17.29, "SD"),
    (10.0, 0.0, "CR"),
    (10.0, 10.0, "SD"),
])
def test_volumetric_categories(baseline, current, expected):
    assert volumetric_category(baseline, current) == expected


def test_volumetric_thresholds_are_the_sphere_cubes_of_recist():
    def sphere(diameter: float) -> float:
        return np.pi * diameter**3 / 6

    # a sphere at the RECIST PR boundary (-30 % diameter) loses 65.7 % volume: PR
    assert volumetric_category(sphere(50.0), sphere(35.0)) == "PR"
    assert volumetric_category(sphere(50.0), sphere(35.4)) == "SD"   # -64.5 %
    # +20 % diameter is +72.8 % volume, just under the rounded +73 % threshold
    assert volumetric_category(sphere(50.0), sphere(60.0)) == "SD"
    assert volumetric_category(sphere(50.0), sphere(60.1)) == "PD"


# ----- result folders -------------------------------------------------------------------
def _segment(seg_id: str, volume_ml: float, long_axis_mm: float | None) -> dict:
    return {"id": seg_id, "name": "Tumor", "label": 1, "volume_ml": volume_ml,
            "surface_area_mm2": None if volume_ml == 0 else 100.0,
            "max_diameter_mm": long_axis_mm, "centroid_ras": None if volume_ml == 0
            else [0.0, 0.0, 0.0], "recist_long_axis_mm": long_axis_mm,
            "recist_short_axis_mm": None if long_axis_mm is None else long_axis_mm / 2}


def write_folder(folder: Path, segments: list[dict], module: str = "TumorSeg",
                 schema: str = "mskai.measurements/1") -> Path:
    """A result folder with measurements.json in the CONTRACT.md schema."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "schema": schema, "module": module,
        "image": {"path": f"{folder.name}.nrrd", "modality": "CT", "size": [64, 64, 32],
                  "spacing_mm": [1.0, 1.0, 2.0]},
        "provenance": {"mskai_version": "0.1.0", "method": "labels", "model": None},
        "segments": [*segments, _segment("safety_margin", 99.0, 80.0)],
        "margin": {"margin_mm": 10.0, "min_distance_to_bone_mm": None,
                   "bone_within_margin": False},
        "warnings": [],
    }
    (folder / "measurements.json").write_text(json.dumps(document))
    return folder


def test_compare_folders_partial_response(tmp_path):
    base = write_folder(tmp_path / "base", [_segment("tumor", 20.0, 50.0)])
    follow = write_folder(tmp_path / "follow", [_segment("tumor", 5.0, 30.0)])
    assessment = compare_folders(base, follow)
    changes = assessment.changes()
    assert changes["sum_diameters_mm"] == pytest.approx(-20.0)
    assert changes["sum_diameters_pct"] == pytest.approx(-40.0)
    assert changes["volume_ml"] == pytest.approx(-15.0)
    assert changes["volume_pct"] == pytest.approx(-75.0)
    assert assessment.recist_category == "PR"
    assert assessment.volumetric_category == "PR"


def test_compare_folders_sums_several_lesions(tmp_path):
    base = write_folder(tmp_path / "base", [_segment("tumor_1", 4.0, 20.0),
                                            _segment("tumor_2", 6.0, 30.0)])
    follow = write_folder(tmp_path / "follow", [_segment("tumor_1", 5.0, 26.0),
                                                _segment("tumor_2", 9.0, 34.0)])
    assessment = compare_folders(base, follow)
    assert assessment.baseline.sum_diameters_mm == pytest.approx(50.0)
    assert assessment.followup.sum_diameters_mm == pytest.approx(60.0)
    assert assessment.recist_category == "PD"          # +20 %, +10 mm
    assert assessment.volumetric_category == "SD"      # +40 %


def test_empty_followup_tumor_is_complete_response(tmp_path):
    base = write_folder(tmp_path / "base", [_segment("tumor", 20.0, 50.0)])
    follow = write_folder(tmp_path / "follow", [_segment("tumor", 0.0, None)])
    assessment = compare_folders(base, follow)
    assert assessment.recist_category == "CR"
    assert assessment.volumetric_category == "CR"
    assert assessment.changes()["sum_diameters_pct"] == pytest.approx(-100.0)


def test_run_response_writes_json_and_html(tmp_path):
    from mskai.tasks.response import run_response

    base = write_folder(tmp_path / "base", [_segment("tumor", 20.0, 25.0)])
    follow = write_folder(tmp_path / "follow", [_segment("tumor", 23.0, 29.0)])
    line = run_response(base, follow, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "response.json").read_text())
    assert doc["schema"] == "mskai.response/1"
    assert doc["baseline"]["sum_diameters_mm"] == 25.0
    assert doc["followup"]["sum_diameters_mm"] == 29.0
    assert doc["changes"]["sum_diameters_mm"] == pytest.approx(4.0)
    assert doc["changes"]["sum_diameters_pct"] == pytest.approx(16.0)
    assert doc["changes"]["volume_pct"] == pytest.approx(15.0)
    assert doc["nadir"]["source"] == "baseline"
    assert doc["recist_category"] == "SD"
    assert doc["volumetric_category"] == "SD"
    page = (tmp_path / "out" / "response.html").read_text()
    assert "RECIST 1.1: SD" in page and "<script" not in page and "src=" not in page
    assert line.startswith("Response: RECIST SD") and str(tmp_path / "out") in line


# ----- bad input ------------------------------------------------------------------------
def _expect(match: str, base: Path, follow: Path) -> None:
    with pytest.raises(InputError, match=match):
        compare_folders(base, follow)


def test_bad_input_missing_measurements(tmp_path):
    good = write_folder(tmp_path / "good", [_segment("tumor", 20.0, 50.0)])
    (tmp_path / "bare").mkdir()
    _expect("has no measurements.json", good, tmp_path / "bare")
    _expect("is not a folder", tmp_path / "missing", good)


def test_bad_input_not_the_contract_schema(tmp_path):
    good = write_folder(tmp_path / "good", [_segment("tumor", 20.0, 50.0)])
    other = write_folder(tmp_path / "other", [_segment("tumor", 20.0, 50.0)], schema="x/1")
    _expect("not a mskai.measurements/1 document", good, other)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "measurements.json").write_text("{not json")
    _expect("not valid JSON", good, broken)


def test_bad_input_different_modules(tmp_path):
    good = write_folder(tmp_path / "good", [_segment("tumor", 20.0, 50.0)])
    radiomics = write_folder(tmp_path / "rad", [_segment("tumor", 20.0, 50.0)],
                             module="Radiomics")
    _expect("different modules", good, radiomics)


def test_bad_input_no_tumor_segment(tmp_path):
    good = write_folder(tmp_path / "good", [_segment("tumor", 20.0, 50.0)])
    knee = write_folder(tmp_path / "knee", [_segment("femur", 200.0, 90.0)])
    _expect("no tumor segment", good, knee)


def test_bad_input_missing_diameter_or_empty_baseline(tmp_path):
    good = write_folder(tmp_path / "good", [_segment("tumor", 20.0, 50.0)])
    no_axis = write_folder(tmp_path / "no_axis", [_segment("tumor", 20.0, None)])
    _expect("no recist_long_axis_mm", good, no_axis)
    empty = write_folder(tmp_path / "empty", [_segment("tumor", 0.0, None)])
    _expect("baseline tumour .* is empty", empty, good)


# ----- the command ----------------------------------------------------------------------
def test_cli_response(tmp_path, capsys):
    from mskai.cli import main

    base = write_folder(tmp_path / "base", [_segment("tumor", 20.0, 50.0)])
    follow = write_folder(tmp_path / "follow", [_segment("tumor", 40.0, 62.0)])
    out = tmp_path / "out"
    assert main(["response", str(base), str(follow), "--out", str(out)]) == 0
    doc = json.loads((out / "response.json").read_text())
    assert doc["recist_category"] == "PD"          # +24 %, +12 mm
    assert doc["volumetric_category"] == "PD"      # +100 %
    assert "RECIST PD" in capsys.readouterr().out
    assert main(["response", str(base), str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "is not a folder" in capsys.readouterr().err




def test_cli_tumor_then_response_end_to_end(tmp_path):
    """Two real `mskai tumor --labels` folders: spheres of 10 mm and 6.5 mm radius."""
    from mskai.cli import main

    folders = []
    for name, radius in (("base", 10.0), ("follow", 6.5)):
        image, label = write_sphere_case(tmp_path / f"{name}_in", radius)
        out = tmp_path / name
        assert main(["tumor", str(image), "--labels", str(label), "--label-names", "tumor=1",
                     "--out", str(out)]) == 0
        folders.append(out)
    out = tmp_path / "response"
    assert main(["response", str(folders[0]), str(folders[1]), "--out", str(out)]) == 0
    doc = json.loads((out / "response.json").read_text())
    # diameters about 20 -> 13 mm (-35 %), volume (13/20)^3 - 1 = -72.5 %: PR in both
    assert doc["baseline"]["sum_diameters_mm"] == pytest.approx(20.0, abs=1.5)
    assert doc["followup"]["sum_diameters_mm"] == pytest.approx(13.0, abs=1.5)
    assert doc["changes"]["volume_pct"] == pytest.approx(-72.5, abs=4.0)
    assert doc["recist_category"] == "PR"
    assert doc["volumetric_category"] == "PR"

"""Units (UCUM) and codes of every measurement (mskai.measurement_codes): each task's
measurements.json gives a unit for every value, measurement_units.csv lists them, and the
registry's codes and units are well-formed. A task that emits a measurement the registry
does not know fails here."""

from __future__ import annotations

import csv
import json
import re
import warnings

import numpy as np
import pytest
from test_cartilage_t2 import TIMES, _plates_result, _write_echoes

from mskai import demo
from mskai.measurement_codes import (
    IBSI_CODES,
    PRIVATE_SCHEME,
    QUANTITIES,
    UNIT_MEANINGS,
    Quantity,
    document_units,
    measurement_values,
    quantity,
    radiomics_quantity,
)
from mskai.results import write_results
from mskai.results.tables import UNITS_COLUMNS, measurements_document

UCUM = re.compile(r"^(1|\{count\}|/mm|mm|mm2|mm3|mL|ms|deg|\[hnsf'U\](2(\.mm3)?)?|"
                  r"\[arb'U\](2(\.mm3)?)?)$")


def _check_units(document: dict) -> None:
    units, missing = document_units(document)
    assert not missing, f"measurements without a unit in mskai.measurement_codes: {missing}"
    assert document["units"] == units
    for path, _ in measurement_values(document):
        entry = document["units"][path]
        assert UCUM.match(entry["unit"]), (path, entry)
        assert entry["unit_meaning"]


@pytest.fixture(scope="module")
def task_documents(tmp_path_factory):
    """measurements.json of each task on the demo inputs, plus radiomics and T2."""
    from mskai.image import write_image
    from mskai.tasks.cartilage_t2 import add_t2
    from mskai.tasks.radiomics import run_radiomics

    if not (demo.DATA / "sts_sarcoma").is_dir():
        pytest.skip("needs the sample data of the source checkout (Testing/Data)")
    out = tmp_path_factory.mktemp("tasks")
    docs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, run in (("tumor", demo._tumor_demo), ("cartilage", demo._cartilage_demo),
                          ("fracture", demo._fracture_demo)):
            result, _ = run(out / name)
            docs[name] = measurements_document(result)
            if name == "tumor":
                mask = result.image.with_array(result.segment("tumor").mask.astype(np.uint8))
                write_image(mask, out / "mask.nrrd")
                docs["radiomics"] = measurements_document(
                    run_radiomics(result.image, out / "mask.nrrd"))
        t2 = _plates_result()
        _write_echoes(t2, out / "echoes.nrrd")
        add_t2(t2, out / "echoes.nrrd", TIMES)
        docs["t2"] = measurements_document(t2)
    return docs


@pytest.mark.parametrize("task", ["tumor", "cartilage", "fracture", "radiomics", "t2"])
def test_every_value_a_task_writes_has_a_unit(task_documents, task):
    document = task_documents[task]
    _check_units(document)
    assert document["schema"] == "mskai.measurements/1"


def test_known_measurements_have_the_expected_units_and_codes(task_documents):
    tumor = task_documents["tumor"]["units"]
    assert tumor["segments[].volume_ml"] == {
        "unit": "mL", "unit_meaning": "milliliter",
        "code": {"scheme": "SCT", "value": "118565006", "meaning": "Volume"}}
    assert tumor["segments[].recist_long_axis_mm"]["code"]["value"] == "103339001"
    assert tumor["segments[].sphericity"]["unit"] == "1"
    assert tumor["segments[].mean_intensity"]["unit"] == "[hnsf'U]"  # CT
    assert tumor["segments[].centroid_ras"]["unit"] == "mm"
    assert tumor["margin.min_distance_to_bone_mm"]["unit"] == "mm"
    assert "margin.bone_within_margin" not in tumor  # a flag, not a quantity
    assert "segments[].label" not in tumor
    cartilage = task_documents["cartilage"]["units"]
    assert cartilage["segments[].mean_thickness_mm"]["derivation"]["meaning"] == "Mean"
    assert cartilage["segments[].subregions[].denuded_area_fraction"]["unit"] == "1"
    assert cartilage["joint_space_width_mm.min"]["unit"] == "mm"
    assert cartilage["segments[].thickness_points"]["unit"] == "{count}"
    t2 = task_documents["t2"]["units"]
    assert t2["segments[].t2.mean_t2_ms"]["unit"] == "ms"
    assert t2["segments[].t2.mean_t2_ms"]["code"] == {"scheme": "DCM", "value": "113065",
                                                      "meaning": "T2"}
    assert t2["t2_method.echo_times_ms"]["unit"] == "ms"
    fracture = task_documents["fracture"]["units"]
    assert fracture["fracture_candidates[].angulation_deg"]["unit"] == "deg"
    radiomics = task_documents["radiomics"]["units"]
    assert radiomics["features.original_shape_MeshVolume"]["unit"] == "mm3"
    assert radiomics["features.original_firstorder_Variance"]["unit"] == "[hnsf'U]2"
    assert radiomics["features.original_glcm_JointAverage"]["code"]["scheme"] == "IBSI"
    assert radiomics["features.original_firstorder_Kurtosis"]["code"]["scheme"] == PRIVATE_SCHEME
    assert radiomics["feature_standard.ibsi_values.stat_kurt"]["code"]["value"] == "IPH6"


def test_an_unknown_measurement_is_reported_missing():
    document = {"schema": "mskai.measurements/1", "image": {"modality": "MR"},
                "segments": [{"id": "tumor", "label": 1, "volume_ml": 1.0,
                              "new_thing_mm": 3.0}],
                "margin": {"margin_mm": 5.0, "bone_within_margin": True}}
    units, missing = document_units(document)
    assert missing == ["segments[].new_thing_mm"]
    assert units["segments[].new_thing_mm"]["unit"] is None
    assert units["margin.margin_mm"]["unit"] == "mm"


def test_intensity_units_follow_the_modality():
    assert quantity("segments[].mean_intensity", "CT").unit == "[hnsf'U]"
    assert quantity("segments[].mean_intensity", "MR").unit == "[arb'U]"
    assert quantity("features.original_firstorder_TotalEnergy", "CT").unit == "[hnsf'U]2.mm3"
    assert quantity("features.wavelet-LLH_firstorder_Mean", "CT").unit == "[arb'U]"
    assert quantity("features.original_shape2D_Perimeter", None).unit == "mm"


def test_registry_codes_and_units_are_well_formed():
    entries: list[tuple[str, Quantity]] = list(QUANTITIES.items())
    entries += [(f"ibsi:{tag}", quantity(f"feature_standard.ibsi_values.{tag}", "CT"))
                for tag in IBSI_CODES]
    for path, q in entries:
        q = q.resolved("CT")
        assert UCUM.match(q.unit) and q.unit in UNIT_MEANINGS, path
        for code in (q.code, q.derivation):
            if code is not None:
                value, scheme, meaning = code
                assert 0 < len(value) <= 16 and scheme in {"SCT", "DCM", "IBSI", PRIVATE_SCHEME}
                assert 0 < len(meaning) <= 64, path
    from radiomics import getFeatureClasses

    for cls, feature_class in getFeatureClasses().items():
        for feature in feature_class.getFeatureNames():
            q = radiomics_quantity(f"original_{cls}_{feature}")
            assert q is not None and len(q.code[0]) <= 16 and UCUM.match(
                q.resolved("MR").unit), (cls, feature)


def test_units_csv_lists_every_measurement_with_its_csv_column(tmp_path, task_documents):
    from mskai.results.tables import write_units_csv

    document = task_documents["tumor"]
    write_units_csv(document, tmp_path / "units.csv")
    with (tmp_path / "units.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == UNITS_COLUMNS
    by_path = {r["path"]: r for r in rows}
    assert set(by_path) == set(document["units"])
    assert by_path["segments[].volume_ml"]["csv_column"] == "volume_ml"
    assert by_path["segments[].volume_ml"]["code_value"] == "118565006"
    assert by_path["segments[].centroid_ras"]["csv_column"] == (
        "centroid_ras_r centroid_ras_a centroid_ras_s")
    assert by_path["margin.min_distance_to_bone_mm"]["csv_column"] == ""


def test_write_results_adds_the_units_csv_and_json_block(tmp_path):
    from test_results import make_result

    paths = write_results(make_result(), tmp_path, render_3d=False)
    assert paths["units_csv"].name == "measurement_units.csv"
    document = json.loads(paths["json"].read_text())
    _check_units(document)
    with paths["csv"].open(newline="") as handle:
        columns = next(csv.reader(handle))
    with paths["units_csv"].open(newline="") as handle:
        listed = {c for r in csv.DictReader(handle) for c in r["csv_column"].split()}
    assert set(columns) - {"id", "name", "label"} <= listed  # every value column has a unit

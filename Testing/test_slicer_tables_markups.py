"""Measurement tables, click-prompt point lists and RECIST line markups in real MRML."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.slicer_io.markups import (
    line_length,
    line_markup,
    markups_to_points,
    points_to_markups,
    prompt_points,
)
from mskai.slicer_io.tables import column_title, measurements_to_table, table_to_rows

ROWS = [
    {"id": "tumor", "name": "Tumor", "volume_ml": 12.5, "max_diameter_mm": 31.0,
     "centroid_ras": [1.0, 2.0, 3.0], "bone_within_margin": True},
    {"id": "bone", "name": "Bone", "volume_ml": 140, "max_diameter_mm": None,
     "centroid_ras": [4.0, 5.0, 6.0], "bone_within_margin": False},
]


def test_numeric_columns_are_doubles_and_text_columns_are_strings(mrml):
    table = measurements_to_table(mrml.scene, ROWS, "Measurements").GetTable()
    assert table.GetNumberOfRows() == 2
    assert table.GetColumnByName("volume_ml").GetClassName() == "vtkDoubleArray"
    assert table.GetColumnByName("volume_ml").GetValue(1) == 140.0
    assert math.isnan(table.GetColumnByName("max_diameter_mm").GetValue(1))
    assert table.GetColumnByName("id").GetClassName() == "vtkStringArray"
    assert table.GetColumnByName("bone_within_margin").GetValue(0) == "true"
    assert table.GetColumnByName("centroid_ras").GetValue(1) == "[4.0, 5.0, 6.0]"


def test_column_titles_carry_the_units_named_by_the_key_suffix(mrml):
    node = measurements_to_table(mrml.scene, ROWS, "Measurements",
                                 units={"centroid_ras": "mm"})
    assert node.GetColumnTitle("volume_ml") == "Volume (mL)"
    assert node.GetColumnTitle("max_diameter_mm") == "Max diameter (mm)"
    assert node.GetColumnUnitLabel("max_diameter_mm") == "mm"
    assert node.GetColumnTitle("centroid_ras") == "Centroid ras (mm)"
    assert node.GetColumnTitle("name") == "Name"
    assert node.GetUseColumnTitleAsColumnHeader()
    assert column_title("surface_area_mm2", "mm²") == "Surface area (mm²)"


def test_refilling_a_table_replaces_its_columns_and_rows(mrml):
    node = measurements_to_table(mrml.scene, ROWS, "Measurements")
    again = measurements_to_table(mrml.scene, [{"id": "tumor", "volume_ml": 9.0}], "x",
                                  table_node=node)
    assert again is node
    assert table_to_rows(node) == [{"id": "tumor", "volume_ml": 9.0}]


def test_rows_that_are_not_dicts_are_refused(mrml):
    with pytest.raises(InputError, match="list of dicts"):
        measurements_to_table(mrml.scene, [("tumor", 1.0)], "bad")


def test_click_prompts_round_trip_with_their_labels(mrml):
    points = [[10.0, -5.5, 20.0], [12.0, -4.0, 21.5], [30.0, 0.0, 0.0]]
    labels = ["positive", "positive", "negative"]
    node = points_to_markups(mrml.scene, points, labels, "Prompts")
    back = markups_to_points(node)
    assert [label for label, _ in back] == labels
    assert np.allclose([ras for _, ras in back], points)
    positive, negative = prompt_points(node)
    assert np.allclose(positive, points[:2]) and np.allclose(negative, [points[2]])


def test_prompt_points_are_world_positions_under_a_transform(mrml):
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    node = points_to_markups(mrml.scene, [[1.0, 2.0, 3.0]], ["positive"], "Prompts")
    transform = mrml.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "up")
    shift = vtkMatrix4x4()
    shift.SetElement(2, 3, 5.0)
    transform.SetMatrixTransformToParent(shift)
    node.SetAndObserveTransformNodeID(transform.GetID())
    assert np.allclose(markups_to_points(node)[0][1], [1.0, 2.0, 8.0])


def test_refilling_a_point_list_replaces_the_points(mrml):
    node = points_to_markups(mrml.scene, [[0, 0, 0], [1, 1, 1]], ["a", "b"], "Prompts")
    points_to_markups(mrml.scene, [[5, 5, 5]], ["negative"], "ignored", node=node)
    assert [(label, list(ras)) for label, ras in markups_to_points(node)] == [
        ("negative", [5.0, 5.0, 5.0])]


def test_points_and_labels_must_match_and_be_ras_triples(mrml):
    with pytest.raises(InputError, match="one label per point"):
        points_to_markups(mrml.scene, [[0, 0, 0]], ["a", "b"], "bad")
    with pytest.raises(InputError, match="R,A,S triples"):
        points_to_markups(mrml.scene, [[0, 0]], ["a"], "bad")


def test_recist_line_length_is_the_distance_and_slicers_own_measurement(mrml):
    p1, p2 = np.array([10.0, 20.0, 30.0]), np.array([13.0, 24.0, 30.0])
    node = line_markup(mrml.scene, p1, p2, "RECIST long axis")
    assert line_length(node) == pytest.approx(5.0)
    measurement = node.GetMeasurement("length")
    assert measurement.GetValue() == pytest.approx(np.linalg.norm(p2 - p1))
    assert measurement.GetUnits() == "mm"
    assert np.allclose(node.GetNthControlPointPositionWorld(1), p2)

"""FractureDetect logic: fragments split from markups clicks, hand edits kept, on a touching
fracture (rough surface, fragments in contact, truth from :mod:`phantoms.touching_fracture`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "FractureDetect") not in sys.path:
    sys.path.insert(0, str(REPO / "FractureDetect"))

pytest.importorskip("slicer", reason="slicer-core is not installed")

from mskai.errors import InputError  # noqa: E402
from phantoms.long_bone import intact_long_bone  # noqa: E402
from phantoms.touching_fracture import break_bone, matched_dice  # noqa: E402


@pytest.fixture(scope="module")
def touching():
    ph = intact_long_bone(spacing=(0.8, 0.8, 1.0), body_radius_mm=25.0, length_mm=90.0,
                          seed=4, noise_sd=20.0, supersample=1)
    u = np.asarray(ph.truth.shaft_axis_ras)
    c = np.asarray(ph.truth.shaft_center_ras)
    image, truth = break_bone(ph.image, ph.labels > 0, c, u + np.array([0.2, 0.2, 0.0]), seed=5,
                              roughness_mm=1.5, translation_ras=(1.0, -1.0, 0.0),
                              angulation_deg=3.0, line_mm=0.6)
    return image, truth, [c - 22.0 * u, c + 22.0 * u]


def _setup(mrml, touching, labels=("F-1", "F-2")):
    from FractureDetectLib.logic import FractureDetectLogic

    from mskai.slicer_io import volume_to_node

    image, _, clicks = touching
    volume = volume_to_node(mrml.scene, image, "CT")
    node = mrml.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    for point, label in zip(clicks, labels, strict=True):
        node.SetNthControlPointLabel(node.AddControlPoint(*point), label)
    return FractureDetectLogic(mrml.scene), volume, node


def _fragments(segmentation, image) -> np.ndarray:
    from mskai.slicer_io import segment_mask

    out = np.zeros(image.array.shape, dtype=np.int32)
    for n in (1, 2):
        out[segment_mask(segmentation, f"bone_fragment_{n}", image)] = n
    return out


def test_one_click_per_fragment_splits_and_measures(mrml, touching):
    image, truth, _ = touching
    logic, volume, clicks = _setup(mrml, touching)
    segmentation, candidates, table = logic.splitFragments(volume, clicks)
    found = _fragments(segmentation, image)
    assert min(matched_dice(truth.labels, found)) >= 0.85  # HU bone mask (test_fracture_fragments)
    assert candidates.GetNumberOfControlPoints() == 1
    column = table.GetTable().GetColumnByName("displacement_mm")
    assert abs(column.GetValue(0) - truth.displacement_mm) <= 1.0


def test_further_click_and_hand_edits_are_kept(mrml, touching):
    from mskai.slicer_io.segmentation import write_mask

    image, _, clicks_ras = touching
    logic, volume, clicks = _setup(mrml, touching)
    segmentation, _, _ = logic.splitFragments(volume, clicks)
    first = _fragments(segmentation, image)
    edited = first == 2
    edited[: edited.shape[0] // 2] = False  # a person trims fragment 2
    write_mask(segmentation, "bone_fragment_2", edited, image)
    point = clicks_ras[0] + 0.3 * (clicks_ras[1] - clicks_ras[0])  # more on fragment 1
    clicks.SetNthControlPointLabel(clicks.AddControlPoint(*point), "F-1")
    logic.splitFragments(volume, clicks, segmentation)
    again = _fragments(segmentation, image)
    assert np.array_equal(again == 2, edited)
    assert ("bone_fragment_2", "skipped", "edited by hand") in logic.lastActions
    assert not np.any((again == 1) & edited)


def test_bad_clicks_are_refused(mrml, touching):
    logic, volume, clicks = _setup(mrml, touching)
    with pytest.raises(InputError, match="Place one point"):
        logic.splitFragments(volume, None)
    clicks.SetNthControlPointPosition(1, 900.0, 0.0, 0.0)
    with pytest.raises(InputError, match="outside the image"):
        logic.splitFragments(volume, clicks)

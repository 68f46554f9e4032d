"""Cartilage plausibility checks (mskai.measure.knee_anatomy_checks.check_cartilage_plausibility)
on the real pymskt knee label map (the ``knee`` phantom of test_knee_anatomy_checks).

The true plates pass (test_knee_anatomy_checks.test_cli_refine_ras_restores_a_deleted_plate
measures the whole true knee with exit 0); here one plate is broken as a model breaks it:
tibial cartilage thickened by dilation into the surrounding tissue (mean thickness beyond
the 3.5 mm of Eckstein et al. 2001's ranges), and patellar cartilage shrunk to a sliver of
three sagittal slices (under the 0.6 mL floor). The CLI must drop the plate, write the rest
and exit 2 with one message naming it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_knee_anatomy_checks import _fake_model, image_file, knee  # noqa: F401

from mskai.measure.knee_anatomy_checks import check_cartilage_plausibility


def test_ranges_name_the_plate_and_what_is_wrong():
    assert check_cartilage_plausibility("femoral_cartilage", 9.0, 2.1).passed
    assert check_cartilage_plausibility("patellar_cartilage", 3.5, 3.8).passed
    thick = check_cartilage_plausibility("tibial_cartilage", 4.1, 4.3)
    assert (thick.structure, thick.check, thick.passed) == ("tibial_cartilage", "plausible",
                                                            False)
    assert thick.problem.startswith("it is too thick for cartilage (mean 4.3 mm")
    assert "too thin" in check_cartilage_plausibility("femoral_cartilage", 5.0, 0.3).problem
    small = check_cartilage_plausibility("patellar_cartilage", 0.4, 2.0)
    assert small.problem.startswith("it is too small for a whole plate (0.40 mL")
    assert check_cartilage_plausibility("patellar_cartilage", 0.4, 2.0, cropped=True).passed


def _run(masks, image_file, monkeypatch, out, capsys) -> tuple[int, str, dict]:  # noqa: F811
    from mskai.cli import main

    _fake_model(monkeypatch, masks)
    code = main(["cartilage", str(image_file), "--out", str(out)])
    message = capsys.readouterr().err.strip().splitlines()[-1]
    return code, message, json.loads((out / "measurements.json").read_text())


def test_thickened_tibial_plate_fails_and_is_dropped(knee, image_file, monkeypatch,  # noqa: F811
                                                     tmp_path, capsys):
    from scipy import ndimage

    image, masks = knee
    bones = masks["tibia"] | masks["femur"] | masks["patella"]
    thick = ndimage.binary_dilation(masks["tibial_cartilage"], iterations=3) & ~bones
    code, message, doc = _run(dict(masks, tibial_cartilage=thick), image_file, monkeypatch,
                              tmp_path, capsys)
    assert code == 2
    assert "tibial_cartilage failed the anatomical checks: it is too thick for cartilage" \
        in message
    assert "--refine-ras" in message and "Segment Editor" in message
    assert "--label-names" not in message
    failed = [c for c in doc["checks"] if not c["passed"]]
    assert {c["check"] for c in failed} == {"plausible"}
    assert all("tibial_cartilage" in c["structure"] for c in failed)
    written = {s["id"] for s in doc["segments"]}
    assert not any("tibial_cartilage" in name for name in written)
    assert {"femur", "tibia", "femoral_cartilage", "patellar_cartilage"} <= written


def test_patellar_sliver_fails_as_too_small(knee, image_file, monkeypatch, tmp_path,  # noqa: F811
                                            capsys):
    image, masks = knee
    plate = masks["patellar_cartilage"]
    columns = np.flatnonzero(plate.any(axis=(0, 1)))  # sagittal slices (i) holding the plate
    middle = int(np.median(columns))
    sliver = np.zeros_like(plate)
    sliver[..., middle - 1:middle + 2] = plate[..., middle - 1:middle + 2]
    sliver_ml = float(sliver.sum()) * image.voxel_volume_mm3 / 1000
    assert 0 < sliver_ml < 0.6
    code, message, doc = _run(dict(masks, patellar_cartilage=sliver), image_file, monkeypatch,
                              tmp_path, capsys)
    assert code == 2
    assert message.startswith("mskai cartilage: the knee model's patellar_cartilage failed "
                              "the anatomical checks: it is too small for a whole plate "
                              f"({sliver_ml:.2f} mL, at least 0.6 mL expected)")
    assert "--refine-ras patellar_cartilage=R,A,S" in message
    written = {s["id"] for s in doc["segments"]}
    assert "patellar_cartilage" not in written and "femoral_cartilage" in written
    femoral = {s["id"]: s for s in doc["segments"]}["femoral_cartilage"]
    assert 0.5 < femoral["mean_thickness_mm"] < 3.5  # the true plate passes
    assert femoral["volume_ml"] == pytest.approx(
        float(masks["femoral_cartilage"].sum()) * image.voxel_volume_mm3 / 1000, rel=1e-6)

"""CartilageQuant end to end: the real knee through ``mskai cartilage`` and bad input."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from mskai.errors import CancelledError, InputError
from mskai.measure.knee_axes import knee_axes
from mskai.tasks.cartilage import (
    NO_MODEL,
    plate_measurements,
    run_cartilage,
    split_tibial_cartilage,
)
from mskai.volume import Volume

KNEE_FILE = "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
NAMES = ("femoral_cartilage=1,medial_tibial_cartilage=2,lateral_tibial_cartilage=3,"
         "patellar_cartilage=4,femur=5,tibia=6,patella=7")
PLATES = ("femoral_cartilage", "medial_tibial_cartilage", "lateral_tibial_cartilage",
          "patellar_cartilage")
THICKNESS_KEYS = ("mean_thickness_mm", "median_thickness_mm", "sd_thickness_mm",
                  "max_thickness_mm")


@pytest.fixture(scope="module")
def knee_path(test_data):
    path = test_data / "knee" / KNEE_FILE
    if not path.exists():
        pytest.skip("the pymskt knee label map is not present")
    return path


@pytest.fixture(scope="module")
def knee_run(knee_path, tmp_path_factory):
    from mskai.cli import main

    out = tmp_path_factory.mktemp("cartilage")
    code = main(["cartilage", str(knee_path), "--labels", str(knee_path), "--label-names",
                 NAMES, "--out", str(out)])
    return code, out


def test_cli_writes_the_contract(knee_run):
    code, out = knee_run
    assert code == 0
    doc = json.loads((out / "measurements.json").read_text())
    assert doc["module"] == "CartilageQuant"
    segments = {s["id"]: s for s in doc["segments"]}
    assert set(segments) == {"femur", "tibia", "patella", *PLATES}
    for plate in PLATES:
        seg = segments[plate]
        assert seg["thickness_method"] == "nearest"
        for key in THICKNESS_KEYS:
            assert 0.5 <= seg[key] <= 6.0, (plate, key)
        assert 1.2 <= seg["mean_thickness_mm"] <= 3.0
        assert abs(seg["mean_thickness_normal_mm"] - seg["mean_thickness_mm"]) < 0.3
        assert 500 <= seg["area_mm2"] <= 8000
        assert 0.5 <= seg["volume_ml"] <= 20
        assert seg["subregions"] and all(
            {"name", "area_mm2", "mean_thickness_mm", "denuded_area_fraction"} <= set(r)
            for r in seg["subregions"])
        total = sum(r["area_mm2"] for r in seg["subregions"])
        assert total == pytest.approx(seg["area_mm2"], rel=1e-6)
    # the real knee's values, measured when this was written (nearest-neighbour)
    assert segments["femoral_cartilage"]["mean_thickness_mm"] == pytest.approx(2.15, abs=0.05)
    assert segments["femoral_cartilage"]["volume_ml"] == pytest.approx(11.85, abs=0.01)
    jsw = doc["joint_space_width_mm"]
    assert 2.0 <= jsw["min"] <= 8.0 and jsw["min"] == min(jsw["medial"], jsw["lateral"])
    assert jsw["medial"] == pytest.approx(4.0, abs=0.3)
    assert jsw["lateral"] == pytest.approx(5.0, abs=0.3)
    assert doc["knee_axes"]["sources"]["medial"] == "tibial plates"
    report = (out / "report.html").read_text()
    assert report.count("thickness map") >= 4


@pytest.fixture(scope="module")
def knee(knee_path):
    from mskai.image import read_image

    volume = read_image(knee_path)
    values = {"femoral_cartilage": 1, "medial_tibial_cartilage": 2,
              "lateral_tibial_cartilage": 3, "patellar_cartilage": 4, "femur": 5, "tibia": 6,
              "patella": 7, "fibula": 8}
    return volume, {name: volume.array == v for name, v in values.items()}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_unsplit_tibial_cartilage_is_split_at_the_spine(knee):
    volume, labels = knee
    merged = {n: m for n, m in labels.items() if "tibial" not in n}
    merged["tibial_cartilage"] = labels["medial_tibial_cartilage"] | labels[
        "lateral_tibial_cartilage"]
    warnings: list[str] = []
    split = split_tibial_cartilage(merged, volume, knee_axes(merged, volume), warnings)
    assert "tibial_cartilage" not in split and "split" in warnings[0]
    for plate in ("medial_tibial_cartilage", "lateral_tibial_cartilage"):
        assert _dice(split[plate], labels[plate]) > 0.97


def test_unsplit_tibial_cartilage_without_knee_side_is_measured_as_one(knee):
    volume, labels = knee
    merged = {n: m for n, m in labels.items() if "tibial" not in n and n != "fibula"}
    merged["tibial_cartilage"] = labels["medial_tibial_cartilage"] | labels[
        "lateral_tibial_cartilage"]
    axes = knee_axes(merged, volume)
    assert not axes.side_known and "right knee" in axes.warnings[0]
    warnings: list[str] = []
    assert "tibial_cartilage" in split_tibial_cartilage(merged, volume, axes, warnings)
    measured, _ = plate_measurements(merged["tibial_cartilage"], merged["tibia"], volume,
                                     "tibial_cartilage", axes)
    names = {r["name"] for r in measured["subregions"]}
    assert names == {"central", "anterior", "posterior", "medial", "lateral"}
    assert 1.8 <= measured["mean_thickness_mm"] <= 2.6


# ----- bad input --------------------------------------------------------------------------
def test_wrong_label_names_exit_2_with_one_line(knee_path, tmp_path, capsys):
    from mskai.cli import main

    code = main(["cartilage", str(knee_path), "--labels", str(knee_path), "--label-names",
                 "tumor=1,bone=5", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "femur" in err


def _toy_knee(gap_voxels: int) -> tuple[Volume, dict[str, np.ndarray]]:
    """Femur block above a tibia block, femoral cartilage ``gap_voxels`` below the femur."""
    array = np.zeros((40, 30, 30), np.uint8)
    volume = Volume(array, spacing=(1.0, 1.0, 1.0), origin=(0, 0, 0), direction=np.eye(3))
    femur = np.zeros(array.shape, bool)
    femur[22:38, 5:25, 5:25] = True
    tibia = np.zeros(array.shape, bool)
    tibia[2:14, 5:25, 5:25] = True
    cartilage = np.zeros(array.shape, bool)
    cartilage[20 - gap_voxels:22 - gap_voxels, 8:22, 8:22] = True
    return volume, {"femur": femur, "tibia": tibia, "femoral_cartilage": cartilage}


def test_cartilage_not_touching_bone_is_refused():
    volume, labels = _toy_knee(gap_voxels=3)
    with pytest.raises(InputError, match="femoral_cartilage does not touch the femur"):
        run_cartilage(volume, labels=labels)


def test_no_femur_is_refused():
    volume, labels = _toy_knee(gap_voxels=0)
    del labels["femur"]
    with pytest.raises(InputError, match="no femur"):
        run_cartilage(volume, labels=labels)


def test_no_cartilage_is_refused():
    volume, labels = _toy_knee(gap_voxels=0)
    del labels["femoral_cartilage"]
    with pytest.raises(InputError, match="no cartilage"):
        run_cartilage(volume, labels=labels)


def test_without_labels_and_model_says_how_to_measure(monkeypatch):
    import mskai.models.registry as registry

    monkeypatch.setattr(registry, "models_for_task", lambda task, modality=None: [])
    volume, _ = _toy_knee(gap_voxels=0)
    with pytest.raises(InputError) as info:
        run_cartilage(volume)
    assert str(info.value) == NO_MODEL
    assert "--labels FILE --label-names femur=5,femoral_cartilage=1" in NO_MODEL


def test_the_knee_model_refuses_a_ct():
    volume, _ = _toy_knee(gap_voxels=0)
    volume.modality = "CT"
    with pytest.raises(InputError, match="MR"):
        run_cartilage(volume)


def test_toy_knee_measures_and_cancels():
    volume, labels = _toy_knee(gap_voxels=0)
    result, figures = run_cartilage(volume, labels=labels, knee_side="right")
    seg = result.segment("femoral_cartilage")
    assert seg.measurements["mean_thickness_mm"] == pytest.approx(2.0, abs=0.3)
    assert len(figures) == 1 and figures[0][1][:4] == b"\x89PNG"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        run_cartilage(volume, labels=labels, cancel=cancel)

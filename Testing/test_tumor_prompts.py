"""Tumour prompts: clicks, background clicks, a box, a RECIST line and given labels, through
the core and ``mskai tumor`` end to end, with every ``--method``; the learned method runs
its network from the first click and the provenance names what produced the mask."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli

from mskai.errors import InputError
from mskai.interactive import Prompts
from mskai.interactive.evaluate import dice

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "benchmarks"))
from eval_tumor_prompts import box_from_mask, recist_line_from_mask  # noqa: E402

CT = HERE / "Data" / "sts_sarcoma" / "STS_002_CT_image.nii.gz"
CT_MASK = HERE / "Data" / "sts_sarcoma" / "STS_002_CT_mask.nii.gz"
LEARNED = "learned click refinement"


@pytest.fixture(scope="module")
def case():
    """STS_002's CT (48 x 143 x 161 voxels), its expert mask and prompts drawn from it."""
    from mskai.image import read_image
    from mskai.interactive.clicks import deepest_voxel

    image = read_image(CT)
    truth = read_image(CT_MASK).array > 0
    seed = image.index_to_ras(deepest_voxel(truth, tuple(reversed(image.spacing)))[::-1])
    line = recist_line_from_mask(truth, image)
    found = np.argwhere(truth)
    outside = found.max(0) + np.array([0, 8, 0])   # 8 rows beyond the tumour, at its edge k
    outside[0] = found[:, 0].mean().round()
    background = image.index_to_ras(outside[::-1].astype(float))
    return {"image": image, "truth": truth, "seed": seed, "background": background,
            "line": line, "box": box_from_mask(truth, image)}


def _csv(values) -> str:
    return ",".join(f"{float(v):.3f}" for v in np.ravel(values))


# --- the prompts themselves --------------------------------------------------------------


def test_box_from_six_numbers_or_two_corners():
    assert Prompts(roi_ras=(1, 2, 3, 4, 5, 6)).roi_ras == (1, 2, 3, 4, 5, 6)
    assert Prompts(roi_ras=((1, 2, 3), (4, 5, 6))).roi_ras == (1, 2, 3, 4, 5, 6)
    with pytest.raises(InputError, match="no extent along S"):
        Prompts(roi_ras=(1, 2, 3, 4, 5, 3))


def test_recist_line_from_six_numbers_or_two_points_in_one_slice():
    flat = Prompts(recist_line_ras=((0, 0, 5), (40, 10, 5)))   # one axial slice: S1 == S2
    assert flat.recist_line_ras == (0, 0, 5, 40, 10, 5)
    with pytest.raises(InputError, match="same point"):
        Prompts(recist_line_ras=(1, 2, 3, 1, 2, 3))
    with pytest.raises(InputError, match="six finite"):
        Prompts(recist_line_ras=(1, 2, 3, 4))


def test_line_becomes_seeds_background_and_a_box(case):
    from mskai.interactive.recist_line import (
        IN_PLANE_FACTOR,
        THROUGH_PLANE_FACTOR,
        expand_recist_line,
    )

    image, line = case["image"], case["line"]
    p, q = np.reshape(line, (2, 3))
    length = np.linalg.norm(q - p)
    out = expand_recist_line(Prompts(recist_line_ras=line), image)
    assert out.recist_line_ras is None
    seeds = np.array(out.positive_ras)
    assert np.allclose(seeds[0], (p + q) / 2)                     # the midpoint first
    along = (seeds - p) @ (q - p) / length**2
    assert along.min() >= 0.25 - 1e-9 and along.max() <= 0.75 + 1e-9
    for b in out.negative_ras:                                      # beyond the ends
        t = (np.subtract(b, p)) @ (q - p) / length**2
        assert t < 0 or t > 1
    lo, hi = np.reshape(out.roi_ras, (2, 3))
    assert np.allclose(hi - lo, np.array([IN_PLANE_FACTOR, IN_PLANE_FACTOR,
                                          THROUGH_PLANE_FACTOR]) * length + 20.0)
    assert np.allclose(out.with_click(seeds[0], True).roi_ras, out.roi_ras)
    # the user's own box wins over the line's
    mine = expand_recist_line(Prompts(roi_ras=case["box"], recist_line_ras=line), image)
    assert mine.roi_ras == Prompts(roi_ras=case["box"]).roi_ras
    with pytest.raises(InputError, match="outside the image"):
        expand_recist_line(Prompts(recist_line_ras=(*p, 900.0, 0.0, 0.0)), image)
    with pytest.raises(InputError, match="mm long"):
        expand_recist_line(Prompts(recist_line_ras=(*p, *(p + 1.0))), image)


def test_box_alone_seeds_at_its_centre():
    box = Prompts(roi_ras=(0, 0, 0, 10, 20, 30))
    assert box.with_box_centre_seed().positive_ras == [(5.0, 10.0, 15.0)]
    seeded = Prompts(positive_ras=[(1, 1, 1)], roi_ras=(0, 0, 0, 10, 20, 30))
    assert seeded.with_box_centre_seed() is seeded


def test_line_length_is_checked_against_the_result(case):
    from mskai.tasks.tumor import run_tumor

    image, line = case["image"], np.asarray(case["line"])
    result = run_tumor(image, Prompts(recist_line_ras=line))
    record = result.measurements["recist_line"]
    assert record["line_length_mm"] == pytest.approx(np.linalg.norm(line[3:] - line[:3]))
    assert record["result_long_axis_mm"] == pytest.approx(
        result.segment("tumor").measurements["recist_long_axis_mm"])
    assert abs(record["difference_percent"]) < 20
    assert not any("RECIST line" in w for w in result.warnings)
    assert dice(result.segment("tumor").mask, case["truth"]) > 0.8
    # a line drawn across only the tumour's middle: the result's long axis disagrees
    p, q = line[:3], line[3:]
    short = np.concatenate([p + 0.3 * (q - p), p + 0.7 * (q - p)])
    result = run_tumor(image, Prompts(recist_line_ras=short))
    assert result.measurements["recist_line"]["difference_percent"] > 20
    assert any("drawn RECIST line" in w for w in result.warnings)


# --- the learned method runs its network from the first click ----------------------------


def test_learned_runs_the_network_from_the_first_click(case, monkeypatch):
    from mskai.interactive import learned
    from mskai.tasks.tumor import run_tumor

    calls = []
    original = learned.predict
    monkeypatch.setattr(learned, "predict", lambda *a: calls.append(1) or original(*a))
    prompts = Prompts(positive_ras=[tuple(case["seed"])])
    net = run_tumor(case["image"], prompts, method="learned")
    assert len(calls) == 1
    assert LEARNED in net.provenance.method and net.provenance.model_sha256
    classic = run_tumor(case["image"], prompts, method="classic")
    assert len(calls) == 1                                 # the classic method ran no network
    assert classic.provenance.model_id is None and LEARNED not in classic.provenance.method
    assert not np.array_equal(net.segment("tumor").mask, classic.segment("tumor").mask)
    # the network alone from one click: 0.344 with tumor_refine_unet v2 (0.60 with the
    # synthetic-only v1; classic 0.91). It is not the default: see the cross-validation.
    assert dice(net.segment("tumor").mask, case["truth"]) > 0.3


# --- every method and every prompt kind through `mskai tumor` ----------------------------


def _prompt_args(case, kind: str) -> list[str]:
    seed = ["--seed-ras", _csv(case["seed"])]
    return {"clicks": seed,
            "background": [*seed, "--background-ras", _csv(case["background"])],
            "box": ["--roi-ras", _csv(case["box"])],
            "line": ["--recist-line-ras", _csv(case["line"])],
            "labels": ["--labels", str(CT_MASK), "--label-names", "tumor=1"]}[kind]


@pytest.mark.parametrize("method", ["classic", "learned", "auto"])
@pytest.mark.parametrize("kind", ["clicks", "background", "box", "line", "labels"])
def test_cli_every_method_and_prompt(capsys, tmp_path, case, method, kind):
    from mskai.labels import read_labels
    from mskai.models.registry import find_model

    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "tumor", CT, *_prompt_args(case, kind), "--method", method,
                           "--out", out)
    assert code == 0, err
    doc = json.loads((out / "measurements.json").read_text())
    tumour = read_labels(out / "segmentation.seg.nrrd", case["image"])["tumor"]
    # the network alone from the first click is weaker than classic on this case (v2: 0.34
    # from one click, 0.43 with the box; classic 0.91); learned is not the default
    provenance = doc["provenance"]
    if method == "auto" and kind != "labels":   # names its choice, then as that method
        assert provenance["method"].startswith(("auto (classic): ", "auto (learned): "))
        method = "learned" if provenance["method"].startswith("auto (learned)") else "classic"
    floors = {"classic": {"labels": 0.99, "box": 0.6}, "learned": {"labels": 0.99, "box": 0.4},
              "auto": {"labels": 0.99}}
    floor = floors[method].get(kind, 0.7 if method == "classic" else 0.3)
    assert dice(tumour, case["truth"]) > floor, kind
    if kind == "labels":       # the given mask, whatever --method says: no model ran
        assert provenance["method"] == "given segmentation"
        assert provenance.get("model") is None
    elif method == "learned":
        entry = find_model("tumor_refine_unet")
        assert LEARNED in provenance["method"]
        assert provenance["model"] == {"id": entry.id, "version": entry.version,
                                       "sha256": entry.sha256}
    else:
        assert "region competition" in provenance["method"]
        assert provenance.get("model") is None
    if kind == "line":
        assert "RECIST line" in provenance["method"]
        assert doc["recist_line"]["line_length_mm"] > 0


def test_cli_needs_a_prompt(capsys, tmp_path):
    code, _, err = run_cli(capsys, "tumor", CT, "--out", tmp_path / "out")
    assert code != 0 and "--recist-line-ras" in err and "--roi-ras" in err

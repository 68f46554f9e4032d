"""``mskai serve`` without a browser: bad input is one line and exit 2, the token rules,
and the web jobs give the same tumour and numbers as ``mskai tumor`` (its ``--labels``
path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli

STS = Path(__file__).resolve().parent / "Data" / "sts_sarcoma"
CT = STS / "STS_002_CT_image.nii.gz"
CT_MASK = STS / "STS_002_CT_mask.nii.gz"


def test_missing_image_is_one_line_and_exit_2(capsys, tmp_path):
    code, out, err = run_cli(capsys, "serve", tmp_path / "missing.nii.gz", "--port", "0")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "missing.nii.gz" in err


@pytest.mark.parametrize("argv", [("--token", "short"), ("--port", "70000"),
                                  ("--token", "has spaces in it but long enough")])
def test_bad_options_exit_2(capsys, argv):
    code, _out, err = run_cli(capsys, "serve", *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_token_and_url():
    from mskai.web.auth import is_loopback, new_token, page_url
    from mskai.web.serve import check_token

    token = check_token(None)
    assert len(token) >= 32 and token != new_token()
    assert check_token("a" * 20) == "a" * 20
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    assert page_url("0.0.0.0", 8080, "abc") == "http://127.0.0.1:8080/?secret=abc"
    assert page_url("::1", 81, "t") == "http://[::1]:81/?secret=t"


def _run_job(task: str, **args) -> dict:
    from mskai.runner.inprocess import InProcessRunner

    events = InProcessRunner().run({"task": task, "args": args}, timeout=120)
    assert events[-1]["event"] == "done", events[-1]
    return events[-1]["outputs"]


def test_web_jobs_match_the_command(tmp_path):
    """The click job's mask is ``segment_prompts``' (the command's), and the measuring job's
    numbers are ``run_tumor(labels=...)``'s, on STS_002's expert mask."""
    from mskai.image import read_image, write_image
    from mskai.interactive import Prompts
    from mskai.interactive.clicks import deepest_voxel
    from mskai.tasks.tumor import run_tumor, segment_prompts

    image = read_image(CT)
    truth = read_image(CT_MASK).array > 0
    seed = image.index_to_ras(deepest_voxel(truth, tuple(reversed(image.spacing)))[::-1])
    outputs = _run_job("mskai.web.jobs:tumour_mask", image=str(CT), out=str(tmp_path / "c"),
                       positive_ras=[list(seed)])
    mask = read_image(outputs["mask"]).array > 0
    assert np.array_equal(mask, segment_prompts(image, Prompts([tuple(seed)])))
    assert outputs["provenance"]["method"].startswith("interactive")

    # a RECIST line prompt (the page's "RECIST line"): the command's --recist-line-ras path
    k, j, _ = np.argwhere(truth).mean(0).round().astype(int)
    columns = np.where(truth[k, j])[0]
    line = [*image.index_to_ras([columns.min() + 1, j, k]),
            *image.index_to_ras([columns.max() - 1, j, k])]
    outputs = _run_job("mskai.web.jobs:tumour_mask", image=str(CT), out=str(tmp_path / "l"),
                       positive_ras=[], recist_line_ras=[float(v) for v in line])
    mask = read_image(outputs["mask"]).array > 0
    assert np.array_equal(mask, segment_prompts(image, Prompts(recist_line_ras=tuple(line))))

    tumour = write_image(image.with_array(truth.astype(np.uint8)), tmp_path / "t.nrrd")
    outputs = _run_job("mskai.web.jobs:measure_tumour", image=str(CT),
                       out=str(tmp_path / "m"), tumour=str(tumour), margin_mm=10.0)
    document = json.loads(Path(outputs["measurements"]).read_text())
    expected = run_tumor(image, None, margin_mm=10.0, labels={"tumor": truth})
    got = {s["id"]: s for s in document["segments"]}
    assert got["tumor"]["volume_ml"] == pytest.approx(
        float(truth.sum()) * image.voxel_volume_mm3 / 1000.0, rel=1e-6)
    for segment in expected.segments:
        assert got[segment.id]["volume_ml"] == pytest.approx(
            segment.measurements["volume_ml"], rel=1e-6)
    assert document["margin"] == pytest.approx(expected.measurements["margin"])


def test_measuring_an_empty_tumour_is_an_input_error(tmp_path):
    from mskai.image import read_image, write_image
    from mskai.runner.inprocess import InProcessRunner

    image = read_image(CT)
    empty = write_image(image.with_array(np.zeros(image.array.shape, np.uint8)),
                        tmp_path / "e.nrrd")
    events = InProcessRunner().run({"task": "mskai.web.jobs:measure_tumour", "args": {
        "image": str(CT), "out": str(tmp_path / "m"), "tumour": str(empty)}}, timeout=60)
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "input"
    assert "empty" in events[-1]["message"]


def test_knee_remeasure_job_is_the_labels_path(tmp_path):
    """Re-measuring the page's knee segments gives ``run_cartilage(labels=...)``'s numbers
    (the real pymskt knee segmentation, as ``mskai demo`` measures it)."""
    from mskai.demo import KNEE_LABELS
    from mskai.image import read_image, write_image
    from mskai.labels import read_labels
    from mskai.tasks.cartilage import run_cartilage
    from mskai.terminology import FEMORAL_CARTILAGE, FEMUR, TIBIA

    path = Path(__file__).resolve().parent / "Data" / "knee" / \
        "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
    image = read_image(path)
    kept = (FEMUR, TIBIA, FEMORAL_CARTILAGE)   # one plate, cropped: the test stays short
    full = {k: m for k, m in read_labels(path, image, KNEE_LABELS).items() if k in kept}
    found = np.argwhere(full[FEMORAL_CARTILAGE])
    box = tuple(slice(max(lo - 8, 0), hi + 9) for lo, hi in zip(found.min(0), found.max(0),
                                                                strict=True))
    image = image.crop(box)
    labels = {k: m[box] for k, m in full.items()}
    path = write_image(image, tmp_path / "knee.nrrd")
    masks = {sid: str(write_image(image.with_array(mask.astype(np.uint8)),
                                  tmp_path / f"{sid}.nrrd")) for sid, mask in labels.items()}
    outputs = _run_job("mskai.web.jobs:measure_knee", image=str(path), out=str(tmp_path / "o"),
                       masks=masks)
    assert outputs["segmentation"] is None and outputs["figures"]
    got = {s["id"]: s for s in json.loads(Path(outputs["measurements"]).read_text())["segments"]}
    expected, _ = run_cartilage(image, labels=labels)
    want = expected.segment(FEMORAL_CARTILAGE).measurements["mean_thickness_mm"]
    assert got[FEMORAL_CARTILAGE]["mean_thickness_mm"] == pytest.approx(want, rel=1e-6)

"""``mskai fracture`` through the command line: report figures per candidate, bad inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli

from mskai.image import write_image
from mskai.volume import Volume
from phantoms.long_bone import fractured_long_bone

MR = Path(__file__).resolve().parent / "Data" / "sts_sarcoma" / "STS_002_MR_T1_image.nii.gz"
TITLE = re.compile(r"<figcaption>([FC]\d+) score (\d\.\d\d)( \(below threshold\))? — "
                   r"displacement ([\d.]+|n/a) mm, angulation (\d+|n/a)°</figcaption>")




@pytest.fixture(scope="module")
def fractured(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The demo's phantom (air around the body, 6 mm gap) as a file, and its truth."""
    ph = fractured_long_bone(translation_mm=(4.0, 2.0, 0.0), angulation_deg=12.0, gap_mm=6.0,
                             body_radius_mm=30.0, noise_sd=15.0, supersample=2)
    path = tmp_path_factory.mktemp("fracture") / "fractured.nrrd"
    write_image(ph.image, path)
    return path, np.asarray(ph.truth.fracture_center_ras)


def test_report_has_one_figure_per_candidate(capsys, tmp_path, fractured):
    path, truth = fractured
    code, out, _ = run_cli(capsys, "fracture", str(path), "--out", str(tmp_path))
    assert code == 0 and out.startswith("FractureDetect:")
    doc = json.loads((tmp_path / "measurements.json").read_text())
    fractures, candidates = doc["fractures"], doc["fracture_candidates"]
    assert len(fractures) == 1
    assert np.linalg.norm(np.subtract(fractures[0]["position_ras"], truth)) <= 10.0
    titles = TITLE.findall((tmp_path / "report.html").read_text(encoding="utf-8"))
    rejected = min(3, len(candidates) - len(fractures))
    assert [t[0] for t in titles] == ["F1"] + [f"C{n}" for n in range(1, rejected + 1)]
    assert not titles[0][2] and all(t[2] for t in titles[1:])
    assert float(titles[0][1]) == pytest.approx(fractures[0]["score"], abs=0.005)


def test_candidates_below_threshold_are_drawn_and_labelled(fractured):
    """A threshold above every score leaves no fracture; the candidates still get figures."""
    from mskai.image import read_image
    from mskai.results.fracture_figures import candidate_figures
    from mskai.tasks.fracture import run_fracture

    result = run_fracture(read_image(fractured[0]), min_score=1.01)
    assert result.measurements["fractures"] == []
    figures = candidate_figures(result)
    assert len(figures) == min(3, len(result.measurements["fracture_candidates"])) >= 1
    assert all(t.startswith("C") and "(below threshold)" in t for t, _ in figures)
    assert all(png.startswith(b"\x89PNG") for _, png in figures)


def test_ct_without_bone_is_bad_input(capsys, tmp_path):
    """Decision: exit 2 with one line, not ``fractures: []`` (see tasks/fracture.py)."""
    k, j, i = np.mgrid[:40, :64, :64]
    body = (i - 32) ** 2 + (j - 32) ** 2 < 28**2
    rng = np.random.default_rng(0)
    ct = np.where(body, 40.0, -1000.0) + rng.normal(0, 10, body.shape)
    path = tmp_path / "soft_tissue.nrrd"
    write_image(Volume(ct.astype(np.float32), spacing=(1.0, 1.0, 2.0), modality="CT"), path)
    code, _, err = run_cli(capsys, "fracture", str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.count("\n") == 1 and "no bone found" in err and "--labels" in err
    assert not (tmp_path / "out" / "measurements.json").exists()


def test_mr_is_refused_with_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "fracture", str(MR), "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.count("\n") == 1 and "needs a CT in Hounsfield units" in err

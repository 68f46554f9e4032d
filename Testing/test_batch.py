"""``mskai batch``: a 6-case cohort on a 2-worker LocalCluster, interrupted and resumed.

The cohort has three tasks (tumor, radiomics, fracture) on small real images and a phantom
CT, and one case with bad input. The test checks the exit code, ``failures.csv``, the
cohort table against single-case ``mskai`` runs of the same inputs, that a resumed run
skips finished cases and redoes the interrupted ones, and that models load once per worker.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mskai.cli import main
from mskai.cohort.batch import run_batch
from mskai.cohort.cohort_table import case_rows
from mskai.results.out_folder import MARKER

DATA = Path(__file__).resolve().parent / "Data"
SEED = "-81.2,-129.3,-551.6"  # inside the STS_002 tumour (its mask's centroid)
COHORT = f"""case,task,image,labels,label_names,seed_ras,method,mask,margin_mm
mr_labels,tumor,STS_002_MR_T1_image.nii.gz,STS_002_MR_T1_mask.nii.gz,tumor=1,,,,
mr_learned,tumor,STS_002_MR_T1_image.nii.gz,,,"{SEED}",learned,,5
breast,radiomics,breast1_image.nrrd,,,,,breast1_label.nrrd,
ibsi,radiomics,ibsi/phantom.nii.gz,,,,,ibsi/mask.nii.gz,
femur,fracture,fractured.nrrd,,,,,,
outside,tumor,STS_002_MR_T1_image.nii.gz,,,"0,0,0",,,
"""
GOOD = ("mr_labels", "mr_learned", "breast", "ibsi", "femur")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """The cohort folder: CSV, copies of the images, a small fractured-femur phantom CT."""
    from mskai.image import write_image
    from phantoms.long_bone import fractured_long_bone

    folder = tmp_path_factory.mktemp("cohort")
    for name in ("STS_002_MR_T1_image.nii.gz", "STS_002_MR_T1_mask.nii.gz"):
        shutil.copy(DATA / "sts_sarcoma" / name, folder / name)
    for name in ("breast1_image.nrrd", "breast1_label.nrrd"):
        shutil.copy(DATA / "pyradiomics" / name, folder / name)
    shutil.copytree(DATA / "ibsi" / "digital_phantom", folder / "ibsi")
    ph = fractured_long_bone(length_mm=70.0, fracture_position_mm=35.0, gap_mm=6.0,
                             translation_mm=(4.0, 2.0, 0.0), angulation_deg=12.0,
                             body_radius_mm=22.0, noise_sd=15.0, supersample=1,
                             spacing=(1.0, 1.0, 1.5))  # 61x72x59 voxels: a few seconds
    write_image(ph.image, folder / "fractured.nrrd")
    (folder / "cohort.csv").write_text(COHORT, encoding="utf-8")
    return folder


def _table(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _single_runs(cohort: Path, out: Path) -> dict[str, Path]:
    """Each good case through the plain single-case command, in this process."""
    argv = {
        "mr_labels": ["tumor", "STS_002_MR_T1_image.nii.gz", "--labels",
                      "STS_002_MR_T1_mask.nii.gz", "--label-names", "tumor=1"],
        "mr_learned": ["tumor", "STS_002_MR_T1_image.nii.gz", "--seed-ras", SEED,
                       "--method", "learned", "--margin-mm", "5"],
        "breast": ["radiomics", "breast1_image.nrrd", "breast1_label.nrrd"],
        "ibsi": ["radiomics", "ibsi/phantom.nii.gz", "ibsi/mask.nii.gz"],
        "femur": ["fracture", "fractured.nrrd"],
    }
    folders = {}
    for case, args in argv.items():
        folder = out / case
        code = main([args[0], *(str(cohort / a) if a.endswith((".nrrd", ".nii.gz")) else a
                                for a in args[1:]), "--out", str(folder)])
        assert code == 0, case
        folders[case] = folder
    return folders


def test_cohort_runs_fails_one_case_and_resumes(cohort, tmp_path, capsys):
    out = tmp_path / "batch"
    code = main(["batch", str(cohort / "cohort.csv"), "--out", str(out), "--workers", "2"])
    stdout, stderr = capsys.readouterr()
    assert code == 2, stderr  # one bad-input case, no internal error
    assert "dashboard" in stderr and "[6/6] case" in stderr
    assert "case outside failed (bad input)" in stderr
    assert stdout.startswith("batch: 5 of 6 cases have results")

    failures = _table(out / "failures.csv")
    assert [(f["case"], f["task"], f["exit_class"]) for f in failures] == \
        [("outside", "tumor", "bad input")]
    assert "outside the image" in failures[0]["message"]
    for case in GOOD:
        assert (out / case / "report.html").is_file() and (out / case / MARKER).is_file()
    assert not (out / "outside" / "report.html").exists()
    assert json.loads((out / MARKER).read_text())["command"] == "batch"

    # the cohort table holds exactly what the single-case command measures
    rows = _table(out / "cohort_measurements.csv")
    assert list(rows[0]) == ["case", "segment", "measure", "value", "unit"]
    singles = _single_runs(cohort, tmp_path / "single")
    for case, folder in singles.items():
        expected = {(r[1], r[2]): (float(r[3]), r[4]) for r in case_rows(case, folder)}
        got = {(r["segment"], r["measure"]): (float(r["value"]), r["unit"])
               for r in rows if r["case"] == case}
        assert got.keys() == expected.keys(), case
        for key, (value, unit) in expected.items():
            assert got[key][0] == pytest.approx(value, rel=1e-9, abs=1e-12), (case, key)
            assert got[key][1] == unit
    volume = {(r["case"], r["segment"]): r for r in rows if r["measure"] == "volume_ml"}
    single_json = json.loads((singles["mr_labels"] / "measurements.json").read_text())
    assert float(volume[("mr_labels", "tumor")]["value"]) == \
        single_json["segments"][0]["volume_ml"]
    assert volume[("mr_labels", "tumor")]["unit"] == "mL"

    page = (out / "index.html").read_text(encoding="utf-8")
    assert "href='mr_labels/report.html'" in page and "data:image/png;base64," in page
    assert "<script" not in page and "http" not in page.split("</style>", 1)[1].lower()
    assert "outside" in page.split("<h2>Failures</h2>", 1)[1]

    # interrupt: one case lost its completion record (stopped before recording), another
    # was stopped while writing (the marker of a claimed folder: hashes null)
    (out / "ibsi" / ".mskai-batch.json").unlink()
    marker = json.loads((out / "mr_labels" / MARKER).read_text())
    marker["files"] = dict.fromkeys(marker["files"])
    (out / "mr_labels" / MARKER).write_text(json.dumps(marker))
    (out / "mr_labels" / "report.html").unlink()
    before = {c: (out / c / "report.html").stat().st_mtime_ns
              for c in GOOD if c != "mr_labels"}

    outcomes, _ = run_batch(cohort / "cohort.csv", out, workers=2)
    status = {o["case"]: o["status"] for o in outcomes}
    assert status == {"mr_labels": "done", "mr_learned": "skipped", "breast": "skipped",
                      "ibsi": "done", "femur": "skipped", "outside": "failed"}
    for case in ("mr_learned", "breast", "femur"):
        assert (out / case / "report.html").stat().st_mtime_ns == before[case]
    assert (out / "mr_labels" / "report.html").is_file()
    assert _table(out / "cohort_measurements.csv") == rows
    assert len(_table(out / "failures.csv")) == 1

    # models load once per worker process: never twice in one process
    for o in outcomes:
        assert all(n == 1 for n in o["models"]["loads"].values()), o["models"]


def _recorded(out: Path) -> set[str]:
    """Cases whose completion record is written (finished, results hashed)."""
    return {p.parent.name for p in out.glob("*/.mskai-batch.json")}


def test_a_killed_batch_resumes_where_it_stopped(cohort, tmp_path):
    """SIGKILL to the batch and its Dask workers once two cases are recorded (a crash, a
    pulled plug); the same command again skips those two and finishes the rest."""
    out = tmp_path / "batch"
    command = [sys.executable, "-m", "mskai", "batch", str(cohort / "cohort.csv"),
               "--out", str(out), "--workers", "1"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(_recorded(out)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the batch ended before it could be killed"
    finished = _recorded(out)
    assert 2 <= len(finished) < len(GOOD)

    outcomes, _ = run_batch(cohort / "cohort.csv", out, workers=2)
    status = {o["case"]: o["status"] for o in outcomes}
    assert {status[case] for case in finished} == {"skipped"}
    assert {status[case] for case in set(GOOD) - finished} == {"done"}
    assert status["outside"] == "failed"
    cases = {row["case"] for row in _table(out / "cohort_measurements.csv")}
    assert cases == set(GOOD)


def test_bad_cohort_tables_are_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "img.nrrd").write_bytes(b"")
    tables = {
        "case,image\na,img.nrrd\n": "the column 'task' is missing",
        "case,task,image\na,knee,img.nrrd\n": "unknown task 'knee'",
        "case,task,image\na,fracture,img.nrrd\na,fracture,img.nrrd\n": "used again",
        "case,task,image\na,fracture,../img.nrrd\n": "leads out of the CSV's folder",
        "case,task,image,colour\na,fracture,img.nrrd,red\n": "unknown column 'colour'",
        "case,task,image,seed_ras\na,fracture,img.nrrd,\"1,2,3\"\n": "not an option of",
        "case,task,image,seed_ras\na,tumor,img.nrrd,1;2\n": "--seed-ras",
        "case,task,image\n../x,fracture,img.nrrd\n": "cannot be a folder name",
        "case,task,image\na,radiomics,img.nrrd\n": "mask",
    }
    sub = tmp_path / "cohort"
    sub.mkdir()
    shutil.copy(tmp_path / "img.nrrd", sub / "img.nrrd")
    for text, expected in tables.items():
        (sub / "c.csv").write_text(text, encoding="utf-8")
        code = main(["batch", str(sub / "c.csv"), "--out", str(tmp_path / "out")])
        out, err = capsys.readouterr()
        assert code == 2 and out == "", text
        assert len(err.strip().splitlines()) == 1 and expected in err, (text, err)
        assert not (tmp_path / "out").exists()


def test_model_cache_loads_each_model_once_per_process(tmp_path, tampered_copy):
    """The worker-side cache: the second case reuses the model; a changed file reloads."""
    import torch

    from mskai.cohort import model_cache
    from mskai.errors import ModelError
    from mskai.fracture import scorer, valley_reducer
    from mskai.models import loaders
    from mskai.models.registry import find_model

    original = (loaders.load_model, scorer.load_scorer, valley_reducer.load_reducer)
    try:
        model_cache.install()
        model_cache.install()  # idempotent: one wrapper
        knee = find_model("knee_unet_v1")
        first = loaders.load_model(knee, torch.device("cpu"))
        assert loaders.load_model(knee, torch.device("cpu")) is first
        entry = scorer.scorer_entry()
        assert scorer.load_scorer(entry) is scorer.load_scorer(entry)
        reducer = valley_reducer.reducer_entry(preferred_only=True)
        assert valley_reducer.load_reducer(reducer) is valley_reducer.load_reducer(reducer)
        stats = model_cache.stats()
        assert stats["loads"][f"load_model:{knee.id} {knee.version}"] == 1
        assert stats["loads"][f"load_scorer:{entry.id} {entry.version}"] == 1
        assert stats["loads"][f"load_reducer:{reducer.id} {reducer.version}"] == 1
        assert stats["hits"][f"load_model:{knee.id} {knee.version}"] >= 1
        with pytest.raises(ModelError):  # a changed file is loaded (and checked) again
            loaders.load_model(tampered_copy(knee))
    finally:
        loaders.load_model, scorer.load_scorer, valley_reducer.load_reducer = original

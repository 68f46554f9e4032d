"""Cohort throughput: ``mskai batch`` on a LocalCluster against a serial shell loop of ``mskai``.

The cohort: 12 cases, three tasks on small real images (STS_002 CT and T1 MR, the
pyradiomics breast lesion, the IBSI digital phantom) and small fractured-femur phantom
CTs. "Ours" is one ``mskai batch COHORT.csv --out NEW --workers N`` process (a local Dask
cluster sized by default to the machine: N = CPUs); the baseline is a bash script that
runs ``mskai <task> ...`` once per case, one after the other (one process per case, as a
shell loop over the cohort would). Both write into fresh folders each time, so nothing is
skipped. ``python bench_batch.py`` prints cases per minute of both; ``make bench`` (via
run_benchmarks.py) reports the seconds.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_case import Case

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "Testing" / "Data"
MSKAI = [sys.executable, "-m", "mskai"]
SEED = "-81.2,-129.3,-551.6"  # inside the STS_002 tumour


def _cases() -> list[tuple[str, list[str]]]:
    """(case, ``mskai`` arguments without --out); paths relative to the cohort folder."""
    mr, mr_mask = "STS_002_MR_T1_image.nii.gz", "STS_002_MR_T1_mask.nii.gz"
    ct, ct_mask = "STS_002_CT_image.nii.gz", "STS_002_CT_mask.nii.gz"
    cases = [
        ("tumor_mr_labels", ["tumor", mr, "--labels", mr_mask, "--label-names", "tumor=1"]),
        ("tumor_mr_learned", ["tumor", mr, f"--seed-ras={SEED}", "--method", "learned"]),
        ("tumor_mr_seed", ["tumor", mr, f"--seed-ras={SEED}", "--margin-mm", "5"]),
        ("tumor_ct_seed", ["tumor", ct, f"--seed-ras={SEED}"]),
        ("radiomics_breast", ["radiomics", "breast1_image.nrrd", "breast1_label.nrrd"]),
        ("radiomics_ibsi", ["radiomics", "phantom.nii.gz", "mask.nii.gz"]),
        ("radiomics_mr", ["radiomics", mr, mr_mask]),
        ("radiomics_ct", ["radiomics", ct, ct_mask]),
    ]
    cases += [(f"fracture_{n}", ["fracture", f"femur_{n}.nrrd"]) for n in range(4)]
    return cases


def _csv_row(case: str, argv: list[str]) -> str:
    task, image, rest = argv[0], argv[1], argv[2:]
    cells = {"case": case, "task": task, "image": image}
    if task == "radiomics":
        cells["mask"], rest = rest[0], rest[1:]
    while rest:
        flag, *value = rest.pop(0).split("=", 1)
        cells[flag.removeprefix("--").replace("-", "_")] = value[0] if value else rest.pop(0)
    columns = ("case", "task", "image", "mask", "labels", "label_names", "seed_ras", "method",
               "margin_mm")
    return ",".join(f'"{cells.get(c, "")}"' for c in columns)


def prepare() -> Path:
    """A cohort folder with the images, ``cohort.csv`` and the serial ``loop.sh``."""
    for path in (REPO / "MSKAIExtension", REPO / "Testing"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from mskai.image import write_image
    from phantoms.long_bone import fractured_long_bone

    folder = Path(tempfile.mkdtemp(prefix="mskai-bench-batch-"))
    for sub, name in (("sts_sarcoma", "STS_002_MR_T1_image.nii.gz"),
                      ("sts_sarcoma", "STS_002_MR_T1_mask.nii.gz"),
                      ("sts_sarcoma", "STS_002_CT_image.nii.gz"),
                      ("sts_sarcoma", "STS_002_CT_mask.nii.gz"),
                      ("pyradiomics", "breast1_image.nrrd"), ("pyradiomics", "breast1_label.nrrd"),
                      ("ibsi/digital_phantom", "phantom.nii.gz"),
                      ("ibsi/digital_phantom", "mask.nii.gz")):
        shutil.copy(DATA / sub / name, folder / name)
    for n in range(4):
        ph = fractured_long_bone(length_mm=90.0, fracture_position_mm=45.0, gap_mm=5.0,
                                 translation_mm=(3.0 + n, 2.0, 0.0), angulation_deg=8.0 + 2 * n,
                                 body_radius_mm=25.0, noise_sd=15.0, supersample=1, seed=n,
                                 spacing=(0.8, 0.8, 1.25))
        write_image(ph.image, folder / f"femur_{n}.nrrd")
    cases = _cases()
    header = "case,task,image,mask,labels,label_names,seed_ras,method,margin_mm\n"
    (folder / "cohort.csv").write_text(header + "\n".join(_csv_row(c, a) for c, a in cases)
                                       + "\n", encoding="utf-8")
    lines = ["set -u", 'out="$1"']
    lines += [f"{shlex.join(MSKAI + argv)} --out \"$out/{case}\" >/dev/null 2>&1 || true"
              for case, argv in cases]
    (folder / "loop.sh").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _env() -> dict[str, str]:
    paths = [str(REPO / "MSKAIExtension"), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))


def batch(folder: Path, workers: int | None = None) -> float:
    out = Path(tempfile.mkdtemp(prefix="batch-", dir=folder)) / "out"
    extra = ["--workers", str(workers)] if workers else []
    start = time.perf_counter()
    proc = subprocess.run([*MSKAI, "batch", str(folder / "cohort.csv"), "--out", str(out),
                           *extra], cwd=folder, env=_env(), capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise AssertionError(f"mskai batch exit {proc.returncode}: {proc.stderr[-2000:]}")
    return seconds


def serial_loop(folder: Path) -> float:
    out = Path(tempfile.mkdtemp(prefix="loop-", dir=folder))
    start = time.perf_counter()
    subprocess.run(["bash", str(folder / "loop.sh"), str(out)], cwd=folder, env=_env(),
                   check=True)
    seconds = time.perf_counter() - start
    done = sum((out / case / "report.html").is_file() for case, _ in _cases())
    if done != len(_cases()):
        raise AssertionError(f"the serial loop finished only {done} of {len(_cases())} cases")
    return seconds


CASES = [Case(f"cohort of {len(_cases())} cases: mskai batch (LocalCluster)", prepare, batch,
              serial_loop, "serial shell loop over mskai")]


def main() -> None:
    folder = prepare()
    try:
        n = len(_cases())
        loop = serial_loop(folder)
        ours = batch(folder)
        print(f"| cohort, {n} cases | mskai batch: {ours:.1f} s, {60 * n / ours:.1f} cases/min | "
              f"serial loop: {loop:.1f} s, {60 * n / loop:.1f} cases/min | "
              f"{loop / ours:.2f}x | CPUs {os.cpu_count()} |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

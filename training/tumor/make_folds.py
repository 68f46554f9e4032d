"""Write ``folds.json``: a patient-level 5-fold split of the 36 STS patients (fixed seed).

Usage::

    .venv/bin/python training/tumor/make_folds.py

A patient's CT and T1 MR are always in the same fold. Patients are stratified by which
series they have (CT+MR, MR only, neither: STS_009 and STS_020 have only PET) and dealt
round-robin after a seeded shuffle. STS_004-006 and STS_040-051 are reserved for independent
evaluation and are never listed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "sts_sarcoma"
RESERVED = {"STS_004", "STS_005", "STS_006", *(f"STS_{n:03d}" for n in range(40, 52))}


def patients() -> list[str]:
    found = sorted(p.name for p in DATA.glob("STS_*") if p.is_dir())
    return [p for p in found if p not in RESERVED]


def main(n_folds: int = 5, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    groups: dict[str, list[str]] = {}
    for p in patients():
        key = "".join(s for s in ("CT", "MR") if (DATA / p / f"{s if s == 'CT' else 'MR_T1'}"
                                                   "_image.nii.gz").is_file()) or "none"
        groups.setdefault(key, []).append(p)
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    k = 0
    for key in sorted(groups):
        members = list(groups[key])
        rng.shuffle(members)
        for p in members:
            folds[k % n_folds].append(p)
            k += 1
    out = {"seed": seed, "data": "IBSI STS (../shared/data/sts_sarcoma), STS_001-003 and "
           "STS_007-039; split by patient", "folds": [sorted(f) for f in folds]}
    (HERE / "folds.json").write_text(json.dumps(out, indent=1) + "\n")
    for n, f in enumerate(out["folds"]):
        print(n, len(f), f)


if __name__ == "__main__":
    main()

"""FROC of FractureDetect on HELD-OUT simulated fractures of real bone, learned vs classical.

Cuts the held-out bones of the TotalSegmentator example CT (3 mm; labels from its model
output): right ribs 7-12 and the right femur, seeds from 0
(:func:`mskai.phantoms.simulated_fracture.fracture_cases`, split ``"test"``). The learned scorer
was trained on the left ribs and left femur with seeds from 1000
(training/fracture/train_scorer.py), so bones and seeds are disjoint. Each scan is run
through :func:`mskai.tasks.fracture.run_fracture` twice: with the packaged models (learned
bone segmentation and candidate scorer, where their manifest entries verify) and with
``use_models=False`` (HU bone mask, heuristic score). A candidate within 10 mm of the cut
centre is a true positive (the first one only). Sensitivity is given at the thresholds
that allow 0.5, 1, 2, 4 and 8 false positives per scan (as in RibFrac), plus the number of
candidates at the default threshold 0.5 on intact scans (the same CT uncut, the 20-slice
chest DICOM series, and the TPTBox lumbar crop).

Run: ``.venv/bin/python Testing/benchmarks/froc_fracture.py [cases_per_bone] [--json FILE]``
(default 3, 21 scans; about 3 minutes on 2 shared cores). ``--json`` writes the tables,
which ``training/fracture/train_scorer.py --froc FILE`` copies into the manifest entry.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

TESTING = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTING))
sys.path.insert(0, str(TESTING.parent / "MSKAIExtension"))

DATA = TESTING.parent.parent / "shared" / "data"
HIT_MM = 10.0
CONFIGS = {"learned": True, "classical": False}


def candidates(image, use_models: bool) -> list[dict]:
    from mskai.tasks.fracture import run_fracture

    return run_fracture(image, use_models=use_models).measurements["fracture_candidates"]


def run_cases(per_bone: int) -> tuple[dict[str, list[tuple[float, bool]]], int]:
    """Per configuration, (score, is_true_positive) of every candidate; number of scans."""
    from mskai.image import read_image
    from mskai.phantoms.simulated_fracture import fracture_cases

    image = read_image(DATA / "ts_example" / "example_ct.nii.gz")
    seg = read_image(DATA / "ts_example" / "example_seg_fast_force_split.nii.gz").array
    scored: dict[str, list[tuple[float, bool]]] = {k: [] for k in CONFIGS}
    n = 0
    for label, seed, sim in fracture_cases(image, seg, "test", per_bone):
        n += 1
        line = [f"bone {label:3d} seed {seed:2d} gap {sim.gap_mm:4.1f} mm shift "
                f"{np.linalg.norm(sim.translation_ras):4.1f} mm angle "
                f"{sim.angulation_deg:4.1f} deg:"]
        for name, use in CONFIGS.items():
            start = time.time()
            hit = False
            best = 0.0
            cands = candidates(sim.image, use)
            for c in cands:
                error = np.linalg.norm(np.asarray(c["position_ras"]) - sim.center_ras)
                tp = not hit and error <= HIT_MM
                best = c["score"] if tp else best
                hit = hit or tp
                scored[name].append((c["score"], tp))
            line.append(f"{name} {len(cands)} cand, hit={hit} ({best:.2f}, "
                        f"{time.time() - start:.0f} s)")
        print(" ".join(line), flush=True)
    return scored, n


def intact_scans() -> dict[str, object]:
    from mskai.image import read_image

    return {"example_ct (uncut)": read_image(DATA / "ts_example" / "example_ct.nii.gz"),
            "chest DICOM": read_image(DATA / "ts_example" / "example_ct_dicom"),
            "TPTBox L3 crop": read_image(DATA / "tptbox_spine" / "sample_ct"
                                         / "sub-ct_label-22_ct.nii.gz")}


def froc_table(scored: list[tuple[float, bool]], n_scans: int) -> list[tuple[float, float, float]]:
    """(FP per scan, threshold, sensitivity) at the standard FROC operating points."""
    rows = []
    scores = [*sorted({s for s, _ in scored}, reverse=True), -1.0]
    for fp_rate in (0.5, 1, 2, 4, 8):
        best = (float("inf"), 0.0)
        for t in scores:
            fp = sum(1 for s, tp in scored if s >= t and not tp) / n_scans
            if fp <= fp_rate:
                best = (t, sum(1 for s, tp in scored if s >= t and tp) / n_scans)
        rows.append((fp_rate, *best))
    return rows


def main() -> None:
    import torch

    torch.set_num_threads(1)
    args = [a for a in sys.argv[1:] if not a.startswith("--json")]
    json_path = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--json=")),
                     None)
    per_bone = int(args[0]) if args else 3
    scored, n = run_cases(per_bone)
    summary: dict[str, object] = {"held_out_scans": n, "hit_mm": HIT_MM}
    print(f"\n{n} held-out simulated fractures (right ribs 7-12, right femur)")
    for name, rows in scored.items():
        print(f"\n{name}: sensitivity at FP/scan (threshold)")
        for fp_rate, threshold, sens in froc_table(rows, n):
            print(f"  {fp_rate:>4} FP/scan: sensitivity {sens:.2f} (score >= {threshold:.2f})")
        at_half = sum(1 for s, tp in rows if s >= 0.5 and tp) / max(n, 1)
        fp_half = sum(1 for s, tp in rows if s >= 0.5 and not tp) / max(n, 1)
        print(f"  default threshold 0.5: sensitivity {at_half:.2f}, {fp_half:.2f} FP/scan")
        summary[name] = {"froc": {f"{r} FP/scan": round(sens, 3)
                                  for r, _, sens in froc_table(rows, n)},
                         "at_0.5": {"sensitivity": round(at_half, 3),
                                    "fp_per_scan": round(fp_half, 3)}}
    print("\nintact scans, candidates (scores >= 0.5):")
    for scan, image in intact_scans().items():
        for name, use in CONFIGS.items():
            scores = [c["score"] for c in candidates(image, use)]
            print(f"  {scan:20s} {name:9s}: {len(scores)} candidates, "
                  f"{sum(s >= 0.5 for s in scores)} at >= 0.5")
            summary.setdefault("intact_at_0.5", {})[f"{scan} {name}"] = int(
                sum(s >= 0.5 for s in scores))
    if json_path:
        import json

        Path(json_path).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""FROC-style check of the classical fracture detector on simulated fractures of real bone.

Cuts ribs and femurs of the TotalSegmentator example CT (3 mm; labels from its model output)
with :func:`phantoms.simulated_fracture.simulate_fracture`, runs
:func:`mskai.tasks.fracture.run_fracture` on each scan, and counts a candidate as a true
positive when it lies within 10 mm of the cut centre. Prints sensitivity at the score
thresholds that give 0.5, 1, 2, 4 and 8 false positives per scan, plus the intact scan's
candidates. Run: ``.venv/bin/python Testing/benchmarks/froc_fracture.py [n_cases]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

TESTING = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTING))
sys.path.insert(0, str(TESTING.parent / "MSKAIExtension"))

DATA = TESTING.parent.parent / "shared" / "data" / "ts_example"
BONES = [98, 99, 100, 101, 102, 103, 110, 111, 112, 113, 114, 115, 75, 76]
HIT_MM = 10.0


def run_cases(n_cases: int) -> tuple[list[tuple[float, bool]], int, list[float]]:
    """(score, is_true_positive) of every candidate, number of fractures found, intact."""
    from mskai.image import read_image
    from mskai.tasks.fracture import run_fracture
    from phantoms.simulated_fracture import simulate_fracture

    image = read_image(DATA / "example_ct.nii.gz")
    seg = read_image(DATA / "example_seg_fast_force_split.nii.gz").array
    intact = [c["score"] for c in run_fracture(image).measurements["fracture_candidates"]]
    scored: list[tuple[float, bool]] = []
    found = 0
    for case in range(n_cases):
        label = BONES[case % len(BONES)]
        try:
            sim = simulate_fracture(image, seg == label, seed=case, gap_mm=(4.0, 9.0))
        except ValueError:
            continue
        start = time.time()
        cands = run_fracture(sim.image).measurements["fracture_candidates"]
        hit = False
        for c in cands:
            error = np.linalg.norm(np.asarray(c["position_ras"]) - sim.center_ras)
            tp = not hit and error <= HIT_MM
            hit = hit or tp
            scored.append((c["score"], tp))
        found += 1
        print(f"case {case:2d} label {label:3d} gap {sim.gap_mm:4.1f} mm "
              f"shift {np.linalg.norm(sim.translation_ras):4.1f} mm "
              f"angle {sim.angulation_deg:4.1f} deg: {len(cands)} candidates, hit={hit} "
              f"({time.time() - start:.1f} s)")
    return scored, found, intact


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
    n_cases = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    scored, n, intact = run_cases(n_cases)
    print(f"\nintact scan: {len(intact)} candidates, scores {[round(s, 2) for s in intact]}")
    print(f"{n} simulated fractures; sensitivity at FP/scan (threshold):")
    for fp_rate, threshold, sens in froc_table(scored, n):
        print(f"  {fp_rate:>4} FP/scan: sensitivity {sens:.2f} (score >= {threshold:.2f})")
    at_half = sum(1 for s, tp in scored if s >= 0.5 and tp) / max(n, 1)
    fp_half = sum(1 for s, tp in scored if s >= 0.5 and not tp) / max(n, 1)
    print(f"  default threshold 0.5: sensitivity {at_half:.2f}, {fp_half:.2f} FP/scan")


if __name__ == "__main__":
    main()

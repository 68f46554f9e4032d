"""Choose the HU-valley candidate parameters on TRAINING bones only (no test patient read).

Each training sarcoma CT's largest HU bone is broken once per kind (seeds from 5001,
:mod:`mskai.phantoms.real_fracture`); the valley candidates of the fractured and the intact
CT are scored for a grid of region thresholds and full extents. Printed per setting: the
sensitivity at 1 FP/scan (hit = within 10 mm of a true surface voxel), its score threshold,
the paired chance (the intact CT's candidates hitting the same surface at that threshold) and
the FP per intact CT there.

Run: ``nice -n 10 .venv/bin/python training/fracture/tune_valley.py`` (about 3 minutes).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "MSKAIExtension"))
sys.path.insert(0, str(HERE))

SEED0 = 5000
HIT_MM = 10.0
THRESHOLDS = (0.4, 0.5, 0.6)
EXTENTS_MM = (10.0, 20.0)


def collect() -> tuple[list[dict], list[dict]]:
    """(fracture cases, intact scans): valley response, true surface, volume."""
    import real_bones

    from mskai.fracture.valley_candidates import outer_rim, valley_response
    from mskai.phantoms.real_fracture import KINDS
    from mskai.segmentation.bone_ct import segment_bone_ct

    cases, intact, seeds = [], [], itertools.count(SEED0 + 1)
    for patient in real_bones.split()["train"][1:]:
        image, bones = real_bones.load_patient(patient)
        bone = segment_bone_ct(image)
        resp, rim = valley_response(image, bone), outer_rim(bone, image.spacing)
        intact.append({"image": image, "resp": resp, "rim": rim})
        for _, kind, _, sim in real_bones.broken(image, ((bones[0], k) for k in KINDS), seeds):
            broken = segment_bone_ct(sim.image)
            cases.append({"image": image, "kind": kind, "surface": sim.surface,
                          "resp": valley_response(sim.image, broken),
                          "rim": outer_rim(broken, image.spacing),
                          "intact_resp": resp, "intact_rim": rim})
        print(patient, len(cases), "cases", flush=True)
    return cases, intact


def scored(resp: np.ndarray, image, threshold: float, extent_mm: float, rim=None) -> list:
    """(position RAS, score) of the valley candidates with these parameters."""
    from mskai.fracture.valley_candidates import MIN_VOXELS, regions_as_candidates

    found = regions_as_candidates(resp, image, threshold, MIN_VOXELS, extent_mm, rim)
    return [(np.asarray(c.position_ras, dtype=float), c.score) for c in found]


def evaluate(cases: list[dict], intact: list[dict], threshold: float, extent_mm: float) -> str:
    from scipy.spatial import cKDTree

    best, chance, fps = [], [], []
    for c in cases:
        kji = np.argwhere(c["surface"])[:, ::-1].astype(float)
        tree = cKDTree(np.asarray(c["image"].index_to_ras(kji)).reshape(-1, 3))
        hits = [s for p, s in scored(c["resp"], c["image"], threshold, extent_mm, c["rim"])
                if tree.query(p)[0] <= HIT_MM]
        fps += [s for p, s in scored(c["resp"], c["image"], threshold, extent_mm, c["rim"])
                if tree.query(p)[0] > HIT_MM]
        best.append(max(hits, default=None))
        intact_found = scored(c["intact_resp"], c["image"], threshold, extent_mm,
                              c["intact_rim"])
        chance.append(max((s for p, s in intact_found if tree.query(p)[0] <= HIT_MM),
                          default=None))
    fps_sorted = sorted(fps, reverse=True)
    thr = fps_sorted[len(cases)] if len(fps_sorted) > len(cases) else -1.0
    sens = np.mean([b is not None and b > thr for b in best])
    paired = np.mean([b is not None and b > thr for b in chance])
    per_intact = np.mean([sum(s > thr for _, s in scored(i["resp"], i["image"], threshold,
                                                         extent_mm, i["rim"])) for i in intact])
    return (f"region >= {threshold}, extent {extent_mm:g} mm: sensitivity@1FP {sens:.2f} "
            f"(score > {thr:.2f}), paired chance {paired:.2f}, FP/intact CT {per_intact:.2f}")


def main() -> None:
    cases, intact = collect()
    for threshold, extent in itertools.product(THRESHOLDS, EXTENTS_MM):
        print(evaluate(cases, intact, threshold, extent), flush=True)
    from mskai.fracture.valley_candidates import FULL_EXTENT_MM, VALLEY_THRESHOLD

    top = sorted((s for i in intact for _, s in scored(i["resp"], i["image"], VALLEY_THRESHOLD,
                                                       FULL_EXTENT_MM, i["rim"])), reverse=True)
    print("highest scores on the intact training CTs:", [round(float(s), 3) for s in top[:5]])


if __name__ == "__main__":
    main()

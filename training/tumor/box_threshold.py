"""Nested choice of ``mskai.interactive.auto_method.AUTO_BOX_THRESHOLD_ML``.

Usage::

    .venv/bin/python Testing/benchmarks/eval_tumor_prompts.py --method classic \
        --out /tmp/tumor_v3/prompts_classic.json
    .venv/bin/python Testing/benchmarks/eval_tumor_prompts.py --method learned \
        --fold-weights /tmp/tumor_v3 --out /tmp/tumor_v3/prompts_learned.json
    .venv/bin/python training/tumor/box_threshold.py /tmp/tumor_v3/prompts_classic.json \
        /tmp/tumor_v3/prompts_learned.json

Per volume, the box-alone Dice of the classic method and of the network (fold models), and
the volume of the ellipsoid inscribed in the box ``eval_tumor_prompts.py`` draws (the expert
mask's bounding box + 5 mm). A volume whose box ellipsoid is at least T mL takes the
network's Dice, else the classic one. For each held-out fold, T is the grid value with the
best mean Dice on the other four folds; the held-out fold is scored with it. Prints the
per-fold choices, their median (the shipped value) and the nested Dice per modality.
``eval_tumor_prompts.py --method auto --fold-weights`` then measures the shipped gate itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from cache import HERE, REPO  # training/tumor/cache.py, beside this script

GRID_ML = (0.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 400.0, 1e9)


def box_volumes(rows: list[dict]) -> dict[str, float]:
    """``case/series`` -> the box ellipsoid (mL) of the box the evaluation draws."""
    sys.path[:0] = [str(REPO / "MSKAIExtension"), str(REPO / "Testing" / "benchmarks")]
    from eval_tumor_prompts import DATA, box_from_mask

    from mskai.image import read_image
    from mskai.interactive.auto_method import box_ellipsoid_ml

    out = {}
    for r in rows:
        volume = read_image(DATA / r["case"] / f"{r['series']}_image.nii.gz")
        truth = read_image(DATA / r["case"] / f"{r['series']}_mask.nii.gz").array > 0
        out[f"{r['case']}/{r['series']}"] = box_ellipsoid_ml(box_from_mask(truth, volume))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("classic", type=Path)
    parser.add_argument("network", type=Path)
    args = parser.parse_args()
    classic = {f"{r['case']}/{r['series']}": r for r in json.loads(args.classic.read_text())}
    network = {f"{r['case']}/{r['series']}": r for r in json.loads(args.network.read_text())}
    keys = sorted(set(classic) & set(network))
    size = box_volumes([classic[k] for k in keys])
    fold_of = {c: n for n, f in enumerate(json.loads((HERE / "folds.json").read_text())["folds"])
               for c in f}

    def dice(key: str, threshold: float) -> float:
        return (network if size[key] >= threshold else classic)[key]["box"]

    chosen = {}
    for fold in sorted({fold_of[k.split("/")[0]] for k in keys}):
        others = [k for k in keys if fold_of[k.split("/")[0]] != fold]
        chosen[fold] = max(GRID_ML, key=lambda t, o=others: np.mean([dice(k, t) for k in o]))
    print("per held-out fold:", chosen, "median:", float(np.median(list(chosen.values()))))
    for modality in ("CT", "MR"):
        ks = [k for k in keys if classic[k]["modality"] == modality]
        nested = [dice(k, chosen[fold_of[k.split("/")[0]]]) for k in ks]
        print(f"{modality}: {len(ks)} volumes, nested box-gate Dice {np.mean(nested):.3f} "
              f"(worst {min(nested):.3f}); classic {np.mean([classic[k]['box'] for k in ks]):.3f}"
              f"; network {np.mean([network[k]['box'] for k in ks]):.3f}")


if __name__ == "__main__":
    main()

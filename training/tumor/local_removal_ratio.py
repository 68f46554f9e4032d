"""Nested choice of ``mskai.interactive.refine.LOCAL_REMOVAL_RATIO`` from the click protocol.

Usage::

    .venv/bin/python training/tumor/local_removal_ratio.py record --fold 0 \
        --weights /tmp/tumor_v3/fold0.pt --out /tmp/tumor_v3/negative.jsonl
    ...  (folds 1-4 likewise)
    .venv/bin/python training/tumor/local_removal_ratio.py choose /tmp/tumor_v3/negative.jsonl

``record`` runs the cross-validation's click protocol (``cv_evaluate.protocol``, the ``auto``
method with the fold's model) with every negative click removing only its local part (the
ratio set to infinity), and at each negative click writes both candidate removals' Dice:
``whole`` (the connected unreached part, ``current & ~new``, the rule before 2026-12-06) and
``local`` (what the mask-seeded method gives to the click), with their sizes. ``choose``
picks, per held-out fold, the ratio of the grid maximising the mean Dice over the other
folds' negative clicks, and prints the choices and their median (the shipped value).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from cache import HERE, REPO, real_volumes  # training/tumor/cache.py, beside this script

GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, float("inf"))


def record(fold: int, weights: Path, out: Path) -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    import torch
    from cv_evaluate import auto_segmenter, protocol

    from mskai.interactive import refine, segment
    from mskai.interactive.evaluate import dice

    torch.set_num_threads(1)
    refine.LOCAL_REMOVAL_RATIO = float("inf")       # the trajectory: local removals only
    merge = refine.merge_with_current
    truth_now: dict = {}

    def spy(current, new, positive, negative, spacing_kji=(1.0, 1.0, 1.0), local=None):
        newest = len(negative) > truth_now["negatives"]
        truth_now["negatives"] = len(negative)
        if local is not None and newest:
            current = current.astype(bool)
            for q in negative[-1:]:                 # the click just made
                whole = refine._components_at(current & ~new, q[None])
                near = refine._components_at(current & ~local, q[None])
                truth = truth_now["mask"]
                with out.open("a") as f:
                    f.write(json.dumps({
                        "case": truth_now["case"], "modality": truth_now["modality"],
                        "fold": fold, "whole": int(whole.sum()), "local": int(near.sum()),
                        "dice_whole": dice(current & ~whole, truth),
                        "dice_local": dice(current & ~near, truth)}) + "\n")
        return merge(current, new, positive, negative, spacing_kji, local=local)

    segment.merge_with_current = spy
    cases = json.loads((HERE / "folds.json").read_text())["folds"][fold]
    run = auto_segmenter(weights)
    for case, modality, volume, truth in real_volumes(cases):
        truth_now.update(case=case, modality=modality, mask=truth, negatives=0)
        protocol(volume, truth, run)
        print(case, modality, flush=True)


def choose(path: Path) -> None:
    rows = [json.loads(line) for line in path.open()]

    def mean_dice(subset, ratio):
        return float(np.mean([r["dice_whole"] if r["local"] >= ratio * max(r["whole"], 1)
                              else r["dice_local"] for r in subset]))

    chosen = {}
    for fold in sorted({r["fold"] for r in rows}):
        others = [r for r in rows if r["fold"] != fold]
        scores = [mean_dice(others, t) for t in GRID]
        chosen[fold] = GRID[int(np.argmax(scores))]
        print(f"fold {fold}: {chosen[fold]:g}  (" + " ".join(f"{s:.3f}" for s in scores) + ")")
    median = float(np.median(list(chosen.values())))
    print(f"median: {median:g} over {len(rows)} negative clicks")
    nested = np.mean([mean_dice([r], chosen[r["fold"]]) for r in rows])
    better = np.mean([max(r["dice_whole"], r["dice_local"]) for r in rows])
    print(f"mean Dice after the click: whole {mean_dice(rows, 0.0):.3f}, local "
          f"{mean_dice(rows, float('inf')):.3f}, the median's rule {mean_dice(rows, median):.3f}, "
          f"each fold's own choice {nested:.3f}, the better of the two {better:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--fold", type=int, required=True)
    rec.add_argument("--weights", type=Path, required=True)
    rec.add_argument("--out", type=Path, required=True)
    cho = sub.add_parser("choose")
    cho.add_argument("path", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        record(args.fold, args.weights, args.out)
    else:
        choose(args.path)


if __name__ == "__main__":
    main()

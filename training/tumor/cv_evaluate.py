"""Click-protocol evaluation for the cross-validation: Dice and HD95 after 1..5 clicks.

Usage::

    .venv/bin/python training/tumor/cv_evaluate.py --method classic \
        --out /tmp/tumor_v2/classic.jsonl
    .venv/bin/python training/tumor/cv_evaluate.py --method learned --fold 0 \
        --weights /tmp/tumor_v2/fold0.pt --out /tmp/tumor_v2/learned.jsonl

The protocol is :func:`mskai.interactive.evaluate.run_click_protocol`'s: the first positive
click at the most interior voxel of the expert mask, each later click at the deepest point of
the largest error region (positive or negative), each refining the previous result (passed
as the current mask), here up to 5 clicks. Dice and HD95 (mm, the larger of the two directed
95th-percentile surface distances, as MONAI's ``compute_hausdorff_distance``) are measured on
the original image grid. ``--fold`` evaluates only that fold's patients (``folds.json``);
without it, all patients. One JSON line per volume is appended to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from cache import HERE, REPO, real_volumes  # training/tumor/cache.py, beside this script


def hd95(a: np.ndarray, b: np.ndarray, spacing_kji) -> float:
    """95th-percentile symmetric surface distance in mm (inf when one mask is empty)."""
    from scipy import ndimage

    if not a.any() or not b.any():
        return float("inf")
    both = a | b
    idx = np.argwhere(both)
    lo, hi = np.maximum(idx.min(0) - 2, 0), np.minimum(idx.max(0) + 3, a.shape)
    box = tuple(slice(x, y) for x, y in zip(lo, hi, strict=True))
    a, b = np.pad(a[box], 1), np.pad(b[box], 1)
    sa = a & ~ndimage.binary_erosion(a)
    sb = b & ~ndimage.binary_erosion(b)
    da = ndimage.distance_transform_edt(~sb, sampling=spacing_kji)[sa]
    db = ndimage.distance_transform_edt(~sa, sampling=spacing_kji)[sb]
    return float(max(np.percentile(da, 95), np.percentile(db, 95)))


def box_prompts(volume, truth):
    """A box alone, as ``eval_tumor_prompts.py`` draws it (the expert mask's bounding box
    + 5 mm), with its centre as the seed (``Prompts.with_box_centre_seed``)."""
    benchmarks = str(REPO / "Testing" / "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    from eval_tumor_prompts import box_from_mask

    from mskai.interactive.prompts import Prompts

    return Prompts(roi_ras=box_from_mask(truth, volume)).with_box_centre_seed()


def protocol(volume, truth, segment, clicks: int = 5, start: str = "click") -> list[dict]:
    """Per click: Dice, HD95, seconds and sign, with ``segment(volume, prompts, current)``.

    ``start="box"``: the first prompt is a box alone (:func:`box_prompts`) instead of the
    first click; the later clicks follow the same rule, inside that box."""
    from mskai.interactive.clicks import deepest_voxel, next_click
    from mskai.interactive.evaluate import dice
    from mskai.interactive.prompts import Prompts

    def ras(kji):
        return tuple(float(v) for v in volume.index_to_ras(np.asarray(kji, float)[::-1]))

    spacing_kji = tuple(reversed(volume.spacing))
    if start == "box":
        prompts = box_prompts(volume, truth)
    else:
        prompts = Prompts(positive_ras=[ras(deepest_voxel(truth, spacing_kji))])
    start = time.perf_counter()
    mask = segment(volume, prompts, None)
    seconds = time.perf_counter() - start
    steps = [{"dice": dice(mask, truth), "hd95": hd95(mask, truth, spacing_kji),
              "s": round(seconds, 2), "pos": True}]
    while len(steps) < clicks:
        click = next_click(mask, truth, spacing_kji)
        if click is None:      # perfect: the rest of the clicks change nothing
            steps.append(dict(steps[-1]))
            continue
        prompts = prompts.with_click(ras(click[0]), positive=click[1])
        start = time.perf_counter()
        mask = segment(volume, prompts, mask)
        seconds = time.perf_counter() - start
        steps.append({"dice": dice(mask, truth), "hd95": hd95(mask, truth, spacing_kji),
                      "s": round(seconds, 2), "pos": bool(click[1])})
    return steps


def auto_segmenter(weights: Path | None):
    """``segment_auto`` with the given weights (the fold's model); None: the shipped ones."""
    from mskai.interactive.auto_method import segment_auto

    model = None
    if weights is not None:
        import torch

        from mskai.interactive.learned import ARCHITECTURE
        from mskai.models.loaders import build_network

        model = build_network(ARCHITECTURE)
        model.load_state_dict(torch.load(weights, weights_only=True))
        model.eval()
    return lambda v, p, c: segment_auto(v, p, current_mask=c, model=model)[0]


def segmenter(method: str, weights: Path | None):
    from mskai.interactive.learned import segment_learned
    from mskai.interactive.segment import segment_from_prompts

    if method == "classic":
        return lambda v, p, c: segment_from_prompts(v, p, current_mask=c)
    if method == "auto":   # mskai's size-gated method (AUTO_THRESHOLD_ML), this fold's model
        return auto_segmenter(weights)
    if method == "learned_then_classic":   # the network's first mask, classic refinement
        net = segmenter("learned", weights)
        return lambda v, p, c: net(v, p, c) if c is None else segment_from_prompts(
            v, p, current_mask=c)
    model = None
    if weights is not None:
        import torch

        from mskai.interactive.learned import ARCHITECTURE
        from mskai.models.loaders import build_network

        model = build_network(ARCHITECTURE)
        model.load_state_dict(torch.load(weights, weights_only=True))
        model.eval()
    local = method.endswith("_local")
    first = "classic" if "classic_first" in method else "network"
    return lambda v, p, c: segment_learned(v, p, current_mask=c, model=model,
                                           first_guess=first, local=local)


def classic_one_click_ml(volume, truth) -> float:
    """The classic method's tumour volume (mL) from the protocol's first click (auto's gate)."""
    from mskai.interactive.auto_method import auto_choice
    from mskai.interactive.clicks import deepest_voxel
    from mskai.interactive.prompts import Prompts

    kji = deepest_voxel(truth, tuple(reversed(volume.spacing)))
    seed = tuple(float(v) for v in volume.index_to_ras(np.asarray(kji, float)[::-1]))
    _, mask = auto_choice(volume, Prompts(positive_ras=[seed]))
    return round(float(mask.sum() * np.prod(volume.spacing)) / 1000, 1)


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    import torch


    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="classic",
                        help="classic, learned (network rewrites the crop), learned_local "
                             "(only changes connected to the clicks) or learned_classic_first "
                             "(the classic method's first guess, network corrections), "
                             "learned_classic_first_local, learned_then_classic (the "
                             "network's first mask, classic refinement for later clicks), auto "
                             "(mskai's size-gated method); classic_volume: only the classic "
                             "one-click volume per volume (auto_threshold.py --volumes)")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--fold", type=int, default=None)
    parser.add_argument("--cases", default="", help="comma-separated patients instead")
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--start", choices=("click", "box"), default="click",
                        help="the first prompt: the first click (default) or a box alone "
                             "(the expert box + 5 mm); later clicks as in the protocol")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--local-removal-ratio", type=float, default=None,
                        help="refine.LOCAL_REMOVAL_RATIO for this run (the fold's nested "
                             "choice, local_removal_ratio.py); default: the shipped value")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.local_removal_ratio is not None:
        from mskai.interactive import refine

        refine.LOCAL_REMOVAL_RATIO = args.local_removal_ratio
    folds = json.loads((HERE / "folds.json").read_text())["folds"]
    if args.cases:
        cases = args.cases.split(",")
    elif args.fold is not None:
        cases = folds[args.fold]
    else:
        cases = sorted(c for f in folds for c in f)
    fold_of = {c: n for n, f in enumerate(folds) for c in f}
    segment = None if args.method == "classic_volume" else segmenter(args.method, args.weights)
    for case, modality, volume, truth in real_volumes(cases):
        if segment is None:    # auto_threshold.py's --volumes
            with args.out.open("a") as f:
                f.write(json.dumps({"case": case, "modality": modality,
                                    "classic_ml": classic_one_click_ml(volume, truth)}) + "\n")
            continue
        steps = protocol(volume, truth, segment, args.clicks, args.start)
        name = args.method if args.start == "click" else f"{args.method}_box_start"
        row = {"method": name, "case": case, "modality": modality,
               "fold": fold_of.get(case), "tumour_ml": round(
                   float(truth.sum() * np.prod(volume.spacing)) / 1000, 1),
               "steps": steps}
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(case, modality, " ".join(f"{s['dice']:.3f}" for s in steps), flush=True)


if __name__ == "__main__":
    main()

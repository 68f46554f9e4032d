"""Per-case Dice of the classic and the learned click method on the six real STS volumes.

Usage::

    .venv/bin/python training/tumor/evaluate.py [--methods classic,learned] [--weights PT]

The protocol is :func:`mskai.interactive.evaluate.run_click_protocol`'s: one positive click
at the most interior voxel of the expert mask, then up to two automatic corrective clicks at
the deepest point of the largest error region, each refining the previous result (passed as
the current mask). ``--weights`` evaluates a weights file instead of the packaged model
(for the leave-one-case-out runs); ``--cases`` limits the cases.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = REPO.parent / "shared" / "data" / "sts_sarcoma"
SERIES = (("CT", "CT"), ("MR", "MR_T1"))


def protocol(volume, truth, segment, corrections: int = 2) -> list[tuple[float, float, bool]]:
    """``(dice, seconds, positive)`` after each click, ``segment(volume, prompts, current)``."""
    import numpy as np

    from mskai.interactive.clicks import deepest_voxel, next_click
    from mskai.interactive.evaluate import dice
    from mskai.interactive.prompts import Prompts

    def ras(kji):
        return tuple(float(v) for v in volume.index_to_ras(np.asarray(kji, float)[::-1]))

    spacing_kji = tuple(reversed(volume.spacing))
    prompts = Prompts(positive_ras=[ras(deepest_voxel(truth, spacing_kji))])
    start = time.perf_counter()
    mask = segment(volume, prompts, None)
    steps = [(dice(mask, truth), time.perf_counter() - start, True)]
    for _ in range(corrections):
        click = next_click(mask, truth, spacing_kji)
        if click is None:
            break
        prompts = prompts.with_click(ras(click[0]), positive=click[1])
        start = time.perf_counter()
        mask = segment(volume, prompts, mask)
        steps.append((dice(mask, truth), time.perf_counter() - start, click[1]))
    return steps


def segmenter(method: str, weights: Path | None):
    """``segment(volume, prompts, current)`` for a method (and optional weights file).

    ``learned`` is the default learned method (classic first guess, network corrections);
    ``learned_network`` also makes the first guess with the network; ``learned_global``
    lets the network change the whole crop at each click (not only at the clicks).
    """
    from mskai.interactive.learned import segment_learned, segment_with_method

    if method == "learned_global":
        model = None if weights is None else _model(weights)
        return lambda v, p, c: segment_learned(v, p, current_mask=c, model=model, local=False)
    if method == "learned_network":
        model = None if weights is None else _model(weights)
        return lambda v, p, c: segment_learned(v, p, current_mask=c, model=model,
                                               first_guess="network")
    if method == "learned" and weights is not None:
        model = _model(weights)
        return lambda v, p, c: segment_learned(v, p, current_mask=c, model=model)
    return lambda v, p, c: segment_with_method(v, p, current_mask=c, method=method)


def _model(weights: Path):
    import torch
    from train import ARCHITECTURE

    from mskai.models.loaders import build_network

    model = build_network(ARCHITECTURE)
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    sys.path.insert(0, str(HERE))
    import torch

    from mskai.image import read_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="classic,learned,learned_network,learned_global")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--cases", default="STS_001,STS_002,STS_003")
    parser.add_argument("--corrections", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None,
                        help="also write {method: {case_series: [dice per click]}} here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'method':8} {'case':8} {'series':6} dice after 1..{args.corrections + 1} clicks"
          "  clicks  seconds/click")
    finals: dict[tuple[str, str], list[float]] = {}
    table: dict[str, dict[str, list[float]]] = {}
    for method in args.methods.split(","):
        segment = segmenter(method, args.weights)
        for _, series in SERIES:
            for case in args.cases.split(","):
                volume = read_image(DATA / case / f"{series}_image.nii.gz")
                truth = read_image(DATA / case / f"{series}_mask.nii.gz").array > 0
                steps = protocol(volume, truth, segment, args.corrections)
                print(f"{method:8} {case:8} {series:6} "
                      + " ".join(f"{d:.3f}" for d, _, _ in steps)
                      + "  " + "".join("+" if p else "-" for _, _, p in steps)
                      + "  " + " ".join(f"{s:.2f}" for _, s, _ in steps), flush=True)
                finals.setdefault((method, series), []).append(steps[-1][0])
                table.setdefault(method, {})[f"{case}_{series}"] = [round(d, 3)
                                                                   for d, _, _ in steps]
    for (method, series), values in finals.items():
        print(f"mean final Dice {method} {series}: {sum(values) / len(values):.3f}")
    if args.json is not None:
        import json

        args.json.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()

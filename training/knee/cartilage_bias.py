"""Cartilage volume bias of a knee model on held-out synthetic knees, and the per-class
logit bias that removes it (issue 14: femoral cartilage +35 % on the DESS-like bench knee).

    .venv/bin/python training/knee/cartilage_bias.py [--model knee_unet_v3] [--json OUT]

Probabilities are computed once per case on the 1 mm network grid (sliding window as the
pipeline runs it) and cached. A bias ``b_c`` is added to class ``c``'s logit (the
probabilities are multiplied by ``exp(b_c)`` and renormalised; see
:func:`mskai.inference.pipeline.apply_logit_bias`). The femoral cartilage bias is chosen on
the VALIDATION seeds (``EVAL_BASE + 1000 * s + 3, 4``) as the grid value with the highest
mean Dice (``--classes`` tries others); it is reported on evaluate_synth.py's seeds
(``EVAL_BASE + 1000 * s + 0..2``), which played no part in the choice.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import ensure_cases, load_case, setup_paths
from evaluate import dice
from evaluate_synth import CACHE, EVAL_BASE

CALIBRATED = (4,)  # femoral cartilage; see the model card for why not tibial / patellar
GRID = tuple(round(float(b), 2) for b in np.arange(-3.0, 1.01, 0.25))
VALIDATION = (3, 4)
REPORTING = (0, 1, 2)
PROBS = Path("/tmp/knee_bias_probs")


def seeds(indices: tuple[int, ...]) -> list[tuple[str, int]]:
    from mskai.phantoms.knee_mr import SEQUENCES, UNSEEN_SEQUENCES

    return [(seq, EVAL_BASE + 1000 * s + i)
            for s, seq in enumerate((*SEQUENCES, *UNSEEN_SEQUENCES)) for i in indices]


def probabilities(model, path: Path) -> np.ndarray:
    """Softmax ``(K, X, Y, Z)`` float16 of one case, cached under :data:`PROBS`."""
    import torch

    from mskai.inference.sliding import sliding_window

    cached = PROBS / path.name
    if cached.is_file():
        return np.load(cached)["p"].astype(np.float32)
    image, _ = load_case(path)
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    with torch.no_grad():
        out = torch.softmax(sliding_window(model, tensor, (96, 96, 96), 0.25, "cpu")[0].float(), 0)
    p = out.numpy()
    PROBS.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cached, p=p.astype(np.float16))
    return p


def labels_with(p: np.ndarray, bias: dict[int, float]) -> np.ndarray:
    """Arg-max after the logit bias, largest component per label (as the pipeline)."""
    from mskai.inference.pipeline import apply_logit_bias
    from mskai.inference.postprocess import keep_largest_components

    lab = apply_logit_bias(p, bias).argmax(0).astype(np.uint8)
    return keep_largest_components(lab, range(1, p.shape[0])).astype(np.uint8)


def case_scores(p: np.ndarray, truth: np.ndarray, bias: dict[int, float]) -> dict:
    lab = labels_with(p, bias)
    return {c: {"dice": dice(lab, truth, c),
                "vol_err": float((lab == c).sum()) / max(int((truth == c).sum()), 1) - 1.0}
            for c in range(1, p.shape[0])}


def choose(cases: list[tuple[np.ndarray, np.ndarray]],
           classes: tuple[int, ...] = CALIBRATED) -> dict[int, float]:
    """Per class, the grid bias with the highest mean validation Dice (mean |volume
    error| printed alongside)."""
    chosen = {}
    for c in classes:
        scores = {b: [case_scores(p, t, {c: b})[c] for p, t in cases] for b in GRID}
        dices = {b: float(np.mean([s["dice"] for s in v])) for b, v in scores.items()}
        chosen[c] = max(dices, key=dices.get)
        print(f"class {c}: bias, mean Dice, mean |volume error|",
              [(b, round(dices[b], 3), round(float(np.mean([abs(s["vol_err"]) for s in v])), 3))
               for b, v in scores.items()], "->", chosen[c], flush=True)
    return chosen


def summary(model, paths: list[Path], bias: dict[int, float]) -> dict:
    """Per contrast and class: mean / worst Dice and mean / worst volume error, before/after."""
    out: dict = {}
    for path in paths:
        seq = path.name.split("_")[0]
        p, (_, truth) = probabilities(model, path), load_case(path)
        for tag, b in (("before", {}), ("after", bias)):
            for c, s in case_scores(p, truth, b).items():
                cell = out.setdefault(seq, {}).setdefault(str(c), {}).setdefault(
                    tag, {"dice": [], "vol_err": []})
                cell["dice"].append(round(s["dice"], 4))
                cell["vol_err"].append(round(s["vol_err"], 4))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="knee_unet_v3")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--classes", type=int, nargs="+", default=list(CALIBRATED))
    args = parser.parse_args(argv)
    setup_paths()
    import torch

    torch.set_num_threads(1)
    from mskai.models.loaders import load_model
    from mskai.models.registry import find_model

    model = load_model(find_model(args.model), "cpu")
    val = ensure_cases(CACHE, seeds(VALIDATION))
    cases = [(probabilities(model, p), load_case(p)[1]) for p in val]
    bias = choose(cases, tuple(args.classes))
    reporting = ensure_cases(CACHE, seeds(REPORTING))
    result = {"bias": bias, "reporting": summary(model, reporting, bias),
              "validation": summary(model, val, bias)}
    print(json.dumps(result["bias"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

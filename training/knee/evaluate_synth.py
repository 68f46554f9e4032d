"""Held-out Dice of the knee models per label and contrast, incl. contrasts never trained on.

    .venv/bin/python training/knee/evaluate_synth.py [--only knee_unet_v3] [--json OUT]
    .venv/bin/python training/knee/evaluate_synth.py --candidate FILE   # unregistered weights

Cases: ``--per-sequence`` synthetic knees per fixed contrast table of
:mod:`mskai.phantoms.knee_mr` (DESS, PD-FS, T2: the tables v1 was trained on; T1, PD: no
model saw them; v2 saw none of the five), seeds ``EVAL_BASE + 1000 * s + i`` (used by no
training run), with the simulator's random deformation, slice thickness (1-3.5 mm), bias
and noise. Inference as the pipeline runs it on the 1 mm network grid (sliding window 96^3,
overlap 0.25, largest component per label). Prints mean and worst Dice per cell;
``--bone-cleanup`` also scores the same predictions after the bone-leak removal
``mskai cartilage`` applies (:mod:`mskai.segmentation.knee_bone_cleanup`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import ensure_cases, load_case, setup_paths
from evaluate import dice, predict

EVAL_BASE = 60000
CACHE = Path("/tmp/knee_synth_v2/heldout")
MODELS = ("knee_unet_v1", "knee_unet_v2", "knee_unet_v3")
CANDIDATE = "candidate"
CLEANED = " + bone cleanup"


def eval_seeds(per_sequence: int) -> list[tuple[str, int]]:
    from mskai.phantoms.knee_mr import SEQUENCES, UNSEEN_SEQUENCES

    return [(seq, EVAL_BASE + 1000 * s + i)
            for s, seq in enumerate((*SEQUENCES, *UNSEEN_SEQUENCES)) for i in range(per_sequence)]


def load(model_id: str, weights: Path | None):
    import torch

    from mskai.models.loaders import build_network, load_model
    from mskai.models.registry import find_model

    if weights is None:
        entry = find_model(model_id)
        return load_model(entry, "cpu"), entry
    entry = find_model(MODELS[0])  # unregistered weights: v1's architecture and labels
    model = build_network(entry.architecture)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval(), entry


def score(models: dict, paths: list[Path], bone_cleanup: bool = False) -> dict:
    """``{model: {sequence: {label: [Dice per case]}}}``; with ``bone_cleanup`` also
    ``{model + CLEANED: ...}``: the same prediction after CartilageQuant's bone-leak removal."""
    import torch

    runs = [*models, *(n + CLEANED for n in models if bone_cleanup)]
    out: dict = {name: {} for name in runs}
    with torch.no_grad():
        for path in paths:
            image, truth = load_case(path)
            sequence = path.name.split("_")[0]
            for name, (model, entry) in models.items():
                pred = predict(model, image, keep_largest=True)
                preds = {name: pred}
                if bone_cleanup:
                    preds[name + CLEANED] = clean_bones(pred, entry.labels)
                for run, labels in preds.items():
                    cell = out[run].setdefault(sequence, {})
                    for value, label in entry.labels.items():
                        cell.setdefault(label, []).append(round(dice(labels, truth, value), 4))
            print(path.name, {n: {k: v[-1] for k, v in out[n][sequence].items()}
                              for n in runs}, flush=True)
    return out


def clean_bones(pred: np.ndarray, labels: dict[int, str]) -> np.ndarray:
    """``pred`` (``[X, Y, Z]``, 1 mm, RAS) after
    :func:`mskai.segmentation.knee_bone_cleanup.bone_core` on each bone; removed voxels
    become background."""
    from mskai.segmentation.knee_bone_cleanup import KNEE_BONES, SHAFT_SIGN, bone_core

    out = pred.copy()
    for value, name in labels.items():
        if name in KNEE_BONES and (pred == value).any():
            mask = pred == value
            shaft = np.array([0.0, 0.0, SHAFT_SIGN[name]]) if name in SHAFT_SIGN else None
            out[mask & ~bone_core(mask, np.ones(3), shaft)] = 0
    return out


def table(result: dict) -> str:
    """Markdown: one row per model and contrast, ``mean (worst)`` per label."""
    lines = []
    for name, per_seq in result.items():
        for sequence, cells in per_seq.items():
            if not lines:
                lines += ["| model | contrast | " + " | ".join(cells) + " |",
                          "|---|---|" + "---|" * len(cells)]
            values = " | ".join(f"{np.mean(v):.2f} ({min(v):.2f})" for v in cells.values())
            lines.append(f"| {name} | {sequence} | {values} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v2-weights", type=Path, help="a v2 state dict (default: shipped)")
    parser.add_argument("--per-sequence", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=MODELS, help="evaluate one model only")
    parser.add_argument("--candidate", type=Path,
                        help="also evaluate these unregistered weights (v1's architecture)")
    parser.add_argument("--bone-cleanup", action="store_true",
                        help="also score each model after CartilageQuant's bone-leak removal")
    args = parser.parse_args(argv)
    setup_paths()
    import torch

    torch.set_num_threads(args.threads)
    from mskai.models.registry import models_for_task

    registered = {e.id for e in models_for_task("knee_seg", "MR")}
    names = [args.only] if args.only else [n for n in MODELS if n in registered]
    models = {n: load(n, args.v2_weights if n == MODELS[1] else None) for n in names}
    if args.candidate is not None:
        models[CANDIDATE] = load(CANDIDATE, args.candidate)
    paths = ensure_cases(args.cache, eval_seeds(args.per_sequence))
    result = score(models, paths, args.bone_cleanup)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

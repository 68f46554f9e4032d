"""Dice of a knee model on held-out synthetic cases, per class and per sequence.

    .venv/bin/python training/knee/evaluate.py [--weights FILE] [--cache /tmp/knee_synth]

Without ``--weights`` the shipped model of the packaged manifest is evaluated (its sha256 is
verified first). Inference runs exactly as the pipeline does on the network grid: sliding
window with the manifest's patch and overlap, softmax, arg-max, and optionally the largest
connected component per label.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import DEFAULT_CACHE, ensure_cases, heldout_seeds, load_case, setup_paths

MODEL_ID = "knee_unet_v1"


def dice(pred: np.ndarray, truth: np.ndarray, label: int) -> float:
    a, b = pred == label, truth == label
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def predict(model, image: np.ndarray, patch: tuple[int, int, int] = (96, 96, 96),
            overlap: float = 0.25, keep_largest: bool = False) -> np.ndarray:
    """Label map of a normalised ``[X, Y, Z]`` image on its own grid."""
    import torch

    from mskai.inference.postprocess import keep_largest_components
    from mskai.inference.sliding import sliding_window

    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    output = sliding_window(model, tensor, patch, overlap, "cpu")
    labels = output[0].argmax(0).numpy().astype(np.uint8)
    if keep_largest:
        labels = keep_largest_components(labels, range(1, output.shape[1])).astype(np.uint8)
    return labels


def evaluate(model, paths: list[Path], labels: dict[int, str], keep_largest: bool = False,
             log=print) -> dict[str, dict[str, float]]:
    """``{sequence: {segment id: mean Dice}}`` over the cases (file names carry the sequence)."""
    import torch

    per_seq: dict[str, dict[str, list[float]]] = {}
    with torch.no_grad():
        for path in paths:
            image, truth = load_case(path)
            pred = predict(model, image, keep_largest=keep_largest)
            sequence = path.name.split("_")[0]
            scores = {name: dice(pred, truth, value) for value, name in labels.items()}
            log(f"{path.name}: " + " ".join(f"{k}={v:.3f}" for k, v in scores.items()))
            for name, value in scores.items():
                per_seq.setdefault(sequence, {}).setdefault(name, []).append(value)
    return {seq: {name: round(float(np.mean(v)), 3) for name, v in scores.items()}
            for seq, scores in per_seq.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="a state dict (default: shipped model)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--heldout-per-sequence", type=int, default=3)
    parser.add_argument("--keep-largest", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    setup_paths()
    import torch

    from mskai.models.loaders import build_network, load_model
    from mskai.models.registry import find_model

    torch.set_num_threads(args.threads)
    entry = find_model(MODEL_ID)
    if args.weights is None:
        model = load_model(entry, "cpu")
    else:
        model = build_network(entry.architecture)
        model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
        model.eval()
    paths = ensure_cases(args.cache, heldout_seeds(args.heldout_per_sequence))
    result = evaluate(model, paths, entry.labels, args.keep_largest)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

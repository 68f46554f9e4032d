"""A knee model on the benchmark's DESS-like knee: Dice against the true labels and the
anatomical checks CartilageQuant runs before measuring.

    .venv/bin/python training/knee/dess_check.py [--model knee_unet_v3] [--candidate FILE]
        [--png OUT.png]

The volume is ``Testing/benchmarks/bench_cartilage.py``'s: the real pymskt label map on a
512x512x80 grid of 0.31x0.31x1.5 mm (sagittal) with DESS-like signal and noise. It is
made from the same single label map the knee models were trained on, so it tests the
acquisition (grid, axis order, contrast), not a new anatomy. Each model is scored with
and without the bone-leak removal ``mskai cartilage`` applies after the model
(:mod:`mskai.segmentation.knee_bone_cleanup`; keys ending in ``without bone cleanup``).
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import REPO, setup_paths

# Network label -> pymskt label values of the DESS-like volume's truth.
TRUTH_VALUES = {1: (5,), 2: (6,), 3: (7,), 4: (1,), 5: (2, 3), 6: (4,)}
# Summary key suffix of a model's masks before the bone-leak removal CartilageQuant applies.
RAW = " without bone cleanup"


def dess_volume():
    """``(image, labels)`` of the benchmark's DESS-like knee."""
    sys.path.insert(0, str(REPO / "Testing" / "benchmarks"))
    from bench_cartilage import dess_like_knee

    return dess_like_knee()


def check(image, truth, masks: dict[str, np.ndarray]) -> tuple[dict, np.ndarray]:
    """Dice per structure, failed checks, and the label map (network values) of one
    model's masks."""
    from evaluate import dice

    from mskai.measure.knee_anatomy_checks import check_knee_anatomy
    from mskai.phantoms.knee_anatomy import LABELS

    labels = np.zeros(image.array.shape, np.uint8)
    for value, name in LABELS.items():
        labels[masks[name]] = value
    true = np.zeros_like(labels)
    for value, sources in TRUTH_VALUES.items():
        true[np.isin(truth.array, sources)] = value
    checks = check_knee_anatomy(masks, image, list(LABELS.values()))
    ml = image.voxel_volume_mm3 / 1000.0
    return {"dice": {LABELS[v]: round(dice(labels, true, v), 3) for v in LABELS},
            "volume_ml_model_truth": {LABELS[v]: (round(float((labels == v).sum()) * ml, 2),
                                                  round(float((true == v).sum()) * ml, 2))
                                      for v in LABELS},
            "failed_checks": [f"{c.structure}: {c.problem}" for c in checks if not c.passed]
            }, labels


def overlay(image, truth_labels: np.ndarray, runs: dict[str, np.ndarray], path: Path) -> None:
    """Sagittal slices (medial, central, lateral) with each model's labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slices = [int(f * image.array.shape[0]) for f in (0.35, 0.5, 0.65)]
    rows = {"truth": truth_labels, **runs}
    fig, axes = plt.subplots(len(rows), len(slices), figsize=(3.2 * len(slices),
                                                               3.2 * len(rows)))
    for r, (name, labels) in enumerate(rows.items()):
        for c, k in enumerate(slices):
            ax = axes[r, c]
            ax.imshow(image.array[k], cmap="gray")
            ax.imshow(np.ma.masked_equal(labels[k], 0), cmap="tab10", vmin=0, vmax=9,
                      alpha=0.45, interpolation="nearest")
            ax.set_title(f"{name}, slice {k}", fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["knee_unet_v2"])
    parser.add_argument("--candidate", type=Path, help="unregistered weights to check")
    parser.add_argument("--png", type=Path, help="overlay of the sagittal slices")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    setup_paths()
    import torch
    from real_knee import segment

    from mskai.segmentation.knee_bone_cleanup import remove_bone_leaks

    torch.set_num_threads(args.threads)
    image, truth = dess_volume()
    runs = [(m, None) for m in args.models]
    if args.candidate is not None:
        runs.append(("candidate", args.candidate))
    summary, maps = {}, {}
    for name, weights in runs:
        masks = segment(image, name, weights, cleanup=False)
        summary[name + RAW], _ = check(image, truth, masks)
        start = time.perf_counter()
        masks = remove_bone_leaks(masks, image)
        seconds = time.perf_counter() - start
        summary[name], maps[name] = check(image, truth, masks)
        summary[name]["bone_cleanup_s"] = round(seconds, 2)
    if args.png is not None:
        true = np.zeros(image.array.shape, np.uint8)
        for value, sources in TRUTH_VALUES.items():
            true[np.isin(truth.array, sources)] = value
        overlay(image, true, maps, args.png)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

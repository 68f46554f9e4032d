"""Where the knee model's cartilage volume bias arises on the benchmark's DESS-like knee,
and what a per-class logit bias does to it (report only: nothing is chosen on this volume).

    .venv/bin/python training/knee/dess_bias.py [--model knee_unet_v3] [--bias 4=-1.0 ...]

For each cartilage plate: the truth's volume; the model's volume on its 1 mm working grid
(arg-max before any resampling); the volume after the probabilities are resampled onto the
0.31x0.31x1.5 mm image grid (what ``mskai cartilage`` measures); the same with the bias.
Also the mean thickness (``mskai.measure``, as ``real_knee.measure``) and Dice. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import setup_paths
from dess_check import TRUTH_VALUES, dess_volume

CARTILAGE = {4: "femoral_cartilage", 5: "tibial_cartilage", 6: "patellar_cartilage"}


def parse_bias(items: list[str]) -> dict[int, float]:
    return {int(k): float(v) for k, v in (item.split("=") for item in items)}


def run(model_id: str, bias: dict[int, float] | None) -> dict:
    import torch
    from evaluate import dice
    from real_knee import measure

    from mskai.inference.pipeline import activate, apply_logit_bias, class_logit_bias
    from mskai.inference.postprocess import keep_largest_components, postprocess
    from mskai.inference.preprocess import preprocess
    from mskai.inference.sliding import sliding_window
    from mskai.models.loaders import load_model
    from mskai.models.registry import find_model

    entry = find_model(model_id)
    shipped = class_logit_bias(entry)
    variants = {"none": {}, "shipped": shipped}
    if bias:
        variants["given"] = bias
    image, truth_volume = dess_volume()
    true = np.zeros(image.array.shape, np.uint8)
    for value, sources in TRUTH_VALUES.items():
        true[np.isin(truth_volume.array, sources)] = value
    ml = image.voxel_volume_mm3 / 1000.0
    tensor, context = preprocess(image, entry.input)
    with torch.no_grad():
        probs = activate(sliding_window(load_model(entry, "cpu"), tensor, entry.input.patch_size,
                                        entry.input.overlap, "cpu"), entry.activation)[0].numpy()
    result = {"truth_ml": {n: round(float((true == c).sum()) * ml, 2)
                           for c, n in CARTILAGE.items()},
              "truth_thickness_mm": _thickness(true, image, measure)}
    for tag, b in variants.items():
        p = apply_logit_bias(probs, b)
        grid = keep_largest_components(p.argmax(0).astype(np.uint16), range(1, p.shape[0]))
        labels = postprocess(p, context, image, keep_largest=True)
        result[tag] = {
            "bias": b,
            "model_grid_ml": {n: round(float((grid == c).sum()) * float(
                np.prod(context.grid.spacing)) / 1000.0, 2) for c, n in CARTILAGE.items()},
            "image_grid_ml": {n: round(float((labels == c).sum()) * ml, 2)
                              for c, n in CARTILAGE.items()},
            "dice": {n: round(dice(labels, true, c), 3) for c, n in
                     {1: "femur", 2: "tibia", 3: "patella", **CARTILAGE}.items()},
            "thickness_mm": _thickness(labels, image, measure)}
        print(tag, json.dumps(result[tag]), flush=True)
    return result


def _thickness(labels: np.ndarray, image, measure) -> dict:
    from mskai.phantoms.knee_anatomy import LABELS

    masks = {name: labels == value for value, name in LABELS.items()}
    return {k: v.get("mean_thickness_mm") for k, v in measure(masks, image).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="knee_unet_v3")
    parser.add_argument("--bias", nargs="*", default=[], help="CLASS=BIAS, e.g. 4=-1.0")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    setup_paths()
    import torch

    torch.set_num_threads(1)
    result = run(args.model, parse_bias(args.bias))
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Dice of the HU method, the bone UNet and their combinations on the held-out cases.

Usage::

    .venv/bin/python training/bone/evaluate.py \
        --weights MSKAIExtension/mskai/models/weights/bone_ct_unet_v1.pt \
        --json training/bone/eval.json

The network runs through the same code as the task
(:func:`mskai.segmentation.bone_model.network_mask`, given the HU mask). TPTBox Dice is
restricted to 3 voxels around its labelled vertebra (the crop holds more bone than is
labelled), as in Testing/test_bone_ct.py. The training slab of example_ct is reported
too, marked as such.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b),
                                                    1))


def temporary_entry(weights: Path, combine: str = "none"):
    """A manifest entry for weights that are not registered yet."""
    from mskai.models.manifest import parse_entry, sha256_path
    from mskai.segmentation.bone_model import ARCHITECTURE, INPUT

    return parse_entry({"id": "bone_ct_unet", "version": "dev", "task": "bone_seg",
                        "modality": "CT", "format": "state_dict", "architecture": ARCHITECTURE,
                        "file": weights.name, "sha256": sha256_path(weights), "input": INPUT,
                        "output": {"activation": "softmax", "combine_with_hu": combine},
                        "labels": {"1": "bone"}}, weights.parent)


def evaluate(weights: Path) -> dict[str, dict[str, float]]:
    import torch
    from cases import TRAIN_LAST_SLICE, _example_ct, _slab, evaluation_cases

    from mskai.models.loaders import load_model
    from mskai.segmentation.bone_ct import segment_bone_ct
    from mskai.segmentation.bone_model import network_mask

    torch.set_num_threads(1)
    entry = temporary_entry(weights)
    model = load_model(entry)
    volume, mask = _example_ct()
    cases = [*evaluation_cases(), _slab(volume, mask, 0, TRAIN_LAST_SLICE,
                                        "TRAINING_example_ct_k0-51")]
    table: dict[str, dict[str, float]] = {}
    for case in cases:
        hu = segment_bone_ct(case.volume, refine=False)  # the network's input
        net = network_mask(case.volume, entry, hu, model=model)
        near = case.near if case.near is not None else np.ones(hu.shape, dtype=bool)
        ref = case.mask
        table[case.name] = {"hu": dice(hu & near, ref), "model": dice(net & near, ref),
                            "union": dice((hu | net) & near, ref),
                            "intersection": dice(hu & net & near, ref)}
        print(case.name, {k: round(v, 3) for k, v in table[case.name].items()}, flush=True)
    return table


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    sys.path.insert(0, str(HERE))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    table = evaluate(args.weights.resolve())
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()

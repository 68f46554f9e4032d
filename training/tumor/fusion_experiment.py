"""Experiment (not adopted): the network's probability as a prior in the classic method.

Usage::

    .venv/bin/python training/tumor/fusion_experiment.py --weights-dir /tmp/tumor_v2 \
        --out /tmp/tumor_v2/fusion.jsonl

One click at the expert mask's most interior voxel, on every CT and T1 MR volume of the 36
patients of ``folds.json``; each volume's network is its fold's model
(``<weights-dir>/r2_fold<f>.pt``, trained without that patient; see README.md here). Per
volume: Dice of the classic method, of the network alone, and of the fused map
``a * p_classic + (1 - a) * p_network > 0.5`` (kept where connected to the click, closed
and hole-filled as the classic method's result, without its native-grid edge step), for a
in ``WEIGHTS``. ``p_classic`` is the
classic method's ``d_bg / (d_fg + d_bg)`` map (``mskai.interactive.region``) on the crop it
settled on, interpolated to the native grid.

Why it was tried: the two fail on different tumours (the network is drawn to the training
set's typical size, 200-400 mL, while the classic region stops inside large heterogeneous
tumours). Result: model card ``tumor_refine_unet_v2.md``, "Fusion with the classic method".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from cache import HERE, REPO, real_volumes  # training/tumor/cache.py, beside this script

WEIGHTS = (0.6, 0.7, 0.8)


def classic_soft(volume, pos: np.ndarray, modality: str) -> np.ndarray:
    """The classic method's tumour probability on the native grid (0 outside its crop)."""
    from scipy import ndimage

    from mskai.interactive import region
    from mskai.interactive import segment as classic
    from mskai.interactive.priors import never_tumour

    shape = np.array(volume.array.shape[:3])
    spacing = tuple(reversed(volume.spacing))
    box = None
    for margin in classic.MARGINS_MM:    # the crop segment_from_prompts settles on
        box = classic._box_around(volume, pos, margin)
        mask = classic._segment_box(volume, box, pos, np.zeros((0, 3), int), modality)
        if not classic._touches_open_border(mask, box, shape, spacing):
            break
    grid = classic._work_grid(volume, box, modality)
    pos_w = grid.to_work(pos - box[0])
    level, _ = region.tumour_model(grid.image, pos_w[:1], grid.spacing)
    prob = region.geodesic_probability(grid, pos_w, np.zeros((0, 3), int),
                                       never=never_tumour(grid.image, modality, level),
                                       full_map=True)
    coords = [(np.arange(n) + 0.5) / f - 0.5 for n, f in zip(grid.crop_shape, grid.factors,
                                                                strict=True)]
    values = ndimage.map_coordinates(prob, np.meshgrid(*coords, indexing="ij"), order=1,
                                     mode="nearest")
    out = np.zeros(tuple(shape), np.float32)
    lo, hi = box
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = values
    return out


def network_prob(volume, pos: np.ndarray, modality: str, model) -> np.ndarray:
    """The network's probability from one click on the native grid (0 outside its crop)."""
    from mskai.interactive import learned

    none = np.zeros((0, 3))
    crop = learned.crop_for(volume, pos, none.astype(int), None)
    pos_w = crop.to_work(pos)
    channels = learned.image_channels(crop.sample(volume.array), modality == "CT", pos_w[0])
    prob = learned.predict(model, learned.network_input(channels, pos_w, none, None))
    native, (lo, hi) = crop.to_native(prob)
    out = np.zeros(volume.array.shape[:3], np.float32)
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = native
    return out


def evaluate(volume, truth: np.ndarray, modality: str, model) -> dict[str, float]:
    from mskai.interactive import region
    from mskai.interactive.clicks import deepest_voxel
    from mskai.interactive.evaluate import dice
    from mskai.interactive.learned import _keep_clicked
    from mskai.interactive.prompts import Prompts
    from mskai.interactive.segment import segment_from_prompts

    spacing = tuple(reversed(volume.spacing))
    pos = deepest_voxel(truth, spacing)[None]
    soft, net = classic_soft(volume, pos, modality), network_prob(volume, pos, modality, model)
    ras = tuple(float(v) for v in volume.index_to_ras(pos[0].astype(float)[::-1]))
    out = {"classic": segment_from_prompts(volume, Prompts(positive_ras=[ras])),
           "network": _keep_clicked(net > 0.5, pos)}
    for a in WEIGHTS:
        out[f"fused_{a}"] = region.clean(a * soft + (1 - a) * net > 0.5, pos, spacing)
    return {name: round(dice(mask, truth), 3) for name, mask in out.items()}


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    import torch

    from mskai.interactive.learned import ARCHITECTURE
    from mskai.models.loaders import build_network

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights-dir", type=Path, default=Path("/tmp/tumor_v2"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folds = json.loads((HERE / "folds.json").read_text())["folds"]
    rows = []
    for fold, cases in enumerate(folds):
        model = build_network(ARCHITECTURE)
        model.load_state_dict(torch.load(args.weights_dir / f"r2_fold{fold}.pt",
                                         weights_only=True))
        model.eval()
        for case, modality, volume, truth in real_volumes(sorted(cases)):
            row = {"case": case, "modality": modality, "fold": fold,
                   **evaluate(volume, truth, modality, model)}
            rows.append(row)
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    for modality in ("CT", "MR"):
        sel = [r for r in rows if r["modality"] == modality]
        names = [k for k in sel[0] if k not in ("case", "modality", "fold")]
        print(modality, len(sel), " ".join(
            f"{k} {np.mean([r[k] for r in sel]):.3f} (worst {min(r[k] for r in sel):.3f})"
            for k in names))


if __name__ == "__main__":
    main()

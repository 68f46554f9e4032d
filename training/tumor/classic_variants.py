"""Experiment (not adopted): variants of the classic method's geodesic competition, one click.

Usage::

    .venv/bin/python training/tumor/classic_variants.py [--variants base,mr12,bz3] \
        [--cases STS_001,STS_022]

One click at the expert mask's most interior voxel, through ``segment_from_prompts`` (crop
growth, native-grid edge step and clean-up unchanged), with
``mskai.interactive.region.geodesic_probability`` replaced by a copy that takes the options
of ``VARIANTS``: ``params`` overrides ``MethodParams`` fields; ``border_z`` keeps only crop
border seeds whose robust z-score to the tumour is at least that; ``edge_floor`` normalises
the edge term by at least that fraction of the crop's 10-90 % intensity spread;
``bg_like`` makes the background front pay that much per unit of z below ``bg_like_z`` (3).
Prints per volume Dice / (volume ÷ expert volume), then per modality mean (worst) Dice.
Results: model card ``tumor_refine_unet_v2.md``, "Fusion with the classic method".
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from cache import HERE, REPO, real_volumes  # training/tumor/cache.py, beside this script

VARIANTS: dict[str, dict] = {
    "base": {},
    "mr12": {"params": {"model_radius_mm": 12.0}},
    "lz3": {"params": {"like_z": 3.0}},
    "lz5": {"params": {"like_z": 5.0}},
    "uw1": {"params": {"unlike_weight": 1.0}},
    "uw0": {"params": {"unlike_weight": 0.0}},
    "ew8": {"params": {"edge_weight": 8.0}},
    "ew32": {"params": {"edge_weight": 32.0}},
    "bz3": {"border_z": 3.0},
    "ef05": {"edge_floor": 0.05},
    "bgl1": {"bg_like": 1.0},
}


def variant_probability(options: dict):
    """A drop-in for ``region.geodesic_probability`` with the experiment's options."""
    from skimage.graph import MCP_Geometric

    from mskai.errors import InputError
    from mskai.interactive import region

    def probability(grid, pos, neg, params=None, never=None):
        p = params or region.MethodParams()
        for key, value in options.get("params", {}).items():
            setattr(p, key, value)
        sp = grid.spacing
        unlike, edge = region._unlike_and_edge(grid, pos, p)
        if "edge_floor" in options:
            spread = float(np.subtract(*np.percentile(grid.image, [90, 10])))
            sigma = region.tumour_model(grid.image, pos[:1], sp, p.model_radius_mm)[1]
            edge = edge * sigma / max(sigma, options["edge_floor"] * spread)
        near_pos = region.seed_ball_mask(unlike.shape, pos, p.far_exclusion_mm, sp)
        bg = (unlike >= p.far_z) & ~near_pos
        border = np.ones(unlike.shape, dtype=bool)
        border[1:-1, 1:-1, 1:-1] = False
        if "border_z" in options:
            border &= unlike >= options["border_z"]
        bg |= border & ~near_pos
        bg |= region.seed_ball_mask(unlike.shape, neg, min(p.seed_radius_mm, 3.0), sp)
        if never is not None:
            bg |= never
        if not bg.any():
            raise InputError("no background seeds")
        fg = region.seed_ball_mask(unlike.shape, pos, p.seed_radius_mm, sp) & ~bg
        fg &= unlike < p.far_z
        fg[tuple(pos.T)] = True
        base = 1.0 + p.edge_weight * edge
        cost_fg = base + p.unlike_weight * np.maximum(unlike - p.like_z, 0)
        cost_bg = base
        if "bg_like" in options:
            cost_bg = base + options["bg_like"] * np.maximum(3.0 - unlike, 0)
        d_fg = MCP_Geometric(cost_fg, sampling=sp).find_costs(np.argwhere(fg))[0]
        d_bg = MCP_Geometric(cost_bg, sampling=sp).find_costs(np.argwhere(bg))[0]
        return (d_bg / np.maximum(d_fg + d_bg, 1e-6)).astype(np.float32)

    return probability


def one_click(volume, truth: np.ndarray, options: dict) -> np.ndarray:
    from mskai.errors import InputError
    from mskai.interactive import region
    from mskai.interactive import segment as classic
    from mskai.interactive.clicks import deepest_voxel
    from mskai.interactive.prompts import Prompts

    kji = deepest_voxel(truth, tuple(reversed(volume.spacing)))
    ras = tuple(float(v) for v in volume.index_to_ras(kji.astype(float)[::-1]))
    original = region.geodesic_probability
    region.geodesic_probability = variant_probability(options)
    classic.forget_prepared_crops()
    try:
        return classic.segment_from_prompts(volume, Prompts(positive_ras=[ras]))
    except InputError:
        return np.zeros_like(truth)
    finally:
        region.geodesic_probability = original


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    from mskai.interactive.evaluate import dice

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--cases", default="")
    args = parser.parse_args()
    names = args.variants.split(",")
    folds = json.loads((HERE / "folds.json").read_text())["folds"]
    cases = args.cases.split(",") if args.cases else sorted(c for f in folds for c in f)
    rows = []
    for case, modality, volume, truth in real_volumes(cases):
        row = {"case": case, "modality": modality}
        for name in names:
            mask = one_click(volume, truth, VARIANTS[name])
            row[name] = (dice(mask, truth), float(mask.sum() / truth.sum()))
        rows.append(row)
        print(case, modality, " ".join(f"{n} {row[n][0]:.2f}/{row[n][1]:.1f}" for n in names),
              flush=True)
    for modality in ("CT", "MR"):
        sel = [r for r in rows if r["modality"] == modality]
        if sel:
            print(modality, len(sel), " ".join(
                f"{n} {np.mean([r[n][0] for r in sel]):.3f} ({min(r[n][0] for r in sel):.3f})"
                for n in names))


if __name__ == "__main__":
    main()

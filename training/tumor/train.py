"""Train the click-refinement UNet (``tumor_refine_unet``) on synthetic tumours.

Usage (about 20 minutes on 2 CPU cores)::

    .venv/bin/python training/tumor/train.py --out MSKAIExtension/mskai/models/weights/

Writes ``tumor_refine_unet_v1.pt`` (a state dict) into ``--out`` and a summary JSON (the
architecture, the steps and the time taken) next to ``--info``. Synthetic samples are cached as
``--cache`` (.npz, built on first use). ``--real STS_001,STS_002`` adds those real cases
(IBSI STS, ../shared/data) to the pool, for leave-one-case-out experiments; the shipped
model uses none. See README.md for the data, the settings used and the measured results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ARCHITECTURE = {"type": "monai.UNet",
                "kwargs": {"spatial_dims": 3, "in_channels": 4, "out_channels": 1,
                           "channels": [16, 32, 64, 128], "strides": [2, 2, 2],
                           "num_res_units": 1}}


def real_pool(cases: list[str]) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Real CT and T1 MR volumes of ``cases`` on the working grid around their tumour."""
    from mskai.image import read_image
    from mskai.interactive.clicks import deepest_voxel
    from mskai.interactive.learned import BASE_SHAPE, GRID_SPACING, Crop

    data = REPO.parent / "shared" / "data" / "sts_sarcoma"
    out = []
    for case in cases:
        for series in ("CT", "MR_T1"):
            volume = read_image(data / case / f"{series}_image.nii.gz")
            mask = read_image(data / case / f"{series}_mask.nii.gz").array > 0
            centre = deepest_voxel(mask, tuple(reversed(volume.spacing)))
            crop = Crop(volume, centre, np.array(BASE_SHAPE) * GRID_SPACING)
            image = crop.sample(volume.array)
            truth = crop.sample(mask.astype(np.float32)) > 0.5
            out.append((image.astype(np.float32), truth, series == "CT"))
    return out


def batch(pool, rng, size: int, model, use_own: float, single: bool = False):
    """A batch of inputs and targets; some refinement states come from ``model`` itself.

    ``single``: perturbed current masks have one clicked error (:func:`perturb_single`).
    """
    import torch
    from samples import first_click, make_sample, perturb, perturb_single

    from mskai.interactive.learned import network_input, normalise, predict

    xs, ys = [], []
    for _ in range(size):
        image, truth, is_ct = pool[rng.integers(len(pool))]
        c0 = first_click(truth, rng, jitter=0.3)
        r = rng.random()
        if r < 0.35:
            current = None
        elif r < 0.35 + use_own and model is not None:
            norm = normalise(image, is_ct, c0)
            model.eval()
            current = predict(model, network_input(norm, c0[None], np.zeros((0, 3)),
                                                   None)) > 0.5
            model.train()
        else:
            current = perturb_single(truth, rng) if single else perturb(truth, rng)
        x, y = make_sample(image, truth, is_ct, rng, current, c0, extra=0.0 if single else 0.3)
        xs.append(x)
        ys.append(y)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def validate(model, pool) -> float:
    """Mean Dice of the first click (deepest voxel) on held-out samples."""
    from mskai.interactive.clicks import deepest_voxel
    from mskai.interactive.evaluate import dice
    from mskai.interactive.learned import GRID_SPACING, network_input, normalise, predict

    model.eval()
    scores = []
    for image, truth, is_ct in pool:
        c0 = deepest_voxel(truth, GRID_SPACING)
        x = network_input(normalise(image, is_ct, c0), c0[None], np.zeros((0, 3)), None)
        scores.append(dice(predict(model, x) > 0.5, truth))
    model.train()
    return float(np.mean(scores))


def run_phase(model, pool, held_out, rng, args, steps: int, lr: float, single: bool,
              start: float) -> int:
    """``steps`` optimiser steps with a one-cycle schedule; returns the steps done."""
    import torch
    from monai.losses import DiceLoss

    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=steps,
                                                   pct_start=0.1)
    dice_loss, bce = DiceLoss(sigmoid=True), torch.nn.BCEWithLogitsLoss()
    losses = []
    step = 0
    for step in range(1, steps + 1):
        use_own = 0.25 if single or step > steps * 0.3 else 0.0
        x, y = batch(pool, rng, args.batch, model, use_own, single)
        logits = model(x)
        loss = dice_loss(logits, y) + bce(logits, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
        minutes = (time.perf_counter() - start) / 60
        if step % 50 == 0 or step == steps:
            line = f"step {step} loss {np.mean(losses[-50:]):.3f} {minutes:.1f} min"
            if step % 200 == 0 or step == steps:
                line += f" held-out first-click Dice {validate(model, held_out):.3f}"
            print(line, flush=True)
        if minutes > args.max_minutes:
            print(f"stopping at the time limit after {step} steps", flush=True)
            break
    return step


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    sys.path.insert(0, str(HERE))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tumor_train/synth_1000.npz"))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--refine-steps", type=int, default=300,
                        help="then this many steps at half the rate with single-error masks")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=1,
                        help="1 was 4x faster per step than 2 on 2 cores shared with another job")
    parser.add_argument("--max-minutes", type=float, default=25.0)
    parser.add_argument("--real", default="", help="comma-separated STS cases to add")
    parser.add_argument("--init", type=Path, default=None, help="start from these weights")
    parser.add_argument("--name", default="tumor_refine_unet_v1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--info", type=Path, default=Path("/tmp/tumor_train/info.json"),
                        help="where the run's summary JSON goes (its name becomes --name)")
    args = parser.parse_args()
    train(args)


def train(args: argparse.Namespace) -> None:
    import torch
    from synthesize import build_cache, load_cache, synth_case

    from mskai.models.loaders import build_network

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    if not args.cache.is_file():
        build_cache(args.cache, args.samples)
    images, masks, is_ct = load_cache(args.cache)
    pool = [(images[n], masks[n], bool(is_ct[n])) for n in range(len(images))]
    real = [c for c in args.real.split(",") if c]
    if real:
        pool += real_pool(real) * max(1, len(pool) // 20)   # about 1 in 4 samples real
    held_out = [synth_case(10**6 + n) for n in range(16)]
    held_out = [(im, m, mod == "CT") for im, m, mod in held_out]
    print(f"pool {len(pool)} (real cases: {real or 'none'}), data ready in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    model = build_network(ARCHITECTURE)
    if args.init is not None:
        model.load_state_dict(torch.load(args.init, weights_only=True))
    done = run_phase(model, pool, held_out, rng, args, args.steps, args.lr, False,
                     start) if args.steps else 0
    if args.refine_steps:
        print("phase 2: single-error current masks", flush=True)
        done += run_phase(model, pool, held_out, rng, args, args.refine_steps, args.lr / 2,
                          True, start)
    step = done
    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / f"{args.name}.pt"
    torch.save(model.state_dict(), weights)
    info = {"architecture": ARCHITECTURE, "steps": step, "batch": args.batch,
            "init": None if args.init is None else str(args.init),
            "minutes": round((time.perf_counter() - start) / 60, 1), "real_cases": real,
            "synthetic_samples": len(images),
            "held_out_first_click_dice": validate(model, held_out)}
    args.info.parent.mkdir(parents=True, exist_ok=True)
    args.info.with_name(f"{args.name}.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {weights}: {json.dumps(info)}", flush=True)


if __name__ == "__main__":
    main()

"""Train the click-conditioned tumour UNet (``tumor_refine_unet`` v3) on the real STS cases.

Usage (one fold of the cross-validation, or the shipped model on all 36 patients)::

    .venv/bin/python training/tumor/cache.py                      # once, ~15 s
    .venv/bin/python training/tumor/train.py --fold 0 --steps 2500 --own 0.5 --seed 2 \
        --init /tmp/tumor_v2/r2_fold0.pt --out /tmp/tumor_v3/fold0.pt

``--fold k`` trains on every patient of ``folds.json`` except fold k; ``--fold -1`` on all.
The shipped v3 recipe: v2's two rounds, then 2500 steps on the 4 x 3 x 3 mm grid from the
v2 weights of the same fold (README.md, "Reproduce").
Uses the GPU when ``torch.cuda.is_available()``; on CPU, ``--threads`` torch threads. Seeds
are fixed (``--seed``). See README.md for the recipe and what was actually run.

Each sample is a random patch (``PATCH`` voxels of the 3 x 2 x 2 mm working grid) around the
first click, from one cached CT or T1 MR volume, with augmentation (per-axis spacing scale
0.8-1.25, flips on all axes, in-plane transposition, intensity: CT HU offset/scale/noise; MR
gamma, scale x0.3-3, linear bias field, noise) and a simulated click state, DeepEdit style:

- first click only (no current mask): the most interior voxel (sometimes a deep-ish random
  one);
- a perturbed current mask (grown/shrunk, leak, missing chunk, stray blob) plus the clicks
  the protocol would give: each at the deepest point of the largest error region;
- the network's own prediction: 1-3 no-grad rounds (predict, click at the largest error,
  feed the prediction back as the current mask), as in DeepEdit / nnInteractive.
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
sys.path.insert(0, str(REPO / "MSKAIExtension"))
sys.path.insert(0, str(HERE))

PATCH = (24, 48, 48)   # 96 x 144 x 144 mm on the 4 x 3 x 3 mm grid (v2: 32 x 64 x 64 on 3 x 2 x 2)
# v1: trained on synthetic tumours only (no real image), so starting from it leaks nothing
V1_WEIGHTS = REPO / "MSKAIExtension" / "mskai" / "models" / "weights" / "tumor_refine_unet_v1.pt"
V1_CHANNELS = (0, 3, 4, 5)   # v1's image, positive, negative, mask -> v2's input channels


def initial_weights(path: Path) -> dict:
    """A state dict for the v2 network from ``path`` (a state dict, or a TorchScript export
    of one); v1's 4 input channels are mapped onto the v2 channels (relative image, clicks,
    mask), the new ones (absolute image, modality flag) start at zero, so the start is
    exactly v1's behaviour."""
    import torch

    from mskai.interactive.learned import IN_CHANNELS
    from mskai.models.loaders import is_torchscript, jit_load

    if is_torchscript(path):   # a TorchScript export (v5 and v6 first shipped as one)
        state = dict(jit_load(path, "cpu").state_dict())
    else:
        state = torch.load(path, weights_only=True)
    for key, value in state.items():
        if value.ndim == 5 and value.shape[1] == len(V1_CHANNELS) != IN_CHANNELS:
            grown = torch.zeros((value.shape[0], IN_CHANNELS, *value.shape[2:]), dtype=value.dtype)
            grown[:, list(V1_CHANNELS)] = value
            state[key] = grown
    return state


def first_click(vol: dict, rng) -> np.ndarray:
    """The most interior voxel (60 %) or a random one at least 60 % as deep (the distance
    map is computed once per volume)."""
    from scipy import ndimage

    from mskai.interactive.learned import GRID_SPACING

    if "_deep" not in vol:
        dist = ndimage.distance_transform_edt(np.pad(vol["mask"], 1), sampling=GRID_SPACING)[
            1:-1, 1:-1, 1:-1]
        vol["_c0"] = np.array(np.unravel_index(int(np.argmax(dist)), dist.shape))
        vol["_deep"] = np.argwhere(dist >= 0.6 * dist.max())
    if rng.random() < 0.6:
        return vol["_c0"]
    return vol["_deep"][rng.integers(len(vol["_deep"]))]


def augment_intensity(x: np.ndarray, is_ct: bool, rng) -> np.ndarray:
    if is_ct:
        x = x * rng.uniform(0.95, 1.05) + rng.normal(0, 15)
        return x + rng.normal(0, rng.uniform(0, 15), x.shape).astype(np.float32)
    hi = max(float(np.percentile(x, 99.5)), 1e-3)
    x = np.clip(x, 0, None) / hi
    x = x ** rng.uniform(0.7, 1.4)
    grad = [np.linspace(-1, 1, n).reshape([-1 if a == d else 1 for a in range(3)])
            for d, n in enumerate(x.shape)]
    bias = 1 + sum(g * rng.uniform(-0.15, 0.15) for g in grad)
    x = x * bias + rng.normal(0, rng.uniform(0, 0.03), x.shape)
    return (x * hi * rng.uniform(0.3, 3.0)).astype(np.float32)


def extract(vol: dict, rng, aug: bool, patch: tuple[int, int, int] = PATCH):
    """Image and truth patch (raw units), the first click in patch coordinates."""
    from scipy import ndimage

    image, mask = vol["image"], vol["mask"]
    click = first_click(vol, rng)
    scale = np.ones(3)
    if aug:
        s = rng.uniform(0.8, 1.25)
        scale = np.array([rng.uniform(0.8, 1.25), s, s * rng.uniform(0.95, 1.05)])
    size = np.array(patch)
    offset = rng.uniform(-0.3, 0.3, 3) * size if aug else np.zeros(3)
    centre = click + offset * scale
    coords = [centre[d] + (np.arange(size[d]) - (size[d] - 1) / 2) * scale[d] for d in range(3)]
    grid = np.meshgrid(*coords, indexing="ij")
    img = ndimage.map_coordinates(image, grid, order=1, mode="nearest")
    tru = ndimage.map_coordinates(mask.astype(np.float32), grid, order=1, mode="constant") > 0.5
    c = np.clip(np.round((click - centre) / scale + (size - 1) / 2).astype(int), 0, size - 1)
    if not tru[tuple(c)]:
        found = np.argwhere(tru)
        if len(found):
            c = found[np.argmin(((found - c) ** 2).sum(1))]
    if aug:
        for axis in range(3):
            if rng.random() < 0.5:
                img, tru = np.flip(img, axis), np.flip(tru, axis)
                c[axis] = size[axis] - 1 - c[axis]
        if rng.random() < 0.5:
            img, tru = img.transpose(0, 2, 1), tru.transpose(0, 2, 1)
            c = c[[0, 2, 1]]
        img = augment_intensity(np.ascontiguousarray(img), vol["modality"] == "CT", rng)
    return np.ascontiguousarray(img, dtype=np.float32), np.ascontiguousarray(tru), c


def add_error_click(current, truth, pos, neg) -> bool:
    from mskai.interactive.clicks import next_click
    from mskai.interactive.learned import GRID_SPACING

    click = next_click(current, truth, GRID_SPACING)
    if click is None:
        return False
    (pos if click[1] else neg).append(click[0])
    return True


def make_batch(pool, rng, size: int, model, own: float, device, first: float | None = None,
               patch: tuple[int, int, int] = PATCH):
    """Inputs and targets of one batch with simulated click states (see the module doc).

    ``own``: share of samples refined from the network's own prediction; ``first``: share
    of first-click samples (no current mask; None: 45 % of what ``own`` leaves, the v3/v4
    recipe); the rest start from a perturbed current mask."""
    import torch
    from samples import perturb, perturb_single

    from mskai.interactive.learned import image_channels, network_input

    items = []
    for _ in range(size):
        vol = pool[rng.integers(len(pool))]
        img, truth, c0 = extract(vol, rng, aug=True, patch=patch)
        chans = image_channels(img, vol["modality"] == "CT", c0)
        item = {"chans": chans, "truth": truth, "pos": [c0], "neg": [], "current": None,
                "rounds": 0}
        r = rng.random()
        if r < own and model is not None:
            item["rounds"] = int(rng.integers(1, 4))
        elif r < 1 - (first if first is not None else (1 - own) * 0.45):
            cur = perturb_single(truth, rng) if rng.random() < 0.5 else perturb(truth, rng)
            for _ in range(int(rng.integers(1, 3))):
                add_error_click(cur, truth, item["pos"], item["neg"])
            item["current"] = cur
        items.append(item)
    rounds = max(it["rounds"] for it in items)
    if rounds:
        model.eval()
        for n in range(rounds):
            active = [it for it in items if it["rounds"] > n]
            x = np.stack([network_input(it["chans"], np.array(it["pos"]),
                                        np.array(it["neg"]).reshape(-1, 3), it["current"])
                          for it in active])
            with torch.no_grad():
                prob = torch.sigmoid(model(torch.from_numpy(x).to(device)))[:, 0].cpu().numpy()
            for it, p in zip(active, prob, strict=True):
                it["current"] = p > 0.5
                add_error_click(it["current"], it["truth"], it["pos"], it["neg"])
        model.train()
    x = np.stack([network_input(it["chans"], np.array(it["pos"]),
                                np.array(it["neg"]).reshape(-1, 3), it["current"])
                  for it in items])
    y = np.stack([it["truth"][None].astype(np.float32) for it in items])
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, required=True, help="held-out fold; -1: none")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tumor_v3/cache.npz"))
    parser.add_argument("--modalities", default="CT,MR")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--own", type=float, default=0.35,
                        help="share of samples whose current mask is the network's own")
    parser.add_argument("--first-click", type=float, default=None,
                        help="share of first-click samples (no current mask); default: 45 %% "
                             "of the samples --own leaves (the v3/v4 recipe)")
    parser.add_argument("--patch", default=",".join(map(str, PATCH)),
                        help="training patch in working-grid voxels, K,J,I")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-minutes", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=Path, default=V1_WEIGHTS,
                        help="start from these weights (4-channel v1 weights are mapped onto "
                             "the 6 input channels); 'none' to start from scratch")
    args = parser.parse_args()
    train(args)


def train(args) -> None:
    import torch
    from cache import build, load
    from monai.losses import DiceLoss

    from mskai.interactive.learned import ARCHITECTURE
    from mskai.models.loaders import build_network

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    if not args.cache.is_file():
        build(args.cache)
    folds = json.loads((HERE / "folds.json").read_text())["folds"]
    held = set() if args.fold < 0 else set(folds[args.fold])
    mods = set(args.modalities.split(","))
    pool = [v for v in load(args.cache) if v["case"] not in held and v["modality"] in mods]
    print(f"fold {args.fold}: {len(pool)} training volumes, device {device}", flush=True)
    model = build_network(ARCHITECTURE)
    if args.init is not None and str(args.init) != "none":
        model.load_state_dict(initial_weights(args.init))
    model = model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=args.steps,
                                                   pct_start=0.1)
    dice_loss, bce = DiceLoss(sigmoid=True), torch.nn.BCEWithLogitsLoss()
    patch = tuple(int(n) for n in args.patch.split(","))
    losses = []
    step = 0
    for step in range(1, args.steps + 1):
        own = args.own if step > 0.2 * args.steps else 0.0
        x, y = make_batch(pool, rng, args.batch, model, own, device, args.first_click, patch)
        logits = model(x)
        loss = dice_loss(logits, y) + bce(logits, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
        minutes = (time.perf_counter() - start) / 60
        if step % 25 == 0 or step == args.steps:
            print(f"step {step} loss {np.mean(losses[-25:]):.3f} {minutes:.1f} min", flush=True)
        if minutes > args.max_minutes:
            print(f"stopping at the time limit after {step} steps", flush=True)
            break
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, args.out)
    info = {"architecture": ARCHITECTURE, "fold": args.fold, "steps": step,
            "init": str(args.init),
            "batch": args.batch, "lr": args.lr, "own": args.own, "seed": args.seed,
            "first_click": args.first_click, "patch": patch, "training_volumes": len(pool),
            "minutes": round((time.perf_counter() - start) / 60, 1),
            "final_loss": round(float(np.mean(losses[-50:])), 4)}
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.out}: {json.dumps(info)}", flush=True)


if __name__ == "__main__":
    main()

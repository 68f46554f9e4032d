"""Train the bone segmentation UNet (``bone_ct_unet``) on the training split of cases.py.

One command (6 minutes on one shared CPU core for the shipped v1), then evaluation and
registration::

    .venv/bin/python training/bone/train.py --minutes 6 \
        --out MSKAIExtension/mskai/models/weights/bone_ct_unet_v1.pt
    .venv/bin/python training/bone/evaluate.py --weights \
        MSKAIExtension/mskai/models/weights/bone_ct_unet_v1.pt --json training/bone/eval.json
    .venv/bin/python training/bone/register.py --accuracy training/bone/eval.json \
        --combine none

Inputs are prepared exactly as at inference (``mskai.inference.preprocess`` with the
``INPUT`` spec of :mod:`mskai.segmentation.bone_model`: RAS, 3 mm, channel 1 the CT window
-500..1500 HU to 0..1, channel 2 the HU method's bone mask computed on the original
grid). Patches of 64x64x48 voxels, two thirds centred on a bone voxel; augmentation:
isotropic scaling 0.8-1.25, flips on all three axes, HU gain 0.9-1.1 and offset +-40 HU,
Gaussian noise (sd 0-30 HU) on the CT channel (the HU-mask channel is geometrically
transformed with it but computed once per case, before augmentation). Loss: Dice +
cross-entropy; AdamW, lr 2e-3 with cosine decay.
Training stops at ``--steps`` or after ``--minutes``, whichever is first; steps, time and
final loss go to ``training/bone/train_info.json``.

On a GPU machine without SimpleITK (the v2 trial, not shipped, was trained so), prepare the grids
here with ``--cache DIR --prepare-only`` and train there with the same ``--cache DIR``:
the cached ``.npz`` files hold the network-grid arrays, so only torch, numpy and MONAI
are needed. ``--workers`` samples patches in parallel processes.
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


def model_grid(case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(HU array, HU-method mask, reference mask) on the network grid, axes (X, Y, Z)."""
    from dataclasses import replace

    from mskai.inference.preprocess import preprocess
    from mskai.models.manifest import InputSpec
    from mskai.segmentation.bone_ct import segment_bone_ct
    from mskai.segmentation.bone_model import INPUT

    spec = InputSpec.from_dict({**INPUT, "intensity": {"type": "none"}, "channels": 1})
    hu, _ = preprocess(replace(case.volume, array=np.asarray(case.volume.array, np.float32)),
                       spec)
    lab, _ = preprocess(case.volume.with_array(case.mask.astype(np.float32)), spec)
    hu_mask = segment_bone_ct(case.volume, refine=False).astype(np.float32)
    hm, _ = preprocess(case.volume.with_array(hu_mask), spec)
    return hu[0, 0].numpy(), hm[0, 0].numpy(), lab[0, 0].numpy() >= 0.5


def load_pool(cache: Path | None) -> list[tuple[np.ndarray, ...]]:
    """(HU, HU mask, reference, bone voxel indices) per training case, cached as .npz."""
    pool = []
    cached = sorted(cache.glob("*.npz")) if cache is not None and cache.is_dir() else []
    if cached:
        grids = []
        for path in cached:
            with np.load(path) as arrays:
                grids.append((path.stem, arrays["hu"], arrays["hm"], arrays["lab"]))
    else:
        from cases import training_cases

        grids = [(case.name, *model_grid(case)) for case in training_cases()]
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            for name, hu, hm, lab in grids:
                np.savez_compressed(cache / f"{name}.npz", hu=hu, hm=hm, lab=lab)
    for name, hu, hm, lab in grids:
        pool.append((hu, hm, lab, np.argwhere(lab | (hm > 0.5))))
        print(f"{name}: grid {hu.shape}, bone {lab.mean():.3f}", flush=True)
    return pool


def batches(pool, patch: np.ndarray, batch: int, seed: int, workers: int):
    """An endless iterator of (input, target) tensors, sampled in ``workers`` processes."""
    import torch

    class Patches(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            rng = np.random.default_rng([seed, info.id if info else 0])
            while True:
                yield sample(pool, rng, patch)

    loader = torch.utils.data.DataLoader(Patches(), batch_size=batch, num_workers=workers,
                                         persistent_workers=workers > 0)
    for x, y in loader:
        yield x, y[:, None]


def sample(pool, rng: np.random.Generator, patch: np.ndarray):
    """One augmented (input, target) pair as numpy arrays of shape ``patch``."""
    import torch
    import torch.nn.functional as F

    from mskai.inference.preprocess import normalise_intensity
    from mskai.segmentation.bone_model import INPUT

    hu, hm, lab, bone_idx = pool[rng.integers(len(pool))]
    scale = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    size = np.maximum(np.round(patch * scale).astype(int), 8)
    if rng.random() < 2 / 3 and len(bone_idx):
        centre = bone_idx[rng.integers(len(bone_idx))]
    else:
        centre = np.array([rng.integers(s) for s in hu.shape])
    lo = centre - size // 2
    img = np.full(size, -1000.0, np.float32)
    msk = np.zeros(size, np.float32)
    tgt = np.zeros(size, np.float32)
    src = tuple(slice(max(a, 0), min(a + s, n)) for a, s, n in zip(lo, size, hu.shape,
                                                                     strict=True))
    dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo, strict=True))
    img[dst], msk[dst], tgt[dst] = hu[src], hm[src], lab[src]
    shape = tuple(int(p) for p in patch)
    both = F.interpolate(torch.from_numpy(np.stack([img, msk]))[None], size=shape,
                         mode="trilinear", align_corners=False)[0].numpy()
    img, msk = both[0], both[1]
    tgt = F.interpolate(torch.from_numpy(tgt)[None, None], size=shape,
                        mode="nearest")[0, 0].numpy()
    for axis in range(3):
        if rng.random() < 0.5:
            img, msk, tgt = np.flip(img, axis), np.flip(msk, axis), np.flip(tgt, axis)
    img = img * rng.uniform(0.9, 1.1) + rng.uniform(-40, 40)
    img = img + rng.normal(0, rng.uniform(0, 30), img.shape)
    img = normalise_intensity(img.astype(np.float32), INPUT["intensity"])
    return np.ascontiguousarray(np.stack([img, msk])), np.ascontiguousarray(tgt)


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    sys.path.insert(0, str(HERE))
    import torch
    from monai.losses import DiceCELoss

    from mskai.models.loaders import build_network
    from mskai.segmentation.bone_model import ARCHITECTURE, INPUT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--minutes", type=float, default=14.0)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache", type=Path, help="folder of cached network-grid arrays")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.time()
    pool = load_pool(args.cache)
    if args.prepare_only:
        return
    device = torch.device(args.device)
    patch = np.asarray(INPUT["patch_size"])
    net = build_network(ARCHITECTURE).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    net.train()
    running, step = [], 0
    stream = batches(pool, patch, args.batch, args.seed, args.workers)
    for step in range(1, args.steps + 1):
        x, y = next(stream)
        loss = loss_fn(net(x.to(device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        done = min(1.0, max(step / args.steps, (time.time() - start) / (args.minutes * 60)))
        for group in opt.param_groups:  # cosine decay over whichever budget ends first
            group["lr"] = args.lr * 0.5 * (1.0 + np.cos(np.pi * done))
        running.append(float(loss.detach()))
        if step % 100 == 0:
            print(f"step {step} loss {np.mean(running[-100:]):.4f} "
                  f"{(time.time() - start) / 60:.1f} min", flush=True)
        if time.time() - start > args.minutes * 60:
            break
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, args.out)
    info = {"steps": step, "minutes": round((time.time() - start) / 60, 2),
            "final_loss": float(np.mean(running[-50:])), "batch": args.batch,
            "threads": args.threads, "workers": args.workers, "device": str(device),
            "architecture": ARCHITECTURE, "input": INPUT}
    (HERE / "train_info.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()

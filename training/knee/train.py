"""Train the knee MRI segmentation UNet on synthetic DESS / PD-FS / T2 images (one command).

    .venv/bin/python training/knee/train.py --out MSKAIExtension/mskai/models/weights/ \
        [--update-manifest]

Synthesizes (or reuses) the cached cases under ``--cache`` (default /tmp/knee_synth),
trains a small MONAI UNet for a fixed number of iterations with a fixed seed, saves
``knee_unet_v1.pt`` (a state dict) into ``--out``, evaluates held-out Dice per sequence and
prints the manifest entry (``--update-manifest`` also writes it into the packaged
manifest). Never run by CI: the tests only use the shipped weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import (
    DEFAULT_CACHE,
    ensure_cases,
    heldout_seeds,
    load_case,
    setup_paths,
    training_seeds,
)

MODEL_ID = "knee_unet_v1"
VERSION = "1.0.0"
ARCHITECTURE = {"type": "monai.UNet",
                "kwargs": {"spatial_dims": 3, "in_channels": 1, "out_channels": 7,
                           "channels": [16, 32, 64, 128], "strides": [2, 2, 2],
                           "num_res_units": 1}}
CLASSES = (1, 2, 3, 4, 5, 6)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the weights")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--train-per-sequence", type=int, default=10)
    parser.add_argument("--heldout-per-sequence", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--patch", type=int, default=80)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                        help="bfloat16 autocast on CPUs with AMX/AVX512-BF16 (about 2x faster)")
    parser.add_argument("--update-manifest", action="store_true")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


class PatchSampler:
    """Random patches: 85 % centred near a voxel of a uniformly drawn class, else anywhere.

    Drawing the class first balances the small structures (patella, its cartilage, the two
    tibial cartilages) against femur and tibia.
    """

    def __init__(self, paths: list[Path], patch: int, rng: np.random.Generator) -> None:
        self.cases = [load_case(p) for p in paths]
        self.voxels = [[np.argwhere(lab == c).astype(np.int16) for c in CLASSES]
                       for _, lab in self.cases]
        self.patch = patch
        self.rng = rng

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        rng, p = self.rng, self.patch
        index = int(rng.integers(len(self.cases)))
        image, labels = self.cases[index]
        shape = np.asarray(image.shape)
        voxels = self.voxels[index][int(rng.integers(len(CLASSES)))]
        if rng.random() < 0.85 and len(voxels):
            centre = voxels[rng.integers(len(voxels))] + rng.integers(-16, 17, 3)
        else:
            centre = rng.integers(0, shape)
        lo = np.clip(centre - p // 2, 0, np.maximum(shape - p, 0))
        box = tuple(slice(int(a), int(a) + p) for a in lo)
        img, lab = _pad(image[box], p), _pad(labels[box], p)
        gamma = float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
        img = np.clip(img, 0, 1) ** gamma * rng.uniform(0.9, 1.1) + rng.uniform(-0.05, 0.05)
        if rng.random() < 0.5:  # a mirrored right knee is a left knee: labels unchanged
            img, lab = img[::-1], lab[::-1]
        return np.ascontiguousarray(img, dtype=np.float32), np.ascontiguousarray(lab)


def _pad(array: np.ndarray, size: int) -> np.ndarray:
    pad = [(0, max(0, size - n)) for n in array.shape]
    return np.pad(array, pad) if any(b for _, b in pad) else array


def train(args: argparse.Namespace, paths: list[Path]):
    import torch
    from monai.losses import DiceCELoss

    from mskai.models.loaders import build_network

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    sampler = PatchSampler(paths, args.patch, rng)
    model = build_network(ARCHITECTURE)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-5)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, args.iterations,
                                                   pct_start=0.05)
    bf16 = args.bf16 == "on" or (args.bf16 == "auto" and cpu_has_bf16())
    log(f"training {args.iterations} iterations, batch {args.batch}, patch {args.patch}^3, "
        f"bf16={bf16}, {len(paths)} cases")
    start, running = time.time(), []
    model.train()
    for step in range(1, args.iterations + 1):
        batch = [sampler.sample() for _ in range(args.batch)]
        x = torch.from_numpy(np.stack([b[0] for b in batch]))[:, None]
        y = torch.from_numpy(np.stack([b[1] for b in batch]).astype(np.int64))[:, None]
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss = loss_fn(out.float(), y)
        loss.backward()
        optimiser.step()
        schedule.step()
        running.append(float(loss.detach()))
        if step % 20 == 0 or step == args.iterations:
            log(f"iter {step}/{args.iterations} loss {np.mean(running):.4f} "
                f"elapsed {time.time() - start:.0f} s")
            running = []
    model.eval()
    return model, time.time() - start


def manifest_entry(sha: str, accuracy: dict, minutes: float) -> dict:
    from mskai.phantoms.knee_anatomy import LABELS
    from mskai.phantoms.knee_mr import INTENSITY_SPEC, SPACING

    return {
        "id": MODEL_ID, "version": VERSION, "task": "knee_seg", "modality": "MR",
        "format": "state_dict", "architecture": ARCHITECTURE,
        "file": f"weights/{MODEL_ID}.pt", "sha256": sha,
        "input": {"spacing_mm": [SPACING] * 3, "orientation": "RAS",
                  "intensity": INTENSITY_SPEC, "channels": 1, "patch_size": [96, 96, 96],
                  "overlap": 0.25},
        "output": {"activation": "softmax", "keep_largest_component": True},
        "labels": {str(k): v for k, v in LABELS.items()},
        "licence": "MIT",
        "training_data": "SYNTHETIC ONLY: DESS, PD-FS and T2 images simulated from ONE real "
                         "knee segmentation (pymskt SAG_3D_DESS_RIGHT_bones_cart_men_fib-"
                         "label.nrrd, MIT) and random deformations of it; real-world "
                         "accuracy is unknown. See the model card.",
        "accuracy": {"heldout_synthetic_dice": accuracy,
                     "note": "mean Dice on held-out synthetic cases (unseen deformation, "
                             "contrast and noise seeds) of the same single anatomy; not "
                             "a measure of accuracy on real MRI",
                     "training_minutes_cpu": round(minutes, 1)},
        "card": f"cards/{MODEL_ID}.md",
    }


def write_manifest_entry(entry: dict) -> None:
    from mskai.models.manifest import PACKAGED_MANIFEST

    data = json.loads(PACKAGED_MANIFEST.read_text(encoding="utf-8"))
    models = [m for m in data.get("models", []) if m.get("id") != entry["id"]]
    data["models"] = [*models, entry]
    PACKAGED_MANIFEST.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_paths()
    import torch
    from evaluate import evaluate

    from mskai.models.manifest import sha256_path
    from mskai.phantoms.knee_anatomy import LABELS

    torch.set_num_threads(args.threads)
    begin = time.time()
    train_paths = ensure_cases(args.cache, training_seeds(args.train_per_sequence), log)
    held_paths = ensure_cases(args.cache, heldout_seeds(args.heldout_per_sequence), log)
    log(f"synthesis done in {time.time() - begin:.0f} s")
    model, seconds = train(args, train_paths)
    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / f"{MODEL_ID}.pt"
    torch.save({k: v.detach().float().contiguous() for k, v in model.state_dict().items()},
               weights)
    log(f"saved {weights} ({weights.stat().st_size / 1e6:.2f} MB) after {seconds:.0f} s")
    accuracy = evaluate(model, held_paths, LABELS, keep_largest=True,
                        log=lambda m: log(f"held-out {m}"))
    entry = manifest_entry(sha256_path(weights), accuracy, (time.time() - begin) / 60)
    print(json.dumps(entry, indent=1))
    if args.update_manifest:
        write_manifest_entry(entry)
        log("manifest updated")
    log(f"total {(time.time() - begin) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

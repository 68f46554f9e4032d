"""Train ``knee_unet_v2`` / ``v3``: the SynthSeg-style knee model (label maps, random contrast).

    .venv/bin/python training/knee/train_synth.py --out MSKAIExtension/mskai/models/weights/ \
        [--model v3] [--update-manifest]

``--model v3`` (``knee_unet_v3``) starts from the shipped ``knee_unet_v2`` and widens the
sampling (:data:`mskai.phantoms.synth_knee.V3_RECIPE`: homogeneous bone, featureless
surroundings, DESS-like anisotropic 0.3 x 0.3 x 1.2-2.0 mm acquisitions along any axis,
more whole-field-of-view patches); ``--model v2`` (default) is the recipe below.

Starts from the shipped ``knee_unet_v1`` weights (``--init``; a run from random weights
stayed at the all-background solution for 300 iterations, which is all a CPU budget
allows) and fine-tunes them on SynthSeg-style patches: every iteration draws one random
deformation of the real knee label map (plus made-up tissues) and renders it twice with
random Gaussian-mixture contrast, resolution and artefacts (:mod:`mskai.phantoms.synth_knee`);
no image is cached and no MR sequence table is used. Fixed seeds. Uses a CUDA GPU when one
is available; on the CPU it runs on ``--threads`` threads (default 1) with bfloat16 autocast
where the CPU supports it. Saves ``knee_unet_v2.pt`` (state dict) into ``--out`` and prints
the manifest entry (``--update-manifest`` writes it). Held-out evaluation:
``evaluate_synth.py``; the real knee: ``real_knee.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import load_anatomy, setup_paths
from train import ARCHITECTURE, cpu_has_bf16, log, write_manifest_entry

WEIGHTS = Path(__file__).resolve().parents[2] / "MSKAIExtension" / "mskai" / "models" / \
    "weights"
# --model: (model id, version, default initial weights, recipe name in synth_knee)
PRESETS = {"v2": ("knee_unet_v2", "2.0.0", WEIGHTS / "knee_unet_v1.pt", "V2_RECIPE"),
           "v3": ("knee_unet_v3", "3.0.0", WEIGHTS / "knee_unet_v2.pt", "V3_RECIPE"),
           "v3b": ("knee_unet_v3", "3.1.0", WEIGHTS / "knee_unet_v3.pt", "V3B_RECIPE")}
DEFAULT_CACHE = Path("/tmp/knee_synth_v2")  # only the anatomy is cached


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the weights")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--contrasts", type=int, default=2,
                        help="random contrasts per geometry (= batch size)")
    parser.add_argument("--patch", type=int, default=80)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--model", choices=sorted(PRESETS), default="v2",
                        help="which model (id, initial weights, sampling recipe)")
    parser.add_argument("--init", type=Path, default=None,
                        help="state dict to start from (default: v1 for v2, v2 for v3; "
                             "'none' starts from random weights)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CACHE / "checkpoint.pt")
    parser.add_argument("--update-manifest", action="store_true")
    args = parser.parse_args(argv)
    args.model_id, args.version, default_init, args.recipe = PRESETS[args.model]
    args.init = default_init if args.init is None else args.init
    return args


def batch_of(bank, rng: np.random.Generator, args: argparse.Namespace):
    """(images [B, 1, P, P, P], labels [B, 1, P, P, P]) of one geometry, B contrasts."""
    import torch

    from mskai.phantoms import synth_knee

    recipe = getattr(synth_knee, args.recipe)
    geometry = synth_knee.sample_geometry(bank, rng, args.patch, recipe=recipe)
    samples = [synth_knee.render(geometry, rng, recipe) for _ in range(args.contrasts)]
    x = torch.from_numpy(np.stack([s[0] for s in samples]))[:, None]
    y = torch.from_numpy(np.stack([s[1] for s in samples]).astype(np.int64))[:, None]
    return x, y


def train(args: argparse.Namespace, bank):
    import torch
    from monai.losses import DiceCELoss

    from mskai.models.loaders import build_network

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_network(ARCHITECTURE)
    if args.init is not None and str(args.init) != "none":
        model.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=True))
        log(f"initialised from {args.init}")
    model = model.to(device)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-5)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, args.iterations,
                                                   pct_start=0.05)
    bf16 = device.type == "cpu" and cpu_has_bf16()
    log(f"training {args.iterations} iterations on {device}, {args.contrasts} contrasts of "
        f"one {args.patch}^3 geometry per batch, bf16={bf16}")
    start, running = time.time(), []
    model.train()
    for step in range(1, args.iterations + 1):
        x, y = batch_of(bank, rng, args)
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x.to(device))
        loss = loss_fn(out.float(), y.to(device))
        loss.backward()
        optimiser.step()
        schedule.step()
        running.append(float(loss.detach()))
        if step % 25 == 0 or step == args.iterations:
            log(f"iter {step}/{args.iterations} loss {np.mean(running):.4f} "
                f"elapsed {time.time() - start:.0f} s")
            running = []
        if step % 100 == 0:
            save(model, args.checkpoint)
    model.eval()
    return model.cpu(), time.time() - start


def save(model, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()},
               path)


def manifest_entry(sha: str, minutes: float, accuracy: dict | None = None,
                   model_id: str = PRESETS["v2"][0], version: str = PRESETS["v2"][1],
                   recipe: str = PRESETS["v2"][3]) -> dict:
    from mskai.phantoms.knee_anatomy import LABELS
    from mskai.phantoms.knee_mr import INTENSITY_SPEC
    from mskai.phantoms.synth_knee import SPACING

    return {
        "id": model_id, "version": version, "task": "knee_seg", "modality": "MR",
        "format": "state_dict", "architecture": ARCHITECTURE,
        "file": f"weights/{model_id}.pt", "sha256": sha,
        "input": {"spacing_mm": [SPACING] * 3, "orientation": "RAS",
                  "intensity": INTENSITY_SPEC, "channels": 1, "patch_size": [96, 96, 96],
                  "overlap": 0.25},
        "output": {"activation": "softmax", "keep_largest_component": True},
        "labels": {str(k): v for k, v in LABELS.items()},
        "licence": "MIT",
        "training_data": "SYNTHETIC ONLY, SynthSeg-style: random-contrast images rendered "
                         "from ONE real knee label map (pymskt SAG_3D_DESS_RIGHT_bones_cart_"
                         "men_fib-label.nrrd, MIT) plus procedurally generated tissues; no "
                         "MR image and no sequence table used; sampling "
                         f"mskai.phantoms.synth_knee.{recipe}. See the model card.",
        "accuracy": {"heldout_synthetic_dice": accuracy or {},
                     "note": "mean Dice on held-out synthetic cases rendered with fixed "
                             "sequence tables never used in training (training/knee/"
                             "evaluate_synth.py); same single anatomy; not a measure of "
                             "accuracy on real MRI",
                     "training_minutes_cpu_1_thread": round(minutes, 1)},
        "card": f"cards/{model_id}.md",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_paths()
    import torch

    from mskai.models.manifest import sha256_path
    from mskai.phantoms.synth_knee import make_bank

    torch.set_num_threads(args.threads)
    begin = time.time()
    bank = make_bank(load_anatomy(args.cache), seed=args.seed)
    model, seconds = train(args, bank)
    weights = args.out / f"{args.model_id}.pt"
    save(model, weights)
    log(f"saved {weights} ({weights.stat().st_size / 1e6:.2f} MB) after {seconds:.0f} s")
    entry = manifest_entry(sha256_path(weights), (time.time() - begin) / 60,
                           model_id=args.model_id, version=args.version,
                           recipe=args.recipe)
    print(json.dumps(entry, indent=1))
    if args.update_manifest:
        write_manifest_entry(entry)
        log("manifest updated")
    log(f"total {(time.time() - begin) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

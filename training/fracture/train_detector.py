"""Train the learned fracture-surface detector (``fracture_surface_unet``) and register it.

One command (CPU: about 8 min simulating on one core, then ``--minutes`` of training; a GPU
is used when torch sees one)::

    nice -n 10 .venv/bin/python training/fracture/train_detector.py --register

1. Split (``real_bones.split``, written to ``training/fracture/split.json``): bones of the
   TRAIN patients only (ts_example and two thirds of the sarcoma patients).
2. Patches (cached in ``--cache``, default ``/tmp/fracture_surface_patches.npz``): every
   training bone is broken ``ROUNDS`` times by
   :func:`mskai.phantoms.real_fracture.simulate_real_fracture` (sarcoma bones: all six
   kinds; ts_example bones: two kinds each, cycling), seeds from ``SEED0``; the network's
   bone channel is the HU bone mask of the fractured CT
   (:func:`mskai.segmentation.bone_ct.segment_bone_ct`, as at run time). ``POS_PATCHES``
   ``PATCH``-cubed work-grid patches (1.5 mm) are centred on random truth-surface voxels
   (jittered), ``RANDOM_PATCHES`` on random bone voxels of the same scan, and each of them
   is paired with the patch of the intact CT at the same place (truth empty), so that the
   only difference a patch pair shows is the fracture (v1, without the pairs, learned
   where fractures are simulated, not what they look like). ``INTACT_PATCHES`` per patient
   come from random bone voxels of the intact CT.
3. Training: Adam (lr 2e-3, cosine to 0), batch 4, random flips and axis permutations,
   loss = BCE (positive weight 4) inside the dilated bone mask + soft Dice, for
   ``--minutes`` of wall time or ``--steps`` steps, whichever comes first; torch seed 0.
   ``--init WEIGHTS --hard-negatives`` (v3: from v2, v4: from v3, ``--lr 5e-4 --steps
   6000``) adds the patches of the intact TRAINING CTs where those weights score highest
   (:func:`hard_negatives`) and continues training from them.
4. ``--register`` writes ``weights/fracture_surface_unet_v{VERSION}.pt`` and its manifest entry
   (sha256), re-reading the manifest just before writing and replacing only this entry.
   ``--froc FILE`` (JSON of ``Testing/benchmarks/froc_real_fracture.py --json``) adds the
   held-out FROC to the entry and sets ``output.preferred_over_components`` only when the
   default pipeline's detectors with the learned candidates (``merged_all``: components,
   reduced valley, learned) find more held-out fractures at 1 FP/scan than without them
   (``merged_valley``, the default until then) AND give at most ``MAX_INTACT_FP`` per
   intact test CT at score 0.5 (v1's rule compared with the components alone, which the
   valley candidates have beaten since v1; decided 2026-12-07, before v2's results).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODELS = REPO / "MSKAIExtension" / "mskai" / "models"
VERSION = "4"
FILE = f"weights/fracture_surface_unet_v{VERSION}.pt"
PATCH = 48
POS_PATCHES = 6
RANDOM_PATCHES = 2
ROUNDS = 2  # each (bone, kind) is broken this many times, with different seeds
INTACT_PATCHES = 8
SEED0 = 5000
TS_KINDS_PER_BONE = 2
FROC_KEPT = ("learned", "merged_valley", "merged_all")  # in the manifest entry
HARD_PER_CT = 8
HARD_COPIES = 3
MAX_INTACT_FP = 0.2  # per intact test CT at the default threshold, for preferred_over_components


def _lps(ras: np.ndarray) -> np.ndarray:
    return np.asarray(ras, dtype=float) * np.array([-1.0, -1.0, 1.0])


def extract(ct_img, bone_img, truth_img, centre_ras: np.ndarray) -> tuple[np.ndarray, ...]:
    """(input channels float16, truth uint8) of one work-grid patch centred at a point."""
    import SimpleITK as sitk

    from mskai.fracture.surface_net import network_input, patch_reference, resample

    ref = patch_reference(ct_img, _lps(centre_ras), PATCH)
    ct = sitk.GetArrayFromImage(resample(ct_img, ref, linear=True, default=-1000.0))
    bone = sitk.GetArrayFromImage(resample(bone_img, ref, linear=False)) > 0
    truth = sitk.GetArrayFromImage(resample(truth_img, ref, linear=True)) >= 0.3
    return network_input(ct, bone).astype(np.float16), (truth & bone).astype(np.uint8)


def _sitk(volume, array: np.ndarray):
    return volume.with_array(array).to_sitk()


def patch_centres(image, bone: np.ndarray, truth: np.ndarray, rng: np.random.Generator,
                  n_pos: int, n_random: int) -> list[np.ndarray]:
    """RAS centres of patches around truth-surface voxels and random bone voxels (jittered)."""
    centres = []
    for mask, count in ((truth, n_pos), (bone, n_random)):
        kji = np.argwhere(mask)
        if len(kji) == 0:
            continue
        for _ in range(count):
            centre = image.index_to_ras(kji[rng.integers(len(kji))][::-1].astype(float))
            centres.append(np.asarray(centre).reshape(3) + rng.uniform(-15, 15, 3))
    return centres


def patches_at(image, bone: np.ndarray, truth: np.ndarray,
               centres: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The work-grid patches of one scan at the given RAS centres."""
    ct_img = image.to_sitk()
    bone_img = _sitk(image, bone.astype(np.uint8))
    truth_img = _sitk(image, truth.astype(np.float32))
    return [extract(ct_img, bone_img, truth_img, c) for c in centres]


def kinds_for(patient: str, bone_index: int) -> list[str]:
    from mskai.phantoms.real_fracture import KINDS

    if patient != "ts_example":
        return list(KINDS)
    start = bone_index * TS_KINDS_PER_BONE
    return [KINDS[(start + n) % len(KINDS)] for n in range(TS_KINDS_PER_BONE)]


def build_cache(path: Path) -> dict:
    """Simulate, sample and save the training patches (module docstring, step 2)."""
    sys.path.insert(0, str(HERE))
    import real_bones

    from mskai.segmentation.bone_ct import segment_bone_ct

    split = real_bones.write_split()
    rng = np.random.default_rng(SEED0)
    xs, ys, log = [], [], []
    seeds = itertools.count(SEED0 + 1)
    start = time.time()
    for patient in split["train"]:
        image, bones = real_bones.load_patient(patient)
        intact = segment_bone_ct(image)
        no_truth = np.zeros_like(intact)
        centres = patch_centres(image, intact, no_truth, rng, 0, INTACT_PATCHES)
        for x, y in patches_at(image, intact, no_truth, centres):
            xs.append(x)
            ys.append(y)
        pairs = ((bone, kind) for _ in range(ROUNDS) for b, bone in enumerate(bones)
                 for kind in kinds_for(patient, b))
        for bone, kind, seed, sim in real_bones.broken(image, pairs, seeds):
            hu_bone = segment_bone_ct(sim.image)
            truth = sim.surface & (hu_bone | (sim.fragments > 0))
            centres = patch_centres(sim.image, hu_bone, truth, rng, POS_PATCHES, RANDOM_PATCHES)
            # the same places of the intact CT, truth empty: the network must see the line,
            # not "cortex shaped like a fracture site" (v1's failure)
            scan_patches = patches_at(sim.image, hu_bone, truth, centres) + patches_at(
                image, intact, no_truth, centres)
            for x, y in scan_patches:
                xs.append(x)
                ys.append(y)
            log.append(f"{patient} {bone.name} {kind} seed {seed}")
        print(f"{patient}: {len(xs)} patches, {time.time() - start:.0f} s", flush=True)
    info = {"patches": len(xs), "simulated_scans": len(log),
            "cache_minutes": round((time.time() - start) / 60, 1), "train_patients": split["train"]}
    np.savez_compressed(path, x=np.stack(xs), y=np.stack(ys), info=json.dumps(info))
    return info


def intact_training_candidates(net):
    """(patient, CT, HU bone mask, learned candidates) of each intact TRAINING CT, read with
    ``net`` as at run time (the hard negatives and ``surface_threshold.py`` share it)."""
    sys.path.insert(0, str(HERE))
    import real_bones

    from mskai.fracture.surface_candidates import learned_candidates
    from mskai.segmentation.bone_ct import segment_bone_ct

    for patient in real_bones.split()["train"]:
        image, _ = real_bones.load_patient(patient)
        bone = segment_bone_ct(image)
        yield patient, image, bone, learned_candidates(image, bone, net=net)


def hard_negatives(net, per_ct: int = HARD_PER_CT, copies: int = HARD_COPIES) -> np.ndarray:
    """Patches of the intact TRAINING CTs at the places ``net`` scores highest (truth empty):
    what a detector trained on simulated fractures still mistakes for one (bone ends,
    joints, crop edges). Each of the ``per_ct`` best candidates per CT at probability
    >= 0.5 gives ``copies`` patches, jittered by up to 5 mm."""
    rng = np.random.default_rng(SEED0 - 1)
    xs = []
    for patient, image, bone, found in intact_training_candidates(net):
        found = [c for c in found if c.terms["surface_probability"] >= 0.5][:per_ct]
        centres = [np.asarray(c.position_ras, dtype=float) + rng.uniform(-5, 5, 3)
                   for c in found for _ in range(copies)]
        xs += [x for x, _ in patches_at(image, bone, np.zeros_like(bone), centres)]
        print(f"{patient}: {len(found)} hard negatives", flush=True)
    return np.stack(xs)


def _augment(x, y, gen):
    import torch

    for axis in (2, 3, 4):
        if torch.rand(1, generator=gen).item() < 0.5:
            x, y = x.flip(axis), y.flip(axis)
    perm = torch.randperm(3, generator=gen).tolist()
    order = [0, 1] + [p + 2 for p in perm]
    return x.permute(order), y.permute(order)


def loss_fn(logits, y, bone):
    import torch
    import torch.nn.functional as F

    region = F.max_pool3d(bone, 5, stride=1, padding=2)
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none",
                                             pos_weight=torch.tensor(4.0))
    bce = (bce * region).sum() / region.sum().clamp(min=1.0)
    p = torch.sigmoid(logits) * region
    dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
    return bce + dice


def train(x: np.ndarray, y: np.ndarray, minutes: float, steps: int, batch: int = 4,
          init: Path | None = None, lr: float = 2e-3) -> tuple:
    import torch

    from mskai.fracture.surface_net import build_network

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = build_network()
    if init is not None:  # continue from earlier weights
        net.load_state_dict(torch.load(init, weights_only=True))
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    start = time.time()
    done = 0
    running = []
    for step in range(steps):
        idx = torch.randint(len(x), (batch,), generator=gen).numpy()
        xb = torch.from_numpy(x[idx].astype(np.float32))
        yb = torch.from_numpy(y[idx].astype(np.float32))[:, None]
        xb, yb = _augment(xb, yb, gen)
        xb, yb = xb.contiguous().to(device), yb.contiguous().to(device)
        loss = loss_fn(net(xb), yb, xb[:, 1:2])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        done = step + 1
        if done % 200 == 0:
            print(f"step {done} loss {np.mean(running[-200:]):.4f} "
                  f"{(time.time() - start) / 60:.1f} min", flush=True)
        if time.time() - start > minutes * 60:
            break
    info = {"steps": done, "train_minutes": round((time.time() - start) / 60, 1),
            "final_loss": round(float(np.mean(running[-200:])), 4), "device": device}
    return net.cpu(), info


def _kept(froc: dict) -> dict:
    """The held-out FROC of the detectors the preference rule reads, and its verdicts."""
    return {k: v for k, v in froc.items() if k in FROC_KEPT or not isinstance(v, dict)}


def register(net, info: dict, froc: dict | None) -> None:
    import torch

    from mskai.fracture.candidates import PREFERRED_FLAG
    from mskai.fracture.surface_net import ARCHITECTURE, MODEL_ID, OVERLAP, TASK, WORK_MM
    from mskai.fracture.surface_net import PATCH as RUN_PATCH
    from mskai.models.manifest import sha256_path

    path = MODELS / FILE
    torch.save(net.state_dict(), path)
    preferred = bool(froc and froc.get("learned_improves_default") and (
        froc["merged_all"]["intact_fp_per_scan"] or 0.0) <= MAX_INTACT_FP)
    new = {"id": MODEL_ID, "version": VERSION, "task": TASK, "modality": "CT",
           "format": "state_dict", "architecture": ARCHITECTURE, "file": FILE,
           "sha256": sha256_path(path),
           "input": {"spacing_mm": [WORK_MM] * 3, "axes": "the image's own (trained with "
                     "random flips and axis permutations)",
                     "intensity": {"type": "ct_window", "min": -200.0, "max": 1800.0,
                                   "centre": 300.0, "scale": 500.0},
                     "channels": 2, "channel_names": ["ct_window", "bone_mask"],
                     "patch_size": [RUN_PATCH] * 3, "overlap": OVERLAP / RUN_PATCH},
           "output": {"activation": "sigmoid", PREFERRED_FLAG: preferred},
           "labels": {"1": "fracture_surface"}, "licence": "Apache-2.0",
           "training_data": "realistic simulated fractures (mskai/phantoms/real_fracture.py) "
                            "of real bones of the TRAIN patients of "
                            "training/fracture/split.json (ts_example, 16 TCIA sarcoma CTs)",
           "accuracy": {**info, **({"held_out": _kept(froc)} if froc else {})},
           "card": "cards/fracture_surface_unet.md"}
    manifest = MODELS / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    same = [m for m in data.get("models", [])
            if m.get("id") == new["id"] and m.get("version") == new["version"]]
    for m in same:  # the threshold surface_threshold.py chose for these very weights
        if m.get("sha256") == new["sha256"] and "operating_threshold" in m.get("output", {}):
            new["output"]["operating_threshold"] = m["output"]["operating_threshold"]
    models = data.get("models", [])
    at = models.index(same[0]) if same else len(models)  # replaced in place: a small diff
    data["models"] = [m for m in models if not any(m is s for s in same)]
    data["models"].insert(at, new)
    manifest.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"registered {MODEL_ID} sha256 {new['sha256'][:12]}... preferred={preferred}")


def _with_hard_negatives(x: np.ndarray, y: np.ndarray, init: Path | None,
                         info: dict) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from mskai.fracture.surface_net import build_network

    if init is None:
        raise SystemExit("--hard-negatives needs --init WEIGHTS to mine with")
    net = build_network()
    net.load_state_dict(torch.load(init, weights_only=True))
    hard = hard_negatives(net.eval()).astype(x.dtype)
    info["hard_negative_patches"] = len(hard)
    return np.concatenate([x, hard]), np.concatenate([y, np.zeros((len(hard),) + y.shape[1:],
                                                                  dtype=y.dtype)])


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/fracture_surface_patches.npz"))
    parser.add_argument("--minutes", type=float, default=75.0)
    parser.add_argument("--steps", type=int, default=15000)
    parser.add_argument("--register", action="store_true")
    parser.add_argument("--froc", type=Path, help="held-out FROC JSON for the manifest entry")
    parser.add_argument("--weights", type=Path, help="skip training: register these weights")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--hard-negatives", action="store_true",
                        help="add hard negatives mined with the --init weights")
    parser.add_argument("--init", type=Path, help="continue training from these weights")
    parser.add_argument("--out", type=Path, help="where to save the trained weights "
                        "(default: fracture_surface_unet.pt next to the cache)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    froc = json.loads(args.froc.read_text()) if args.froc else None
    if args.weights:
        from mskai.fracture.surface_net import build_network

        net = build_network()
        net.load_state_dict(torch.load(args.weights, weights_only=True))
        info = json.loads(args.weights.with_suffix(".json").read_text())
    else:
        if not args.cache.is_file():
            print(json.dumps(build_cache(args.cache)), flush=True)
        saved = np.load(args.cache, allow_pickle=False)
        info = json.loads(str(saved["info"]))
        x, y = saved["x"], saved["y"]
        if args.hard_negatives:
            x, y = _with_hard_negatives(x, y, args.init, info)
        net, train_info = train(x, y, args.minutes, args.steps, init=args.init, lr=args.lr)
        if args.init:
            train_info.update(continued_from=str(args.init), lr=args.lr)
        info.update(train_info)
        out = args.out or args.cache.with_name("fracture_surface_unet.pt")
        torch.save(net.state_dict(), out)
        out.with_suffix(".json").write_text(json.dumps(info))
        print(json.dumps(info), flush=True)
    if args.register:
        register(net, info, froc)


if __name__ == "__main__":
    main()

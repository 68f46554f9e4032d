"""Train the learned fracture-candidate scorer (``fracture_score_logreg``) and register it.

Usage (about 2-5 minutes on one shared CPU core)::

    .venv/bin/python training/fracture/train_scorer.py --per-bone 5 --register

Data: the TotalSegmentator example CT (3 mm, real) with its bone labels (model outputs).
Positives: the candidate nearest to the cut centre, if within 10 mm, of each of the two
fragment maps (``mskai.tasks.fracture._fragment_maps``) of simulated fractures
(``mskai/phantoms/simulated_fracture.py``: a bone cut along a plane tilted up to 15
degrees from its local axis, gap 4-9 mm filled with soft tissue 40 HU + noise sd 15 HU,
distal piece moved 2-8 mm and rotated 3-15 degrees) of the TRAINING bones (left ribs 7-12,
left femur; seeds from 1000). Negatives: every other candidate of those scans and all
candidates of the intact scan. The held-out bones (right ribs 7-12, right femur; seeds from
0) are used only by ``Testing/benchmarks/froc_fracture.py``.

Model: L2-regularised logistic regression over :data:`mskai.fracture.scorer.FEATURES`,
positives weighted to balance the classes. ``--register`` writes
``weights/fracture_score_logreg_v1.npz`` and the manifest entry (re-reading the manifest
right before writing and replacing only this entry); ``--froc`` adds the held-out FROC of
``Testing/benchmarks/froc_fracture.py --json=FILE`` to the entry's accuracy (the weights
do not change: training is deterministic given the cached candidates).
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
MODELS = REPO / "MSKAIExtension" / "mskai" / "models"
FILE = "weights/fracture_score_logreg_v1.npz"
HIT_MM = 10.0


def collect(per_bone: int, bone_model: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """Features and 0/1 labels of every candidate of the training scans."""
    from mskai.image import read_image
    from mskai.phantoms.simulated_fracture import fracture_cases
    from mskai.tasks.fracture import _entry, candidate_features_of

    data = REPO.parent / "shared" / "data" / "ts_example"
    image = read_image(data / "example_ct.nii.gz")
    seg = read_image(data / "example_seg_fast_force_split.nii.gz").array
    entry = _entry("bone", bone_model)
    start = time.time()
    xs, ys = [], []
    _, feats = candidate_features_of(image, entry)
    xs.append(feats)
    ys.append(np.zeros(len(feats)))
    n_cases = found = 0
    for label, seed, sim in fracture_cases(image, seg, "train", per_bone):
        cands, feats = candidate_features_of(sim.image, entry)
        err = np.array([np.linalg.norm(c.position_ras - sim.center_ras) for c in cands])
        y = np.zeros(len(cands))
        for source in {c.source for c in cands}:  # the nearest of each fragment map
            idx = [i for i, c in enumerate(cands) if c.source == source]
            best = idx[int(np.argmin(err[idx]))]
            y[best] = float(err[best] <= HIT_MM)
        found += int(y.any())
        n_cases += 1
        xs.append(feats)
        ys.append(y)
        print(f"bone {label} seed {seed}: {len(cands)} candidates, hit={bool(y.any())}",
              flush=True)
    info = {"collection_minutes": round((time.time() - start) / 60, 2),
            "training_scans": n_cases, "training_fractures_with_candidate": found,
            "bone_model": entry.id if entry else None}
    return np.vstack(xs), np.concatenate(ys), info


def register(params: dict, info: dict) -> None:
    from mskai.fracture.scorer import ARCHITECTURE, MODEL_ID, save_logistic
    from mskai.models.manifest import PARAMETER_FORMAT, sha256_path

    path = MODELS / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    save_logistic(params, path)
    new = {"id": MODEL_ID, "version": "1", "task": "fracture_score", "modality": "CT",
           "format": PARAMETER_FORMAT, "architecture": ARCHITECTURE, "file": FILE,
           "sha256": sha256_path(path),
           "input": {"intensity": {"type": "none", "note": "candidate features, not an "
                                   "image; see mskai.fracture.scorer.FEATURES"}},
           "output": {"activation": "sigmoid"}, "labels": {"1": "fracture"},
           "licence": "Apache-2.0",
           "training_data": "simulated fractures of real bone: TotalSegmentator example CT "
                            "(3 mm), left ribs 7-12 and left femur cut by "
                            "mskai/phantoms/simulated_fracture.py, seeds from 1000; "
                            "negatives from the same scans and the intact scan",
           "accuracy": info, "card": "cards/fracture_score_logreg.md"}
    manifest = MODELS / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["models"] = [m for m in data.get("models", [])
                      if not (m.get("id") == new["id"] and m.get("version") == new["version"])]
    data["models"].append(new)
    manifest.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"registered {MODEL_ID} sha256 {new['sha256'][:12]}...")


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    import torch

    from mskai.fracture.scorer import FEATURES, LogisticScorer, fit_logistic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-bone", type=int, default=5)
    parser.add_argument("--no-bone-model", action="store_true",
                        help="candidates from the HU bone mask even if a bone model verifies")
    parser.add_argument("--register", action="store_true")
    parser.add_argument("--cache", type=Path, help="npz of features/labels to reuse")
    parser.add_argument("--froc", type=Path, help="JSON of Testing/benchmarks/"
                        "froc_fracture.py --json=FILE (held-out FROC) for the manifest entry")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    if args.cache and args.cache.is_file():
        saved = np.load(args.cache, allow_pickle=False)
        x, y, info = saved["x"], saved["y"], json.loads(str(saved["info"]))
    else:
        x, y, info = collect(args.per_bone, not args.no_bone_model)
        if args.cache:
            np.savez(args.cache, x=x, y=y, info=json.dumps(info))
    positives = max(float(y.sum()), 1.0)
    params = fit_logistic(x, y, l2=0.05, positive_weight=(len(y) - positives) / positives)
    p = LogisticScorer(params)(x)
    info.update({"training_candidates": len(y), "training_positives": int(y.sum()),
                 "training_accuracy_at_0.5": float(np.mean((p >= 0.5) == (y > 0))),
                 "total_minutes": round((time.time() - start) / 60, 2)})
    print(json.dumps(info))
    for name, w in sorted(zip(FEATURES, params["weight"], strict=True), key=lambda t: -abs(t[1])):
        print(f"  {name:16s} {w:+.3f}")
    if args.froc:
        info["held_out"] = json.loads(args.froc.read_text())
    if args.register:
        register(params, info)


if __name__ == "__main__":
    main()

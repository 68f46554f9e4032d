"""Train the false-positive reducer of the HU-valley fracture candidates (fracture_valley_logreg).

TRAINING patients only (``split.json``: ts_example and 16 sarcoma CTs; no test patient is
read). Each patient's up to three largest bones (:mod:`real_bones`) are broken
``SEEDS_PER_KIND`` times per kind (:mod:`mskai.phantoms.real_fracture`, seeds from
``SEED0``); the valley candidates of every
fractured and every intact CT get their features (:mod:`mskai.fracture.valley_reducer`).
Labels: a candidate within ``HIT_MM`` (10 mm) of a true fracture-surface voxel is positive;
one farther than ``FAR_MM`` (20 mm) from it, and every candidate of an intact CT, negative;
those between are left out. A logistic regression (L2 0.05, classes balanced, numpy
gradient descent, deterministic) is fitted on all of them.

Default threshold, chosen on training patients only: the patients are split into
``FOLDS`` groups; each group's candidates are scored by a model fitted without that group
(out-of-fold), and the threshold is the lowest score at which the intact training CTs hold at
most ``TRAINING_FP`` (0.1) candidates per CT, and the fractured training CTs at most as many
false positives (candidates farther than 20 mm from the fracture) per CT. It aims at half
the 0.2 target because 17 training CTs underrate the rate on new anatomy: v2 aimed at 0.2
gave 0.12 per intact training CT out of fold and 0.56 per intact held-out CT (a shoulder
and the thin-slice spine); this margin was set after that held-out measurement. The out-of-fold
sensitivity there, per kind, is printed and stored in the manifest entry.

Run (about 8 minutes on one shared core; ``--cache`` keeps the features)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python training/fracture/train_valley_reducer.py \
        --cache /tmp/valley_reducer.npz [--froc /tmp/froc_real.json] --register
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import count
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODELS = REPO / "MSKAIExtension" / "mskai" / "models"
FILE = "weights/fracture_valley_logreg_v2.npz"
VERSION = "2"
CARD = "cards/fracture_valley_logreg.md"
SEED0 = 20000
HIT_MM = 10.0
FAR_MM = 20.0
FOLDS = 4
TARGET_FP = 0.2  # issue 13: false positives per intact CT at the default threshold
TRAINING_FP = 0.1  # what the threshold aims at on the training patients (module doc)
L2 = 0.05
MAX_BONES = 3
SEEDS_PER_KIND = 2


def collect() -> dict:
    """Features, labels and scan facts of every training candidate (module docstring)."""
    sys.path.insert(0, str(HERE))
    import real_bones

    from mskai.fracture.valley_reducer import valley_candidate_features
    from mskai.phantoms.real_fracture import KINDS
    from mskai.segmentation.bone_ct import segment_bone_ct

    xs, dists, cand_scan, scans = [], [], [], []
    seeds, start = count(SEED0 + 1), time.time()
    patients = real_bones.split()["train"]
    for p_index, patient in enumerate(patients):
        image, bones = real_bones.load_patient(patient)
        bones = sorted(bones, key=lambda b: -int(np.count_nonzero(b.mask)))[:MAX_BONES]
        _, feats = valley_candidate_features(image, segment_bone_ct(image))
        _add(xs, dists, cand_scan, feats, np.full(len(feats), np.inf), len(scans))
        scans.append({"patient": p_index, "kind": "intact"})
        pairs = ((bone, kind) for bone in bones for kind in KINDS for _ in range(SEEDS_PER_KIND))
        for _, kind, _, sim in real_bones.broken(image, pairs, seeds):
            cands, feats = valley_candidate_features(sim.image, segment_bone_ct(sim.image))
            _add(xs, dists, cand_scan, feats, _distances(cands, sim), len(scans))
            scans.append({"patient": p_index, "kind": kind})
        print(f"{patient}: {len(scans)} scans, {sum(len(x) for x in xs)} candidates "
              f"({(time.time() - start) / 60:.1f} min)", flush=True)
    return {"x": np.vstack(xs), "dist": np.concatenate(dists),
            "scan": np.concatenate(cand_scan).astype(int),
            "scan_patient": np.array([s["patient"] for s in scans]),
            "scan_kind": np.array([s["kind"] for s in scans]),
            "patients": np.array(patients), "minutes": (time.time() - start) / 60}


def _add(xs: list, dists: list, cand_scan: list, feats: np.ndarray, dist: np.ndarray,
         scan: int) -> None:
    xs.append(feats)
    dists.append(dist)
    cand_scan.append(np.full(len(feats), scan))


def _distances(cands: list, sim) -> np.ndarray:
    """Distance (mm) of each candidate to the nearest true fracture-surface voxel."""
    from scipy.spatial import cKDTree

    kji = np.argwhere(sim.surface)[:, ::-1].astype(float)
    tree = cKDTree(np.asarray(sim.image.index_to_ras(kji)).reshape(-1, 3))
    return np.array([tree.query(np.asarray(c.position_ras, dtype=float))[0] for c in cands])


def labels_of(data: dict) -> np.ndarray:
    """1 near the fracture, 0 far from it or on an intact CT, -1 left out."""
    d = data["dist"]
    return np.where(d <= HIT_MM, 1, np.where(d > FAR_MM, 0, -1))


def fit(x: np.ndarray, y: np.ndarray) -> dict:
    from mskai.fracture.scorer import fit_logistic

    keep = y >= 0
    positives = max(float(np.sum(y[keep] == 1)), 1.0)
    return fit_logistic(x[keep], y[keep].astype(float), l2=L2,
                        positive_weight=(np.count_nonzero(keep) - positives) / positives)


def out_of_fold(data: dict, y: np.ndarray) -> np.ndarray:
    """Score of every candidate by a model fitted without its patient's fold."""
    from mskai.fracture.scorer import LogisticScorer

    fold_of_patient = np.arange(len(data["patients"])) % FOLDS
    fold = fold_of_patient[data["scan_patient"][data["scan"]]]
    scores = np.zeros(len(y))
    for f in range(FOLDS):
        scores[fold == f] = LogisticScorer(fit(data["x"][fold != f], y[fold != f]))(
            data["x"][fold == f])
    return scores


def operating_point(data: dict, scores: np.ndarray, target: float = TRAINING_FP) -> dict:
    """Lowest threshold with at most ``target`` FP per intact CT and per fractured CT (far
    from the fracture), and the sensitivity there."""
    intact_scans = np.flatnonzero(data["scan_kind"] == "intact")
    on_intact = np.isin(data["scan"], intact_scans)
    far = (data["dist"] > FAR_MM) & ~on_intact
    threshold = max(_lowest(scores[on_intact], target * len(intact_scans)),
                    _lowest(scores[far], target * (len(data["scan_kind"]) - len(intact_scans))))
    return {"threshold": threshold, "intact_cts": len(intact_scans),
            "fp_per_intact_ct": float(np.count_nonzero(scores[on_intact] >= threshold))
            / len(intact_scans), **sensitivity(data, scores, threshold)}


def _lowest(fp_scores: np.ndarray, allowed: float) -> float:
    """Lowest threshold that leaves at most ``allowed`` of ``fp_scores`` at or above it."""
    ranked = np.sort(fp_scores)[::-1]
    n = int(np.floor(allowed + 1e-9))
    return float(ranked[n] + 1e-6) if len(ranked) > n else 0.0


def sensitivity(data: dict, scores: np.ndarray, threshold: float) -> dict:
    """Share of fractured training scans with a hit at ``threshold``, per kind and all; and
    false positives (>= FAR_MM away) per fractured scan."""
    kinds = data["scan_kind"]
    fractured = np.flatnonzero(kinds != "intact")
    hit_scans = set(data["scan"][(data["dist"] <= HIT_MM) & (scores >= threshold)].tolist())
    out = {f"sensitivity_{k}": float(np.mean([s in hit_scans for s in fractured
                                              if kinds[s] == k]))
           for k in sorted(set(kinds[fractured].tolist()))}
    out["sensitivity_all"] = float(np.mean([s in hit_scans for s in fractured]))
    out["fractured_scans"] = len(fractured)
    far = (data["dist"] > FAR_MM) & np.isfinite(data["dist"]) & (scores >= threshold)
    out["fp_per_fractured_scan"] = float(np.count_nonzero(far)) / max(len(fractured), 1)
    return out


def register(params: dict, info: dict, preferred: bool) -> None:
    """Save the weights, then replace this model's entry in the manifest (others untouched)."""
    from mskai.fracture.candidates import PREFERRED_FLAG
    from mskai.fracture.scorer import save_logistic
    from mskai.fracture.valley_reducer import ARCHITECTURE, MODEL_ID, TASK
    from mskai.models.manifest import PARAMETER_FORMAT, sha256_path

    path = MODELS / FILE
    save_logistic(params, path)
    new = {"id": MODEL_ID, "version": VERSION, "task": TASK, "modality": "CT",
           "format": PARAMETER_FORMAT, "architecture": ARCHITECTURE, "file": FILE,
           "sha256": sha256_path(path),
           "input": {"intensity": {"type": "none", "note": "valley-region features, not an "
                                   "image; see mskai.fracture.valley_reducer.FEATURES"}},
           "output": {"activation": "sigmoid",
                      "operating_threshold": round(info["operating_point"]["threshold"], 4),
                      PREFERRED_FLAG: preferred},
           "labels": {"1": "fracture"}, "licence": "Apache-2.0",
           "training_data": "realistic simulated fractures (mskai/phantoms/real_fracture.py) of "
                            "the up to 3 largest bones of the TRAIN patients of "
                            "training/fracture/split.json, 2 per kind, seeds from 20001; "
                            "negatives from "
                            "the same scans and the intact CTs",
           "accuracy": info, "card": CARD}
    manifest = MODELS / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["models"] = [m for m in data.get("models", [])
                      if not (m.get("id") == new["id"] and m.get("version") == new["version"])]
    data["models"].append(new)
    manifest.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"registered {MODEL_ID} sha256 {new['sha256'][:12]}..., preferred={preferred}")


def held_out_preference(froc: dict) -> bool:
    """Default in the pipeline only when, on the HELD-OUT patients, components + reduced
    valley find more than the components alone at the default threshold, the reduced valley
    candidates give at most ``TARGET_FP`` false positives per intact CT, and the merge adds
    none beyond that target or the components' own. v1: met once the component scores are
    re-centred on their own operating threshold (``component_threshold.py``): merged 0.11
    per intact test CT against 0.33 with the components read at probability 0.5."""
    merged, comp = froc["merged_valley"], froc["components"]
    reduced = froc["valley_reduced"]
    return bool(merged["all"]["default"]["sensitivity"] > comp["all"]["default"]["sensitivity"]
                and reduced["intact_fp_per_scan"] <= TARGET_FP
                and merged["intact_fp_per_scan"] <= max(TARGET_FP, comp["intact_fp_per_scan"]))


def compact(detector: dict) -> dict:
    """The FROC of one detector as {kind: [sensitivity at 0.5, 1, 2, 4, 8 FP/scan,
    sensitivity and FP/scan at the default threshold]} plus the intact-CT and chance lines."""
    rates = ("0.5", "1.0", "2.0", "4.0", "8.0")
    out: dict = {"columns": [*rates, "default_sensitivity", "default_fp_per_scan"]}
    for kind, t in detector.items():
        if isinstance(t, dict) and "default" in t:
            out[kind] = [round(t[r]["sensitivity"], 3) for r in rates] + [
                round(t["default"]["sensitivity"], 3), round(t["default"]["fp_per_scan"], 3)]
    out["fp_per_intact_test_ct"] = detector["intact_fp_per_scan"]
    out["intact_test"] = detector["intact_test"]
    out["paired_chance"] = detector["paired_chance"]
    return out


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    import torch

    from mskai.fracture.scorer import LogisticScorer
    from mskai.fracture.valley_reducer import FEATURES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="npz of features to reuse / write")
    parser.add_argument("--froc", type=Path, help="JSON of Testing/benchmarks/"
                        "froc_real_fracture.py --json (held-out) for the entry and preference")
    parser.add_argument("--register", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.cache and args.cache.is_file():
        data = dict(np.load(args.cache, allow_pickle=False))
    else:
        data = collect()
        if args.cache:
            np.savez(args.cache, **data)
    y = labels_of(data)
    params = fit(data["x"], y)
    point = operating_point(data, out_of_fold(data, y), TRAINING_FP)
    fitted = sensitivity(data, LogisticScorer(params)(data["x"]), point["threshold"])
    info = {"training_patients": len(data["patients"]), "training_scans": len(data["scan_kind"]),
            "training_candidates": int(np.count_nonzero(y >= 0)),
            "training_positives": int(np.count_nonzero(y == 1)),
            "collection_minutes": round(float(data["minutes"]), 1),
            "operating_point": point, "in_sample_at_threshold": fitted}
    print(json.dumps(info, indent=1))
    for name, w in sorted(zip(FEATURES, params["weight"], strict=True), key=lambda t: -abs(t[1])):
        print(f"  {name:24s} {w:+.3f}")
    preferred = False
    if args.froc:
        froc = json.loads(args.froc.read_text())
        info["held_out"] = {k: compact(froc[k]) for k in ("valley_reduced", "merged_valley",
                                                          "components") if k in froc}
        preferred = held_out_preference(froc)
    if args.register:
        register(params, info, preferred)


if __name__ == "__main__":
    main()

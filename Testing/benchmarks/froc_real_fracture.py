"""FROC per fracture kind on HELD-OUT realistic simulated fractures of real bone.

Test patients only (``training/fracture/split.json``: TPTBox and every third sarcoma CT;
the detector never saw their bones). Each test bone is broken once per kind
(:mod:`mskai.phantoms.real_fracture`, seeds from 0; the training seeds start at 5000) and
run through three detectors:

- ``components``: the existing component candidates (:func:`mskai.tasks.fracture.run_fracture`
  with the learned bone and scorer models, learned surface off);
- ``learned``: the fracture-surface UNet's candidates inside the HU bone mask
  (:mod:`mskai.fracture.surface_candidates`);
- ``merged``: both pooled, a candidate within 10 mm of a better one dropped;
- ``valley``: the classic HU-valley candidates on cortex (:mod:`mskai.fracture.valley_candidates`),
  read at its own operating score for the intact CTs;
- ``valley_reduced``: the valley regions rescored by the learned false-positive reducer
  (:mod:`mskai.fracture.valley_reducer`; its score reads 0.5 at the operating threshold
  chosen on the training patients);
- ``merged_valley``: components and reduced valley pooled like ``merged``;
- ``merged_all``: components, reduced valley and learned candidates pooled like ``merged``
  (what the default becomes when the learned model is preferred);
- ``default``: :func:`mskai.tasks.fracture.run_fracture` as shipped (since 2026-12-06 the
  components, scored at the scorer's operating threshold, with the reduced valley
  candidates, none on the line of a better component pair);
- ``split_touching``: the same with the automatic fragment split (opt-in); until 2026-12-07
  its neck and landscape splits added component candidates, since then it adds none and
  keeps each fracture's position, so it must read as ``default``.

Hit criterion: a candidate is a true positive when its position lies within ``HIT_MM`` (10
mm; ``--hit-mm`` for another radius) of a voxel of the true fracture surface; a fracture
counts once (its best hitting candidate), further hits on it are neither true nor false;
every other candidate is a false positive. Sensitivity is read at the score thresholds that
allow 0.5, 1, 2, 4 and 8 false positives per scan, per kind and over all kinds. False
positives per scan on the intact CTs of the test patients (and, marked, of the training
patients) at the default threshold ``DEFAULT``. Paired check: the share of fractures whose
true surface the intact scan's candidates would also "hit" at the same threshold (chance
level of the criterion).

Run: ``nice -n 10 .venv/bin/python Testing/benchmarks/froc_real_fracture.py [--json FILE]
[--max-bones N] [--records FILE] [--detectors components,learned]`` (about 15 minutes on one
shared core; ``--records`` keeps the candidates so detectors can be run one at a time;
``--records FILE --summary-only`` only reads FILE and prints the tables).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

TESTING = Path(__file__).resolve().parents[1]
REPO = TESTING.parent
sys.path.insert(0, str(REPO / "MSKAIExtension"))
sys.path.insert(0, str(REPO / "training" / "fracture"))

HIT_MM = 10.0
RATES = (0.5, 1.0, 2.0, 4.0, 8.0)
DEFAULT = 0.5
DETECTORS = ("components", "learned", "merged", "valley", "valley_reduced", "merged_valley",
             "merged_all", "default", "split_touching")
MERGES = {"merged": ("components", "learned"), "merged_valley": ("components", "valley_reduced"),
          "merged_all": ("components", "valley_reduced", "learned")}
SEED0 = 0


def detect(image, detectors: tuple[str, ...], learned_model=(None, None)) -> dict[str, list]:
    """[x, y, z, score] of every candidate of each requested base detector; ``learned_model``
    is the surface model's (manifest entry, network), loaded once."""
    out: dict[str, list] = {}
    pipelines = {"components": {"use_models": True, "learned_surface": False,
                                "valley_reducer": False},
                 "default": {}, "split_touching": {"split_touching": True}}
    for name, options in pipelines.items():
        if name in detectors:
            out[name] = _pipeline_candidates(image, **options)
    if "learned" in detectors:
        from mskai.fracture.surface_candidates import learned_candidates
        from mskai.segmentation.bone_ct import segment_bone_ct

        out["learned"] = [[*map(float, c.position_ras), c.score]
                          for c in learned_candidates(image, segment_bone_ct(image),
                                                      entry=learned_model[0],
                                                      net=learned_model[1])]
    if "valley" in detectors:
        from mskai.fracture.valley_candidates import valley_candidates

        out["valley"] = [[*map(float, c.position_ras), c.score]
                         for c in valley_candidates(image)]
    if "valley_reduced" in detectors:
        from mskai.fracture.valley_reducer import reduced_valley_candidates

        out["valley_reduced"] = [[*map(float, c.position_ras), c.score]
                                 for c in reduced_valley_candidates(image)]
    return out


def _pipeline_candidates(image, **options) -> list:
    """[x, y, z, score] of every candidate :func:`run_fracture` reports with ``options``."""
    from mskai.tasks.fracture import run_fracture

    return [[*c["position_ras"], c["score"]]
            for c in run_fracture(image, **options).measurements["fracture_candidates"]]


def default_of(detector: str) -> float:
    """The score at which the intact CTs are counted (``DEFAULT``; the valley's own)."""
    if detector == "valley":
        from mskai.fracture.valley_candidates import OPERATING_SCORE

        return OPERATING_SCORE
    return DEFAULT


def merged(cands: dict[str, list], detector: str = "merged") -> list:
    """The detectors of ``MERGES[detector]`` pooled, best first, none within DEDUPE_MM of a
    better one."""
    from mskai.tasks.fracture import DEDUPE_MM

    kept: list = []
    pooled = [c for source in MERGES[detector] for c in cands[source]]
    for c in sorted(pooled, key=lambda c: -c[3]):
        if all(np.linalg.norm(np.subtract(c[:3], k[:3])) > DEDUPE_MM for k in kept):
            kept.append(c)
    return kept


def candidates_of(cands: dict[str, list], detector: str) -> list[tuple[np.ndarray, float]]:
    chosen = merged(cands, detector) if detector in MERGES else cands[detector]
    return [(np.asarray(c[:3]), float(c[3])) for c in chosen]


def score_case(cands: list, surface_ras: np.ndarray,
               hit_mm: float = HIT_MM) -> tuple[float | None, list[float]]:
    """(best hitting score or None, scores of false positives)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(surface_ras)
    best, fps = None, []
    for pos, score in cands:
        if tree.query(pos)[0] <= hit_mm:
            best = score if best is None else max(best, score)
        else:
            fps.append(score)
    return best, fps


def froc(hits: list, fps: list[float], n_scans: int, default: float = DEFAULT) -> dict:
    """Sensitivity at each allowed FP rate (threshold: the lowest score keeping FP/scan <= r)."""
    table = {}
    scores = sorted({s for s in [*fps, *(h for h in hits if h is not None)]}, reverse=True)
    fps_arr = np.asarray(fps)
    for rate in RATES:
        thr = np.inf
        for s in scores:
            if np.count_nonzero(fps_arr >= s) / max(n_scans, 1) <= rate:
                thr = s
            else:
                break
        sens = np.mean([h is not None and h >= thr for h in hits]) if hits else float("nan")
        table[str(rate)] = {"sensitivity": float(sens), "threshold": float(thr)}
    at_default = np.mean([h is not None and h >= default for h in hits]) if hits else 0.0
    table["default"] = {"sensitivity": float(at_default), "threshold": default,
                        "fp_per_scan": float(np.count_nonzero(fps_arr >= default))
                        / max(n_scans, 1)}
    return table


SIM_CACHE = Path("/tmp/froc_real_fracture_sims")


class _Sim:
    """The parts of a simulated fracture the benchmark needs (image and true surface)."""

    def __init__(self, image, surface: np.ndarray) -> None:
        self.image, self.surface = image, surface


def simulate_cached(image, mask: np.ndarray, kind: str, seed: int, tag: str):
    """:func:`simulate_real_fracture`, kept in ``SIM_CACHE`` (deterministic per seed)."""
    from mskai.phantoms.real_fracture import simulate_real_fracture

    path = SIM_CACHE / f"{tag}_{kind}_{seed}.npz"
    if path.is_file():
        saved = np.load(path)
        return _Sim(image.with_array(saved["image"]), saved["surface"])
    sim = simulate_real_fracture(image, mask, kind, seed=seed)
    SIM_CACHE.mkdir(exist_ok=True)
    np.savez_compressed(path, image=np.asarray(sim.image.array), surface=sim.surface)
    return sim


def cases(max_bones: int):
    """(patient, bone name, kind, seed, intact image, simulated fracture) of the test split."""
    import real_bones

    from mskai.phantoms.real_fracture import KINDS

    seed = SEED0
    for patient in real_bones.split()["test"]:
        image, bones = real_bones.load_patient(patient)
        yield patient, None, None, None, image, None
        for bone in bones[:max_bones]:
            for kind in KINDS:
                seed += 1
                try:
                    sim = simulate_cached(image, bone.mask, kind, seed,
                                          f"{patient}_{bone.name}")
                except ValueError:
                    continue
                yield patient, bone.name, kind, seed, image, sim


def run(max_bones: int, detectors: tuple[str, ...], previous: dict | None) -> dict:
    """Candidates of ``detectors`` on every case, added to ``previous`` records."""
    import real_bones

    learned_model = (None, None)
    if "learned" in detectors:
        from mskai.fracture.surface_net import load_surface_net, surface_model_entry

        entry = surface_model_entry()
        learned_model = (entry, load_surface_net(entry))
    data = previous or {"records": [], "intact": []}
    old = {(r["patient"], r["bone"], r["kind"], r["seed"]): r for r in data["records"]}
    old_intact = {i["patient"]: i for i in data["intact"]}
    records, intact = [], []
    for patient, bone, kind, seed, image, sim in cases(max_bones):
        start = time.time()
        if sim is None:
            rec = old_intact.get(patient, {"patient": patient, "split": "test", "cands": {}})
            rec["cands"].update(detect(image, detectors, learned_model))
            intact.append(rec)
            continue
        rec = old.get((patient, bone, kind, seed))
        if rec is None:
            kji = np.argwhere(sim.surface)
            surface = np.asarray(sim.image.index_to_ras(kji[:, ::-1].astype(float)))
            rec = {"patient": patient, "bone": bone, "kind": kind, "seed": seed,
                   "surface": surface.reshape(-1, 3).round(2).tolist(), "cands": {}}
        rec["cands"].update(detect(sim.image, detectors, learned_model))
        records.append(rec)
        print(f"{patient} {bone} {kind:10s} seed {seed}: " + " ".join(
            f"{d} {len(c)}" for d, c in rec["cands"].items())
            + f" ({time.time() - start:.0f} s)", flush=True)
    for patient in ("ts_example",):
        image, _ = real_bones.load_patient(patient)
        rec = old_intact.get(patient, {"patient": patient, "split": "train", "cands": {}})
        rec["cands"].update(detect(image, detectors, learned_model))
        intact.append(rec)
    return {"records": records, "intact": intact}


def paired_chance(data: dict, detector: str, threshold: float, hit_mm: float = HIT_MM) -> float:
    """Share of fractures whose true surface the INTACT scan's candidates also "hit" at
    ``threshold``: the chance level of the 10 mm hit criterion (paired check)."""
    from scipy.spatial import cKDTree

    intact = {i["patient"]: candidates_of(i["cands"], detector) for i in data["intact"]}
    hits = []
    for r in data["records"]:
        tree = cKDTree(np.asarray(r["surface"]))
        hits.append(any(s >= threshold and tree.query(p)[0] <= hit_mm
                        for p, s in intact.get(r["patient"], [])))
    return float(np.mean(hits)) if hits else float("nan")


def _count_at(cands: dict[str, list], detector: str, threshold: float = DEFAULT) -> int:
    return sum(1 for _, s in candidates_of(cands, detector) if s >= threshold)


def summarise(data: dict, hit_mm: float = HIT_MM) -> dict:
    from mskai.phantoms.real_fracture import KINDS

    records = data["records"]
    out = {}
    for d in [d for d in DETECTORS if all(set(MERGES.get(d, (d,))) <= set(r["cands"])
                                          for r in [*records, *data["intact"]])]:
        per = {}
        scored = {id(r): score_case(candidates_of(r["cands"], d), np.asarray(r["surface"]),
                                         hit_mm)
                  for r in records}
        for kind in (*KINDS, "all"):
            rs = [r for r in records if kind == "all" or r["kind"] == kind]
            per[kind] = froc([scored[id(r)][0] for r in rs],
                             [f for r in rs for f in scored[id(r)][1]], len(rs),
                             default_of(d)) | {
                                 "scans": len(rs)}
        for split in ("test", "train"):
            counts = {i["patient"]: _count_at(i["cands"], d, default_of(d))
                      for i in data["intact"]
                      if i["split"] == split}
            per[f"intact_{split}"] = counts
        test = list(per["intact_test"].values())
        per["intact_fp_per_scan"] = float(np.mean(test)) if test else None
        per["paired_chance"] = {str(r): paired_chance(data, d, per["all"][str(r)]["threshold"],
                                                  hit_mm)
                                for r in RATES}
        per["intact_fp_at_rate"] = {str(r): float(np.mean([
            _count_at(i["cands"], d, per["all"][str(r)]["threshold"]) for i in data["intact"]
            if i["split"] == "test"])) for r in RATES}
        out[d] = per
    one = {d: out[d]["all"]["1.0"]["sensitivity"] for d in out}
    if {"learned", "merged", "components"} <= set(one):
        out["learned_beats_components"] = bool(one["learned"] > one["components"]
                                               or one["merged"] > one["components"])
    if {"merged_all", "merged_valley"} <= set(one):  # the default with and without it
        out["learned_improves_default"] = bool(one["merged_all"] > one["merged_valley"])
    return out


def table(summary: dict) -> str:
    from mskai.phantoms.real_fracture import KINDS

    lines = []
    for d in [d for d in DETECTORS if d in summary]:
        at = default_of(d)
        lines.append(f"\n{d}: sensitivity at FP/scan (scans) | default {at}: sens, FP/scan")
        lines.append("| kind | scans | " + " | ".join(f"{r:g}" for r in RATES)
                     + f" | sens@{at} | FP/scan@{at} |")
        lines.append("|---" * (len(RATES) + 4) + "|")
        for kind in (*KINDS, "all"):
            t = summary[d][kind]
            lines.append(f"| {kind} | {t['scans']} | " + " | ".join(
                f"{t[str(r)]['sensitivity']:.2f}" for r in RATES)
                + f" | {t['default']['sensitivity']:.2f} | {t['default']['fp_per_scan']:.2f} |")
        lines.append(f"intact test CTs: {summary[d]['intact_fp_per_scan']} FP/scan at {at}")
        lines.append("paired chance (intact scan hits the same surface), all kinds: " + " | ".join(
            f"{summary[d]['paired_chance'][str(r)]:.2f}" for r in RATES))
        lines.append("FP per intact test CT at each rate's threshold: " + " | ".join(
            f"{summary[d]['intact_fp_at_rate'][str(r)]:.2f}" for r in RATES))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--max-bones", type=int, default=1)
    parser.add_argument("--detectors", default="components,learned",
                        help="base detectors to run now (comma separated)")
    parser.add_argument("--records", type=Path, help="candidates saved by an earlier run: "
                        "reused, the --detectors given are added")
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--hit-mm", type=float, default=HIT_MM,
                        help="hit radius around the true surface (default 10 mm)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    previous = (json.loads(args.records.read_text()) if args.records and args.records.is_file()
                else None)
    if args.summary_only and previous is None:
        parser.error("--summary-only needs --records FILE of an earlier run")
    if args.summary_only:
        data = previous  # read only: the records file is left as it is
    else:
        data = run(args.max_bones, tuple(d for d in args.detectors.split(",") if d), previous)
        if args.records:
            args.records.write_text(json.dumps(data))
    if not data["records"]:
        print("no records to summarise")
        return
    summary = summarise(data, args.hit_mm)
    print(table(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

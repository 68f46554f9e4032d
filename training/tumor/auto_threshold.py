"""Nested choice of the "auto" method's size threshold, and its cross-validated Dice.

Usage::

    .venv/bin/python training/tumor/auto_threshold.py --classic /tmp/tumor_v2/classic.jsonl \
        --network /tmp/tumor_v3/learned.jsonl --volumes /tmp/tumor_v3/classic_vol.jsonl

Inputs are :mod:`cv_evaluate` per-volume lines (``--classic``: the classic method;
``--network``: the trajectory used above the threshold, e.g. ``learned`` or
``learned_then_classic``) and ``--volumes``: the classic one-click volume (mL) per CV volume.
A volume whose classic one-click volume is under T mL takes the classic trajectory, else the
network's. For each held-out fold, T is the grid value maximising mean (1-click + 3-click)
Dice over the other four folds' volumes; the held-out fold is then scored with it. The shipped
configuration (``mskai.interactive.auto_method``): ``--network`` = ``cv_evaluate.py --method
learned_then_classic`` (the network's first mask, classic refinement after), then
``cv_evaluate.py --method auto`` re-measures it with mskai's own code (``--measured``,
``--json training/tumor/cv_results.json`` adds it to the results). Prints the
per-fold thresholds, their median (the shipped ``AUTO_THRESHOLD_ML``), and per modality and
click count the mean and worst Dice of auto, classic and the network, with the worst volume.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

GRID_ML = (0.0, 25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 1e9)
CLICKS = (1, 2, 3, 5)


def rows(path: Path) -> dict[tuple[str, str], dict]:
    """``(case, modality)`` -> the JSON line."""
    return {(r["case"], r["modality"]): r for r in map(json.loads, path.open())}


def nested_thresholds(classic, network, volume_ml, keys) -> dict[int, float]:
    """Held-out fold -> the threshold chosen on the other folds."""
    def dice(key, threshold, click):
        source = classic if volume_ml[key] < threshold else network
        return source[key]["steps"][click]["dice"]

    folds = sorted({network[k]["fold"] for k in keys})
    return {f: max(GRID_ML, key=lambda t, f=f: np.mean(
        [dice(k, t, 0) + dice(k, t, 2) for k in keys if network[k]["fold"] != f]))
        for f in folds}


def table(classic, network, volume_ml, keys, chosen) -> dict:
    """modality -> clicks -> {auto, classic, network: (mean, worst, worst case)}."""
    out: dict = {}
    for modality in ("CT", "MR"):
        ks = [k for k in keys if k[1] == modality]
        for n in CLICKS:
            entry = {}
            for name, pick in (("auto", lambda k: classic if volume_ml[k] < chosen[
                    network[k]["fold"]] else network), ("classic", lambda k: classic),
                    ("network", lambda k: network)):
                d = np.array([pick(k)[k]["steps"][n - 1]["dice"] for k in ks])
                entry[name] = (round(float(d.mean()), 3), round(float(d.min()), 3),
                               ks[int(d.argmin())][0])
            out.setdefault(modality, {})[n] = entry
    return out


def auto_rows(classic, network, volume_ml, keys, chosen, name: str) -> list[dict]:
    """``cv_evaluate``-style lines of the auto method (``summarize.py`` input), each with the
    threshold it was scored with and the method it used."""
    out = []
    for k in keys:
        threshold = chosen[network[k]["fold"]]
        used = "classic" if volume_ml[k] < threshold else "learned"
        source = classic if used == "classic" else network
        out.append({**source[k], "method": name, "used": used, "threshold_ml": threshold,
                    "classic_one_click_ml": volume_ml[k]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classic", type=Path, required=True)
    parser.add_argument("--network", type=Path, required=True)
    parser.add_argument("--volumes", type=Path, required=True)
    parser.add_argument("--write", type=Path, default=None,
                        help="write the auto method's per-volume lines here (summarize.py)")
    parser.add_argument("--json", type=Path, default=None,
                        help="add the auto method's summary, per-case Dice and thresholds to "
                             "this cv_results.json")
    parser.add_argument("--name", default="auto", help="the method name in those lines")
    parser.add_argument("--measured", type=Path, default=None,
                        help="cv_evaluate.py --method auto lines (mskai's own code with the "
                             "shipped threshold) to put in --json instead of the composed "
                             "lines; only valid when every fold chose that threshold")
    args = parser.parse_args()
    classic, network = rows(args.classic), rows(args.network)
    volume_ml = {k: r["classic_ml"] for k, r in rows(args.volumes).items()}
    keys = sorted(k for k in network if k in volume_ml and k in classic)
    chosen = nested_thresholds(classic, network, volume_ml, keys)
    print("thresholds per held-out fold", chosen, "median", float(np.median(list(chosen.values()))))
    for modality, per_click in table(classic, network, volume_ml, keys, chosen).items():
        for n, entry in per_click.items():
            print(modality, n, "  ".join(f"{name} {m:.3f} ({w:.3f} {case})"
                                         for name, (m, w, case) in entry.items()))
    if args.write is not None:
        lines = auto_rows(classic, network, volume_ml, keys, chosen, args.name)
        args.write.write_text("".join(json.dumps(r) + "\n" for r in lines))
    if args.json is not None:
        lines = auto_rows(classic, network, volume_ml, keys, chosen, args.name)
        if args.measured is not None:
            if len(set(chosen.values())) != 1:
                raise SystemExit("the folds chose different thresholds: the measured run "
                                 "with one threshold is not the nested evaluation")
            lines = [{**r, "method": args.name} for r in rows(args.measured).values()]
        merge_into(args.json, lines, chosen)


def merge_into(path: Path, lines: list[dict], chosen: dict[int, float]) -> None:
    """Add the auto method (summary, per-case Dice, per-fold thresholds) to cv_results.json."""
    from summarize import summarise  # training/tumor/summarize.py, beside this script

    doc = json.loads(path.read_text())
    name = lines[0]["method"]
    doc["summary"].update(summarise(lines))
    doc["dice_per_case"].update({f"{name}/{r['case']}/{r['modality']}":
                                 [round(s["dice"], 3) for s in r["steps"]] for r in lines})
    doc[f"{name}_threshold_ml_per_fold"] = {str(f): t for f, t in sorted(chosen.items())}
    path.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()

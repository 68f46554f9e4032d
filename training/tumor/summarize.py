"""The cross-validation table (markdown + JSON) from ``cv_evaluate.py``'s JSON lines.

Usage::

    .venv/bin/python training/tumor/summarize.py /tmp/tumor_v2/classic.jsonl \
        /tmp/tumor_v2/learned.jsonl --json training/tumor/cv_results.json

Per method, modality and fold, and over all folds: mean and worst Dice and HD95 (mm) after
1, 2, 3 and 5 clicks. Worst = lowest Dice / largest HD95 over the volumes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CLICKS = (1, 2, 3, 5)


def load(paths: list[Path]) -> list[dict]:
    rows: dict[tuple, dict] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                rows[(r["method"], r["case"], r["modality"])] = r   # the last run counts
    return list(rows.values())


def stats(rows: list[dict]) -> dict:
    out = {"n": len(rows)}
    for c in CLICKS:
        d = np.array([r["steps"][c - 1]["dice"] for r in rows])
        h = np.array([r["steps"][c - 1]["hd95"] for r in rows])
        out[str(c)] = {"dice_mean": round(float(d.mean()), 3),
                       "dice_worst": round(float(d.min()), 3),
                       "hd95_mean": round(float(np.mean(np.minimum(h, 999))), 1),
                       "hd95_worst": round(float(np.minimum(h, 999).max()), 1)}
    return out


def summarise(rows: list[dict]) -> dict:
    table: dict = {}
    for method in sorted({r["method"] for r in rows}):
        for modality in ("CT", "MR"):
            sel = [r for r in rows if r["method"] == method and r["modality"] == modality]
            if not sel:
                continue
            entry = {"all": stats(sel)}
            for fold in sorted({r["fold"] for r in sel}):
                entry[f"fold{fold}"] = stats([r for r in sel if r["fold"] == fold])
            table.setdefault(method, {})[modality] = entry
    return table


def markdown(table: dict) -> str:
    head = ("| method | series | fold | n | " + " | ".join(
        f"Dice {c} click{'s' if c > 1 else ''} mean (worst)" for c in CLICKS)
        + " | " + " | ".join(f"HD95 {c} mean (worst) mm" for c in (1, 3)) + " |")
    lines = [head, "|" + "---|" * (4 + len(CLICKS) + 2)]
    for method, mods in table.items():
        for modality, folds in mods.items():
            for fold, s in sorted(folds.items(), key=lambda kv: (kv[0] == "all", kv[0])):
                name = "**all**" if fold == "all" else fold.removeprefix("fold")
                cells = [f"{s[str(c)]['dice_mean']:.3f} ({s[str(c)]['dice_worst']:.3f})"
                         for c in CLICKS]
                cells += [f"{s[str(c)]['hd95_mean']:.1f} ({s[str(c)]['hd95_worst']:.1f})"
                          for c in (1, 3)]
                lines.append(f"| {method} | {modality} | {name} | {s['n']} | "
                             + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jsonl", type=Path, nargs="+")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--per-case", action="store_true")
    args = parser.parse_args()
    rows = load(args.jsonl)
    table = summarise(rows)
    print(markdown(table))
    if args.per_case:
        for r in sorted(rows, key=lambda r: (r["modality"], r["case"], r["method"])):
            print(r["method"], r["case"], r["modality"], r["fold"], r["tumour_ml"],
                  " ".join(f"{s['dice']:.3f}" for s in r["steps"]))
    if args.json is not None:
        per_case = {f"{r['method']}/{r['case']}/{r['modality']}":
                    [round(s["dice"], 3) for s in r["steps"]] for r in rows}
        args.json.write_text(json.dumps({"summary": table, "dice_per_case": per_case},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Dice of tumour segmentation from a RECIST line alone and from a box alone, on the IBSI STS
cases, by the cross-validation folds of ``training/tumor/folds.json``.

Usage::

    .venv/bin/python Testing/benchmarks/eval_tumor_prompts.py [--method classic]
        [--cases STS_001,STS_002] [--out per_case.json] [--fold-weights /tmp/tumor_v3]

The prompts are drawn automatically from the expert mask, as a reader would draw them:

* RECIST line: on the axial slice with the largest tumour area, the longest in-plane axis
  (the RECIST long axis of that slice, :func:`mskai.measure.recist.recist_axes`);
* box: the expert mask's bounding box (RAS) plus 5 mm on every side.

Each prompt goes through :func:`mskai.tasks.tumor.segment_prompts`, the path of
``mskai tumor --recist-line-ras`` / ``--roi-ras``. The classic method has no training, so
every volume of every fold is scored; the table groups them by fold and by modality.
STS_004-006 and STS_040-051 are reserved and never read. Not a test: it prints a table.

``--fold-weights DIR`` (with ``learned`` or ``auto``): each volume's network is its fold's
model, ``DIR/fold<f>.pt`` (trained without that patient, training/tumor/README.md), in place
of the shipped weights, which were trained on every patient here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "sts_sarcoma"
FOLDS = REPO / "training" / "tumor" / "folds.json"
RESERVED = {"STS_004", "STS_005", "STS_006", *(f"STS_{n:03d}" for n in range(40, 52))}
SERIES = (("CT", "CT"), ("MR", "MR_T1"))
BOX_PAD_MM = 5.0


def folds() -> list[list[str]]:
    if FOLDS.is_file():
        return json.loads(FOLDS.read_text())["folds"]
    cases = [f"STS_{n:03d}" for n in (*range(1, 4), *range(7, 40))]
    return [cases]


def recist_line_from_mask(mask: np.ndarray, volume) -> tuple[float, ...]:
    """The longest in-plane axis on the axial slice with the largest tumour area."""
    from mskai.measure.recist import axial_slice_axis, recist_axes

    slice_axis = axial_slice_axis(volume)
    array_axis = 2 - (slice_axis if slice_axis is not None else 2)
    other = tuple(a for a in range(3) if a != array_axis)
    best = int(np.argmax(mask.sum(axis=other)))
    one = np.zeros_like(mask)
    index = [slice(None)] * 3
    index[array_axis] = best
    one[tuple(index)] = mask[tuple(index)]
    p, q = recist_axes(one, volume)["long_endpoints_ras"]
    return (*p, *q)


def box_from_mask(mask: np.ndarray, volume, pad_mm: float = BOX_PAD_MM) -> tuple[float, ...]:
    """The mask's RAS bounding box plus ``pad_mm`` (voxel corners, not centres)."""
    found = np.argwhere(mask)
    lo, hi = found.min(0) - 0.5, found.max(0) + 0.5
    corners = np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(3, -1).T
    ras = volume.index_to_ras(corners[:, ::-1])
    a, b = ras.min(0) - pad_mm, ras.max(0) + pad_mm
    return (*map(float, a), *map(float, b))


def use_fold_model(weights: Path) -> None:
    """Make the learned method's default model the given fold model (held-out scoring)."""
    import torch

    from mskai.interactive import learned
    from mskai.models.loaders import build_network

    model = build_network(learned.ARCHITECTURE)
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    learned.load_refine_model = lambda *_args, **_kw: model


def evaluate(case: str, series: str, method: str) -> dict:
    from mskai.errors import InputError
    from mskai.image import read_image
    from mskai.interactive import Prompts
    from mskai.interactive.evaluate import dice
    from mskai.tasks.tumor import segment_prompts

    if case in RESERVED:
        raise SystemExit(f"{case} is reserved for independent evaluation")
    volume = read_image(DATA / case / f"{series}_image.nii.gz")
    truth = read_image(DATA / case / f"{series}_mask.nii.gz").array > 0
    line = recist_line_from_mask(truth, volume)
    box = box_from_mask(truth, volume)
    row: dict = {"case": case, "series": series, "modality": volume.modality,
                 "line_mm": float(np.linalg.norm(np.subtract(line[3:], line[:3])))}
    for name, prompts in (("line", Prompts(recist_line_ras=line)),
                          ("box", Prompts(roi_ras=box))):
        start = time.perf_counter()
        try:
            mask = segment_prompts(volume, prompts, method=method)
            row[name] = float(dice(mask, truth))
        except InputError as exc:   # counted as a failure (Dice 0), with the reason
            row[name], row[f"{name}_error"] = 0.0, str(exc)
        row[f"{name}_s"] = time.perf_counter() - start
    return row


def summary(rows: list[dict], fold_of: dict[str, int]) -> str:
    lines = ["| group | n | line: mean Dice | line: worst | box: mean Dice | box: worst |",
             "|---|---|---|---|---|---|"]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["series"].split("_")[0], []).append(r)
        groups.setdefault(f"fold {fold_of[r['case']] + 1}", []).append(r)
        groups.setdefault("all", []).append(r)
    for name in sorted(groups, key=lambda g: (g == "all", g)):
        rs = groups[name]
        cells = []
        for prompt in ("line", "box"):
            vals = [r[prompt] for r in rs]
            worst = min(rs, key=lambda r, p=prompt: r[p])
            cells += [f"{np.mean(vals):.3f}", f"{worst[prompt]:.3f} ({worst['case']} "
                      f"{worst['series'].split('_')[0]})"]
        lines.append(f"| {name} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("classic", "learned", "auto"), default="classic")
    parser.add_argument("--fold-weights", type=Path, default=None,
                        help="folder of fold<f>.pt: each case scored with its fold's model")
    parser.add_argument("--cases", default=None, help="comma-separated subset of cases")
    parser.add_argument("--out", type=Path, default=None, help="per-case rows (JSON)")
    args = parser.parse_args(argv)
    all_folds = folds()
    fold_of = {c: n for n, fold in enumerate(all_folds) for c in fold}
    cases = args.cases.split(",") if args.cases else [c for f in all_folds for c in f]
    rows: list[dict] = []
    for case in cases:
        for _, series in SERIES:
            if not (DATA / case / f"{series}_image.nii.gz").is_file():
                continue
            if args.fold_weights is not None:
                use_fold_model(args.fold_weights / f"fold{fold_of[case]}.pt")
            row = evaluate(case, series, args.method)
            rows.append(row)
            print(f"{case} {series:5} line {row['line']:.3f} ({row['line_s']:.1f} s) "
                  f"box {row['box']:.3f} ({row['box_s']:.1f} s) "
                  + " ".join(row.get(f"{p}_error", "") for p in ("line", "box")), flush=True)
            if args.out:
                args.out.write_text(json.dumps(rows, indent=1))
    print(summary(rows, fold_of))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    sys.exit(main())

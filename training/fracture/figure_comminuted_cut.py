"""Draw docs/images/fracture_comminuted_cut.png: three fragments from three clicks, flooded and cut.

The held-out comminuted fracture of the FROC benchmark's STS_001 (``Testing/benchmarks/
froc_real_fracture.py``: the largest bone of that test patient, 1x1x3.3 mm, seed 11), as
``Testing/test_fragment_split_min_cut.py`` pins it. One click per fragment at its deepest
voxel (``eval_fragment_split_held_out.deepest_clicks``). Panels on the axial and the coronal
slice through the middle fragment's click: the CT, the true fragments, the watershed alone
(:func:`mskai.fracture.fragment_split.split_from_seeds` with ``cut_beta=0``, the split before
2026-12-07 22:00 UTC) and the split as shipped (its minimum cuts, :mod:`mskai.fracture.min_cut`).
Worst-fragment Dice in the titles.

Run: ``.venv/bin/python training/fracture/figure_comminuted_cut.py`` (about 20 seconds)
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT = REPO / "docs" / "images" / "fracture_comminuted_cut.png"
PATIENT, KIND, SEED = "STS_001", "comminuted", 11


def main() -> None:
    for path in (REPO / "MSKAIExtension", REPO / "Testing", REPO / "Testing" / "benchmarks"):
        sys.path.insert(0, str(path))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from eval_fragment_split_held_out import sarcoma_click_case

    from mskai.fracture.fragment_split import DEFAULT_PARAMS, split_from_seeds
    from phantoms.touching_fracture import matched_dice

    image, truth, clicks = sarcoma_click_case(REPO.parent / "shared" / "data", PATIENT, KIND,
                                              SEED)
    bone = truth > 0
    flooded = split_from_seeds(image, bone, clicks, params=replace(DEFAULT_PARAMS, cut_beta=0.0))
    cut = split_from_seeds(image, bone, clicks)
    k, j, _ = clicks[1][0]
    box = [slice(max(0, lo - 8), hi + 8) for lo, hi in zip(np.argwhere(bone).min(0),
                                                            np.argwhere(bone).max(0),
                                                            strict=True)]
    views = [("axial", (k, box[1], box[2]), 1.0), ("coronal", (box[0], j, box[2]),
                                                       image.spacing[2] / image.spacing[0])]
    columns = [("CT (comminuted, held out, 1x1x3.3 mm)", None),
               ("true fragments", truth),
               (f"watershed alone: Dice {min(matched_dice(truth, flooded)):.3f}", flooded),
               (f"with the minimum cuts: Dice {min(matched_dice(truth, cut)):.3f}", cut)]
    fig, axes = plt.subplots(2, len(columns), figsize=(3.2 * len(columns), 6.0))
    for row, (name, index, aspect) in enumerate(views):
        ct = np.asarray(image.array, dtype=float)[index]
        for col, (title, labels) in enumerate(columns):
            ax = axes[row, col]
            ax.imshow(ct, cmap="gray", vmin=-200, vmax=1500, aspect=aspect)
            if labels is not None:
                ax.imshow(np.ma.masked_equal(labels[index], 0), cmap="tab10", vmin=0, vmax=10,
                          aspect=aspect, alpha=0.55, interpolation="nearest")
            ax.set_title(f"{title} ({name})" if col == 0 else title, fontsize=7.5)
            ax.axis("off")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

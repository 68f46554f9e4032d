"""Draw docs/images/fracture_touching.png: a touching-fragment fracture, found and split.

A held-out touching fracture of the FROC benchmark (``Testing/benchmarks/
froc_real_fracture.py``: the largest bone of test patient STS_014, 1x1x3.3 mm, kind
``touching``, seed 19) broken by :func:`mskai.phantoms.real_fracture.simulate_real_fracture`.
Panels on the plane through the fracture centre that keeps the surface's normal: the CT; the
true surface; what the default pipeline finds (:func:`mskai.tasks.fracture.run_fracture`:
the fracture it reports, with its score, over the HU valley of
:func:`mskai.fracture.fracture_landscape.fracture_landscape`, the evidence the split floods);
the fragments from one click per fragment (:func:`mskai.fracture.fragment_split.
split_from_seeds` on its own relief, the valley in cortex only; clicks at each true
fragment's deepest voxel, as ``Testing/benchmarks/eval_fragment_split.py``); and the automatic split
(``eval_fragment_split.automatic``: at the fractures the detector reports, as
:mod:`mskai.fracture.guided_split`). Fragment Dice against the truth is in the titles.

Run: ``.venv/bin/python training/fracture/figure_touching.py`` (about a minute)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT = REPO / "docs" / "images" / "fracture_touching.png"
PATIENT, KIND, SEED = "STS_014", "touching", 19


def case():
    """The simulated fracture and the broken bone's mask."""
    sys.path.insert(0, str(HERE))
    import real_bones

    from mskai.phantoms.real_fracture import simulate_real_fracture

    image, bones = real_bones.load_patient(PATIENT)
    return simulate_real_fracture(image, bones[0].mask, KIND, seed=SEED), bones[0].mask


def main() -> None:
    for path in (REPO / "MSKAIExtension", REPO / "Testing", REPO / "Testing" / "benchmarks"):
        sys.path.insert(0, str(path))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from eval_fragment_split import automatic as automatic_split
    from eval_fragment_split import deepest_points
    from eval_fragment_split_held_out import truth_fragments

    from mskai.fracture.fracture_landscape import fracture_landscape
    from mskai.fracture.fragment_split import seeds_from_ras, split_from_seeds
    from mskai.tasks.fracture import run_fracture
    from phantoms.touching_fracture import matched_dice

    sim, bone = case()
    image = sim.image
    truth = truth_fragments(sim.fragments, bone)
    broken = truth > 0
    landscape = fracture_landscape(image, broken)
    seeds = seeds_from_ras(image, broken, deepest_points(truth, image), max_snap_mm=5.0)
    clicked = split_from_seeds(image, broken, [s[None] for s in seeds])  # its own relief
    automatic = automatic_split(image, broken, landscape)
    found = [f for f in run_fracture(image).measurements["fractures"]]
    centre = np.rint(image.ras_to_index(sim.centers_ras[0])).astype(int).reshape(3)
    # the in-plane array axis (i or j) most along the fracture normal stays in the picture
    normal_ijk = np.abs(np.linalg.inv(image.direction) @ (np.array([-1.0, -1.0, 1.0])
                                                           * _normal(sim)))
    cut_axis = 1 if normal_ijk[0] > normal_ijk[1] else 2  # array axis (k, j, i) to slice
    index = centre[::-1][cut_axis]

    def plane(a):
        return np.take(a, index, axis=cut_axis)

    sp = image.spacing[::-1]
    aspect = sp[0] / sp[2 if cut_axis == 1 else 1]
    ct = plane(np.asarray(image.array, dtype=float))
    best = max(found, key=lambda f: f["score"]) if found else None
    label = (f"found: score {best['score']:.2f} ({best['source']})" if best
             else "found: no fracture at score 0.5")
    panels = [("simulated CT (touching, held out, 1x1x3.3 mm)", "ct", None),
              ("true fracture surface", "contour", plane(sim.surface)),
              (f"{label}; HU valley", "found", plane(landscape)),
              (f"one click per fragment: Dice {min(matched_dice(truth, clicked)):.3f}", "labels",
               plane(clicked)),
              (f"automatic split: Dice {min(matched_dice(truth, automatic)):.3f}", "labels",
               plane(automatic))]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.8))
    for ax, (title, kind, overlay) in zip(axes, panels, strict=True):
        ax.imshow(ct, cmap="gray", vmin=-200, vmax=1500, origin="lower", aspect=aspect)
        if kind == "contour":
            ax.contour(overlay, levels=[0.5], colors="red", linewidths=0.8)
        elif kind == "found":
            ax.imshow(np.ma.masked_less(overlay, 0.15), cmap="hot", vmin=0, vmax=1,
                      origin="lower", aspect=aspect, alpha=0.8)
            if best is not None:
                kji = image.ras_to_index(np.asarray(best["position_ras"]))[::-1]
                row, col = kji[0], kji[2 if cut_axis == 1 else 1]
                ax.plot(col, row, "c+", markersize=14, markeredgewidth=2)
        elif kind == "labels":
            ax.imshow(np.ma.masked_equal(overlay, 0), cmap="tab10", vmin=0, vmax=10,
                      origin="lower", aspect=aspect, alpha=0.5)
        ax.set_title(title, fontsize=7.5)
        ax.axis("off")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}; reported: {found}")


def _normal(sim) -> np.ndarray:
    """Normal (RAS) of the true surface: its direction of least spread."""
    kji = np.argwhere(sim.surface)
    pts = np.asarray(sim.image.index_to_ras(kji[:, ::-1].astype(float))).reshape(-1, 3)
    return np.linalg.eigh(np.cov((pts - pts.mean(axis=0)).T))[1][:, 0]


if __name__ == "__main__":
    main()

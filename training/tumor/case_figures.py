"""README pictures of real cases: the tumour from one click and after three clicks.

Usage::

    .venv/bin/python training/tumor/case_figures.py [--cases STS_001,STS_002,STS_003] \
        [--method auto] [--out docs/images]

For each patient one PNG, ``tumor_case_<patient>.png``: a row per series (CT, T1 MR), a
column per click count (1, 3). Each panel is the axial slice through the first click (the
expert mask's most interior voxel) with the image, the expert contour (green), the
predicted contour (red), positive clicks (+) and negative clicks (x); clicks on other slices
are drawn faded, labelled with their slice offset. The clicks follow the cross-validation
protocol (``cv_evaluate.protocol``: each later click at the deepest point of the largest
error region). The title gives Dice against the expert mask on the whole volume.

STS_001-003 are cross-validation cases (and training cases of the shipped network); the
pictures show what a user sees, they are not a held-out accuracy claim.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from cache import REPO, real_volumes  # training/tumor/cache.py, beside this script

SHOWN_CLICKS = (1, 3)
EXPERT, PREDICTED = "#39e639", "#ff3030"
POSITIVE, NEGATIVE = "#00e5ff", "#ffd000"


def click_sequence(volume, truth, method: str, clicks: int) -> list[dict]:
    """Per click count: ``{"mask", "clicks": [(kji, positive)], "dice"}``."""
    from mskai.interactive import Prompts, segment_with_method
    from mskai.interactive.clicks import deepest_voxel, next_click
    from mskai.interactive.evaluate import dice

    def ras(kji):
        return tuple(float(v) for v in volume.index_to_ras(np.asarray(kji, float)[::-1]))

    spacing = tuple(reversed(volume.spacing))
    first = deepest_voxel(truth, spacing)
    placed = [(first, True)]
    prompts = Prompts(positive_ras=[ras(first)])
    mask = segment_with_method(volume, prompts, method=method)
    out = [{"mask": mask, "clicks": list(placed), "dice": dice(mask, truth)}]
    while len(out) < clicks:
        click = next_click(mask, truth, spacing)
        if click is not None:
            placed.append((click[0], bool(click[1])))
            prompts = prompts.with_click(ras(click[0]), positive=bool(click[1]))
            mask = segment_with_method(volume, prompts, current_mask=mask, method=method)
        out.append({"mask": mask, "clicks": list(placed), "dice": dice(mask, truth)})
    return out


def draw_panel(ax, volume, truth, step: dict, k: int, title: str) -> None:
    """One axial slice ``k``: image, contours, click markers."""
    image = volume.array[k]
    lo, hi = np.percentile(image, [1, 99])
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, interpolation="bilinear")
    ax.contour(truth[k], [0.5], colors=EXPERT, linewidths=1.2)
    if step["mask"][k].any():
        ax.contour(step["mask"][k], [0.5], colors=PREDICTED, linewidths=1.2)
    for kji, positive in step["clicks"]:
        colour = POSITIVE if positive else NEGATIVE
        on_slice = int(kji[0]) == k
        ax.plot(kji[2], kji[1], "+" if positive else "x", color=colour, ms=11, mew=2.2,
                alpha=1.0 if on_slice else 0.6)
        if not on_slice:
            ax.annotate(f"{int(kji[0]) - k:+d} sl.", (kji[2], kji[1]), color=colour,
                        fontsize=7, xytext=(5, 4), textcoords="offset points")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def resolved_method(method: str, volume, first_click_kji) -> str:
    """``method``, or for ``"auto"`` what the size gate chose from the first click."""
    from mskai.click_methods import AUTO
    from mskai.interactive import Prompts
    from mskai.interactive.auto_method import auto_choice

    if method != AUTO:
        return method
    ras = tuple(float(v) for v in volume.index_to_ras(np.asarray(first_click_kji, float)[::-1]))
    return f"{AUTO} = {auto_choice(volume, Prompts(positive_ras=[ras]))[0]}"


def case_figure(case: str, method: str, out: Path) -> list[str]:
    """Write ``tumor_case_<case>.png``; return one summary line per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    series = list(real_volumes([case]))
    fig, axes = plt.subplots(len(series), len(SHOWN_CLICKS),
                             figsize=(3.6 * len(SHOWN_CLICKS), 3.7 * len(series)), squeeze=False)
    lines = []
    for row, (_, modality, volume, truth) in enumerate(series):
        steps = click_sequence(volume, truth, method, max(SHOWN_CLICKS))
        first = steps[0]["clicks"][0][0]
        k = int(first[0])
        used = resolved_method(method, volume, first)
        for col, n in enumerate(SHOWN_CLICKS):
            step = steps[n - 1]
            label = "1 click" if n == 1 else f"{n} clicks"
            draw_panel(axes[row, col], volume, truth, step, k,
                       f"{case} {modality} ({used}), {label}: Dice {step['dice']:.3f}")
        lines.append(f"{case} {modality} ({used}): " + ", ".join(
            f"{n} click(s) Dice {steps[n - 1]['dice']:.3f}" for n in SHOWN_CLICKS))
    legend = [Line2D([], [], color=EXPERT, label="expert"),
              Line2D([], [], color=PREDICTED, label=f"predicted ({method})"),
              Line2D([], [], color=POSITIVE, marker="+", ls="", ms=9, mew=2, label="tumour click"),
              Line2D([], [], color=NEGATIVE, marker="x", ls="", ms=8, mew=2,
                     label="background click")]
    fig.legend(handles=legend, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"tumor_case_{case}.png", dpi=72)
    plt.close(fig)
    return lines


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    from mskai.click_methods import DEFAULT_METHOD, METHODS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="STS_001,STS_002,STS_003")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args()
    for case in args.cases.split(","):
        for line in case_figure(case, args.method, args.out):
            print(line, flush=True)


if __name__ == "__main__":
    main()

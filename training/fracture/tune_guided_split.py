"""Choose the guided automatic split's settings on TRAINING bones only (no test patient read).

Each training patient's largest bone (``real_bones.split()["train"]``) is broken once per
kind (seeds from 5001, :mod:`mskai.phantoms.real_fracture`). Given the true bone mask, the
default detector's reported fractures on it (reduced valley candidates scoring at least
``MIN_SCORE``) guide :func:`mskai.fracture.guided_split.automatic_fragments` for each
setting of the grid below; the landscape-only split (``split_bone``) is the baseline.
Printed per setting: the mean worst-fragment Dice, and how many cases reach 0.90.

The rule, written before the first run (2026-12-06): the best mean is chosen, and adopted
only if it beats the landscape-only split by 0.03 or more. It chose the band normal, 40 mm
reach, 5 mm off the plane and two fractures (0.550 against 0.468 over 78 cases with the
exploration code this script was written from; this script gives 0.547, tied with 30 mm
reach and 8 mm off; its output is ``guided_split_tuning.md``).

Run: ``nice -n 10 .venv/bin/python training/fracture/tune_guided_split.py`` (about 25
minutes on one core).
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SEED0 = 5000
GEOMETRY = ((30.0, 3.0), (30.0, 8.0), (40.0, 5.0), (60.0, 3.0), (60.0, 8.0))  # reach, side


def grid():
    """(name, GuidedSplitParams) of every setting tried."""
    from mskai.fracture.guided_split import DEFAULT_GUIDED

    for band, (reach, side), splits in itertools.product((False, True), GEOMETRY, (1, 2)):
        name = f"{'band' if band else 'short'} normal, {reach:g} mm reach, {side:g} mm off, " \
               f"{splits} fracture(s)"
        yield name, replace(DEFAULT_GUIDED, band_normal=band, reach_mm=reach, side_mm=side,
                            max_splits=splits)


def cases(with_kind: bool = False):
    """(image, truth fragments) of each training case; (kind, image, truth) ``with_kind``."""
    import real_bones
    from eval_fragment_split_held_out import truth_fragments

    for _, kind, bone, sim in real_bones.broken_largest_bones(real_bones.split()["train"],
                                                              SEED0):
        case = (sim.image, truth_fragments(sim.fragments, bone.mask))
        yield (kind, *case) if with_kind else case


def main() -> None:
    for path in (REPO / "MSKAIExtension", REPO / "Testing", REPO / "Testing" / "benchmarks", HERE):
        sys.path.insert(0, str(path))
    from mskai.fracture.fracture_landscape import fracture_landscape
    from mskai.fracture.fragment_split import split_bone
    from mskai.fracture.guided_split import automatic_fragments
    from mskai.fracture.valley_reducer import reduced_valley_candidates
    from mskai.tasks.fracture import MIN_SCORE
    from phantoms.touching_fracture import matched_dice

    settings = list(grid())
    scores: dict[str, list[float]] = {name: [] for name, _ in [("landscape only", None),
                                                                *settings]}
    for image, truth in cases():
        bone = truth > 0
        landscape = fracture_landscape(image, bone)
        reported = [c for c in reduced_valley_candidates(image, bone) if c.score >= MIN_SCORE]
        scores["landscape only"].append(min(matched_dice(truth, split_bone(image, bone,
                                                                            landscape))))
        for name, params in settings:
            found = automatic_fragments(image, bone, reported, landscape, params)
            scores[name].append(min(matched_dice(truth, found)))
        print(len(scores["landscape only"]), flush=True)
    print("| setting | mean worst-fragment Dice | cases at 0.90 or more |\n|---|---|---|")
    for name, values in scores.items():
        v = np.array(values)
        print(f"| {name} | {v.mean():.3f} | {np.count_nonzero(v >= 0.9)} of {len(v)} |")


if __name__ == "__main__":
    main()

"""The size-gated ``"auto"`` click method: the classic method for small tumours, the network
for large ones.

The classic region stops far inside large heterogeneous tumours, where the network's first
mask does better; on small tumours the classic method wins. The gate is the classic
method's own one-click volume from the first positive click: under :data:`AUTO_THRESHOLD_ML`
the mask is the classic method's, otherwise the network's (from the first click). A box
the user drew around the tumour is a better measure of its size, so with one the gate is
the box's inscribed ellipsoid (:data:`AUTO_BOX_THRESHOLD_ML`); the box is taken as drawn
closely around the tumour, as an ROI for this is. Every later click refines the current
mask with the classic method. In the patient-level 5-fold
cross-validation (training/tumor/README.md, the v6 model card) its mean Dice beats the
classic method's after 1, 2, 3 and 5 clicks on CT and on T1 MR, and so does its worst case
after 3 clicks (CT 0.596 against 0.494, MR 0.546 against 0.432), so it is the default of
``mskai tumor`` and TumorSeg.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mskai.click_methods import CLASSIC, LEARNED
from mskai.interactive.prompts import Prompts
from mskai.volume import Volume

# The classic one-click volume (mL) above which "auto" uses the network. Chosen nested in the
# patient-level 5-fold cross-validation: for each held-out fold, the threshold from
# {0, 25, 50, 75, 100, 150, 200, 300 mL, never} maximising mean (1-click + 3-click) Dice on
# the other four folds; every fold chose 100 mL (training/tumor/auto_threshold.py;
# `auto_threshold_ml_per_fold` in training/tumor/cv_results.json), again after the
# local-removal rule for negative clicks.
AUTO_THRESHOLD_ML = 100.0
# A box the user drew around the tumour tells its size better than the classic region, which
# stops far inside large heterogeneous tumours: with a drawn box, the network makes the first
# mask when the ellipsoid inscribed in the box holds at least this volume (mL). Chosen nested
# like AUTO_THRESHOLD_ML on box-alone prompts (the expert mask's bounding box + 5 mm, with
# the fold models; Testing/benchmarks/eval_tumor_prompts.py), from {0, 50, 100, 150, 200, 250,
# 300, 400 mL, never} by mean Dice: every held-out fold chose 250 mL
# (training/tumor/box_threshold.py).
AUTO_BOX_THRESHOLD_ML = 250.0


def first_click_prompts(prompts: Prompts) -> Prompts:
    """The first positive click and the box, if any (the gate's input; a region the user
    boxed in never counts beyond the box), or the prompts unchanged without a click."""
    if not prompts.positive_ras:
        return prompts
    return Prompts(positive_ras=[prompts.positive_ras[0]], roi_ras=prompts.roi_ras)


def box_ellipsoid_ml(roi_ras: tuple[float, float, float, float, float, float]) -> float:
    """Volume (mL) of the ellipsoid inscribed in a RAS box (two opposite corners)."""
    sides = np.abs(np.subtract(roi_ras[3:], roi_ras[:3]))
    return float(np.pi / 6.0 * np.prod(sides) / 1000.0)


def auto_choice(volume: Volume, prompts: Prompts, modality: str | None = None,
                threshold_ml: float = AUTO_THRESHOLD_ML) -> tuple[str, np.ndarray]:
    """(``"classic"`` or ``"learned"``, the classic one-click mask the choice was made on)."""
    from mskai.interactive.segment import segment_from_prompts

    one_click = segment_from_prompts(volume, first_click_prompts(prompts), modality=modality)
    volume_ml = float(one_click.sum()) * float(np.prod(volume.spacing)) / 1000.0
    return (CLASSIC if volume_ml < threshold_ml else LEARNED), one_click


def segment_auto(volume: Volume, prompts: Prompts, current_mask: np.ndarray | None = None,
                 modality: str | None = None, model=None,
                 progress: Callable[[float, str], None] | None = None,
                 cancel: Callable[[], bool] | None = None,
                 drawn_box: bool | None = None) -> tuple[np.ndarray, str]:
    """(mask, ``"classic"`` or ``"learned"``: whether the network made it) by the size gate.

    Refining a current mask is always the classic method's refinement (as measured: the
    network only makes the first mask of a large tumour). Without a current mask: a small
    tumour is the classic method's mask; a large one the network's from the first click,
    then, with more prompts, the classic refinement of that mask with all of them. The size
    is the box's (:data:`AUTO_BOX_THRESHOLD_ML`) when the user drew ``prompts.roi_ras``
    (``drawn_box``; None: whenever there is a box; a RECIST line's own box is not drawn),
    else the classic one-click region's (:data:`AUTO_THRESHOLD_ML`).
    """
    from mskai.interactive.learned import segment_learned
    from mskai.interactive.segment import segment_from_prompts

    def classic(current: np.ndarray | None) -> np.ndarray:
        return segment_from_prompts(volume, prompts, current_mask=current, modality=modality,
                                    progress=progress, cancel=cancel)

    if current_mask is not None:
        return classic(current_mask), CLASSIC
    first = first_click_prompts(prompts)
    if prompts.roi_ras is not None and drawn_box is not False:
        large = box_ellipsoid_ml(prompts.roi_ras) >= AUTO_BOX_THRESHOLD_ML
        choice, one_click = (LEARNED if large else CLASSIC), None
    else:
        choice, one_click = auto_choice(volume, prompts, modality)
    if choice == CLASSIC:
        reuse = one_click is not None and prompts == first
        return (one_click if reuse else classic(None)), CLASSIC
    mask = segment_learned(volume, first, modality=modality, model=model,
                           first_guess="network", progress=progress, cancel=cancel)
    return (mask if prompts == first else classic(mask)), LEARNED

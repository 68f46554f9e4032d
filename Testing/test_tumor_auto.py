"""The size-gated "auto" click method: the classic method for a small tumour, the network for
a large one, and the provenance names the one that produced the mask.

Truth: analytic ellipsoid phantoms (phantoms.lesion) whose volumes are known in closed form,
one well under and one well over ``AUTO_THRESHOLD_ML``.
"""

from __future__ import annotations

import numpy as np
import pytest

from mskai.interactive import Prompts
from mskai.interactive.auto_method import (
    AUTO_BOX_THRESHOLD_ML,
    AUTO_THRESHOLD_ML,
    auto_choice,
    box_ellipsoid_ml,
)
from mskai.interactive.clicks import deepest_voxel
from phantoms.lesion import ellipsoid_lesion, ellipsoid_volume_ml

SMALL_MM = (16.0, 12.0, 10.0)    # 8.0 mL
LARGE_MM = (52.0, 44.0, 36.0)    # 345 mL


def _phantom(semi_axes_mm):
    phantom = ellipsoid_lesion(semi_axes_mm=semi_axes_mm, spacing=(1.5, 1.5, 3.0),
                               direction="identity", modality="MR", seed=2)
    centre = deepest_voxel(phantom.mask, tuple(reversed(phantom.image.spacing)))
    seed = tuple(float(v) for v in phantom.image.index_to_ras(np.asarray(centre, float)[::-1]))
    return phantom, Prompts(positive_ras=[seed])


@pytest.mark.parametrize(("semi_axes", "used"), [(SMALL_MM, "classic"), (LARGE_MM, "learned")])
def test_auto_picks_by_the_classic_one_click_volume(semi_axes, used) -> None:
    from mskai.tasks.tumor import run_tumor

    analytic_ml = ellipsoid_volume_ml(*semi_axes)
    assert (analytic_ml < AUTO_THRESHOLD_ML) == (used == "classic")
    phantom, prompts = _phantom(semi_axes)
    choice, one_click = auto_choice(phantom.image, prompts)
    gate_ml = one_click.sum() * np.prod(phantom.image.spacing) / 1000.0
    assert gate_ml == pytest.approx(analytic_ml, rel=0.2)   # the gate measures the tumour
    assert choice == used
    result = run_tumor(phantom.image, prompts, method="auto")
    provenance = result.provenance
    assert provenance.method.startswith(f"auto ({used}): ")
    assert (provenance.model_id == "tumor_refine_unet") == (used == "learned")
    if used == "classic":        # exactly the classic method's mask
        classic = run_tumor(phantom.image, prompts, method="classic")
        assert np.array_equal(result.segment("tumor").mask, classic.segment("tumor").mask)
        assert classic.provenance.method == provenance.method.removeprefix("auto (classic): ")


def test_auto_refines_a_current_mask_with_the_classic_method() -> None:
    """Later clicks: the classic refinement of the current mask, whatever the size."""
    from mskai.interactive import segment_from_prompts
    from mskai.interactive.auto_method import segment_auto

    phantom, prompts = _phantom(LARGE_MM)
    first, used = segment_auto(phantom.image, prompts)
    assert used == "learned"
    found = np.argwhere(phantom.mask & ~first)
    if len(found) == 0:       # the network got it all: click just outside instead
        found = np.argwhere(first & ~phantom.mask)
    click = tuple(float(v) for v in phantom.image.index_to_ras(found[len(found) // 2][::-1]))
    more = prompts.with_click(click, positive=bool(phantom.mask[tuple(found[len(found) // 2])]))
    refined, used = segment_auto(phantom.image, more, current_mask=first)
    assert used == "classic"
    assert np.array_equal(refined, segment_from_prompts(phantom.image, more, current_mask=first))


def test_the_gate_measures_the_tumour_inside_the_box() -> None:
    """A box around part of a large tumour: the gate's classic region stays inside the box
    (at most 64 mL here), so the classic method is chosen."""
    phantom, prompts = _phantom(LARGE_MM)
    seed = np.asarray(prompts.positive_ras[0])
    boxed = Prompts(positive_ras=prompts.positive_ras,
                    roi_ras=(*(seed - 20.0), *(seed + 20.0)))
    choice, one_click = auto_choice(phantom.image, boxed)
    assert one_click.sum() * np.prod(phantom.image.spacing) / 1000.0 <= 64.0 + 1e-6
    assert choice == "classic"


def test_box_ellipsoid_volume_is_analytic() -> None:
    # a 20 x 30 x 40 mm box holds an ellipsoid of semi-axes 10, 15, 20 mm: 4/3 pi abc
    assert box_ellipsoid_ml((-10.0, 5.0, 0.0, 10.0, 35.0, 40.0)) == pytest.approx(
        4.0 / 3.0 * np.pi * 10 * 15 * 20 / 1000.0)
    assert box_ellipsoid_ml((10.0, 35.0, 40.0, -10.0, 5.0, 0.0)) > 0   # corners in any order


def _box_around(phantom, pad_mm: float) -> tuple[float, ...]:
    found = np.argwhere(phantom.mask)
    corners = phantom.image.index_to_ras(np.array([found.min(0), found.max(0)])[:, ::-1])
    lo, hi = corners.min(0) - pad_mm, corners.max(0) + pad_mm
    return (*map(float, lo), *map(float, hi))


@pytest.mark.parametrize(("semi_axes", "used"), [(SMALL_MM, "classic"), (LARGE_MM, "learned")])
def test_a_drawn_box_gates_by_its_size(semi_axes, used) -> None:
    """Box alone, drawn 5 mm around the tumour (as the cross-validation drew it): the box's
    inscribed ellipsoid decides, and the provenance names the method that ran."""
    from mskai.tasks.tumor import segment_prompts_used

    phantom, _ = _phantom(semi_axes)
    box = _box_around(phantom, 5.0)
    assert (box_ellipsoid_ml(box) >= AUTO_BOX_THRESHOLD_ML) == (used == "learned")
    mask, method = segment_prompts_used(phantom.image, Prompts(roi_ras=box), method="auto")
    assert method == used
    assert mask.any()


def test_only_a_drawn_box_counts_as_the_size() -> None:
    """A small tumour in a large box: drawn, the box's size sends it to the network; not
    drawn (a RECIST line's own box), the classic one-click region decides."""
    from mskai.interactive.auto_method import segment_auto

    phantom, prompts = _phantom(SMALL_MM)
    seed = np.asarray(prompts.positive_ras[0])
    big = Prompts(positive_ras=prompts.positive_ras, roi_ras=(*(seed - 45.0), *(seed + 45.0)))
    assert box_ellipsoid_ml(big.roi_ras) >= AUTO_BOX_THRESHOLD_ML
    assert segment_auto(phantom.image, big, drawn_box=True)[1] == "learned"
    assert segment_auto(phantom.image, big, drawn_box=False)[1] == "classic"

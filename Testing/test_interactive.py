"""Interactive tumour segmentation from clicks: phantom, input errors, refinement, real cases."""

from __future__ import annotations

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.interactive import Prompts, segment_from_prompts
from mskai.interactive.clicks import next_click
from mskai.interactive.evaluate import dice
from phantoms.grid import make_grid, oblique_direction, physical_points

SEMI_AXES_MM = np.array([22.0, 16.0, 12.0])


def _ellipsoid_volume(modality: str = "CT", seed: int = 0):
    """Oblique, anisotropic grid with a noisy bright ellipsoid in muscle-like tissue, plus air."""
    vol = make_grid((96, 96, 24), (0.9, 0.9, 3.0), direction=oblique_direction(25))
    pts = physical_points(vol)
    inside = np.sum((pts / SEMI_AXES_MM) ** 2, axis=-1) <= 1.0
    rng = np.random.default_rng(seed)
    image = np.where(inside, 80.0, 30.0) + rng.normal(0, 12, inside.shape)
    image[:, :, :6] = -1000.0  # air on one side
    return vol.with_array(image.astype(np.float32), modality=modality), inside


def _centre_ras(vol) -> tuple[float, float, float]:
    lo = np.array(vol.size, dtype=float) - 1
    return tuple(float(v) for v in vol.index_to_ras(lo / 2))


def test_ellipsoid_phantom_dice_and_volume() -> None:
    vol, truth = _ellipsoid_volume()
    mask = segment_from_prompts(vol, Prompts(positive_ras=[_centre_ras(vol)]))
    assert mask.dtype == bool and mask.shape == truth.shape
    # measured Dice 0.994, volume 0.990 of truth (seeds 0-2: 0.990-0.992) with the native-grid
    # boundary step; 0.927 without it (edge ~0.3 mm inside). Target: within 3 %.
    assert dice(mask, truth) > 0.97
    assert abs(mask.sum() / truth.sum() - 1.0) < 0.03


def test_seed_outside_image_is_refused_with_bounds() -> None:
    vol, _ = _ellipsoid_volume()
    with pytest.raises(InputError, match="outside the image.*spans R"):
        segment_from_prompts(vol, Prompts(positive_ras=[(500.0, 0.0, 0.0)]))


def test_seed_in_air_on_ct_is_refused() -> None:
    vol, _ = _ellipsoid_volume()
    air = tuple(float(v) for v in vol.index_to_ras([2, 48, 12]))
    with pytest.raises(InputError, match="air"):
        segment_from_prompts(vol, Prompts(positive_ras=[air]))


def test_no_positive_click_is_refused() -> None:
    vol, _ = _ellipsoid_volume()
    with pytest.raises(InputError, match="at least one click"):
        segment_from_prompts(vol, Prompts(negative_ras=[_centre_ras(vol)]))


def _two_blobs():
    """Two overlapping bright spheres (a waist between them): tumour and a look-alike."""
    vol = make_grid((90, 60, 40), (1.0, 1.0, 1.5))
    pts = physical_points(vol)
    tumour = np.linalg.norm(pts - [-13.0, 0, 0], axis=-1) <= 14
    other = (np.linalg.norm(pts - [10.0, 0, 0], axis=-1) <= 12) & ~tumour
    rng = np.random.default_rng(1)
    image = np.where(tumour | other, 90.0, 30.0) + rng.normal(0, 8, tumour.shape)
    return vol.with_array(image.astype(np.float32), modality="CT"), tumour, other


def _lps_to_ras(p) -> tuple[float, float, float]:
    return (-float(p[0]), -float(p[1]), float(p[2]))


def test_negative_click_removes_wrongly_included_region() -> None:
    vol, tumour, other = _two_blobs()
    prompts = Prompts(positive_ras=[_lps_to_ras((-13.0, 0, 0))])
    first = segment_from_prompts(vol, prompts)
    assert (first & other).sum() > 0.5 * other.sum()  # the look-alike is included at first
    refined = segment_from_prompts(vol, prompts.with_click(_lps_to_ras((14.0, 0, 0)), False),
                                   current_mask=first)
    assert (refined & other).sum() < 0.2 * other.sum()
    assert dice(refined, tumour) > 0.8


def _two_toned_tumour_with_a_leak():
    """A large tumour whose far half is much brighter (the method alone stops inside it), and
    a muscle-like bump beside that half: what a network's or a person's mask may include."""
    vol = make_grid((110, 90, 40), (1.0, 1.0, 2.0))
    pts = physical_points(vol)
    tumour = np.sum((pts / [34.0, 26.0, 20.0]) ** 2, axis=-1) <= 1
    bright = tumour & (pts[..., 0] > 4)
    bump = (np.linalg.norm(pts - [34.0, 0, 0], axis=-1) <= 9) & ~tumour
    rng = np.random.default_rng(2)
    image = np.where(bright, 170.0, np.where(tumour, 80.0, 35.0)) + rng.normal(0, 10, pts.shape[:3])
    return vol.with_array(image.astype(np.float32), modality="CT"), tumour, bright, bump


def test_negative_click_on_a_leak_keeps_tumour_the_method_alone_does_not_reach() -> None:
    vol, tumour, bright, bump = _two_toned_tumour_with_a_leak()
    prompts = Prompts(positive_ras=[_lps_to_ras((-14.0, 0, 0))])
    alone = segment_from_prompts(vol, prompts)
    assert (alone & bright).sum() < 0.8 * bright.sum()   # measured 0.60 of the bright half
    # Before the mask seeded the method, this click removed the bright half with the bump:
    # 0.648 of the tumour kept. Measured now: all of it kept, 0.90 of the bump removed.
    refined = segment_from_prompts(vol, prompts.with_click(_lps_to_ras((37.0, 0, 0)), False),
                                   current_mask=tumour | bump)
    assert (refined & tumour).sum() > 0.97 * tumour.sum()
    assert (refined & bump).sum() < 0.25 * bump.sum()


def test_refinement_keeps_hand_edits_far_from_the_click() -> None:
    vol, tumour, _ = _ellipsoid_volume()[0], *_ellipsoid_volume()[1:], None
    prompts = Prompts(positive_ras=[_centre_ras(vol)])
    first = segment_from_prompts(vol, prompts)
    edited = first.copy()
    edited[2:5, 80:86, 80:86] = True        # painted by hand, far from the tumour
    erased = first & (np.indices(first.shape)[2] > 60)
    edited &= ~erased                       # a part erased by hand
    near = np.argwhere(tumour & ~first)     # a missed tumour voxel, if any, else an edge one
    target = near[0] if len(near) else np.argwhere(tumour)[0]
    ras = tuple(float(v) for v in vol.index_to_ras(target[::-1].astype(float)))
    refined = segment_from_prompts(vol, prompts.with_click(ras, True), current_mask=edited)
    assert refined[2:5, 80:86, 80:86].all()
    # a negative click on the painted blob removes it, and only it
    blob = tuple(float(v) for v in vol.index_to_ras([83.0, 83.0, 3.0]))
    cleaned = segment_from_prompts(vol, prompts.with_click(blob, False), current_mask=refined)
    assert not cleaned[2:5, 80:86, 80:86].any()
    assert (cleaned & tumour).sum() == (refined & tumour).sum()


def test_simulated_click_goes_to_deepest_point_of_largest_error() -> None:
    truth = np.zeros((20, 40, 40), dtype=bool)
    truth[5:15, 5:35, 5:35] = True
    pred = truth.copy()
    pred[5:15, 5:35, 20:35] = False            # big miss: positive click in its middle
    pred[0:2, 0:3, 0:3] = True                 # small false positive
    kji, positive = next_click(pred, truth, (1.0, 1.0, 1.0))
    assert positive and kji[0] in (9, 10) and 9 <= kji[1] <= 30 and 24 <= kji[2] <= 30
    assert next_click(truth, truth, (1.0, 1.0, 1.0)) is None


# ----- real cases: IBSI STS soft-tissue sarcoma, expert GTV masks ----------------------------

STS_CASES = ("STS_001", "STS_002", "STS_003")


def _sts_final_dice(shared_data, series: str, modality: str) -> list[float]:
    from mskai.image import read_image
    from mskai.interactive.evaluate import run_click_protocol

    out = []
    for case in STS_CASES:
        folder = shared_data / "sts_sarcoma" / case
        volume = read_image(folder / f"{series}_image.nii.gz")
        assert volume.modality == modality
        truth = read_image(folder / f"{series}_mask.nii.gz").array > 0
        steps = run_click_protocol(volume, truth, 2)
        assert len(steps) <= 3
        out.append(steps[-1].dice)
    return out


@pytest.mark.parametrize(("series", "modality", "mean_min", "case_min"),
                         # measured (3 clicks): CT 0.768 / 0.912 / 0.817, mean 0.832;
                         # T1 MR 0.750 / 0.922 / 0.872, mean 0.848 (target mean 0.80)
                         [("CT", "CT", 0.80, 0.74), ("MR_T1", "MR", 0.80, 0.72)])
def test_sts_three_clicks_against_expert_masks(shared_data, series, modality, mean_min,
                                               case_min) -> None:
    dices = _sts_final_dice(shared_data, series, modality)
    assert np.mean(dices) >= mean_min, dices
    assert min(dices) >= case_min, dices

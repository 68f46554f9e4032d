"""Local, click-driven correction of one label in a multi-label map (e.g. a knee segmentation).

A person looks at an AI or hand-made label map and clicks where one structure is wrong:
"this is femoral cartilage" (positive) or "this is not" (negative). :func:`refine_label`
re-decides that structure near the clicks from the image, starting from the *current*
labels, and changes nothing farther than ``radius_mm`` from a click.

How (the geodesic competition of :mod:`mskai.interactive.region`, with many labels):

- Inside the local region (balls of ``radius_mm`` around the clicks) a voxel is *in doubt*
  when it lies near a click, looks unlike its own label (robust z-score of the lightly
  smoothed image against that label's median and MAD in the crop) or, not being the target,
  looks like the target. Every other voxel, and everything outside the region, is a fixed
  seed of its current label; voxels of locked labels are walls nobody crosses.
- Each label present grows a geodesic front from its seeds through the doubt voxels; path
  cost rises at edges, and for the target front also in voxels unlike the target's model
  (median and MAD of its current interior voxels in the crop and of the positive clicks). As in
  region.py only the target's front pays for unlike intensities: a heterogeneous background
  (fluid, fat, muscle) has no single intensity model. A doubt voxel goes to the nearest front.
- As in :func:`mskai.interactive.refine.merge_with_current`, only changes connected to the
  clicks are applied: parts the target won that come within ``doubt_mm`` of a positive
  click are added, parts it lost that come that near a negative click are removed and
  given to the competing label that won them (background included). Hand edits elsewhere
  survive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mskai.errors import InputError
from mskai.interactive.prompts import points_to_kji
from mskai.interactive.region import seed_ball_mask
from mskai.volume import Volume

MAX_RADIUS_MM = 40.0
MIN_RADIUS_MM = 2.0


@dataclass(frozen=True)
class RefineParams:
    smoothing_mm: float = 0.4      # light: cartilage is only 2-3 mm thick
    doubt_mm: float = 3.0          # around each click every unlocked voxel is re-decided
    seed_mm: float = 1.0           # hard seeds at the clicks
    seed_z: float = 3.0            # |z| against its own label beyond this -> in doubt
    like_z: float = 1.5            # the target front pays nothing below this |z|
    z_clip: float = 12.0
    unlike_weight: float = 2.0
    edge_weight: float = 4.0       # per mm, in units of the crop's intensity spread
    context_mm: float = 3.0        # crop margin beyond the region (seeds around it)


def _robust(values: np.ndarray, floor: float) -> tuple[float, float]:
    """Median and MAD-sigma (at least ``floor``) of intensities."""
    med = float(np.median(values))
    return med, max(1.4826 * float(np.median(np.abs(values - med))), floor)


def check_label_map(volume: Volume, labels: np.ndarray, target_label: int,
                    locked: set[int]) -> None:
    """InputError unless ``labels`` is an integer map on the image grid holding the target."""
    if not isinstance(labels, np.ndarray) or not np.issubdtype(labels.dtype, np.integer):
        raise InputError("the label map must be an integer numpy array such as uint8 or uint16")
    if labels.shape != volume.array.shape[:3]:
        raise InputError(f"the label map has shape {labels.shape} but the image has "
                         f"{volume.array.shape[:3]}; give labels on the image's grid")
    if int(target_label) <= 0:
        raise InputError(f"label {target_label} is background; choose a structure's label")
    if int(target_label) in locked:
        raise InputError(f"label {target_label} is locked; unlock it to refine it")
    if not np.any(labels == target_label):
        present = [int(v) for v in np.unique(labels) if v > 0]
        raise InputError(f"label {target_label} does not occur in the label map, which holds "
                         f"labels {present}; choose one of those")


def _box(points: np.ndarray, margin_mm: float, spacing: np.ndarray,
         shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    pad = np.ceil(margin_mm / spacing).astype(int)
    return np.maximum(points.min(0) - pad, 0), np.minimum(points.max(0) + pad + 1, shape)


def _check_clicks(labels: np.ndarray, points: np.ndarray, ras: Sequence, locked: set[int],
                  what: str) -> None:
    for p, r in zip(points, ras, strict=True):
        value = int(labels[tuple(p)])
        if value in locked:
            raise InputError(f"the {what} at RAS {r[0]:.1f},{r[1]:.1f},{r[2]:.1f} lies on "
                             f"locked label {value}; click elsewhere or unlock that label")


def _touching(changed: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Connected components of ``changed`` that overlap ``near``."""
    from scipy import ndimage

    if not (changed & near).any():
        return np.zeros_like(changed)
    comp, _ = ndimage.label(changed)
    hit = np.unique(comp[changed & near])
    return np.isin(comp, hit[hit > 0])


def _fronts(seeds: np.ndarray, doubt: np.ndarray, walls: np.ndarray, base: np.ndarray,
            target_extra: np.ndarray, target: int, spacing: np.ndarray) -> np.ndarray:
    """Winning label of every doubt voxel (``-1`` where no front arrives).

    ``seeds`` holds each fixed voxel's label; only seeds next to the doubt voxels can matter,
    so every front runs in the doubt voxels' bounding box (plus one voxel). Once every doubt
    voxel has a front, a later front can win only where it arrives sooner, so it is solved
    only as far as the farthest winning distance (``within``, as for the tumour front in
    :func:`mskai.interactive.region.geodesic_probability`).
    """
    from mskai.interactive.geodesic import geodesic_distance

    found = np.argwhere(doubt)
    lo = np.maximum(found.min(0) - 1, 0)
    hi = np.minimum(found.max(0) + 2, doubt.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    s, d, w = seeds[box], doubt[box], walls[box]
    best = np.full(d.shape, np.inf)
    winner = np.full(d.shape, -1, dtype=np.int64)
    for label in np.unique(s[~d & ~w]):
        own = (s == label) & ~d & ~w
        cost = base[box] + (target_extra[box] if label == target else 0.0)
        cost = np.where(d | own, cost, np.inf)
        reached = best[d]
        within = float(reached.max()) if np.isfinite(reached).all() else np.inf
        dist = geodesic_distance(cost, own, tuple(spacing), within=within)
        better = d & (dist < best)
        best[better], winner[better] = dist[better], label
    out = np.full(doubt.shape, -1, dtype=np.int64)
    out[box] = np.where(d, winner, -1)
    return out


def _decide(image: np.ndarray, labels: np.ndarray, region: np.ndarray, pos: np.ndarray,
            neg: np.ndarray, target: int, locked: set[int], spacing: np.ndarray,
            p: RefineParams) -> np.ndarray:
    """The crop's new labels: the target re-decided near the clicks (see the module doc)."""
    from scipy import ndimage

    sp = tuple(float(s) for s in spacing)
    smooth = ndimage.gaussian_filter(image.astype(np.float32), p.smoothing_mm / spacing)
    spread = float(np.subtract(*np.percentile(smooth, [95, 5])))
    floor = max(0.02 * spread, 1e-6)
    walls = np.isin(labels, list(locked)) if locked else np.zeros(labels.shape, bool)
    near_neg = seed_ball_mask(labels.shape, neg, p.doubt_mm, sp)
    # the interior only: a 2-3 mm sheet has many partial-volume voxels at its faces
    model_voxels = ndimage.binary_erosion(labels == target) & ~near_neg
    if model_voxels.sum() < 20:
        model_voxels = labels == target
    pos_seed = seed_ball_mask(labels.shape, pos, p.seed_mm, sp) & ~walls
    t_med, t_sigma = _robust(np.concatenate([smooth[model_voxels], smooth[pos_seed]]), floor)
    z_target = np.abs(smooth - t_med) / t_sigma

    doubt = seed_ball_mask(labels.shape, np.concatenate([pos, neg]), p.doubt_mm, sp)
    # other labels' voxels that look like the target, target voxels that do not
    doubt |= (labels != target) == (z_target < p.seed_z)
    for label in np.unique(labels[region]):
        own = (labels == label) & ~doubt
        if label == target or not own.any():
            continue
        med, sigma = _robust(smooth[own], floor)
        doubt |= (labels == label) & (np.abs(smooth - med) / sigma > p.seed_z)
    doubt &= region & ~walls

    seeds = labels.astype(np.int64)
    pos_seed &= z_target < p.seed_z
    pos_seed[tuple(pos.T)] = True
    seeds[pos_seed] = target
    neg_seed = seed_ball_mask(labels.shape, neg, p.seed_mm, sp) & ~walls
    if len(neg):
        neg_seed[tuple(neg.T)] = True
        seeds[neg_seed] = _negative_label(smooth, labels, region, neg, target, locked, floor)
    doubt &= ~pos_seed & ~neg_seed

    grads = np.gradient(smooth / max(spread, 1e-6), *spacing)
    base = 1.0 + p.edge_weight * np.sqrt(sum(g * g for g in grads))
    extra = p.unlike_weight * np.maximum(np.minimum(z_target, p.z_clip) - p.like_z, 0)
    winner = _fronts(seeds, doubt, walls, base, extra, target, spacing) if doubt.any() \
        else np.full(labels.shape, -1)
    decided = np.where(winner >= 0, winner, seeds)

    was, now = labels == target, decided == target
    near_pos = seed_ball_mask(labels.shape, pos, p.doubt_mm, sp)
    added = _touching(now & ~was, near_pos) & ~walls
    removed = _touching(was & ~now, near_neg)
    out = labels.copy()
    out[added] = target
    out[removed] = decided[removed].astype(labels.dtype)
    return out


def _negative_label(smooth: np.ndarray, labels: np.ndarray, region: np.ndarray,
                    neg: np.ndarray, target: int, locked: set[int], floor: float) -> int:
    """The unlocked competitor whose intensity model fits the negative clicks best."""
    values = smooth[tuple(neg.T)]
    best, best_z = 0, np.inf
    for label in np.unique(labels[region]):
        if label == target or int(label) in locked:
            continue
        med, sigma = _robust(smooth[labels == label], floor)
        z = float(np.mean(np.abs(values - med) / sigma))
        if z < best_z:
            best, best_z = int(label), z
    return best


def refine_label(volume: Volume, labels: np.ndarray, target_label: int,
                 positive_ras: Iterable[Sequence[float]] = (),
                 negative_ras: Iterable[Sequence[float]] = (), radius_mm: float = 15.0,
                 modality: str = "MR", locked_labels: Iterable[int] = (),
                 params: RefineParams | None = None) -> np.ndarray:
    """A new label map: ``target_label`` corrected near the clicks, all else as it was.

    ``positive_ras`` / ``negative_ras`` are RAS points (mm) inside / outside the structure.
    Voxels farther than ``radius_mm`` from every click, and voxels of ``locked_labels``,
    are returned bit-identical. ``modality`` is ``"MR"`` or ``"CT"`` (intensities only
    enter as robust z-scores, so both behave alike).
    """
    p = params or RefineParams()
    positive_ras, negative_ras = list(positive_ras), list(negative_ras)
    locked = {int(v) for v in locked_labels}
    if str(modality).upper() not in ("MR", "CT"):
        raise InputError(f"modality {modality!r} is not supported; use MR or CT")
    if not (MIN_RADIUS_MM <= float(radius_mm) <= MAX_RADIUS_MM):
        raise InputError(f"radius {radius_mm} mm is outside {MIN_RADIUS_MM:g}-"
                         f"{MAX_RADIUS_MM:g} mm; choose a radius in that range")
    if not positive_ras and not negative_ras:
        raise InputError("place at least one click: inside the structure (positive) or on a "
                         "wrongly labelled place (negative)")
    check_label_map(volume, labels, target_label, locked)
    pos = points_to_kji(volume, positive_ras, "positive click")
    neg = points_to_kji(volume, negative_ras, "negative click")
    _check_clicks(labels, pos, positive_ras, locked, "positive click")
    _check_clicks(labels, neg, negative_ras, locked, "negative click")

    spacing = np.array(volume.spacing[::-1], dtype=float)
    clicks = np.concatenate([pos, neg])
    lo, hi = _box(clicks, radius_mm + p.context_mm, spacing, labels.shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    region = _region(hi - lo, clicks - lo, radius_mm, spacing)
    new = _decide(volume.array[crop], labels[crop], region, pos - lo, neg - lo,
                  int(target_label), locked, spacing, p)
    out = labels.copy()
    out[crop] = np.where(region, new, labels[crop])
    return out


def _region(shape: np.ndarray, points: np.ndarray, radius_mm: float,
            spacing: np.ndarray) -> np.ndarray:
    """Voxels within ``radius_mm`` of any point (the only voxels that may change)."""
    return seed_ball_mask(tuple(int(n) for n in shape), points, radius_mm,
                          tuple(float(s) for s in spacing))

"""Seeded refinement of knee structures: ``mskai cartilage --refine-ras LABEL=R,A,S`` and
CartilageQuant's seeded refinement in Slicer share it.

A point says "this is LABEL". :func:`mskai.interactive.multilabel.refine_label` then
re-decides that structure within ``radius_mm`` of the points, starting from what every
structure holds now: voxels that look like the structure (its intensity model) and connect
to the point join it, wrongly labelled ones near it go to the competitor that wins them.
A structure that is missing altogether (the model found none) is first seeded at each point
with the unlabelled voxels within the radius that connect to it and look like it
(intensity within ``SEED_TOLERANCE`` of the image's 1-99 % range from the point's median),
so its intensity model comes from there. Only voxels within the radius
change; overlapping masks (a ``.seg.nrrd``) keep their overlaps elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from mskai.errors import InputError
from mskai.terminology import KNEE_SEGMENTS
from mskai.volume import Volume

REFINE_RADIUS_MM = 40.0  # the largest refine_label allows: a whole missing plate
SEED_MM = 1.0            # the point's own intensity: median over this ball
SEED_TOLERANCE = 0.2
Point = Sequence[float]


def refine_clicks(image: Volume, masks: Mapping[str, np.ndarray],
                  clicks: Iterable[tuple[str, Point]],
                  radius_mm: float = REFINE_RADIUS_MM) -> dict[str, np.ndarray]:
    """Apply ``(structure id, RAS point)`` clicks; the points of one structure go together."""
    grouped: dict[str, list[Point]] = {}
    for name, point in clicks:
        if name not in KNEE_SEGMENTS:
            raise InputError(f"--refine-ras names {name!r}, which is not a knee structure; "
                             f"use one of {', '.join(KNEE_SEGMENTS)}")
        grouped.setdefault(name, []).append(point)
    out = dict(masks)
    for name, points in grouped.items():
        out = refine_structure(image, out, name, points, radius_mm=radius_mm)
    return out


def refine_structure(image: Volume, masks: Mapping[str, np.ndarray], target: str,
                     positive_ras: Sequence[Point], negative_ras: Sequence[Point] = (),
                     radius_mm: float = REFINE_RADIUS_MM,
                     locked: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """New masks: ``target`` corrected near the points, every other voxel as it was."""
    from mskai.interactive.multilabel import refine_label
    from mskai.interactive.prompts import points_to_kji

    locked = [name for name in locked if name in masks and np.any(masks[name])]
    names = [n for n in masks if n != target and np.any(masks[n])] + [target]
    labels = np.zeros(image.array.shape[:3], dtype=np.uint8)
    for index, name in enumerate(names, start=1):  # the target painted last: all its voxels
        if name in masks:
            labels[np.asarray(masks[name], dtype=bool)] = index
    painted = labels.copy()
    target_label = len(names)
    if not (labels == target_label).any():
        points = points_to_kji(image, positive_ras, "refine point")
        labels[_seed(image, labels == 0, points, radius_mm)] = target_label
    new = refine_label(image, labels, target_label, positive_ras, negative_ras,
                       radius_mm=radius_mm, modality=_modality(image.modality),
                       locked_labels=[names.index(n) + 1 for n in locked])
    if not (new == target_label).any():
        raise InputError(f"no {target} was found around the refine point; click inside it")
    changed = new != painted
    out = {}
    for index, name in enumerate(names, start=1):
        before = np.asarray(masks[name], dtype=bool) if name in masks else np.zeros_like(changed)
        out[name] = (before & ~changed) | (changed & (new == index))
    for name, mask in masks.items():
        out.setdefault(name, mask)
    return out


def _seed(image: Volume, free: np.ndarray, points: np.ndarray,
          radius_mm: float) -> np.ndarray:
    """Unlabelled voxels near the points that connect to them and look like them."""
    from scipy import ndimage

    from mskai.interactive.region import seed_ball_mask

    spacing = tuple(float(s) for s in image.spacing[::-1])
    near = seed_ball_mask(free.shape, points, radius_mm, spacing)
    found = np.argwhere(near)
    box = tuple(slice(a, b + 1) for a, b in zip(found.min(0), found.max(0), strict=True))
    crop = np.asarray(image.array[box], dtype=np.float32)
    if crop.ndim > 3:
        crop = crop[..., 0]
    low, high = np.percentile(crop, [1, 99])
    local = points - found.min(0)
    own = seed_ball_mask(crop.shape, local, SEED_MM, spacing)
    alike = np.abs(crop - float(np.median(crop[own]))) <= SEED_TOLERANCE * (high - low)
    region = (alike | own) & near[box] & (free[box] | own)
    parts, _ = ndimage.label(region)
    hit = np.unique(parts[tuple(local.T)])
    out = np.zeros(free.shape, dtype=bool)
    out[box] = np.isin(parts, hit[hit > 0])
    return out


def _modality(tag: str | None) -> str:
    return "CT" if (tag or "").upper().startswith("CT") else "MR"

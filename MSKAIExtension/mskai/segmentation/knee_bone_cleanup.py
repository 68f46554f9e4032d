"""Remove soft tissue that a knee model glued onto a bone (calf muscle, fibular head).

A network that labels a blob of muscle as tibia usually joins it to the true tibia through
a narrow contact: a thin bridge in-plane, or an overlap between neighbouring thick slices.
The largest-connected-component step keeps such a blob. This step separates it by shape
alone (no intensities, so it works for any MR contrast):

1. On a grid of about ``WORK_SPACING_MM`` (blocks of voxels, a voxel set when at least half
   of its block is), fill the holes of every slice (a model's bone often has holes where
   the marrow looks like soft tissue) and open the bone with a ball of
   ``OPENING_RADIUS_MM`` (distance transforms with the voxel spacing): bridges and
   contacts thinner than the ball vanish.
2. The largest opened component is the bone's core; every other opened component of at
   least ``MIN_LEAK_ML`` is a detached part: tissue joined to the bone only by a neck.
   A part in line with the core's shaft end (femur: upwards, tibia: downwards) is the
   shaft itself, cut off by a thin stretch of the model's mask, and counts as core.
3. Every voxel of the bone goes to its nearest seed (core or detached part, Euclidean,
   a distance-transform split); voxels nearest a detached part become background, so the
   opened-away boundary comes back only where it is next to the core.
4. The largest connected component of what is left (on the full grid) is the bone.

Smaller opened pieces count as core, so thin but true parts of a bone (the tibial spine,
the edge slices of a thick-slice series) are kept. Each bone is processed in its own
bounding box; 0.4-0.5 s for the three bones of a 512x512x80 knee on a loaded CPU.
Measured (``knee_unet_v3`` model card): real T2 knee tibia 125.5 -> 108.7 mL (calf muscle
and fibular head gone); DESS-like bench knee tibia Dice 0.877 -> 0.894; no held-out
synthetic Dice falls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from mskai.terminology import FEMUR, PATELLA, TIBIA
from mskai.volume import Volume

KNEE_BONES = (FEMUR, TIBIA, PATELLA)
# Which way each bone's shaft leaves the knee along the patient's superior axis.
SHAFT_SIGN = {FEMUR: 1.0, TIBIA: -1.0}
OPENING_RADIUS_MM = 5.0
WORK_SPACING_MM = 1.5
MIN_LEAK_ML = 1.0
END_SECTION_MM = 15.0       # the core's shaft end: its last 15 mm along the shaft
SHAFT_FOOTPRINT_MM = 5.0    # a part in line with the shaft: within 5 mm of that end's
MIN_IN_LINE_SHARE = 0.25    # cross-section (projected along the shaft) for 25 % of it


def remove_bone_leaks(masks: Mapping[str, np.ndarray], volume: Volume,
                      bones: Iterable[str] = KNEE_BONES) -> dict[str, np.ndarray]:
    """``masks`` with each bone in ``bones`` cut back to its core (see the module text);
    removed voxels become background. Other masks are returned unchanged."""
    spacing = np.asarray(volume.spacing[::-1], dtype=float)   # [k, j, i]
    superior = np.asarray(volume.direction, dtype=float).reshape(3, 3)[2, ::-1]
    out = dict(masks)
    for name in bones:
        if name in out and np.any(out[name]):
            shaft = superior * SHAFT_SIGN[name] if name in SHAFT_SIGN else None
            out[name] = bone_core(np.asarray(out[name], dtype=bool), spacing, shaft)
    return out


def bone_core(mask: np.ndarray, spacing_kji: np.ndarray, shaft_kji: np.ndarray | None = None,
              radius_mm: float = OPENING_RADIUS_MM,
              min_leak_ml: float = MIN_LEAK_ML) -> np.ndarray:
    """One bone mask with its detached parts (and what is nearer them) removed.

    ``shaft_kji`` (unit vector in the array's axis order, or None) points from the knee
    along the bone's shaft: a detached part in line with the core's shaft end is the shaft
    itself, cut off by a thin stretch of the model's mask, and is kept.
    """
    from scipy import ndimage

    if not mask.any():
        return mask
    box = _padded_box(mask, spacing_kji, radius_mm)
    part = mask[box]
    factors = np.maximum(1, np.floor(WORK_SPACING_MM / spacing_kji + 1e-6)).astype(int)
    coarse = _block_majority(part, factors)
    coarse_spacing = spacing_kji * factors
    seeds = _seeds(coarse, coarse_spacing, radius_mm,
                   min_leak_ml * 1000.0 / float(np.prod(coarse_spacing)), shaft_kji)
    if seeds is None:
        return mask
    _, index = ndimage.distance_transform_edt(seeds == 0, sampling=coarse_spacing,
                                              return_indices=True)
    nearest = seeds[tuple(index)] == 1
    keep = part & _expand(nearest, factors, part.shape)
    components, count = ndimage.label(keep)
    out = np.zeros_like(mask)
    if count:
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        out[box] = components == int(np.argmax(sizes))
    return out


def _seeds(coarse: np.ndarray, spacing: np.ndarray, radius_mm: float,
           min_leak_voxels: float, shaft: np.ndarray | None) -> np.ndarray | None:
    """1 on the opened core, 2 on detached parts, 0 elsewhere; None if nothing detached."""
    from scipy import ndimage

    eroded = ndimage.distance_transform_edt(_filled(coarse), sampling=spacing) > radius_mm
    if not eroded.any():
        return None
    opened = ndimage.distance_transform_edt(~eroded, sampling=spacing) <= radius_mm
    components, count = ndimage.label(opened & coarse)
    if count < 2:
        return None
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    core = int(np.argmax(sizes))
    leaks = [c for c in range(1, count + 1) if c != core and sizes[c] >= min_leak_voxels]
    if shaft is not None:
        end = _shaft_end(np.argwhere(components == core) * spacing, shaft)
        leaks = [c for c in leaks
                 if not _in_line(np.argwhere(components == c) * spacing, end, shaft)]
    if not leaks:
        return None
    seeds = np.zeros(coarse.shape, dtype=np.uint8)
    seeds[(components > 0) & ~np.isin(components, leaks)] = 1
    seeds[np.isin(components, leaks)] = 2
    return seeds


def _shaft_end(points_mm: np.ndarray, shaft: np.ndarray) -> np.ndarray:
    """The core's points in its last ``END_SECTION_MM`` along the shaft."""
    along = points_mm @ shaft
    return points_mm[along >= along.max() - END_SECTION_MM]


def _in_line(points_mm: np.ndarray, end_mm: np.ndarray, shaft: np.ndarray) -> bool:
    """Whether a part continues the shaft: at least ``MIN_IN_LINE_SHARE`` of it lies within
    ``SHAFT_FOOTPRINT_MM`` of the shaft end's cross-section, seen along the shaft."""
    from scipy.spatial import cKDTree

    def across(p: np.ndarray) -> np.ndarray:
        return p - np.outer(p @ shaft, shaft)

    distance, _ = cKDTree(across(end_mm)).query(across(points_mm),
                                                distance_upper_bound=SHAFT_FOOTPRINT_MM)
    return float(np.mean(distance <= SHAFT_FOOTPRINT_MM)) >= MIN_IN_LINE_SHARE


def _filled(mask: np.ndarray) -> np.ndarray:
    """``mask`` with the holes of every slice along each axis filled (a model's bone often
    has holes where the marrow looks like soft tissue; without them its walls are thin).
    A structuring element flat across one axis fills all slices along it in one call."""
    from scipy import ndimage

    out = mask.copy()
    for axis in range(3):
        flat = np.ones((3, 3, 3), dtype=bool)
        index = [slice(None)] * 3
        for side in (0, 2):
            index[axis] = side
            flat[tuple(index)] = False
        out |= ndimage.binary_fill_holes(mask, structure=flat)
    return out


def _padded_box(mask: np.ndarray, spacing_kji: np.ndarray,
                radius_mm: float) -> tuple[slice, ...]:
    """The mask's bounding box grown by the radius (within the image: a bone cut by the
    image border is not eroded from that side)."""
    from mskai.crop import mask_bbox

    pad = np.ceil(radius_mm / spacing_kji).astype(int) + 1
    return tuple(slice(max(b.start - int(p), 0), min(b.stop + int(p), n))
                 for b, p, n in zip(mask_bbox(mask), pad, mask.shape, strict=True))


def _block_majority(mask: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``True`` where at least half of a block of ``factors`` voxels is set (edge blocks
    padded with background)."""
    if np.all(factors == 1):
        return mask.copy()
    shape = -(-np.asarray(mask.shape) // factors)
    padded = np.zeros(tuple(shape * factors), dtype=np.uint8)
    padded[tuple(slice(0, n) for n in mask.shape)] = mask
    blocks = padded.reshape(shape[0], factors[0], shape[1], factors[1], shape[2], factors[2])
    return blocks.sum(axis=(1, 3, 5), dtype=np.int32) * 2 >= int(np.prod(factors))


def _expand(coarse: np.ndarray, factors: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A coarse mask back on the full grid (each voxel takes its block's value)."""
    out = coarse
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    return out[tuple(slice(0, n) for n in shape)]

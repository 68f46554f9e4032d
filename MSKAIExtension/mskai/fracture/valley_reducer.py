"""Learned false-positive reduction of the HU-valley fracture candidates (FracNet's 2nd stage).

Two kinds of region are candidates, and one logistic regression over per-region features
(:data:`FEATURES`, :func:`region_features`) scores them all:

- the HU-valley regions of :mod:`mskai.fracture.valley_candidates` (extracted at the lower
  region threshold ``EXTRACT_THRESHOLD``, each reaching the bone's outer rim): a line that is
  dark within the slice;
- the slice-dip regions of :mod:`mskai.fracture.slice_dip` (v2): a line inside one thick
  slice, darker than the slices above and below, where touching fragments and hairlines
  show no valley within the slice.

Regions touching the image's edge are dropped (:func:`on_image_border`). The features:

- the valley itself: mean and peak response, size, extent, the hand-set valley score;
- shape: how sheet-like the region is (PCA spreads), and the angles of its normal and its
  long axis to the local bone axis and to the slice axis;
- cortex: the share of the region in the outer rim and how many separate places it crosses
  the rim (a fracture line crosses the cortex on both sides of the bone);
- HU: the region's mean HU, the contrast against the bone around it, and each side of the
  sheet: how much of it is bone (a fracture line has bone on both sides, a concave bone
  edge or a nutrient canal opening has soft tissue on one), and how different the sides are;
- position: distance to the nearest other bone (joints). The distance to the bone's ends
  is NOT a feature: the simulation places every fracture at 30-70 % of the bone's length,
  so the model would learn that rule rather than the look of a fracture (it raised the
  out-of-fold training sensitivity from 0.14 to 0.17, and would miss fractures near
  joints);
- neighbours: distance to the nearest other region and the number within 20 mm;
- the slice dip over the region (peak and mean, noise SDs) and which kind of region it is.

The model (``fracture_valley_logreg``) is trained by ``training/fracture/train_valley_reducer.py``
on simulated fractures (:mod:`mskai.phantoms.real_fracture`) of the TRAINING patients only;
its entry's ``output.operating_threshold`` was chosen on those patients (out-of-fold), and
``output.preferred_over_components`` says whether the held-out measurement made it part of
the default pipeline (:func:`mskai.tasks.fracture.run_fracture`; ``valley_reducer=False``
turns it off). Card: ``models/cards/fracture_valley_logreg.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.fracture.candidates import Candidate
from mskai.fracture.scorer import operating_threshold, recentred
from mskai.fracture.valley_candidates import extent_mm, principal_axes
from mskai.volume import Volume

TASK = "fracture_valley_fp"
MODEL_ID = "fracture_valley_logreg"
EXTRACT_THRESHOLD = 0.4
MIN_VOXELS = 4
BONE_AXIS_MM = 25.0  # bone voxels within this of a region give its local bone axis
SHELL_VOXELS = 2  # in-plane dilation steps of the region: the bone on either side
OTHER_BONE_MM = 20.0  # distance to another bone is capped here (and searched within)
NEIGHBOUR_MM = 20.0
FAR_MM = 50.0
DIMENSIONED_TERMS = ("valley_extent_mm", "valley_ml")
CROP_PAD_MM = 10.0  # around the bone: more than the valley's closing and smoothing reach
FEATURES = ("valley_mean", "valley_max", "log_voxels", "extent_mm", "valley_score",
            "thinness", "flatness", "normal_vs_bone_axis", "long_axis_vs_bone_axis",
            "normal_vs_slice_axis", "rim_share", "rim_crossings", "region_hu",
            "bone_contrast_hu", "bone_side_min", "bone_side_max", "side_hu_difference",
            "other_bone_mm", "nearest_region_mm", "regions_within_20mm",
            "slice_dip_max", "slice_dip_mean", "from_slice_dip")
ARCHITECTURE: dict[str, Any] = {"type": "mskai.logistic_regression",
                                "kwargs": {"features": list(FEATURES)}}


def valley_candidate_features(image: Volume, bone: np.ndarray,
                              threshold: float = EXTRACT_THRESHOLD) -> tuple[
                                  list[Candidate], np.ndarray]:
    """The valley candidates of ``image`` inside ``bone`` (valley score) and their features.

    Everything is computed on the bone's bounding box plus ``CROP_PAD_MM`` (the same
    numbers as on the whole image, in a fraction of the time on a large CT).
    """
    from mskai.crop import padded_bbox
    from mskai.fracture.slice_dip import dip_regions, measures_slices, slice_dip
    from mskai.fracture.valley_candidates import (
        dip_candidate,
        outer_rim,
        region_candidate,
        valley_regions,
        valley_response,
    )
    from mskai.noise import noise_sd

    bone = np.asarray(bone, dtype=bool)
    if not bone.any():
        return [], np.zeros((0, len(FEATURES)))
    crop = padded_bbox(bone, image, pad_mm=CROP_PAD_MM)
    full_shape = bone.shape
    image, bone = image.crop(crop), bone[crop]
    response = valley_response(image, bone)
    # thin slices have no slice dip: no map at all (a bone-full CT's crop is 300 MB a map)
    dip = slice_dip(image, bone, noise_sd(image)) if measures_slices(image) else None
    rim = outer_rim(bone, image.spacing)
    valley = [(box, here, False) for box, here in valley_regions(response, threshold,
                                                                  MIN_VOXELS, rim)]
    dips = [(box, here, True) for box, here in dip_regions(dip)] if dip is not None else []
    regions = [r for r in valley + dips if not on_image_border(r[0], crop, full_shape)]
    candidates = [dip_candidate(box, here, dip, image) if is_dip
                  else region_candidate(box, here, response, image)
                  for box, here, is_dip in regions]
    if not candidates:
        return [], np.zeros((0, len(FEATURES)))
    context = _BoneContext(image, bone)
    centres = np.stack([np.asarray(c.position_ras, dtype=float) for c in candidates])
    feats = np.array([region_features(box, here, response, image, bone, rim, context)
                      + _neighbour_features(centres, n)
                      + _dip_features(box, here, dip, is_dip)
                      for n, (box, here, is_dip) in enumerate(regions)], dtype=np.float64)
    for c in candidates:
        c.terms["valley_score"] = float(c.score)
    return candidates, feats.reshape(len(candidates), len(FEATURES))


def on_image_border(box: tuple, crop: tuple, shape: tuple[int, ...]) -> bool:
    """Whether a region's bounding box (``box`` inside ``crop``) touches the image's edge.

    There the field of view cuts the bone and the grey closing reads the cut as a valley
    (an intact CT resampled to 512x512x300 gave two such regions scoring 0.86-0.88 on its
    first slice); a fracture line cannot be told from the cut, so those regions are dropped.
    """
    for b, c, n in zip(box, crop, shape, strict=True):
        if b.start + c.start == 0 or b.stop + c.start >= n:
            return True
    return False


class _BoneContext:
    """Per-scan facts the position feature needs: the bone's connected components."""

    def __init__(self, image: Volume, bone: np.ndarray) -> None:
        from scipy import ndimage

        self.spacing_kji = np.asarray(tuple(reversed(image.spacing)), dtype=float)
        self.components, _ = ndimage.label(bone, structure=np.ones((3, 3, 3)))


def region_features(box: tuple, here: np.ndarray, response: np.ndarray, image: Volume,
                    bone: np.ndarray, rim: np.ndarray, context: _BoneContext) -> list[float]:
    """Features of one region, in :data:`FEATURES` order without the neighbour ones."""
    spacing = context.spacing_kji
    kji = np.argwhere(here) + [s.start for s in box]
    w = response[box][here]
    mm = kji * spacing
    extent = extent_mm(kji, image.spacing)
    spreads, vectors = principal_axes(mm, floor=spacing / np.sqrt(12.0))
    normal, long_axis = vectors[:, 2], vectors[:, 0]
    centre = mm.mean(axis=0)
    bone_axis = _local_bone_axis(bone, centre, spacing)
    hu = np.asarray(image.array, dtype=np.float32)
    return [
        float(w.mean()), float(w.max()), float(np.log10(len(kji))), extent,
        float(w.mean()) * min(1.0, extent / 10.0),
        float(spreads[2] / max(spreads[1], 1e-6)), float(spreads[1] / max(spreads[0], 1e-6)),
        float(abs(normal @ bone_axis)), float(abs(long_axis @ bone_axis)), float(abs(normal[0])),
        float(np.mean(rim[tuple(kji.T)])), float(_rim_crossings(rim[box] & here)),
        float(hu[tuple(kji.T)].mean()),
        *_side_features(kji, normal, centre, hu, bone, spacing),
        _other_bone_mm(kji, centre, context),
    ]


def _local_bone_axis(bone: np.ndarray, centre_mm: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Principal axis of the bone within ``BONE_AXIS_MM`` of a point (kji mm space)."""
    box = _box_mm(centre_mm, BONE_AXIS_MM, spacing, bone.shape)
    pts = (np.argwhere(bone[box]) + [s.start for s in box]) * spacing
    pts = pts[np.linalg.norm(pts - centre_mm, axis=1) <= BONE_AXIS_MM]
    if len(pts) < 10:
        return np.array([1.0, 0.0, 0.0])
    return principal_axes(pts[:: max(1, len(pts) // 20000)])[1][:, 0]


def _rim_crossings(on_rim: np.ndarray) -> int:
    """Separate (26-connected) places where a region lies on the outer rim."""
    from scipy import ndimage

    return int(ndimage.label(on_rim, structure=np.ones((3, 3, 3)))[1])


def _side_features(kji: np.ndarray, normal: np.ndarray, centre_mm: np.ndarray,
                   hu: np.ndarray, bone: np.ndarray, spacing: np.ndarray) -> list[float]:
    """Bone contrast around the region and the bone share / HU on each side of its sheet:
    [bone_contrast_hu, bone_side_min, bone_side_max, side_hu_difference]."""
    from scipy import ndimage

    lo = np.maximum(kji.min(axis=0) - SHELL_VOXELS - 1, 0)
    hi = np.minimum(kji.max(axis=0) + SHELL_VOXELS + 2, bone.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    region = np.zeros(tuple(hi - lo), dtype=bool)
    region[tuple((kji - lo).T)] = True
    cross = np.zeros((3, 3, 3), dtype=bool)
    cross[1, 1, :] = cross[1, :, 1] = cross[:, 1, 1] = True
    shell = ndimage.binary_dilation(region, cross, iterations=SHELL_VOXELS) & ~region
    pts = np.argwhere(shell)
    side = ((pts + lo) * spacing - centre_mm) @ normal >= 0
    sub_bone, sub_hu = bone[box][shell], hu[box][shell]
    region_hu = float(hu[tuple(kji.T)].mean())
    around = float(sub_hu[sub_bone].mean()) if sub_bone.any() else region_hu
    shares, means = [], []
    for s in (side, ~side):
        shares.append(float(sub_bone[s].mean()) if s.any() else 0.0)
        means.append(float(sub_hu[s].mean()) if s.any() else region_hu)
    return [around - region_hu, min(shares), max(shares), abs(means[0] - means[1])]


def _other_bone_mm(kji: np.ndarray, centre_mm: np.ndarray, context: _BoneContext) -> float:
    """Distance from the region's centre to the nearest voxel of another bone component
    (capped at ``OTHER_BONE_MM``): small at joints."""
    labels = context.components[tuple(kji.T)]
    labels = labels[labels > 0]
    if len(labels) == 0:
        return OTHER_BONE_MM
    label = int(np.bincount(labels).argmax())
    comps = context.components
    box = _box_mm(centre_mm, OTHER_BONE_MM, context.spacing_kji, comps.shape)
    sub = comps[box]
    other = np.argwhere((sub > 0) & (sub != label))
    if len(other) == 0:
        return OTHER_BONE_MM
    dist = np.linalg.norm((other + [s.start for s in box]) * context.spacing_kji - centre_mm,
                          axis=1).min()
    return float(min(dist, OTHER_BONE_MM))


def _neighbour_features(centres_ras: np.ndarray, n: int) -> list[float]:
    """[distance to the nearest other region (capped at ``FAR_MM``), regions within 20 mm]."""
    d = np.linalg.norm(centres_ras - centres_ras[n], axis=1)
    d = np.delete(d, n)
    if len(d) == 0:
        return [FAR_MM, 0.0]
    return [float(min(d.min(), FAR_MM)), float(np.count_nonzero(d <= NEIGHBOUR_MM))]


def _dip_features(box: tuple, here: np.ndarray, dip: np.ndarray | None,
                  is_dip: bool) -> list[float]:
    """[peak and mean slice dip over the region (noise SDs; 0 where slices are too thin to
    measure it), 1 for a slice-dip region]."""
    if dip is None:
        return [0.0, 0.0, 0.0]
    values = dip[box][here]
    return [float(values.max()), float(values.mean()), float(is_dip)]


def _box_mm(centre_mm: np.ndarray, radius_mm: float, spacing: np.ndarray,
            shape: tuple[int, ...]) -> tuple[slice, slice, slice]:
    lo = np.maximum(np.floor((centre_mm - radius_mm) / spacing).astype(int), 0)
    hi = np.minimum(np.ceil((centre_mm + radius_mm) / spacing).astype(int) + 1, shape)
    return tuple(slice(int(a), int(max(a, b))) for a, b in zip(lo, hi, strict=True))


def reduced_valley_candidates(image: Volume, bone: np.ndarray | None = None,
                              entry: Any = None) -> list[Candidate]:
    """Valley candidates rescored by the reducer, best first.

    The score is the reducer's probability re-centred so that the entry's operating
    threshold reads 0.5 (:func:`recentred`), the threshold the task reports fractures at;
    the probability is kept in ``terms["reducer_probability"]`` and the hand-set valley
    score in ``terms["valley_score"]``. ``entry`` defaults to :func:`reducer_entry`.
    Raises ModelError when no entry verifies.
    """
    from mskai.errors import ModelError

    entry = entry if entry is not None else reducer_entry()
    if entry is None:
        raise ModelError(f"the valley candidate reducer ({MODEL_ID}) is not installed or its "
                         "sha256 does not match the manifest")
    if bone is None:
        from mskai.segmentation.bone_ct import segment_bone_ct

        bone = segment_bone_ct(image)
    candidates, feats = valley_candidate_features(image, bone)
    if not candidates:
        return []
    from mskai.fracture.scorer import LogisticScorer

    scorer: LogisticScorer = load_reducer(entry)
    threshold = operating_threshold(entry)
    for c, p in zip(candidates, scorer(feats), strict=True):
        for key in DIMENSIONED_TERMS:  # score_terms are dimensionless in measurements.json
            c.terms.pop(key, None)
        c.terms["reducer_probability"] = float(p)
        c.score = recentred(float(p), threshold)
    return sorted(candidates, key=lambda c: -c.score)


def reducer_entry(user_dir: str | None = None, preferred_only: bool = False):
    """The last :data:`TASK` CT entry whose weights verify, or None; with ``preferred_only``
    only one whose ``output.preferred_over_components`` is true."""
    from mskai.fracture.candidates import PREFERRED_FLAG
    from mskai.models.registry import latest_verified

    return latest_verified(TASK, "CT", user_dir,
                           PREFERRED_FLAG if preferred_only else None)


def load_reducer(entry: Any):
    """Verify the entry's sha256, then read its tensors (no objects unpickled)."""
    from mskai.fracture.scorer import load_logistic

    return load_logistic(entry, FEATURES, "valley reducer")

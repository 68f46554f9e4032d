"""Anatomical plausibility of a knee segmentation, checked before CartilageQuant measures it.

A segmentation model that learned intensities rather than anatomy fails in ways a reader sees
at once: thigh muscle labelled as femur, the tibia above the femur, cartilage floating in fat.
These checks catch such output, each naming one structure and what is wrong with it:

- ``present``: a structure the model is meant to label is missing.
- ``size`` (femur, tibia): the bone's mean cross-section (voxel volume / its extent along
  the patient's superior axis, so that a field of view that crops the shafts is allowed
  for) and its left-right width. Adult distal femur: epicondylar width 70-95 mm, shaft
  about 25-30 mm across (500-700 mm2), condyles about 3000-4000 mm2 in section; proximal
  tibia: plateau 65-85 mm wide, shaft 400-600 mm2 (Yue et al. 2011, Knee 18:
  morphometry of the distal femur and proximal tibia); condyles 55-70 mm and plateau
  45-55 mm deep. Accepted: section 200-6000 mm2; femur at most 115 mm wide and 100 mm
  deep, tibia 105 and 90 mm (widened for large knees and for flexion, which tilts the
  shafts). The whole thigh in cross-section is 12000 mm2 or more, 120-170 mm across.
- ``size`` (patella): 3-30 mL, at most 65 mm wide and 35 mm deep (adult patellae are about
  7-18 mL, 38-50 mm wide, 20-25 mm thick); the lower volume bound is skipped when the
  patella touches the image border (cropped by the field of view).
- ``one_piece`` (femur, tibia, patella): at most ``MAX_DETACHED_ML`` of the bone lies in
  parts joined to it by a neck thinner than 10 mm (a ball of 5 mm radius cannot pass) or
  not at all. On a real knee T2 series ``knee_unet_v3`` glued 10 mL of calf muscle and the
  fibular head (6.8 mL) onto the tibia through contacts of about 9 mm; CartilageQuant
  removes such parts after the model (:mod:`mskai.segmentation.knee_bone_cleanup`), so
  this catches given labels and edits.
- ``order``: the femur lies above the tibia along the patient's superior axis, within 60
  degrees of it (knees are scanned near extension); the patella lies in front of the femur
  (patient anterior, across the limb axis) and within 20 mm of it.
- ``touches_bone``: a cartilage plate touches its bone (a voxel within 1.5 check voxels)
  and its median distance from the bone is at most 5 mm (cartilage is 1-5 mm thick).
- ``faces_joint``: a cartilage plate lies between its bone and the joint space: for at least
  half of its voxels, the way out of its own bone points towards the opposite bone (femoral:
  tibia or patella; tibial and patellar: femur).

- ``plausible`` (:func:`check_cartilage_plausibility`, run on the measured plates): a plate's
  mean thickness and volume lie within wide literature ranges. Eckstein et al. 2001
  (Osteoarthritis Cartilage 9:101-111; 27 healthy male knees, fat-suppressed gradient echo,
  2 x 0.31 x 0.31 mm): whole-knee mean thickness 1.57-2.43 mm, patella the thickest plate
  (mean 2.76 mm, maximum 5.72 mm), total cartilage volume 16.6-31.4 mL, of which the femur
  holds about half, the tibia a quarter and the patella a fifth. Accepted: mean thickness
  0.5-3.5 mm (patella 0.5-4.0 mm), wide enough for thin osteoarthritic plates and thick
  healthy ones; volume at least about a quarter of the smallest healthy share (femoral
  2.0 mL, tibial 1.0 mL, each tibial plate 0.5 mL), which smaller (female) knees and
  cartilage loss in osteoarthritis keep above; patellar 0.6 mL, half of the manually
  segmented real pymskt knee's 1.18 mL (its plates: femoral 11.85, tibial 1.92 and
  1.85 mL), the smallest real patellar plate at hand. The volume floor is skipped when
  the plate touches the image border (cropped by the field of view).

Directions are the patient's, from the image's orientation (RAS), never from the labels, so
swapped labels cannot fool them. Everything runs on a grid of about 1.5 mm (each mask
reduced by "any voxel set" over blocks of voxels) and in boxes around each plate: the checks
take well under a second on a 512x512x80 knee.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from mskai.terminology import (
    FEMORAL_CARTILAGE,
    FEMUR,
    LATERAL_TIBIAL_CARTILAGE,
    MEDIAL_TIBIAL_CARTILAGE,
    PATELLA,
    PATELLAR_CARTILAGE,
    TIBIA,
    TIBIAL_CARTILAGE,
)
from mskai.volume import Volume

CHECK_SPACING_MM = 1.5
SECTION_MM2 = {FEMUR: (200.0, 6000.0), TIBIA: (200.0, 6000.0)}
MAX_WIDTH_MM = {FEMUR: 115.0, TIBIA: 105.0, PATELLA: 65.0}   # left-right
MAX_DEPTH_MM = {FEMUR: 100.0, TIBIA: 90.0, PATELLA: 35.0}    # antero-posterior
PATELLA_ML = (3.0, 30.0)
MIN_EXTENT_MM = 10.0
MAX_DETACHED_ML = 1.0
MAX_LIMB_ANGLE_DEG = 60.0
MAX_PATELLA_GAP_MM = 20.0
TOUCH_VOXELS = 1.5
MAX_MEDIAN_DISTANCE_MM = 5.0
MIN_FACING_SHARE = 0.5
OPPOSITE_MARGIN_MM = 20.0
MEAN_THICKNESS_MM = (0.5, 3.5)
PATELLAR_MEAN_THICKNESS_MM = (0.5, 4.0)
MIN_PLATE_ML = {FEMORAL_CARTILAGE: 2.0, TIBIAL_CARTILAGE: 1.0, MEDIAL_TIBIAL_CARTILAGE: 0.5,
                LATERAL_TIBIAL_CARTILAGE: 0.5, PATELLAR_CARTILAGE: 0.6}

CARTILAGE_BONE = {FEMORAL_CARTILAGE: FEMUR, TIBIAL_CARTILAGE: TIBIA,
                  MEDIAL_TIBIAL_CARTILAGE: TIBIA, LATERAL_TIBIAL_CARTILAGE: TIBIA,
                  PATELLAR_CARTILAGE: PATELLA}
OPPOSITE_BONES = {FEMORAL_CARTILAGE: (TIBIA, PATELLA), TIBIAL_CARTILAGE: (FEMUR,),
                  MEDIAL_TIBIAL_CARTILAGE: (FEMUR,), LATERAL_TIBIAL_CARTILAGE: (FEMUR,),
                  PATELLAR_CARTILAGE: (FEMUR,)}
SUPERIOR_RAS = np.array([0.0, 0.0, 1.0])
ANTERIOR_RAS = np.array([0.0, 1.0, 0.0])
RIGHT_RAS = np.array([1.0, 0.0, 0.0])


@dataclass(frozen=True)
class AnatomyCheck:
    """One check of one structure; ``problem`` says what is wrong (empty when it passed)."""

    structure: str
    check: str
    passed: bool
    problem: str = ""

    def to_json(self) -> dict:
        return {"structure": self.structure, "check": self.check, "passed": self.passed,
                "problem": self.problem}


@dataclass
class _Coarse:
    """Masks reduced to about ``CHECK_SPACING_MM`` and the geometry to place their voxels."""

    masks: dict[str, np.ndarray]
    factors: np.ndarray          # [k, j, i] block size in voxels
    spacing_kji: np.ndarray      # of the coarse grid, mm
    volume: Volume               # the full-resolution geometry

    def points_ras(self, kji: np.ndarray) -> np.ndarray:
        centre = (np.asarray(kji, dtype=float) + 0.5) * self.factors - 0.5
        return self.volume.index_to_ras(centre[:, ::-1])


def _reduce(mask: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``True`` where any voxel of a block of ``factors`` voxels is set."""
    out = mask
    for axis, f in enumerate(factors):
        if f == 1:
            continue
        n = -(-out.shape[axis] // f)
        parts = [np.take(out, np.arange(r, out.shape[axis], f), axis=axis) for r in range(f)]
        reduced = np.zeros(out.shape[:axis] + (n,) + out.shape[axis + 1:], dtype=bool)
        for part in parts:
            index = [slice(None)] * 3
            index[axis] = slice(0, part.shape[axis])
            reduced[tuple(index)] |= part
        out = reduced
    return out


def _coarse(masks: Mapping[str, np.ndarray], volume: Volume) -> _Coarse:
    spacing = np.asarray(volume.spacing[::-1], dtype=float)
    factors = np.maximum(1, np.floor(CHECK_SPACING_MM / spacing + 1e-6)).astype(int)
    reduced = {name: _reduce(np.asarray(m, dtype=bool), factors) for name, m in masks.items()
               if np.any(m)}
    return _Coarse(reduced, factors, spacing * factors, volume)


def check_knee_anatomy(masks: Mapping[str, np.ndarray], volume: Volume,
                       expected: Iterable[str] = ()) -> list[AnatomyCheck]:
    """Every check of every knee structure in ``masks`` (canonical ids -> boolean masks).

    ``expected`` names structures that must be present (e.g. every label of the model that
    made the masks). The result lists passed and failed checks in a fixed order.
    """
    checks = [AnatomyCheck(name, "present", False, "it was not found (no voxel)")
              for name in expected if not np.any(masks.get(name, False))]
    coarse = _coarse(masks, volume)
    for bone in (FEMUR, TIBIA):
        if bone in coarse.masks:
            checks.append(_long_bone_size(bone, masks[bone], coarse))
    if PATELLA in coarse.masks:
        checks.append(_patella_size(masks[PATELLA], coarse))
    checks += [_one_piece(bone, np.asarray(masks[bone], dtype=bool), volume)
               for bone in (FEMUR, TIBIA, PATELLA) if bone in coarse.masks]
    checks += _order(coarse)
    for plate in CARTILAGE_BONE:
        if plate in coarse.masks:
            checks += _cartilage(plate, coarse)
    return checks


def failed_structures(checks: Iterable[AnatomyCheck]) -> list[str]:
    """Structures with at least one failed check, in the order their first failure came."""
    return list(dict.fromkeys(c.structure for c in checks if not c.passed))


def _extent_mm(points: np.ndarray, axis: np.ndarray) -> float:
    lo, hi = np.percentile(points @ axis, [1, 99])
    return float(hi - lo)


def _points(coarse: _Coarse, name: str) -> np.ndarray:
    """RAS centres of the structure's coarse voxels."""
    return coarse.points_ras(np.argwhere(coarse.masks[name]))


def _long_bone_size(bone: str, mask: np.ndarray, coarse: _Coarse) -> AnatomyCheck:
    points = _points(coarse, bone)
    volume_mm3 = float(np.count_nonzero(mask)) * coarse.volume.voxel_volume_mm3
    section = volume_mm3 / max(_extent_mm(points, SUPERIOR_RAS), MIN_EXTENT_MM)
    lo, hi = SECTION_MM2[bone]
    too_big = _too_wide(bone, points)
    if section > hi:
        too_big = f"{section:.0f} mm2 in section, at most {hi:.0f} mm2"
    if too_big:
        return AnatomyCheck(bone, "size", False,
                            f"it is too large for a {bone} ({too_big}), so surrounding tissue "
                            "is labelled as bone")
    if section < lo:
        return AnatomyCheck(bone, "size", False,
                            f"it is too small for a {bone} ({section:.0f} mm2 in section, "
                            f"at least {lo:.0f} mm2 expected)")
    return AnatomyCheck(bone, "size", True)


def _too_wide(bone: str, points: np.ndarray) -> str:
    """What exceeds the bone's largest left-right width or antero-posterior depth, or ''."""
    for axis, what, limit in ((RIGHT_RAS, "wide", MAX_WIDTH_MM[bone]),
                              (ANTERIOR_RAS, "deep", MAX_DEPTH_MM[bone])):
        extent = _extent_mm(points, axis)
        if extent > limit:
            return f"{extent:.0f} mm {what}, at most {limit:.0f} mm"
    return ""


def _touches_border(mask: np.ndarray) -> bool:
    return any(np.take(mask, [0, -1], axis=a).any() for a in range(3))


def _patella_size(mask: np.ndarray, coarse: _Coarse) -> AnatomyCheck:
    ml = float(np.count_nonzero(mask)) * coarse.volume.voxel_volume_mm3 / 1000.0
    lo, hi = PATELLA_ML
    too_big = _too_wide(PATELLA, _points(coarse, PATELLA))
    if ml > hi:
        too_big = f"{ml:.1f} mL, at most {hi:.0f} mL"
    if too_big:
        return AnatomyCheck(PATELLA, "size", False, f"it is too large for a patella ({too_big})")
    if ml < lo and not _touches_border(coarse.masks[PATELLA]):
        return AnatomyCheck(PATELLA, "size", False,
                            f"it is too small for a patella ({ml:.1f} mL, at least "
                            f"{lo:.0f} mL expected)")
    return AnatomyCheck(PATELLA, "size", True)


def _one_piece(bone: str, mask: np.ndarray, volume: Volume) -> AnatomyCheck:
    """A bone is one compact piece: less than ``MAX_DETACHED_ML`` of it in parts joined to
    it by a neck thinner than the bone cleanup's opening ball, or not at all (calf muscle
    or the fibular head labelled as tibia; :mod:`mskai.segmentation.knee_bone_cleanup`,
    on the full-resolution mask so that it agrees with the cleanup)."""
    from mskai.segmentation.knee_bone_cleanup import OPENING_RADIUS_MM, remove_bone_leaks

    kept = remove_bone_leaks({bone: mask}, volume, (bone,))[bone]
    ml = float(np.count_nonzero(mask & ~kept)) * volume.voxel_volume_mm3 / 1000.0
    if ml < MAX_DETACHED_ML:
        return AnatomyCheck(bone, "one_piece", True)
    return AnatomyCheck(bone, "one_piece", False,
                        f"{ml:.1f} mL of it is joined to the rest only by a neck under "
                        f"{2 * OPENING_RADIUS_MM:.0f} mm thick or not at all, so surrounding "
                        "tissue (muscle, the fibular head) is labelled as bone")


def _centroid(coarse: _Coarse, name: str) -> np.ndarray:
    return _points(coarse, name).mean(axis=0)


def _order(coarse: _Coarse) -> list[AnatomyCheck]:
    out: list[AnatomyCheck] = []
    if FEMUR not in coarse.masks:
        return out
    femur = _centroid(coarse, FEMUR)
    limb = SUPERIOR_RAS
    if TIBIA in coarse.masks:
        tibia = _centroid(coarse, TIBIA)
        d = femur - tibia
        height = float(d @ SUPERIOR_RAS)
        angle = float(np.degrees(np.arccos(np.clip(height / max(np.linalg.norm(d), 1e-6),
                                                   -1, 1))))
        if height <= 0:
            out.append(AnatomyCheck(TIBIA, "order", False,
                                    f"it lies above the femur (centres {-height:.0f} mm apart "
                                    "along the patient's superior axis), so femur and tibia "
                                    "look swapped"))
        elif angle > MAX_LIMB_ANGLE_DEG:
            out.append(AnatomyCheck(TIBIA, "order", False,
                                    f"it lies beside the femur rather than below it ({angle:.0f}"
                                    " degrees from the patient's superior axis)"))
        else:
            out.append(AnatomyCheck(TIBIA, "order", True))
            limb = d / np.linalg.norm(d)
    if PATELLA in coarse.masks:
        out.append(_patella_order(coarse, femur, limb))
    return out


def _patella_order(coarse: _Coarse, femur: np.ndarray, limb: np.ndarray) -> AnatomyCheck:
    forward = ANTERIOR_RAS - (ANTERIOR_RAS @ limb) * limb
    forward /= np.linalg.norm(forward)
    ahead = float((_centroid(coarse, PATELLA) - femur) @ forward)
    if ahead <= 0:
        return AnatomyCheck(PATELLA, "order", False,
                            f"it lies behind the femur ({-ahead:.0f} mm posterior to the "
                            "femur's centre); the patella is in front of the femur")
    gap = _gap_mm(coarse, coarse.masks[PATELLA], coarse.masks[FEMUR], MAX_PATELLA_GAP_MM)
    if gap > MAX_PATELLA_GAP_MM:
        return AnatomyCheck(PATELLA, "order", False,
                            f"it lies more than {MAX_PATELLA_GAP_MM:.0f} mm from the femur; the "
                            "patella rests on the femoral trochlea")
    return AnatomyCheck(PATELLA, "order", True)


def _box(mask: np.ndarray, margin: np.ndarray) -> tuple[slice, ...]:
    found = np.argwhere(mask)
    lo = np.maximum(found.min(0) - margin, 0)
    hi = np.minimum(found.max(0) + margin + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _gap_mm(coarse: _Coarse, a: np.ndarray, b: np.ndarray, margin_mm: float) -> float:
    """Smallest distance from ``a`` to ``b`` (inf beyond ``margin_mm``)."""
    from scipy import ndimage

    box = _box(a, np.ceil(margin_mm / coarse.spacing_kji).astype(int) + 1)
    if not b[box].any():
        return float("inf")
    dist = ndimage.distance_transform_edt(~b[box], sampling=coarse.spacing_kji)
    return float(dist[a[box]].min())


def _cartilage(plate: str, coarse: _Coarse) -> list[AnatomyCheck]:
    """``touches_bone`` and ``faces_joint`` of one plate (nothing when its bone is absent)."""
    from scipy import ndimage

    bone = CARTILAGE_BONE[plate]
    if bone not in coarse.masks:
        return []
    opposite = np.zeros_like(coarse.masks[bone])
    for name in OPPOSITE_BONES[plate]:
        if name in coarse.masks:
            opposite |= coarse.masks[name]
    sp = coarse.spacing_kji
    box = _box(coarse.masks[plate], np.ceil(OPPOSITE_MARGIN_MM / sp).astype(int) + 1)
    cart, own, other = (m[box] for m in (coarse.masks[plate], coarse.masks[bone], opposite))
    if not own.any():
        return [AnatomyCheck(plate, "touches_bone", False,
                             f"it lies more than {OPPOSITE_MARGIN_MM:.0f} mm from the {bone}")]
    dist, nearest = ndimage.distance_transform_edt(~own, sampling=sp, return_indices=True)
    inside = np.argwhere(cart)
    d = dist[tuple(inside.T)]
    if d.min() > TOUCH_VOXELS * float(sp.max()) or np.median(d) > MAX_MEDIAN_DISTANCE_MM:
        touch = AnatomyCheck(plate, "touches_bone", False,
                             f"it does not lie on the {bone} (median {np.median(d):.1f} mm, "
                             f"nearest {d.min():.1f} mm from it)")
    else:
        touch = AnatomyCheck(plate, "touches_bone", True)
    if not other.any():
        return [touch]
    _, towards = ndimage.distance_transform_edt(~other, sampling=sp, return_indices=True)
    out_of_bone = (inside - nearest[(slice(None), *inside.T)].T) * sp
    to_joint = (towards[(slice(None), *inside.T)].T - inside) * sp
    # coarse voxels shared with a bone (blocks holding both) have no direction: left out
    judged = (np.abs(out_of_bone).sum(1) > 0) & (np.abs(to_joint).sum(1) > 0)
    if not judged.any():
        return [touch]
    dots = np.einsum("ij,ij->i", out_of_bone[judged], to_joint[judged])
    share = float(np.mean(dots > 0))
    if share < MIN_FACING_SHARE:
        names = " or ".join(n for n in OPPOSITE_BONES[plate] if n in coarse.masks)
        face = AnatomyCheck(plate, "faces_joint", False,
                            f"it is not between the {bone} and the joint: only {share:.0%} of "
                            f"it faces the {names}")
    else:
        face = AnatomyCheck(plate, "faces_joint", True)
    return [touch, face]


def check_cartilage_plausibility(plate: str, volume_ml: float, mean_thickness_mm: float,
                                 cropped: bool = False) -> AnatomyCheck:
    """``plausible``: the plate's measured mean thickness and volume (module docstring).

    ``cropped`` (the plate touches the image border) skips the volume floor.
    """
    lo, hi = PATELLAR_MEAN_THICKNESS_MM if plate == PATELLAR_CARTILAGE else MEAN_THICKNESS_MM
    if mean_thickness_mm > hi:
        return AnatomyCheck(plate, "plausible", False,
                            f"it is too thick for cartilage (mean {mean_thickness_mm:.1f} mm, "
                            f"at most {hi:.1f} mm expected), so neighbouring tissue is "
                            "labelled as cartilage")
    if mean_thickness_mm < lo:
        return AnatomyCheck(plate, "plausible", False,
                            f"it is too thin for cartilage (mean {mean_thickness_mm:.2f} mm, "
                            f"at least {lo:.1f} mm expected)")
    floor = MIN_PLATE_ML.get(plate, 0.0)
    if volume_ml < floor and not cropped:
        return AnatomyCheck(plate, "plausible", False,
                            f"it is too small for a whole plate ({volume_ml:.2f} mL, at least "
                            f"{floor:.1f} mL expected), so most of it is missing")
    return AnatomyCheck(plate, "plausible", True)


def mask_touches_border(mask: np.ndarray) -> bool:
    """Whether the mask reaches a face of the image (cropped by the field of view)."""
    return _touches_border(mask)

"""Canonical segment ids (CONTRACT.md) with display names, colours and SNOMED CT codes.

Codes follow DICOM's ``SegmentedPropertyCategory/Type`` convention, as used by Slicer's
terminology module and DICOM SEG. Each entry is ``(code value, scheme, meaning)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Code = tuple[str, str, str]

ANATOMICAL_STRUCTURE: Code = ("123037004", "SCT", "Anatomical Structure")
ALTERED_STRUCTURE: Code = ("49755003", "SCT", "Morphologically Altered Structure")
PHYSICAL_OBJECT: Code = ("260787004", "SCT", "Physical object")
CARTILAGE: Code = ("309312004", "SCT", "Cartilage structure")

# Canonical segment ids: name them through these constants, not as string literals.
TUMOR = "tumor"
SAFETY_MARGIN = "safety_margin"
BONE = "bone"
FEMUR = "femur"
TIBIA = "tibia"
PATELLA = "patella"
FIBULA = "fibula"
FEMORAL_CARTILAGE = "femoral_cartilage"
TIBIAL_CARTILAGE = "tibial_cartilage"
MEDIAL_TIBIAL_CARTILAGE = "medial_tibial_cartilage"
LATERAL_TIBIAL_CARTILAGE = "lateral_tibial_cartilage"
PATELLAR_CARTILAGE = "patellar_cartilage"
BONE_FRAGMENT_PREFIX = "bone_fragment_"  # + 1, 2, ...: mskai.fracture.fragments.fragment_id

# Groups of knee ids, in this order wherever they are listed.
KNEE_REQUIRED_BONES = (FEMUR, TIBIA)  # every knee segmentation CartilageQuant measures has both
KNEE_BONES = (FEMUR, TIBIA, PATELLA, FIBULA)
TIBIAL_PLATE_PAIR = (MEDIAL_TIBIAL_CARTILAGE, LATERAL_TIBIAL_CARTILAGE)  # split at the spine
TIBIAL_CARTILAGES = (*TIBIAL_PLATE_PAIR, TIBIAL_CARTILAGE)  # the pair or one unsplit plate
KNEE_CARTILAGES = (FEMORAL_CARTILAGE, *TIBIAL_CARTILAGES, PATELLAR_CARTILAGE)
KNEE_SEGMENTS = (*KNEE_BONES, *KNEE_CARTILAGES)


@dataclass(frozen=True)
class SegmentType:
    id: str
    name: str
    color: tuple[float, float, float]
    category: Code
    type: Code


_TYPES = [
    SegmentType(TUMOR, "Tumor", (0.85, 0.26, 0.22), ALTERED_STRUCTURE,
                ("108369006", "SCT", "Neoplasm")),
    SegmentType(SAFETY_MARGIN, "Safety margin", (0.98, 0.82, 0.25), PHYSICAL_OBJECT,
                ("228793007", "SCT", "Planning target volume")),
    SegmentType(BONE, "Bone", (0.94, 0.84, 0.57), ANATOMICAL_STRUCTURE,
                ("272673000", "SCT", "Bone structure")),
    SegmentType(FEMUR, "Femur", (0.91, 0.82, 0.59), ANATOMICAL_STRUCTURE,
                ("71341001", "SCT", "Bone structure of femur")),
    SegmentType(TIBIA, "Tibia", (0.86, 0.78, 0.55), ANATOMICAL_STRUCTURE,
                ("12611008", "SCT", "Bone structure of tibia")),
    SegmentType(PATELLA, "Patella", (0.80, 0.72, 0.50), ANATOMICAL_STRUCTURE,
                ("64234005", "SCT", "Patella")),
    SegmentType(FIBULA, "Fibula", (0.76, 0.70, 0.50), ANATOMICAL_STRUCTURE,
                ("87342007", "SCT", "Bone structure of fibula")),
    SegmentType(FEMORAL_CARTILAGE, "Femoral cartilage", (0.30, 0.60, 0.95), CARTILAGE,
                ("309312004", "SCT", "Cartilage structure")),
    SegmentType(TIBIAL_CARTILAGE, "Tibial cartilage", (0.35, 0.85, 0.55), CARTILAGE,
                ("309312004", "SCT", "Cartilage structure")),
    SegmentType(MEDIAL_TIBIAL_CARTILAGE, "Medial tibial cartilage", (0.25, 0.80, 0.45),
                CARTILAGE, ("309312004", "SCT", "Cartilage structure")),
    SegmentType(LATERAL_TIBIAL_CARTILAGE, "Lateral tibial cartilage", (0.55, 0.90, 0.35),
                CARTILAGE, ("309312004", "SCT", "Cartilage structure")),
    SegmentType(PATELLAR_CARTILAGE, "Patellar cartilage", (0.75, 0.45, 0.90), CARTILAGE,
                ("309312004", "SCT", "Cartilage structure")),
]

SEGMENT_TYPES: dict[str, SegmentType] = {t.id: t for t in _TYPES}

_FRAGMENT = re.compile(rf"^{BONE_FRAGMENT_PREFIX}(\d+)$")
_FRAGMENT_COLORS = [(0.95, 0.60, 0.20), (0.20, 0.70, 0.90), (0.60, 0.90, 0.30),
                    (0.90, 0.35, 0.65), (0.55, 0.45, 0.95), (0.95, 0.90, 0.35)]


def segment_type(segment_id: str) -> SegmentType:
    """Terminology for a canonical id; ``bone_fragment_N`` and unknown ids get sensible defaults."""
    if segment_id in SEGMENT_TYPES:
        return SEGMENT_TYPES[segment_id]
    match = _FRAGMENT.match(segment_id)
    if match:
        n = int(match.group(1))
        return SegmentType(segment_id, f"Bone fragment {n}",
                           _FRAGMENT_COLORS[(n - 1) % len(_FRAGMENT_COLORS)],
                           ANATOMICAL_STRUCTURE, ("272673000", "SCT", "Bone structure"))
    name = segment_id.replace("_", " ").capitalize()
    return SegmentType(segment_id, name, (0.6, 0.6, 0.6), ANATOMICAL_STRUCTURE,
                       ("91723000", "SCT", "Anatomical structure"))

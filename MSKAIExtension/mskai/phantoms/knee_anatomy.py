"""A tissue model of one knee built from one real segmentation (bones, cartilages, menisci).

Used by the knee training scripts (``training/knee``) and by ``mskai demo``; the reference
segmentation is a file the caller passes (the source checkout has it in ``Testing/Data/knee``).

The pymskt label map (MIT) only holds bones, cartilages and menisci. MR images also show
cortical bone, marrow, joint fluid, muscle, fat and air, so those are added here by simple
geometric rules (documented in training/knee/README.md). The result is a uint8 *tissue code*
map on a 0.5 mm isotropic grid in the reference's RAS-reoriented voxel frame; two lookup tables turn
a code into a tissue class (for intensities) and into a network label (for training).

Source labels: 1 femoral cartilage, 2 medial tibial cartilage, 3 lateral tibial cartilage,
4 patellar cartilage, 5 femur, 6 tibia, 7 patella, 8 fibula, 9 lateral meniscus,
10 medial meniscus.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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

REFERENCE_NAME = "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"  # pymskt (MIT)
ANATOMY_SPACING = 0.5  # mm, the grid the tissue model lives on (2x finer than the network)

# Network output labels (value -> canonical segment id, CONTRACT.md).
# Medial and lateral tibial cartilage are one class: a first model with them apart could not
# tell a left knee from a right one (it labelled both plateaus with both labels).
LABELS = {1: FEMUR, 2: TIBIA, 3: PATELLA, 4: FEMORAL_CARTILAGE, 5: TIBIAL_CARTILAGE,
          6: PATELLAR_CARTILAGE}

# Tissue classes whose intensities knee_mr.py tabulates per sequence.
TISSUES = ("air", "fat", "muscle", "fluid", "cortex", "marrow", "cartilage", "meniscus",
           "capsule")

# Tissue codes: (name, tissue class, network label). Fibula and menisci are rendered but
# are background for the network; "fluid_far" is fluid or capsule per case (patchy effusion).
CODES = (
    ("air", "air", 0), ("subcutaneous_fat", "fat", 0), ("muscle", "muscle", 0),
    ("periarticular_fat", "fat", 0), ("fluid_near", "fluid", 0), ("fluid_far", "capsule", 0),
    ("femur_cortex", "cortex", 1), ("tibia_cortex", "cortex", 2),
    ("patella_cortex", "cortex", 3), ("fibula_cortex", "cortex", 0),
    ("femur_marrow", "marrow", 1), ("tibia_marrow", "marrow", 2),
    ("patella_marrow", "marrow", 3), ("fibula_marrow", "marrow", 0),
    (FEMORAL_CARTILAGE, "cartilage", 4), (MEDIAL_TIBIAL_CARTILAGE, "cartilage", 5),
    (LATERAL_TIBIAL_CARTILAGE, "cartilage", 5), (PATELLAR_CARTILAGE, "cartilage", 6),
    ("meniscus", "meniscus", 0),
)
CODE = {name: value for value, (name, _, _) in enumerate(CODES)}
CODE_TO_LABEL = np.array([label for _, _, label in CODES], dtype=np.uint8)
CODE_TO_TISSUE = np.array([TISSUES.index(t) for _, t, _ in CODES], dtype=np.uint8)

# Geometric rules (mm).
CORTEX_MM = 1.0          # cortical shell thickness inside each bone
FLUID_NEAR_MM = 1.0      # non-labelled voxels this close to cartilage/menisci: fluid
FLUID_FAR_MM = 2.5       # ... up to this: fluid or capsule, decided per case
BODY_MM = 22.0           # skin at about this distance from any labelled structure
BODY_JITTER_MM = 6.0     # smooth random variation of that distance
SUBCUT_FAT_MM = 7.0      # subcutaneous fat layer under the skin
PERIARTICULAR_MM = 9.0   # near both femur and tibia: Hoffa / popliteal fat


@dataclass(frozen=True)
class Anatomy:
    """Tissue codes ``[X, Y, Z]`` on a grid in the reference's RAS-reoriented voxel frame."""

    codes: np.ndarray
    spacing: float
    origin: tuple[float, float, float]      # LPS mm of voxel (0, 0, 0)
    direction: tuple[float, ...]            # 9 numbers, SimpleITK order (LPS)
    lr_axis: int                            # array axis closest to patient left-right


def reference_image(path: str | Path):
    """The reference label map reoriented as mskai's preprocessing does (DICOMOrient RAS)."""
    import SimpleITK as sitk

    return sitk.DICOMOrient(sitk.ReadImage(str(path)), "RAS")


def build_anatomy(path: str | Path, seed: int = 0) -> Anatomy:
    """The tissue model; deterministic for a seed (it only shapes the skin line)."""
    import SimpleITK as sitk

    ref = reference_image(path)
    size = np.asarray(ref.GetSize())
    extent = (size - 1) * np.asarray(ref.GetSpacing())
    new_size = [int(s) for s in np.floor(extent / ANATOMY_SPACING).astype(int) + 1]
    fine = sitk.Resample(ref, new_size, sitk.Transform(), sitk.sitkNearestNeighbor,
                         ref.GetOrigin(), (ANATOMY_SPACING,) * 3, ref.GetDirection(), 0,
                         sitk.sitkUInt8)
    src = sitk.GetArrayFromImage(fine).transpose(2, 1, 0)
    codes = _tissue_codes(src, ANATOMY_SPACING, np.random.default_rng(seed))
    direction = np.asarray(ref.GetDirection()).reshape(3, 3)
    return Anatomy(codes, ANATOMY_SPACING, tuple(ref.GetOrigin()),
                   tuple(direction.ravel()), int(np.argmax(np.abs(direction[0]))))


def _tissue_codes(src: np.ndarray, spacing: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    codes = np.full(src.shape, CODE["muscle"], dtype=np.uint8)
    labelled = src > 0
    _soft_tissue(codes, src, labelled, spacing, rng)
    _fluid(codes, src, labelled, spacing)
    bone_codes = {5: ("femur_cortex", "femur_marrow"), 6: ("tibia_cortex", "tibia_marrow"),
                  7: ("patella_cortex", "patella_marrow"),
                  8: ("fibula_cortex", "fibula_marrow")}
    for value, (cortex, marrow) in bone_codes.items():
        # Inside the bone's bounding box plus one voxel (background there), the distance
        # to the nearest non-bone voxel is the same as in the whole grid, and much cheaper.
        found = np.argwhere(src == value)
        lo, hi = np.maximum(found.min(0) - 1, 0), found.max(0) + 2
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        mask = src[box] == value
        depth = ndimage.distance_transform_edt(mask, sampling=spacing)
        sub = codes[box]
        sub[mask] = CODE[marrow]
        sub[mask & (depth <= CORTEX_MM)] = CODE[cortex]
    for value, name in {1: FEMORAL_CARTILAGE, 2: MEDIAL_TIBIAL_CARTILAGE,
                        3: LATERAL_TIBIAL_CARTILAGE, 4: PATELLAR_CARTILAGE,
                        9: "meniscus", 10: "meniscus"}.items():
        codes[src == value] = CODE[name]
    return codes


def _soft_tissue(codes: np.ndarray, src: np.ndarray, labelled: np.ndarray, spacing: float,
                 rng: np.random.Generator) -> None:
    """Air outside the skin, subcutaneous fat under it, periarticular fat; computed at 2 mm."""
    from scipy import ndimage

    step = 4  # 0.5 mm -> 2 mm: the soft-tissue envelope is coarse, and EDT is costly
    coarse = labelled[::step, ::step, ::step]
    dist = ndimage.distance_transform_edt(~coarse, sampling=spacing * step)
    jitter = ndimage.gaussian_filter(rng.standard_normal(coarse.shape), 4.0)
    jitter *= BODY_JITTER_MM / max(float(jitter.std()), 1e-6)
    depth = BODY_MM + jitter - dist  # depth under the skin, mm
    femur = ndimage.distance_transform_edt(src[::step, ::step, ::step] != 5,
                                           sampling=spacing * step)
    tibia = ndimage.distance_transform_edt(src[::step, ::step, ::step] != 6,
                                           sampling=spacing * step)
    coarse_codes = np.full(coarse.shape, CODE["muscle"], dtype=np.uint8)
    coarse_codes[(femur < PERIARTICULAR_MM) & (tibia < PERIARTICULAR_MM)] = \
        CODE["periarticular_fat"]
    coarse_codes[depth < SUBCUT_FAT_MM] = CODE["subcutaneous_fat"]
    coarse_codes[depth < 0] = CODE["air"]
    up = np.repeat(np.repeat(np.repeat(coarse_codes, step, 0), step, 1), step, 2)
    codes[...] = up[:codes.shape[0], :codes.shape[1], :codes.shape[2]]


def _fluid(codes: np.ndarray, src: np.ndarray, labelled: np.ndarray, spacing: float) -> None:
    """Joint fluid in a thin layer around cartilage and menisci (in their bounding box)."""
    from scipy import ndimage

    joint = np.isin(src, (1, 2, 3, 4, 9, 10))
    margin = int(np.ceil(FLUID_FAR_MM / spacing)) + 2
    lo = np.maximum(np.argwhere(joint).min(0) - margin, 0)
    hi = np.argwhere(joint).max(0) + margin + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    dist = ndimage.distance_transform_edt(~joint[box], sampling=spacing)
    free = ~labelled[box]
    sub = codes[box]
    sub[free & (dist <= FLUID_FAR_MM)] = CODE["fluid_far"]
    sub[free & (dist <= FLUID_NEAR_MM)] = CODE["fluid_near"]

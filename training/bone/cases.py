"""The real CT cases for the bone model, and the split between training and evaluation.

Labels are the union of TotalSegmentator's bone classes (total-v2 labels 25-50, 69-78,
91-116). They are TotalSegmentator MODEL OUTPUTS shipped as its regression references,
not manual ground truth. TPTBox's vertebra mask (L3 crop) is used for evaluation only.

Split (no voxel of an evaluation case is seen in training):

- training: ``example_ct`` slices k < 52 (pelvis, sacrum, L4-L5, femoral heads) and the
  20-slice chest DICOM series ``example_ct_dicom`` (ribs, thoracic spine, scapulae);
- evaluation: ``example_ct`` slices k >= 56 (L3 to T11, lower ribs; 4 slices = 12 mm left
  out between the halves), ``example_ct_sm`` (slices 82-111 of the same scan, with its own
  TotalSegmentator run ``example_seg``), and the TPTBox L3 crop (1.5 mm, another scanner).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
TS = DATA / "ts_example"
TS_BONE = [25, *range(26, 51), *range(69, 79), 91, *range(92, 117)]
TRAIN_LAST_SLICE = 52
TEST_FIRST_SLICE = 56


@dataclass
class Case:
    """One CT volume (a ``mskai.volume.Volume``) and its reference bone mask [k, j, i]."""

    name: str
    volume: object
    mask: np.ndarray
    near: np.ndarray | None = None  # evaluate only here (TPTBox: around its vertebra)


def _slab(volume, mask: np.ndarray, start: int, stop: int | None, name: str) -> Case:
    box = (slice(start, stop), slice(None), slice(None))
    return Case(name, volume.crop(box), mask[box])


def _example_ct() -> tuple[object, np.ndarray]:
    from mskai.image import read_image

    volume = read_image(TS / "example_ct.nii.gz")
    seg = read_image(TS / "example_seg_fast_force_split.nii.gz").array
    return volume, np.isin(seg, TS_BONE)


def _dicom_chest() -> Case:
    """The DICOM series; its label map lies on a j-flipped grid and is resampled onto it."""
    import SimpleITK as sitk

    from mskai.image import read_image

    volume = read_image(TS / "example_ct_dicom")
    seg = read_image(TS / "example_seg_dicom.nii.gz")
    labels = volume.with_array(np.zeros(volume.array.shape, dtype=np.uint8))
    moved = sitk.Resample(seg.to_sitk(), labels.to_sitk(), sitk.Transform(),
                          sitk.sitkNearestNeighbor, 0)
    return Case("example_ct_dicom", volume, np.isin(sitk.GetArrayFromImage(moved), TS_BONE))


def training_cases() -> list[Case]:
    volume, mask = _example_ct()
    return [_slab(volume, mask, 0, TRAIN_LAST_SLICE, "example_ct_k0-51"), _dicom_chest()]


def evaluation_cases() -> list[Case]:
    from scipy import ndimage

    from mskai.image import read_image

    volume, mask = _example_ct()
    sm = read_image(TS / "example_ct_sm.nii.gz")
    sm_mask = np.isin(read_image(TS / "example_seg.nii.gz").array, TS_BONE)
    folder = DATA / "tptbox_spine" / "sample_ct"
    tpt = read_image(folder / "sub-ct_label-22_ct.nii.gz")
    vert = read_image(folder / "sub-ct_seg-vert_label-22_msk.nii.gz").array > 0
    return [_slab(volume, mask, TEST_FIRST_SLICE, None, "example_ct_k56-111"),
            Case("example_ct_sm", sm, sm_mask),
            Case("tptbox_L3", tpt, vert, ndimage.binary_dilation(vert, iterations=3))]

"""Bone segmentation on CT: Dice against TotalSegmentator bone classes and TPTBox vertebrae."""

from __future__ import annotations

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.segmentation.bone_ct import segment_bone_ct
from mskai.volume import Volume

# TotalSegmentator total-v2 bone classes: sacrum, vertebrae, humerus..hip, skull, ribs, sternum
TS_BONE = [25, *range(26, 51), *range(69, 79), 91, *range(92, 117)]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


@pytest.mark.parametrize(("ct", "seg", "minimum"), [
    ("example_ct.nii.gz", "example_seg_fast_force_split.nii.gz", 0.90),  # measured 0.908
    ("example_ct_sm.nii.gz", "example_seg.nii.gz", 0.86),  # measured 0.874
])
def test_dice_against_totalsegmentator(shared_data, ct, seg, minimum):
    from mskai.image import read_image

    image = read_image(shared_data / "ts_example" / ct)
    reference = np.isin(read_image(shared_data / "ts_example" / seg).array, TS_BONE)
    assert dice(segment_bone_ct(image), reference) >= minimum


def test_dice_against_tptbox_vertebrae(shared_data):
    """Restricted to 3 voxels around the labelled vertebrae (the crop holds more bone)."""
    from scipy import ndimage

    from mskai.image import read_image

    folder = shared_data / "tptbox_spine" / "sample_ct"
    image = read_image(folder / "sub-ct_label-22_ct.nii.gz")
    reference = read_image(folder / "sub-ct_seg-vert_label-22_msk.nii.gz").array > 0
    near = ndimage.binary_dilation(reference, iterations=3)
    assert dice(segment_bone_ct(image) & near, reference) >= 0.75  # measured 0.775


def _block_ct() -> Volume:
    array = np.full((30, 40, 40), -1000.0, dtype=np.float32)
    array[5:25, 5:35, 5:35] = 40.0
    array[10:20, 15:25, 15:25] = 1000.0  # cortex shell
    array[12:18, 17:23, 17:23] = 0.0  # fatty marrow inside
    return Volume(array, spacing=(1.0, 1.0, 2.0), modality="CT")


def test_marrow_inside_cortex_is_filled():
    mask = segment_bone_ct(_block_ct(), smoothing_mm=0.0)
    assert mask[12:18, 17:23, 17:23].all()
    assert not mask[5:25, 5:35, 5:35].all()


def test_large_image_is_downsampled_with_warning():
    image = _block_ct()
    warnings: list[str] = []
    mask = segment_bone_ct(image, max_voxels=image.array.size // 6, warnings=warnings)
    assert mask.shape == image.array.shape
    assert warnings and "coarsened" in warnings[0]
    full = segment_bone_ct(image)
    assert dice(mask, full) > 0.8


def test_mr_is_refused():
    mr = Volume(np.random.default_rng(0).uniform(0, 500, (10, 10, 10)), modality="MR")
    with pytest.raises(InputError, match="CT"):
        segment_bone_ct(mr)


def test_no_bone_gives_empty_mask():
    array = np.full((10, 10, 10), -1000.0)
    array[3:7, 3:7, 3:7] = 40.0
    assert not segment_bone_ct(Volume(array, modality="CT")).any()


def test_scanner_table_in_the_air_is_not_bone():
    from mskai.segmentation.bone_ct import segment_bone_ct
    from mskai.volume import Volume

    k, j, i = np.mgrid[0:30, 0:80, 0:80]
    ct = np.full(k.shape, -1000.0, np.float32)
    body = (j - 35) ** 2 + (i - 40) ** 2 < 28**2
    ct[body] = 40.0
    rod = (j - 35) ** 2 + (i - 40) ** 2 < 6**2
    ct[rod] = 1200.0
    table = (j >= 70) & (j < 74)  # a 4-voxel plate below the body, separated by air
    ct[table] = 500.0
    bone = segment_bone_ct(Volume(ct, spacing=(1.0, 1.0, 2.0), modality="CT"))
    assert bone[rod].mean() > 0.95
    assert not bone[table].any()

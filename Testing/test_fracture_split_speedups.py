"""The fragment splits' speed-ups keep their results.

The ITK reconstruction of :func:`mskai.fracture.fragments.h_maxima` must give the maxima of
scikit-image's ``h_maxima``, and :func:`mskai.fracture.fragments.split_at_necks`, now worked
in the mask's box, the parts it finds with the mask alone in a much larger image.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import h_maxima as skimage_h_maxima

from mskai.fracture.fragments import h_maxima, split_at_necks
from mskai.volume import Volume


@pytest.mark.parametrize("h", [0.05, 0.2, 0.5])
def test_h_maxima_are_scikit_images(h) -> None:
    rng = np.random.default_rng(1)
    field = ndimage.gaussian_filter(rng.random((30, 30, 30)), 2.0)
    field = (field - field.min()) / np.ptp(field)
    assert np.array_equal(h_maxima(field, h), skimage_h_maxima(field, h).astype(bool))


def _dumbbell(shape: tuple[int, int, int], at: tuple[int, int, int]) -> np.ndarray:
    """Two balls of radius 8 voxels joined by a neck of radius 2, centred at ``at``."""
    k, j, i = np.indices(shape)
    dk, dj, di = k - at[0], j - at[1], i - at[2]
    balls = ((dk**2 + dj**2 + (di - 11) ** 2) <= 64) | ((dk**2 + dj**2 + (di + 11) ** 2) <= 64)
    neck = (dk**2 + dj**2 <= 4) & (np.abs(di) <= 11)
    return balls | neck


def test_a_dumbbell_splits_alike_alone_and_in_a_large_image() -> None:
    volume_small = Volume(np.zeros((20, 20, 44), dtype=np.float32), spacing=(1.0, 1.0, 1.0))
    small = split_at_necks(_dumbbell((20, 20, 44), (10, 10, 22)), volume_small)
    volume_big = Volume(np.zeros((60, 70, 120), dtype=np.float32), spacing=(1.0, 1.0, 1.0))
    big = split_at_necks(_dumbbell((60, 70, 120), (30, 40, 52)), volume_big)
    assert small.max() == 2
    assert np.array_equal(big[20:40, 30:50, 30:74], small)
    assert not big[:20].any() and not big[40:].any()

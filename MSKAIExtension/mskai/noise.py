"""The noise level of a CT, measured where the scan shows it best: soft tissue."""

from __future__ import annotations

import numpy as np

from mskai.volume import Volume

SOFT_TISSUE_HU = (-50.0, 100.0)
FALLBACK_SD_HU = 10.0  # too little soft tissue to measure (a bone-only crop)


def noise_sd(image: Volume) -> float:
    """The scan's noise SD in HU: residual of a 3x3x3 mean in soft tissue (-50..100 HU,
    eroded by one voxel so tissue edges do not count), corrected for the mean's own share.

    The erosion is face-connected while the mean's window is the full cube, so soft tissue
    diagonal to bone still sees it: next to much bone the SD reads high (27 HU for 20 HU of
    noise in a small analytic phantom that is a third bone). The realistic fracture
    simulation adds its noise with this same measure."""
    from scipy import ndimage

    values = np.asarray(image.array, dtype=np.float32)
    resid = values - ndimage.uniform_filter(values, 3)
    soft = (values > SOFT_TISSUE_HU[0]) & (values < SOFT_TISSUE_HU[1])
    soft &= ndimage.binary_erosion(soft, iterations=1)
    if np.count_nonzero(soft) < 100:
        return FALLBACK_SD_HU
    return float(np.std(resid[soft]) * np.sqrt(27.0 / 26.0))

"""A synthetic CT ellipsoid lesion for the module's self-test inside Slicer (numpy only).

The same builder is run by the plain-pytest suite, so the numbers the Slicer test checks
are also checked where no Slicer application exists.
"""

from __future__ import annotations

import numpy as np

SEMI_AXES_MM = (20.0, 14.0, 10.0)
SPACING_MM = (0.8, 0.8, 2.0)
SHAPE_KJI = (20, 56, 70)
LESION_HU, SOFT_TISSUE_HU, AIR_HU = 80.0, 40.0, -1000.0
NOISE_SD_HU = 3.0


def ellipsoid_ct(seed: int = 0) -> tuple[np.ndarray, float, np.ndarray]:
    """(voxels ``[k, j, i]`` in HU, analytic volume in mL, centre ``[i, j, k]`` index).

    The lesion is centred in the grid; two columns of air on one side make the intensities
    recognisably Hounsfield units. Partial volume at the edge comes from 3x supersampling.
    """
    rng = np.random.default_rng(seed)
    centre = (np.array(SHAPE_KJI[::-1]) - 1) / 2.0
    fraction = np.zeros(SHAPE_KJI)
    offsets = (np.arange(3) - 1) / 3.0
    k, j, i = np.indices(SHAPE_KJI, dtype=float)
    for dk in offsets:
        for dj in offsets:
            for di in offsets:
                x = (i + di - centre[0]) * SPACING_MM[0] / SEMI_AXES_MM[0]
                y = (j + dj - centre[1]) * SPACING_MM[1] / SEMI_AXES_MM[1]
                z = (k + dk - centre[2]) * SPACING_MM[2] / SEMI_AXES_MM[2]
                fraction += (x * x + y * y + z * z) <= 1.0
    fraction /= 27.0
    voxels = SOFT_TISSUE_HU + (LESION_HU - SOFT_TISSUE_HU) * fraction
    voxels += rng.normal(0.0, NOISE_SD_HU, SHAPE_KJI)
    voxels[:, :, :2] = AIR_HU
    volume_ml = 4.0 / 3.0 * np.pi * np.prod(SEMI_AXES_MM) / 1000.0
    return voxels.astype(np.int16), float(volume_ml), centre

"""A fractured bone made in code, for the module's self-test inside Slicer (no files).

A hollow cylindrical shaft (outer radius 10 mm, cortex 3 mm, 1200 HU cortex, 250 HU marrow)
along the volume's k axis in soft tissue (40 HU) surrounded by air (-1000 HU), broken by a
gap; the distal piece is moved sideways along i by ``shiftMm``. Both pieces stay parallel,
so the truth is: displacement ``shiftMm``, angulation 0, fracture in the middle of the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticFracture:
    voxels: np.ndarray  # [k, j, i] HU
    spacing: tuple[float, float, float]  # (i, j, k) mm
    shiftMm: float
    gapCenterIjk: tuple[float, float, float]  # (i, j, k), continuous index


def fracturedShaft(shiftMm: float = 4.0, gapMm: float = 8.0,
                   spacing: tuple[float, float, float] = (1.0, 1.0, 1.5)) -> SyntheticFracture:
    si, sj, sk = spacing
    size = (int(round(120 / sk)), int(round(60 / sj)), int(round(60 / si)))  # k, j, i
    k, j, i = np.indices(size, dtype=float)
    x, y, z = (i - size[2] / 2) * si, (j - size[1] / 2) * sj, (k - size[0] / 2) * sk
    distal = z > gapMm / 2
    r = np.hypot(x - np.where(distal, shiftMm, 0.0), y)
    inShaft = (np.abs(z) >= gapMm / 2) & (np.abs(z) <= 50.0)
    voxels = np.full(size, -1000.0, dtype=np.float32)
    voxels[np.hypot(x, y) <= 25.0] = 40.0
    voxels[inShaft & (r <= 10.0)] = 250.0
    voxels[inShaft & (r <= 10.0) & (r >= 7.0)] = 1200.0
    centre = (size[2] / 2, size[1] / 2, size[0] / 2)
    return SyntheticFracture(voxels.astype(np.int16), spacing, float(shiftMm), centre)

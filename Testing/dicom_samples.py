"""The small real DICOM series the SEG and SR tests write results for, and a ball mask."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from mskai.segments import Provenance
from mskai.volume import Volume

STS = Path(__file__).resolve().parent / "Data" / "sts_sarcoma"
SERIES = STS / "STS_002_CT_dicom_5slices"  # 5 slices of STS_002's CT (TCIA, CC BY 3.0)
PROVENANCE = Provenance("interactive region growing from clicks", "mskai-tumor", "1.2",
                        "ab" * 32)


def read_series(path: Path = SERIES) -> Volume:
    """The series as mskai reads it (pydicom's warning on an over-long SH value silenced)."""
    from mskai.image import read_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_image(path)


def ball(volume: Volume, center_ijk, radius_mm: float) -> np.ndarray:
    """Voxels whose centre lies within ``radius_mm`` (physical) of an index point."""
    k, j, i = np.indices(volume.array.shape[:3])
    s = volume.spacing
    d2 = ((i - center_ijk[0]) * s[0]) ** 2 + ((j - center_ijk[1]) * s[1]) ** 2 \
        + ((k - center_ijk[2]) * s[2]) ** 2
    return d2 <= radius_mm**2

"""A tumour case with analytic truth: a sphere image and its label map on a 1 x 1 x 2 mm
grid, written as NRRD for tests that drive the ``mskai`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_sphere_case(folder: Path, radius_mm: float) -> tuple[Path, Path]:
    """``folder/image.nrrd`` (60 inside, 0 outside, int16) and ``folder/label.nrrd``."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    k, j, i = np.mgrid[0:24, 0:48, 0:48]
    inside = (i - 23.5) ** 2 + (j - 23.5) ** 2 + (2 * (k - 11.5)) ** 2 <= radius_mm**2
    paths = []
    for name, array in (("image.nrrd", np.where(inside, 60, 0).astype(np.int16)),
                        ("label.nrrd", inside.astype(np.uint8))):
        img = sitk.GetImageFromArray(array)
        img.SetSpacing((1.0, 1.0, 2.0))
        sitk.WriteImage(img, str(folder / name))
        paths.append(folder / name)
    return paths[0], paths[1]

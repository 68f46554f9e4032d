"""Femoral cartilage thickness of the real pymskt knee mask: mskai next to pyKNEEr.

pyKNEEr (``pykneer`` on PyPI, 0.0.6.3) does not install into mskai's environment: it requires
``itk`` and ``itkwidgets`` (Jupyter widgets) and ships 271 MB of elastix binaries, none of
which mskai may add to its lock. Its thickness code (``morphology_functions``: contours per
sagittal slice split into bone and articular sides by a circle fit, then the
nearest-neighbour distance from every bone-side point) needs only numpy, scipy,
scikit-image and SimpleITK, so this script loads that one file from the unpacked wheel:

    .venv/bin/pip download pykneer --no-deps -d /tmp/pyk
    unzip /tmp/pyk/pykneer-0.0.6.3-py3-none-any.whl -d /tmp/pyk/x
    PYKNEER_DIR=/tmp/pyk/x/pykneer .venv/bin/python Testing/benchmarks/bench_pykneer.py

It runs once (pyKNEEr takes minutes), so it is not part of ``make bench``'s repeated cases.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
KNEE = HERE.parent / "Data" / "knee" / "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
FEMORAL_CARTILAGE, FEMUR = 1, 5


def _pykneer_module(folder: Path):
    spec = importlib.util.spec_from_file_location("pykneer_morphology",
                                                  folder / "morphology_functions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pykneer_thickness(folder: Path) -> tuple[float, float]:
    """pyKNEEr's algorithm 1 (nearest neighbour from the bone side): (mean mm, seconds)."""
    import SimpleITK as sitk

    mf = _pykneer_module(folder)
    ref = sitk.ReadImage(str(KNEE))
    mask = (sitk.GetArrayFromImage(ref) == FEMORAL_CARTILAGE).astype(np.uint8)
    image = sitk.GetImageFromArray(mask.transpose(1, 2, 0))  # it slices the last axis
    sx, sy, sz = ref.GetSpacing()
    image.SetSpacing((sz, sx, sy))
    start = time.perf_counter()
    articular, bone = mf.separate_cartilage(image)
    thickness = mf.nearest_neighbor_thickness(bone, articular)
    return float(np.mean(thickness)), time.perf_counter() - start


def mskai_thickness() -> tuple[float, float]:
    from mskai.image import read_image
    from mskai.measure.thickness import cartilage_thickness

    volume = read_image(KNEE)
    start = time.perf_counter()
    tmap = cartilage_thickness(volume.array == FEMORAL_CARTILAGE, volume.array == FEMUR,
                               volume, "nearest")
    return tmap.summary()["mean_thickness_mm"], time.perf_counter() - start


def main() -> None:
    sys.path.insert(0, str(HERE.parents[1] / "MSKAIExtension"))
    folder = os.environ.get("PYKNEER_DIR")
    ours, ours_s = mskai_thickness()
    out = {"mskai_mean_mm": round(ours, 3), "mskai_seconds": round(ours_s, 2)}
    if folder:
        theirs, theirs_s = pykneer_thickness(Path(folder))
        out.update(pykneer_mean_mm=round(theirs, 3), pykneer_seconds=round(theirs_s, 1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
